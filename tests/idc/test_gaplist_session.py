"""Gap list semantics from the CD-1.1 spec, and the sans-I/O session's acknack and silence timing."""

from __future__ import annotations

import pytest

from gci_link.cd11 import AcknackBody, AlertBody
from gci_link.gaplist import GapList
from idc.session import SessionTimings, StationSession
from timeunits import NS_PER_S


def test_spec_example_2000_4000_then_1900():
    gaps = GapList()
    assert (gaps.lowest, gaps.highest, gaps.gaps()) == (0, -1, [])  # empty frame set
    assert gaps.add(2000) and gaps.add(4000)
    assert (gaps.lowest, gaps.highest, gaps.gaps()) == (2000, 4000, [(2001, 4000)])
    gaps.add(1900)
    assert gaps.gaps() == [(1901, 2000), (2001, 4000)]
    assert not gaps.add(2000)  # duplicate
    assert 1900 in gaps and 1901 not in gaps and 3999 not in gaps


def test_filling_a_gap_merges_and_restore_is_exact():
    gaps = GapList()
    for seq in (10, 11, 13, 12, 2**64 - 1):
        gaps.add(seq)
    assert gaps.intervals() == [(10, 14), (2**64 - 1, 2**64)]
    assert GapList(gaps.intervals()).gaps() == [(14, 2**64 - 1)]
    with pytest.raises(ValueError, match="unsigned 64-bit"):
        gaps.add(2**64)


def test_session_acks_after_commit_heartbeats_and_closes_after_silence():
    gaps = GapList()
    session = StationSession("STA1", gaps, 0, SessionTimings(55 * NS_PER_S, 120 * NS_PER_S, 1000))
    first = session.poll(0)
    assert first == [AcknackBody("STA1:0", 0, -1, ())]  # a new session hears our state at once
    assert session.poll(1 * NS_PER_S) == []
    gaps.add(7)
    session.committed(7)
    assert session.poll(2 * NS_PER_S) == [AcknackBody("STA1:0", 7, 7, ())]
    assert session.poll(56 * NS_PER_S) == []
    assert session.poll(57 * NS_PER_S) == [AcknackBody("STA1:0", 7, 7, ())]  # heartbeat within a minute
    session.frame_received(60 * NS_PER_S)
    assert session.poll(112 * NS_PER_S) == [AcknackBody("STA1:0", 7, 7, ())]
    assert session.poll(167 * NS_PER_S) == [AcknackBody("STA1:0", 7, 7, ())]
    assert session.poll(179 * NS_PER_S) == []
    out = session.poll(180 * NS_PER_S)
    assert len(out) == 1 and isinstance(out[0], AlertBody) and b"120 s" in out[0].message
    assert session.closed and session.poll(181 * NS_PER_S) == []


def test_acknack_reports_unsigned_numbers_as_signed_longs_and_caps_gaps():
    gaps = GapList()
    for seq in (1, 3, 5, 2**63 + 1):
        gaps.add(seq)
    session = StationSession("STA1", gaps, 0, SessionTimings(max_reported_gaps=2))
    body = session.acknack()
    assert body.lowest == 3 and body.highest == -(2**63) + 1  # the unlisted gap (2, 3) lies below lowest
    assert body.gaps == ((4, 5), (6, -(2**63) + 1))


def test_capped_gap_list_never_claims_frames_it_left_out():
    gaps = GapList()
    for seq in (10, 20, 30, 40):  # gaps 11-19, 21-29, 31-39
        gaps.add(seq)
    for cap, lowest, listed in ((1, 30, [(31, 40)]), (0, 40, []), (5, 10, [(11, 20), (21, 30), (31, 40)])):
        session = StationSession("STA1", gaps, 0, SessionTimings(max_reported_gaps=cap))
        body = session.acknack()
        assert (body.lowest, body.highest, list(body.gaps)) == (lowest, 40, listed)
