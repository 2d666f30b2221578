"""The on-disk ring: sequence numbers that only grow (across restarts and depth changes), a bounded
depth, records that come back byte for byte, and refusals that append nothing."""

from __future__ import annotations

import os
import threading

import pytest

from idc.seedlink.record import RECORD_LENGTH
from idc.seedlink.ring import HEADER_BYTES, SLOT_BYTES, Ring, RingError, capacity_for
from tests.idc.seedlink.conftest import T0, records, walk
from timeunits import NS_PER_S


def _channel_records(n_records: int, seed: int = 0) -> list[bytes]:
    blob = records("XX", "STA", "00", "BHZ", T0, walk(seed, 400 * n_records))
    out = [blob[i : i + RECORD_LENGTH] for i in range(0, len(blob), RECORD_LENGTH)]
    assert len(out) >= n_records
    return out[:n_records]


def test_records_come_back_in_order_with_their_numbers_and_span(tmp_path):
    recs = _channel_records(5)
    with Ring.open(tmp_path / "r", records=64) as ring:
        assert (ring.oldest_seq, ring.next_seq, ring.newest_seq) == (1, 1, None)
        seqs = ring.append_batch([("XX", "STA", "00", "BHZ", b"".join(recs[:3]))])
        assert list(seqs) == [1, 2, 3]
        assert ring.append("XX", "STA", "00", "BHZ", recs[3]) == 4
        got = list(ring.read_from(0))
        assert [r.seq for r in got] == [1, 2, 3, 4]
        assert [r.record for r in got] == recs[:4]
        assert got[0][1:5] == ("XX", "STA", "00", "BHZ")
        assert got[1].start_ns == got[0].end_ns  # contiguous records of one channel
        assert ring.newest_seq == 4
        assert ring.start_of(2) == got[1].start_ns and ring.start_of(9) is None


def test_the_depth_is_bounded_and_the_oldest_records_are_overwritten(tmp_path):
    recs = _channel_records(40)
    with Ring.open(tmp_path / "r", records=16) as ring:
        for rec in recs:
            ring.append("XX", "STA", "00", "BHZ", rec)
        assert os.path.getsize(tmp_path / "r") == HEADER_BYTES + 16 * SLOT_BYTES
        assert (ring.oldest_seq, ring.next_seq) == (25, 41)
        batch = ring.read(3, 100)  # asked for an overwritten number: starts at the oldest held
        assert batch.first_seq == 25 and batch.next_seq == 41
        assert [r.record for r in batch.records] == recs[24:]
    assert capacity_for(1 << 30) == (2**30 - HEADER_BYTES) // SLOT_BYTES


def test_numbers_and_records_survive_a_restart(tmp_path):
    recs = _channel_records(10)
    with Ring.open(tmp_path / "r", records=32) as ring:
        ring.append_batch([("XX", "STA", "00", "BHZ", b"".join(recs[:6]))])
    with Ring.open(tmp_path / "r", records=32) as ring:
        assert ring.next_seq == 7
        assert ring.append("XX", "STA", "00", "BHZ", recs[6]) == 7
        assert [r.record for r in ring.read_from(1)] == recs[:7]


def test_records_written_after_the_headers_last_update_are_recovered(tmp_path):
    """A crash between the slots and the header: the ring rolls forward over slots that check out."""
    recs = _channel_records(8)
    path = tmp_path / "r"
    with Ring.open(path, records=32) as ring:
        ring.append_batch([("XX", "STA", "00", "BHZ", b"".join(recs[:3]))])
        with open(path, "rb") as fh:
            stale_header = fh.read(HEADER_BYTES)  # next = 4
        ring.append_batch([("XX", "STA", "00", "BHZ", b"".join(recs[3:]))])
    with open(path, "r+b") as fh:
        fh.write(stale_header)
    with Ring.open(path, records=32) as ring:
        assert ring.next_seq == 9
        assert [r.record for r in ring.read_from(1)] == recs


def test_a_damaged_slot_is_skipped_never_served(tmp_path):
    recs = _channel_records(4)
    path = tmp_path / "r"
    with Ring.open(path, records=32) as ring:
        ring.append_batch([("XX", "STA", "00", "BHZ", b"".join(recs))])
    with open(path, "r+b") as fh:  # flip a data byte of record 2 (slot 2)
        fh.seek(HEADER_BYTES + 2 * SLOT_BYTES + 64 + 300)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with Ring.open(path, records=32) as ring:
        assert [r.seq for r in ring.read_from(1)] == [1, 3, 4]
        assert ring.start_of(2) is None


