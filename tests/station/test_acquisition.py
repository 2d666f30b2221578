"""Acquisition continuity: every case a real digitizer link produces, checked sample by sample."""

from __future__ import annotations

import calendar
import logging
from fractions import Fraction

import numpy as np
import pytest

from digitizer.packet import Packet
from station.acquisition import Acquisition, ChannelBuffer, SampleRun, exact_rate, offset_ns
from station.alarms import AlarmBoard
from station.config import load_example_config
from timeunits import NS_PER_S

T0 = calendar.timegm((2024, 3, 1, 12, 0, 0)) * NS_PER_S


def packet(index: int, n: int, rate: float = 40.0, *, origin: int = T0, locked: bool | None = True,
           values: np.ndarray | None = None, shift_ns: int = 0) -> Packet:
    """Samples index..index+n-1 of a stream whose sample k is at origin + k/rate and has value k."""
    start = origin + offset_ns(index, exact_rate(rate)) + shift_ns
    data = np.arange(index, index + n, dtype=np.int32) if values is None else values.astype(np.int32)
    return Packet("XMPL01", "XMPLZ2", start, rate, data, clock_locked=locked)


def buffer(**kw) -> ChannelBuffer:
    kw.setdefault("lateness_budget_s", 3.0)
    return ChannelBuffer("XMPL.BHZ.", **kw)


def feed(buf: ChannelBuffer, *packets: Packet) -> None:
    for p in packets:
        buf.ingest(p)


def values(segments: list[SampleRun]) -> np.ndarray:
    return np.concatenate([s.samples for s in segments])


@pytest.mark.parametrize("rate", [1.0, 20.0, 40.0, 100.0, 1000.0, 0.1, 3.0])
def test_contiguous_packets_make_one_exact_segment(rate):
    per_packet = max(1, int(rate))
    buf = buffer()
    feed(buf, *(packet(i * per_packet, per_packet, rate) for i in range(60)))
    buf.flush()
    total = 60 * per_packet
    assert buf.complete_until_ns == T0 + offset_ns(total, exact_rate(rate))
    (seg,) = buf.extract(T0, T0 + 10**15)
    assert seg.start_ns == T0 and seg.sample_rate == rate and seg.clock_locked is True
    np.testing.assert_array_equal(seg.samples, np.arange(total))
    assert seg.end_ns == buf.complete_until_ns
    assert buf.stats.gaps == 0 and buf.held_samples == 0


def test_first_packets_wait_for_the_lateness_budget_so_an_earlier_one_can_still_lead():
    buf = buffer(lateness_budget_s=3.0)
    feed(buf, packet(40, 40), packet(80, 40))
    assert buf.complete_until_ns is None  # 2 s seen, budget 3 s
    feed(buf, packet(0, 40))  # the real first packet arrives late
    feed(buf, packet(120, 40), packet(160, 40))
    assert buf.complete_until_ns == T0 + 5 * NS_PER_S
    np.testing.assert_array_equal(values(buf.extract(T0, T0 + 5 * NS_PER_S)), np.arange(200))


def test_gap_is_held_open_for_late_packets_then_declared_final():
    buf = buffer(lateness_budget_s=3.0)
    feed(buf, packet(0, 40))
    buf.flush()
    feed(buf, packet(80, 40), packet(120, 40))  # 1 s missing
    assert buf.complete_until_ns == T0 + NS_PER_S and buf.stats.gaps == 0
    feed(buf, packet(160, 40), packet(200, 40))  # data now 4 s past the gap: final
    assert buf.stats.gaps == 1 and buf.stats.gap_ns == NS_PER_S
    assert buf.complete_until_ns == T0 + 6 * NS_PER_S
    segs = buf.extract(T0, T0 + 6 * NS_PER_S)
    assert [(s.start_ns, s.nsamp) for s in segs] == [(T0, 40), (T0 + 2 * NS_PER_S, 160)]
    assert list(buf.recent_gaps)[0].start_ns == T0 + NS_PER_S


