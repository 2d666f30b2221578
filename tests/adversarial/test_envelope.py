"""Issue 11, defect 1: no key needed, yet a message of many large parts blew the receiver's memory up and
a huge quarantine item crashed it. Each attack here runs beside an honest station, which must be served."""

from __future__ import annotations

import sqlite3
import time
import tracemalloc
from pathlib import Path

import pytest
import zmq

from idc.stores import Quarantine
from idc.vocabulary import RejectionKind
from tests.idc.conftest import Running, make_config, signed

PART_BYTES = 200_000  # under the per-part limit (4 x max_frame_bytes of the test configuration)
PARTS = 40


def _serve_honest(sta, keys, seq: int) -> None:
    sta.send(signed(seq, keys))
    ack = sta.acknack_covering(seq)
    assert ack.gaps == ()


def _wait_for_rejection(root: Path, kind: RejectionKind) -> tuple[str, str, int | None, str, bytes | None]:
    """The quarantine entry of the first rejection of ``kind``, read through a connection of our own."""
    reader = Quarantine(root / "quarantine.sqlite", max_bytes=0, max_item_bytes=0, max_rows=1 << 62)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = [e for e in reader.entries() if e[3].startswith(kind)]
            if found:
                return found[0]
            time.sleep(0.05)
    finally:
        reader.close()
    raise AssertionError(f"no {kind} rejection in the quarantine")


def test_a_message_of_many_large_parts_is_refused_without_copying_its_parts(tmp_path, keys, clock):
    run = Running(make_config(tmp_path, keys.ca.trust_dir, data_endpoint=None), keys.ca.trust_store(), clock)
    try:
        sta = run.station()
        sta.connect()
        _serve_honest(sta, keys, 3000)
        attacker = run.ctx.socket(zmq.DEALER)
        attacker.setsockopt(zmq.LINGER, 0)
        attacker.connect(run.receiver.connection_endpoint)
        part = bytes(PART_BYTES)
        tracemalloc.start()
        try:
            attacker.send_multipart([part] * PARTS)
            entry = _wait_for_rejection(tmp_path, RejectionKind.MULTIPART)
            _serve_honest(sta, keys, 3001)  # the loop is alive and serving after the attack
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            attacker.close()
        # the attack's bytes sit in ZeroMQ's buffers, never in Python: the old receiver copied every part
        # (recv_multipart) and joined them (2 x 8 MB here)
        assert peak < PART_BYTES * PARTS / 8, peak
        reason, frame = entry[3], entry[4]
        assert f"{PARTS} message parts" in reason
        assert frame is not None and len(frame) <= 16 * 64
    finally:
        run.stop()


def test_a_failing_quarantine_does_not_stop_the_receiver(tmp_path, keys, clock, monkeypatch):
    """The crash of the report: sqlite3.DataError raised inside the rejection handler ended the loop."""
    run = Running(make_config(tmp_path, keys.ca.trust_dir, data_endpoint=None), keys.ca.trust_store(), clock)
    try:
        sta = run.station()
        sta.connect()

        def refuse(*_args: object) -> None:
            raise sqlite3.DataError("string or blob too big")

        monkeypatch.setattr(run.receiver.quarantine, "put", refuse)
        for seq in range(3100, 3105):
            sta.send(b"garbage that is no CD-1.1 frame")
            _serve_honest(sta, keys, seq)
    finally:
        run.stop()


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
