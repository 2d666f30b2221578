"""Issue 11, defect 1: no key needed, yet a message of many large parts blew the receiver's memory up and
a huge quarantine item crashed it. Each attack here runs beside an honest station, which must be served."""

from __future__ import annotations

import logging
import sqlite3
import tracemalloc

import numpy as np
import pytest
import zmq

from idc.metrics import MetricsStore
from idc.stores import Quarantine
from idc.vocabulary import ANONYMOUS
from tests.adversarial.conftest import wait_for_rejection
from tests.idc.conftest import Running, make_config, samples_for, signed
from tests.idc.test_server import sds_samples

PART_BYTES = 200_000  # under the per-part limit (4 x max_frame_bytes of the test configuration)
PARTS = 40


def _serve_honest(sta, keys, seq: int, root) -> None:
    """The honest station's frame is acknowledged, and archived by then."""
    sta.send(signed(seq, keys))
    ack = sta.acknack_covering(seq)
    assert ack.gaps == ()
    np.testing.assert_array_equal(sds_samples(root / "sds", seq), samples_for(seq))


def test_a_message_of_many_large_parts_is_refused_without_copying_its_parts(tmp_path, keys, clock):
    run = Running(make_config(tmp_path, keys.ca.trust_dir, data_endpoint=None), keys.ca.trust_store(), clock)
    try:
        sta = run.station()
        sta.connect()
        _serve_honest(sta, keys, 3000, tmp_path)
        attacker = run.ctx.socket(zmq.DEALER)
        attacker.setsockopt(zmq.LINGER, 0)
        attacker.connect(run.receiver.connection_endpoint)
        part = bytes(PART_BYTES)
        tracemalloc.start()
        try:
            attacker.send_multipart([part] * PARTS)
            entry = wait_for_rejection(tmp_path, ANONYMOUS)
            _serve_honest(sta, keys, 3001, tmp_path)  # the loop is alive and serving after the attack
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            attacker.close()
        # the attack's bytes sit in ZeroMQ's buffers, never in Python: the old receiver copied every part
        # (recv_multipart) and joined them, 24 MB of Python allocations for these 8 MB (measured 15 kB now)
        assert peak < PART_BYTES * PARTS / 8, peak
        reason, frame = entry[3], entry[4]
        assert reason == f"multipart: {PARTS} message parts; one CD-1.1 frame per message"
        assert frame is not None and len(frame) == 16 * 64
    finally:
        run.stop()


def test_a_failing_quarantine_does_not_stop_the_receiver(tmp_path, keys, clock, monkeypatch, caplog):
    """The crash of the report: sqlite3.DataError raised inside the rejection handler ended the loop. Now
    each failure is counted, the first is logged (a flood of them is no flood of tracebacks), and the
    honest station is served throughout."""
    run = Running(make_config(tmp_path, keys.ca.trust_dir, data_endpoint=None), keys.ca.trust_store(), clock)
    try:
        sta = run.station()
        sta.connect()
        put = run.receiver.quarantine.put

        def refuse(*_args: object) -> None:
            raise sqlite3.DataError("string or blob too big")

        monkeypatch.setattr(run.receiver.quarantine, "put", refuse)
        with caplog.at_level(logging.WARNING, logger="idc.server"):
            for seq in range(3100, 3105):
                sta.send(b"garbage that is no CD-1.1 frame")
                _serve_honest(sta, keys, seq, tmp_path)
            monkeypatch.setattr(run.receiver.quarantine, "put", put)
            sta.send(b"more garbage")
            wait_for_rejection(tmp_path, ANONYMOUS)
        messages = [r.getMessage() for r in caplog.records]
        assert sum(m.startswith("recording a rejection failed") for m in messages) == 1, messages
        assert messages.count("rejections recorded again") == 1
    finally:
        run.stop()
    metrics = MetricsStore(tmp_path / "metrics.sqlite")  # the receiver flushed its tallies at stop
    counters = metrics.counters()
    metrics.close()
    assert counters[(ANONYMOUS, "rejection_unrecorded")] == 5
    assert counters[(ANONYMOUS, "rejected:format")] == 6


@pytest.mark.parametrize("rows", [10, 100])
def test_the_quarantine_is_bounded_in_rows_and_per_item(tmp_path, rows):
    quarantine = Quarantine(tmp_path / "q.sqlite", max_bytes=1 << 20, max_item_bytes=100, max_rows=rows)
    try:
        for i in range(5 * rows):
            quarantine.put(i, "peer", "(unauthenticated)", None, f"format: item {i}", bytes(1000))
        entries = quarantine.entries()
        assert rows - rows // 10 <= len(entries) <= rows
        assert entries[-1][3] == f"format: item {5 * rows - 1}"  # the newest are the ones kept
        assert all(frame is not None and len(frame) == 100 for *_, frame in entries)
    finally:
        quarantine.close()