def test_out_of_order_packet_within_the_window_fills_its_gap():
    buf = buffer()
    feed(buf, packet(0, 40))
    buf.flush()
    feed(buf, packet(80, 40), packet(120, 40), packet(40, 40))
    assert buf.stats.gaps == 0 and buf.stats.reordered_packets == 1
    assert buf.complete_until_ns == T0 + 4 * NS_PER_S
    (seg,) = buf.extract(T0, T0 + 4 * NS_PER_S)
    np.testing.assert_array_equal(seg.samples, np.arange(160))


def test_packet_arriving_after_its_gap_closed_is_dropped_and_counted(caplog):
    buf = buffer(lateness_budget_s=3.0)
    feed(buf, packet(0, 40))
    buf.flush()
    feed(buf, *(packet(i * 40, 40) for i in range(2, 7)))  # gap 1-2 s, final after 4 s more
    assert buf.stats.gaps == 1
    held = buf.held_samples
    with caplog.at_level(logging.WARNING):
        feed(buf, packet(40, 40))
    assert buf.stats.late_packets == 1 and buf.stats.late_samples == 40
    assert buf.held_samples == held and buf.stats.time_tears == 0
    assert "after its gap" in caplog.text


def test_identical_overlap_is_dropped_as_duplicates_and_the_rest_appended():
    buf = buffer()
    feed(buf, packet(0, 40))
    buf.flush()
    feed(buf, packet(0, 40), packet(20, 40))  # whole-packet repeat, then half overlap
    assert buf.stats.duplicate_samples == 60 and buf.stats.conflicting_samples == 0
    (seg,) = buf.extract(T0, T0 + 10 * NS_PER_S)
    np.testing.assert_array_equal(seg.samples, np.arange(60))


def test_conflicting_overlap_keeps_the_first_values_and_is_logged(caplog):
    buf = buffer()
    feed(buf, packet(0, 40))
    buf.flush()
    other = np.arange(30, 70) + 1000  # samples 30..69 with different values
    with caplog.at_level(logging.WARNING):
        feed(buf, packet(30, 40, values=other))
    assert buf.stats.conflicting_samples == 10 and buf.stats.duplicate_samples == 0
    assert "disagrees" in caplog.text
    (seg,) = buf.extract(T0, T0 + 10 * NS_PER_S)
    np.testing.assert_array_equal(seg.samples, np.concatenate([np.arange(40), other[10:]]))


