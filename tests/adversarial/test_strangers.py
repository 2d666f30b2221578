"""Issue 11, defect 9: strangers cannot pollute metrics, status and logs.

20k garbage messages with made-up creator names once left 20,608 lines in ``ims idc status``. Here the
same flood (unreadable bytes, well-formed frames and connection requests from 20k invented stations)
hits the running receiver while an honest station sends; afterwards the status table, the metrics
store, the quarantine and the log each hold a bounded number of rows or lines, and the honest frames
were all acknowledged and archived.
"""

from __future__ import annotations

import logging
import sqlite3

import numpy as np
import pytest
import zmq

from idc.server import STRANGER_LOG_BURST
from idc.vocabulary import ANONYMOUS, RejectionKind, StationCounter
from station.ims import main
from tests.adversarial.conftest import garbage_messages
from tests.idc.conftest import Running, make_config, samples_for, signed
from tests.idc.test_server import sds_samples

pytestmark = pytest.mark.timeout(120)

MESSAGES = 20_000
HONEST_EVERY = 2_000
QUARANTINE_ROWS = 1_000
QUARANTINE_BYTES = 64 * 1024
def test_a_flood_of_invented_station_names_leaves_bounded_rows_and_lines(
    tmp_path, keys, clock, capsys, caplog
):
    config = make_config(tmp_path / "idc", keys.ca.trust_dir, data_endpoint=None, verify_workers=0,
                         quarantine_max_rows=QUARANTINE_ROWS, quarantine_max_bytes=QUARANTINE_BYTES)
    garbage = garbage_messages(MESSAGES)
    caplog.set_level(logging.WARNING, logger="idc.server")
    run = Running(config, keys.ca.trust_store(), clock)
    try:
        honest, attacker = run.station("STA1"), run.station("STA2")
        honest.connect()
        attacker.sock.setsockopt(zmq.SNDHWM, 0)
        for start in range(0, MESSAGES, HONEST_EVERY):
            for raw in garbage[start : start + HONEST_EVERY][: MESSAGES - 1 - start]:
                attacker.send(raw)
            seq = 5000 + start // HONEST_EVERY
            honest.send(signed(seq, keys))
            ack = honest.acknack_covering(seq, timeout_s=30)
            assert (ack.lowest, ack.highest, ack.gaps) == (5000, seq, ())
        clock.advance(10)  # time for the log to take another line, and the rate limit another request
        attacker.send(garbage[-1])
        attacker.connect()  # answered once everything the attacker sent before it has been handled
    finally:
        run.stop()
    for seq in range(5000, 5000 + MESSAGES // HONEST_EVERY):
        np.testing.assert_array_equal(sds_samples(config.root / "sds", seq), samples_for(seq))

    db = sqlite3.connect(config.root / "metrics.sqlite")
    counters = dict(((s, n), v) for s, n, v in db.execute("SELECT station, name, value FROM counters"))
    channels = db.execute("SELECT station, channel FROM channels").fetchall()
    db.close()
    assert {station for station, _ in counters} == {ANONYMOUS, "STA1", "STA2"}
    strangers = {name: v for (station, name), v in counters.items() if station == ANONYMOUS}
    assert set(strangers) <= {f"rejected:{k}" for k in RejectionKind} | {StationCounter.CONNECT_RATE_LIMITED}
    assert sum(strangers.values()) == MESSAGES  # every message counted, under the one label
    assert channels == [("STA1", "STA1A.BHZ.00")]

    status = tmp_path / "idc.toml"
    status.write_text(f"[idc]\nroot = '{config.root}'\ntrust_dir = '{keys.ca.trust_dir}'\n"
                      "connection_endpoint = 'tcp://127.0.0.1:1'\n")
    assert main(["idc", "status", "--config", str(status)]) == 1  # the receiver stopped: unhealthy
    health, _, table = capsys.readouterr().out.partition("\n\n")
    assert health.splitlines()[1].startswith("  the receiver is not running")
    lines = table.splitlines()
    assert len(lines) == 1 + len(channels) + 2 + len(counters), lines  # two headers and a blank line
    assert len(lines) < 20

    db = sqlite3.connect(config.root / "quarantine.sqlite")
    rows, kept = db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(frame)), 0) FROM quarantine").fetchone()
    db.close()
    assert 0 < rows <= QUARANTINE_ROWS and kept <= QUARANTINE_BYTES

    logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
    strangers_logged = [r for r in logged if r.getMessage() == "frame rejected" and r.station == ANONYMOUS]
    # the burst (and one more: the allowance, a token bucket, may run one line into debt), then one line
    # after the 10 s, which says how many it left out
    assert len(strangers_logged) == STRANGER_LOG_BURST + 2
    rejections = sum(v for name, v in strangers.items() if name.startswith("rejected:"))
    assert strangers_logged[-1].not_logged_before == rejections - len(strangers_logged)
    assert len(logged) <= len(strangers_logged) + 2, [r.getMessage() for r in logged]