def test_a_new_depth_keeps_the_newest_records_and_their_numbers(tmp_path):
    recs = _channel_records(30)
    path = tmp_path / "r"
    with Ring.open(path, records=64) as ring:
        for rec in recs:
            ring.append("XX", "STA", "00", "BHZ", rec)
    with Ring.open(path, records=16) as ring:
        assert (ring.oldest_seq, ring.next_seq) == (15, 31)
        assert [r.record for r in ring.read_from(0)] == recs[14:]
    with Ring.open(path, ring_bytes=HEADER_BYTES + 100 * SLOT_BYTES) as ring:
        assert ring.capacity == 100 and ring.next_seq == 31
        assert [r.seq for r in ring.read_from(0)] == list(range(15, 31))
        assert ring.append("XX", "STA", "00", "BHZ", recs[0]) == 31


def test_one_process_at_a_time_and_clear_errors_for_foreign_files(tmp_path):
    with Ring.open(tmp_path / "r", records=16):
        with pytest.raises(RingError, match="open in another process"):
            Ring.open(tmp_path / "r", records=16)
    (tmp_path / "junk").write_bytes(b"not a ring" * 1000)
    with pytest.raises(RingError, match="not a SeedLink ring file"):
        Ring.open(tmp_path / "junk", records=16)
    with pytest.raises(ValueError, match="too small"):
        Ring.open(tmp_path / "tiny", records=3)
    with pytest.raises(ValueError, match="not both or neither"):
        Ring.open(tmp_path / "r", records=16, ring_bytes=1 << 20)


def test_a_bad_record_refuses_the_whole_batch(tmp_path):
    good = _channel_records(2)
    with Ring.open(tmp_path / "r", records=16) as ring:
        mismatch = r"entry 1: record header names XX.STA.00.BHZ, not XX.STA.00.BHN$"
        with pytest.raises(ValueError, match=mismatch):
            ring.append_batch([("XX", "STA", "00", "BHZ", good[0]), ("XX", "STA", "00", "BHN", good[1])])
        with pytest.raises(ValueError, match="not a whole number of 512-byte records"):
            ring.append_batch([("XX", "STA", "00", "BHZ", good[0][:500])])
        with pytest.raises(ValueError, match="entry 0 .*quality indicator"):
            ring.append_batch([("XX", "STA", "00", "BHZ", b"\0" * RECORD_LENGTH)])
        with pytest.raises(ValueError, match=r"station code '\.\./x' is not 1 to 5 ASCII letters or digits"):
            ring.append("XX", "../x", "00", "BHZ", good[0])
        assert ring.next_seq == 1 and list(ring.read_from(0)) == []
        assert os.listdir(tmp_path) == ["r"]  # codes never become paths


def test_time_search_channel_summary_and_listeners(tmp_path):
    z = records("XX", "STA", "00", "BHZ", T0, walk(1, 4000))
    n = records("XX", "STA", "00", "BHN", T0 + 50 * NS_PER_S, walk(2, 800))
    calls = []
    with Ring.open(tmp_path / "r", records=64) as ring:
        ring.add_listener(lambda: calls.append(threading.current_thread().name))
        ring.append_batch([("XX", "STA", "00", "BHZ", z), ("XX", "STA", "00", "BHN", n)])
        assert calls == [threading.current_thread().name]
        held = list(ring.read_from(0))
        after = ring.first_seq_ending_after(T0 + 30 * NS_PER_S)
        assert after == min(r.seq for r in held if r.end_ns > T0 + 30 * NS_PER_S)
        assert ring.first_seq_ending_after(T0 + 10**6 * NS_PER_S) == ring.next_seq
        summary = {s.channel: s for s in ring.streams()}
        assert set(summary) == {"BHZ", "BHN"}
        bhn = [r for r in held if r.channel == "BHN"]
        assert (summary["BHN"].first_seq, summary["BHN"].last_seq) == (bhn[0].seq, bhn[-1].seq)
        assert (summary["BHN"].start_ns, summary["BHN"].end_ns) == (bhn[0].start_ns, bhn[-1].end_ns)