def test_jitter_below_the_tolerance_is_contiguous_above_it_starts_a_segment():
    buf = buffer(jitter_tolerance_samples=0.25)
    period = NS_PER_S // 40
    feed(buf, packet(0, 40))
    buf.flush()
    feed(buf, packet(40, 40, shift_ns=period // 10))  # 0.1 sample late: same segment, own time base kept
    feed(buf, packet(80, 40, shift_ns=-period // 10))
    assert buf.stats.gaps == 0
    feed(buf, packet(120, 40, shift_ns=period * 6 // 10), packet(160, 40, shift_ns=period * 6 // 10))
    buf.flush()
    segs = buf.extract(T0, T0 + 10 * NS_PER_S)
    assert [s.start_ns for s in segs] == [T0, T0 + 3 * NS_PER_S + period * 6 // 10]
    assert buf.stats.gaps == 1


def test_backward_time_tear_starts_a_new_segment_instead_of_stalling(caplog):
    buf = buffer(overlap_tolerance_s=1.0)
    feed(buf, *(packet(i * 40, 40, locked=False) for i in range(10)))
    buf.flush()
    assert buf.complete_until_ns == T0 + 10 * NS_PER_S
    relocked = T0 - 5 * NS_PER_S  # GPS re-lock pulls time back 5 s (beyond the 1 s overlap tolerance)
    with caplog.at_level(logging.WARNING):
        feed(buf, *(packet(i * 40, 40, origin=relocked, values=np.full(40, -i)) for i in range(10, 13)))
    assert buf.stats.time_tears == 1 and "time tear" in caplog.text
    assert buf.stats.duplicate_samples == buf.stats.conflicting_samples == 0
    assert buf.complete_until_ns == T0 + 8 * NS_PER_S  # new timeline keeps advancing
    assert buf.oldest_ns == T0
    segs = buf.extract(T0, T0 + 10 * NS_PER_S)
    assert [(s.start_ns, s.nsamp, s.clock_locked) for s in segs] == [
        (T0, 400, False), (T0 + 5 * NS_PER_S, 120, True)]


def test_small_backward_step_within_the_overlap_tolerance_is_an_overlap_not_a_tear():
    buf = buffer(overlap_tolerance_s=1.0)
    feed(buf, packet(0, 80))
    buf.flush()
    feed(buf, packet(60, 40))  # half a second back
    assert buf.stats.time_tears == 0 and buf.stats.duplicate_samples == 20


def test_forward_time_tear_is_a_final_gap_at_once():
    buf = buffer(lateness_budget_s=30.0)
    feed(buf, packet(0, 40))
    buf.flush()
    hour = 3600 * 40
    feed(buf, packet(hour, 40))
    assert buf.stats.gaps == 1 and buf.complete_until_ns == T0 + 3601 * NS_PER_S
    segs = buf.extract(T0, T0 + 4000 * NS_PER_S)
    assert [s.start_ns for s in segs] == [T0, T0 + 3600 * NS_PER_S]


def test_rate_change_starts_a_new_segment_without_a_gap():
    buf = buffer()
    feed(buf, packet(0, 40, 40.0))
    buf.flush()
    feed(buf, packet(100, 100, 100.0))  # 100 sps from T0 + 1 s
    assert buf.stats.rate_changes == 1 and buf.stats.gaps == 0
    segs = buf.extract(T0, T0 + 2 * NS_PER_S)
    assert [(s.start_ns, s.sample_rate, s.nsamp) for s in segs] == [
        (T0, 40.0, 40), (T0 + NS_PER_S, 100.0, 100)]


def test_clock_lock_change_splits_segments_and_carries_the_timing_quality():
    buf = buffer()
    feed(buf, packet(0, 40, locked=True))
    buf.flush()
    feed(buf, packet(40, 40, locked=False), packet(80, 40, locked=False))
    segs = buf.extract(T0, T0 + 3 * NS_PER_S)
    assert [(s.start_ns, s.nsamp, s.clock_locked) for s in segs] == [
        (T0, 40, True), (T0 + NS_PER_S, 80, False)]
    assert buf.stats.lock_changes == 1 and buf.stats.gaps == 0


def test_unknown_lock_before_the_first_status_continues_a_locked_chain():
    """After every start the driver stamps blocks lock-unknown until the digitizer's first status block:
    that is no change of lock, so no second segment; a change to unlocked still is one."""
    buf = buffer()
    feed(buf, packet(0, 40, locked=None))
    buf.flush()
    feed(buf, packet(40, 40, locked=True), packet(80, 40, locked=False), packet(120, 40, locked=None))
    buf.flush()
    segs = buf.extract(T0, T0 + 4 * NS_PER_S)
    assert [(s.start_ns, s.nsamp, s.clock_locked is False) for s in segs] == [
        (T0, 80, False), (T0 + 2 * NS_PER_S, 40, True), (T0 + 3 * NS_PER_S, 40, False)]
    assert np.array_equal(values(segs), np.arange(160))
    assert buf.stats.lock_changes == 2 and buf.stats.gaps == 0


def test_ending_the_start_hold_commits_the_oldest_packet_and_keeps_later_gaps_open():
    buf = buffer()
    feed(buf, packet(0, 40), packet(80, 40))  # 1-2 s missing, both within the 3 s budget
    assert buf.complete_until_ns is None and buf.first_pending_ns == T0
    buf.end_start_hold()
    assert buf.complete_until_ns == T0 + NS_PER_S and buf.first_pending_ns == T0 + 2 * NS_PER_S
    feed(buf, packet(40, 40))  # the missing packet still fills the gap
    assert buf.complete_until_ns == T0 + 3 * NS_PER_S and buf.stats.gaps == 0


@pytest.mark.parametrize("boundary", [(2024, 3, 2, 0, 0, 0), (2025, 1, 1, 0, 0, 0)],
                         ids=["midnight", "year-end"])
def test_extract_on_the_frame_grid_across_midnight_and_year_end(boundary):
    edge = calendar.timegm(boundary) * NS_PER_S
    origin = edge - 15 * NS_PER_S
    buf = buffer()
    feed(buf, *(packet(i * 40, 40, origin=origin) for i in range(30)))
    buf.flush()
    before = buf.extract(edge - 10 * NS_PER_S, edge)
    after = buf.extract(edge, edge + 10 * NS_PER_S)
    assert before[0].start_ns == edge - 10 * NS_PER_S and before[0].nsamp == 400
    assert after[0].start_ns == edge and after[0].samples[0] == 600 and after[0].nsamp == 400
    assert buf.held_samples == 400  # the 5 s before and after the two frames stay held


def test_fractional_rate_times_are_rounded_per_sample_and_never_drift():
    rate = 3.0  # period 333 333 333.3 ns
    buf = buffer(buffer_s=86400.0)
    day = 3 * 86400
    feed(buf, *(packet(i * 3 * 600, 3 * 600, rate) for i in range(day // 1800)))
    buf.flush()
    assert buf.complete_until_ns == T0 + 86400 * NS_PER_S  # exact after 259 200 samples
    (seg,) = buf.extract(T0 + NS_PER_S, T0 + 2 * NS_PER_S)
    assert seg.start_ns == T0 + NS_PER_S and seg.nsamp == 3
    assert [seg.sample_time_ns(i) - T0 for i in range(3)] == [1_000_000_000, 1_333_333_333, 1_666_666_667]
    assert exact_rate(0.1) == Fraction(1, 10)


def test_tenth_of_a_hertz_channel():
    buf = buffer(lateness_budget_s=100.0)
    feed(buf, *(packet(i, 1, 0.1) for i in range(12)))
    buf.flush()
    segs = buf.extract(T0, T0 + 60 * NS_PER_S)
    assert segs[0].nsamp == 6 and buf.complete_until_ns == T0 + 120 * NS_PER_S


def test_buffer_cap_drops_oldest_and_raises_then_clears_the_alarm():
    board = AlarmBoard()
    buf = ChannelBuffer("XMPL.BHZ.", lateness_budget_s=1.0, buffer_s=10.0, alarms=board)
    feed(buf, *(packet(i * 40, 40) for i in range(15)))
    assert buf.held_samples == 400 and buf.stats.overflow_samples == 200
    assert board.get("acquisition_buffer_full", "XMPL.BHZ.") is not None
    assert buf.oldest_ns == T0 + 5 * NS_PER_S
    buf.extract(T0, T0 + 15 * NS_PER_S)
    assert board.get("acquisition_buffer_full", "XMPL.BHZ.") is None
    assert board.history[-1].cleared_ns == T0 + 15 * NS_PER_S


def test_bad_packet_is_counted_and_logged_not_raised(caplog):
    buf = buffer()
    bad = Packet("XMPL01", "XMPLZ2", T0, 40.0, np.zeros(40, dtype=np.float64))
    with caplog.at_level(logging.ERROR):
        buf.ingest(bad)
        buf.ingest(Packet("XMPL01", "XMPLZ2", T0, 0.0, np.zeros(40, dtype=np.int32)))
    assert buf.stats.rejected_packets == 2 and buf.held_samples == 0
    assert "int32" in caplog.text and "sample rate" in caplog.text


def test_acquisition_routes_by_system_and_stream_and_counts_strangers(tmp_path):
    acq = Acquisition(load_example_config(tmp_path))
    assert set(acq.buffers) == {"XMPL.BHZ.", "XMPL.BHN.", "XMPL.BHE.", "XMPL.BDF.01"}
    assert acq.ingest(packet(0, 40)) is acq.buffers["XMPL.BHZ."]
    stranger = Packet("OTHER1", "XMPLZ2", T0, 40.0, np.zeros(40, np.int32))
    assert acq.ingest(stranger) is None and acq.ingest(stranger) is None
    assert acq.unrouted == {("OTHER1", "XMPLZ2"): 2}
    acq.flush()
    assert acq.buffers["XMPL.BHZ."].complete_until_ns == T0 + NS_PER_S
