"""Station outbox: durable sequence numbers, acknowledgement, disk budget, crashes and concurrency."""

from __future__ import annotations

import hashlib
import logging
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading

import pytest

from gci_link.station_end.outbox import Outbox, OutboxError
from tests.conftest import REPO_ROOT


def frame_for(seq: int, size: int = 200) -> bytes:
    """Deterministic frame content that embeds its sequence number, as a real frame header does."""
    body = hashlib.sha256(seq.to_bytes(8, "big")).digest() * (size // 32 + 1)
    return seq.to_bytes(8, "big") + body[: size - 8]


def test_restart_keeps_sequences_and_unacked_frames(tmp_path):
    path = tmp_path / "outbox.db"
    with Outbox(path, 10**6, first_sequence=9720700) as box:
        seqs = [box.append("data", 10**18 + i, frame_for) for i in range(5)]
        assert seqs == list(range(9720700, 9720705))
        assert box.ack([9720700, range(9720702, 9720704)]) == 3
    with Outbox(path, 10**6, first_sequence=1) as box:  # first_sequence only applies to a new file
        assert [f.seq for f in box.unacked()] == [9720701, 9720704]
        frame = box.get(9720701)
        assert (frame.frame, frame.kind, frame.nominal_time_ns) == (frame_for(9720701), "data", 10**18 + 1)
        assert not frame.acked and box.get(9720700).acked and box.get(1) is None
        assert box.append("data", 0, frame_for) == 9720705
        assert box.check() == []


def test_builder_receives_the_number_and_a_failed_build_uses_none(tmp_path):
    with Outbox(tmp_path / "outbox.db", 10**6, first_sequence=50) as box:
        assert box.append("rn", 7, lambda seq: b"frame %d" % seq) == 50
        assert box.get(50).frame == b"frame 50"

        def broken(seq):
            raise RuntimeError(f"signing failed for {seq}")

        with pytest.raises(RuntimeError, match="signing failed for 51"):
            box.append("data", 8, broken)
        with pytest.raises(TypeError, match="sequence 51 must be bytes"):
            box.append("data", 8, lambda seq: "text")
        assert box.append("data", 9, b"next") == 51
        assert box.stats().frames == 2 and box.check() == []


def test_append_listeners_hear_committed_frames_only(tmp_path):
    with Outbox(tmp_path / "outbox.db", 10**6, first_sequence=5) as box:
        heard = []
        box.on_append(lambda seq: heard.append((seq, box.get(seq) is not None)))
        box.append("data", 0, frame_for)
        with pytest.raises(RuntimeError):
            box.append("data", 0, lambda seq: (_ for _ in ()).throw(RuntimeError("build failed")))
        box.append("data", 0, frame_for)
        assert heard == [(5, True), (6, True)]  # stored before the listener ran; the failure unheard


def test_sequences_never_reused_after_eviction_or_deleting_everything(tmp_path):
    path = tmp_path / "outbox.db"
    with Outbox(path, budget_bytes=1000, first_sequence=1) as box:
        for _ in range(20):
            seq = box.append("data", 0, frame_for)
            box.ack(seq)
        assert box.stats().frames == 5  # acknowledged frames were evicted to stay within 1000 bytes
        assert box.stats().dropped_unacked_frames == 0
    with sqlite3.connect(path) as db:  # an operator empties the table by hand
        db.execute("DELETE FROM frames")
    with Outbox(path, budget_bytes=1000) as box:
        assert box.append("data", 0, frame_for) == 21
        assert box.check() == []


def test_default_origin_is_the_clock_in_microseconds(tmp_path):
    with Outbox(tmp_path / "outbox.db", 10**6, clock=lambda: 1_559_755_560_123_456_789) as box:
        assert box.append("data", 0, b"x") == 1_559_755_560_123_456


def test_budget_evicts_acknowledged_frames_first(tmp_path):
    alarms = []
    with Outbox(tmp_path / "outbox.db", 1000, first_sequence=1, on_alarm=lambda *a: alarms.append(a)) as box:
        for _ in range(4):
            box.append("data", 0, frame_for)
        box.ack([1, 3])
        box.append("data", 0, frame_for)  # 1000 bytes -> fits
        box.append("data", 0, frame_for)  # 1200 bytes -> evict acked 1
        assert box.get(1) is None and box.get(3).acked
        box.append("data", 0, frame_for)  # evict acked 3, never an unacked frame while acked ones remain
        assert [f.seq for f in box.unacked()] == [2, 4, 5, 6, 7]
        stats = box.stats()
        assert (stats.frames, stats.bytes, stats.dropped_unacked_frames) == (5, 1000, 0)
        assert not stats.over_budget
    assert alarms == []


def test_budget_exceeded_by_unacked_data_drops_oldest_loudly(tmp_path, caplog):
    alarms = []
    path = tmp_path / "outbox.db"
    box = Outbox(path, 1000, first_sequence=1, on_alarm=lambda over, stats: alarms.append((over, stats)))
    with caplog.at_level(logging.WARNING, logger="gci_link.station_end.outbox"):
        for _ in range(7):
            box.append("data", 0, frame_for)
    assert [f.seq for f in box.unacked()] == [3, 4, 5, 6, 7]  # the newest are kept
    stats = box.stats()
    assert (stats.dropped_unacked_frames, stats.dropped_unacked_bytes, stats.over_budget) == (2, 400, True)
    assert [over for over, _ in alarms] == [True]
    assert any("dropped unacknowledged" in r.getMessage() and r.first_seq == 1 for r in caplog.records)
    assert any(r.levelno == logging.ERROR and "alarm raised" in r.getMessage() for r in caplog.records)
    box.close()
    with Outbox(path, 1000) as reopened:  # the alarm and the count survive a restart
        assert reopened.over_budget and reopened.stats().dropped_unacked_frames == 2
        reopened.ack(range(3, 8))
    box = Outbox(path, 1000, on_alarm=lambda over, stats: alarms.append((over, stats)))
    assert box.append("data", 0, frame_for) == 8  # fits once the IDC has caught up
    assert not box.over_budget and [over for over, _ in alarms] == [True, False]
    oversize = box.append("data", 0, frame_for(0, 1500))  # a single frame above the budget is kept, flagged
    assert box.get(oversize) is not None and box.over_budget
    assert box.check() == []
    box.close()


def test_ack_forms_and_unacked_ordering(tmp_path):
    with Outbox(tmp_path / "outbox.db", 10**6, first_sequence=100) as box:
        for _ in range(10):
            box.append("data", 0, frame_for)
        assert box.ack(range(102, 105)) == 3
        assert box.ack([102, 105, 4000]) == 1  # repeats and unknown numbers are ignored
        assert [f.seq for f in box.unacked(3)] == [100, 101, 106]
        assert [f.seq for f in box.unacked(3, newest_first=True)] == [109, 108, 107]
        assert [f.seq for f in box.unacked(10, after=101, before=108)] == [106, 107]
        assert box.unacked_seqs(3) == [100, 101, 106] and box.unacked_seqs(2, after=106) == [107, 108]
        with pytest.raises(ValueError, match="step 1"):
            box.ack(range(100, 110, 2))
        stats = box.stats()
        assert (stats.unacked_frames, stats.unacked_bytes, stats.next_sequence) == (6, 1200, 110)


def test_unusable_files_raise_clear_errors(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(OutboxError, match="junk.db: cannot open outbox database"):
        Outbox(junk, 1000)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(OutboxError, match="without the outbox schema"):
        Outbox(other, 1000)
    with pytest.raises(ValueError, match="budget must be positive"):
        Outbox(tmp_path / "x.db", 0)


def test_frames_are_found_by_kind_prefix_without_reading_them(tmp_path):
    with Outbox(tmp_path / "o.db", 10**6, first_sequence=1) as box:
        kinds = ("data", "ims2 rn1 5 SAMPLE 1 FULL", "data", "ims2 rn10 6 RMSSOH 2", "ims2 rn1 7 QC 2 FULL")
        for kind in kinds:
            box.append(kind, 0, frame_for)
        box.ack(2)
        assert box.kinds("ims2 rn1 ") == [(2, "ims2 rn1 5 SAMPLE 1 FULL"), (5, "ims2 rn1 7 QC 2 FULL")]
        assert box.kinds("ims2 ") == [(2, "ims2 rn1 5 SAMPLE 1 FULL"), (4, "ims2 rn10 6 RMSSOH 2"),
                                      (5, "ims2 rn1 7 QC 2 FULL")]
        assert box.kind_counts("ims2 rn1 ") == (2, 1)
        plan = box._db.execute("EXPLAIN QUERY PLAN SELECT seq, kind FROM frames WHERE kind >= 'a' "
                               "AND kind < 'b' ORDER BY seq").fetchall()
        assert "frames_kind" in str(plan)  # the kind index, not a scan of the frames
        with pytest.raises(ValueError, match="must not be empty"):
            box.kinds("")


def test_a_version_1_outbox_gets_the_kind_index_and_keeps_its_frames(tmp_path):
    path = tmp_path / "v1.db"
    with Outbox(path, 10**6, first_sequence=10) as box:
        box.append("data", 0, frame_for)
        box._db.execute("DROP INDEX frames_kind")
        box._db.execute("PRAGMA user_version = 1")
    with Outbox(path, 10**6) as box:
        assert box._db.execute("PRAGMA user_version").fetchone()[0] == 2
        assert box.kinds("data") == [(10, "data")] and box.next_sequence == 11
        assert box.check() == []


_CRASH_CHILD = textwrap.dedent(
    """
    import sys
    from gci_link.station_end.outbox import Outbox
    from tests.gci_link.station_end.test_outbox import frame_for

    box = Outbox(sys.argv[1], 10**9, first_sequence=1000)
    while True:
        seq = box.append("data", 0, frame_for)
        print("appended", seq, flush=True)
        if seq % 3 == 0:
            box.ack(range(seq - 2, seq))
            print("acked", seq - 2, seq - 1, flush=True)
    """
)


@pytest.mark.timeout(60)
def test_sigkill_at_random_moments_loses_nothing_that_returned(tmp_path):
    path = tmp_path / "outbox.db"
    rng = random.Random(20240607)
    highest = 999
    for _ in range(6):
        child = subprocess.Popen(
            [sys.executable, "-c", _CRASH_CHILD, str(path)], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
        )
        first = child.stdout.readline()  # the child is appending now
        threading.Event().wait(rng.uniform(0.0, 0.15))
        child.send_signal(signal.SIGKILL)
        output = first + child.stdout.read()
        child.wait()
        lines = [line.split() for line in output.split("\n")[:-1]]  # drop a line cut short by the kill
        appended = [int(w[1]) for w in lines if w[0] == "appended"]
        acked = [int(n) for w in lines if w[0] == "acked" for n in w[1:]]
        assert appended and appended[0] == highest + 1  # numbering continues where the last run stopped
        with Outbox(path, 10**9) as box:
            assert box.check() == []
            stats = box.stats()
            stored = [f.seq for f in box.unacked(10**6)]
            for seq in appended:
                assert box.get(seq).frame == frame_for(seq)
            assert all(box.get(seq).acked for seq in acked)
            # no holes: every number below the high-water mark is a stored frame
            assert stats.frames == stats.next_sequence - 1000
            assert set(stored) <= set(range(1000, stats.next_sequence))
            highest = stats.next_sequence - 1


def test_writer_and_acknowledging_reader_on_two_connections(tmp_path):
    path = tmp_path / "outbox.db"
    total = 300
    writer_box = Outbox(path, 10**7, first_sequence=1)
    reader_box = Outbox(path, 10**7)
    done = threading.Event()
    errors = []

    def writer():
        try:
            for i in range(total):
                writer_box.append("data", i, frame_for)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            done.set()

    def acknowledger():
        try:
            while True:
                finished = done.is_set()
                pending = reader_box.unacked(50)
                if pending:
                    reader_box.ack(range(pending[0].seq, pending[-1].seq + 1))
                elif finished:
                    return
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer), threading.Thread(target=acknowledger)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    stats = reader_box.stats()
    assert (stats.frames, stats.unacked_frames, stats.next_sequence) == (total, 0, total + 1)
    assert writer_box.check() == [] and reader_box.get(total).frame == frame_for(total)
    writer_box.close()
    reader_box.close()
