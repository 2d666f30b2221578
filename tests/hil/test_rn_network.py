"""Radionuclide stations in a simulated network run: the summary counts each system's messages (made,
acknowledged, stored, stored byte for byte) and the run fails when the IDC lacks one or holds it altered.

Real station daemons and receiver, simulated instruments on ptys; one slot per station at 100x, with a
SIGKILL of the particulate station in the middle of its sample count.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from hil import scenario as scenarios
from hil.cli import render_summary
from hil.network import Network
from hil.report import rn_messages_exact, rn_station_report

pytestmark = [pytest.mark.pty, pytest.mark.slow, pytest.mark.timeout(240)]

SCENARIO = Path(__file__).parent / "scenarios" / "rn_short.toml"
EXPECTED = {("RNP9", "particulate"): ("QCPHD FULL", "SAMPLEPHD PREL", "SAMPLEPHD FULL", "RMSSOH"),
            ("RNX9", "noblegas"): ("GASBKPHD FULL", "SAMPLEPHD PREL", "SAMPLEPHD FULL", "RMSSOH")}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rn-network")
    summary = Network(scenarios.load(SCENARIO), out, show_progress=False).run()
    return out, summary


def test_summary_counts_every_message_of_each_system_stored_exactly(run):
    out, summary = run
    assert summary["checks"]["rn_messages_exact"], json.dumps(summary["rn_stations"], indent=1)
    assert summary["rn_stations"]["RNP9"]["station_crashes"] == 1
    table = render_summary(summary, out)
    for (station, system), types in EXPECTED.items():
        tally = summary["rn_stations"][station]["systems"][system]
        assert tally["sent"] == tally["acked"] == tally["stored"] == tally["exact"] > 0
        assert sum(tally["data_types"].values()) == tally["stored"]
        for data_type in types:
            assert tally["data_types"].get(data_type, 0) >= 1, (station, data_type, tally["data_types"])
        assert f"{station} {system}" in table
    assert (out / "truth" / "RNP9" / "truth-particulate-hpge.json").exists()


def test_a_message_missing_or_altered_at_the_idc_fails_the_run(run):
    out, summary = run
    index = out / "idc" / "ims2" / "index.sqlite"
    with sqlite3.connect(index) as db:
        gone_seq, = db.execute("SELECT seq FROM messages WHERE station = 'RNP9' AND data_type = 'SAMPLEPHD' "
                               "AND qualifier = 'FULL'").fetchone()
        db.execute("DELETE FROM messages WHERE station = 'RNP9' AND seq = ?", (gone_seq,))
        altered, = db.execute("SELECT path FROM messages WHERE station = 'RNX9' AND data_type = 'RMSSOH' "
                              "ORDER BY id LIMIT 1").fetchone()
    path = out / "idc" / "ims2" / altered
    text = path.read_bytes()
    path.write_bytes(text.replace(b"RMSSOH", b"RMSS0H", 1))

    reports = {}
    for name in ("RNP9", "RNX9"):
        outbox = out / "run" / "stations" / name / "data" / "outbox" / "outbox.sqlite"
        reports[name] = summary["rn_stations"][name] | rn_station_report(out, name, "XX", outbox)
    assert not rn_messages_exact(reports)
    particulate = reports["RNP9"]["systems"]["particulate"]
    assert particulate["missing"] == [gone_seq]
    assert particulate["stored"] == particulate["exact"] == particulate["sent"] - 1
    noble = reports["RNX9"]["systems"]["noblegas"]
    assert len(noble["different"]) == 1 and noble["exact"] == noble["stored"] - 1
    assert rn_messages_exact({"RNX9": reports["RNX9"] | {"systems": {}}}) is False  # no system: no pass
    summary = summary | {"rn_stations": reports}
    assert "1 missing" in render_summary(summary, out) and "1 different" in render_summary(summary, out)
