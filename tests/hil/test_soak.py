"""The bounded soak: one simulated day of two stations with a fault of every kind the week-long soak
injects, checked the same way (docs/reliability.md): truth equals archive outside the hardware's own
gaps, memory flat, every alarm explained by a fault and no alarm missed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hil import scenario as scenarios
from hil.network import Network

pytestmark = [pytest.mark.pty, pytest.mark.slow]

SCENARIO = Path(__file__).parent / "scenarios" / "soak-day.toml"


def test_a_simulated_day_of_faults_passes_every_soak_check(tmp_path):
    scenario = scenarios.load(SCENARIO)
    assert scenario.duration_s >= 86400
    summary = Network(scenario, tmp_path, show_progress=False).run()
    checks = summary["checks"]
    assert checks["archive_equals_truth"], json.dumps(summary["stations"], indent=1)
    assert checks["memory_flat"], json.dumps(summary["memory"], indent=1)
    alarms = json.dumps(summary["alarm_check"], indent=1)
    assert checks["no_false_alarms"] and checks["no_missed_alarms"], alarms
    assert summary["passed"]
    applied = {(f["fault"], f["phase"]) for f in summary["faults"]}
    assert applied == {(f.kind, phase) for f in scenario.faults for phase in ("begin", "end")}
    for report in summary["stations"].values():
        assert report["samples_truth"] > 0
        assert report["samples_lost"] == report["samples_duplicated"] == report["samples_corrupted"] == 0
        assert report["frames_sent"] == report["frames_acknowledged"] == report["frames_archived"] > 0
        assert all(gap["cause"] != "unexplained" for gap in report["gaps"])
    stations = summary["stations"]
    assert stations["SEIS1"]["link_bytes_swallowed"] > 0 and stations["SEIS1"]["station_crashes"] == 1
    assert stations["SEIS1"]["line_bit_errors"] > 0  # the serial noise really was there
    assert "gci_link_down" in stations["SEIS1"]["alarms_raised"]
    assert "gps_unlocked" in stations["HYDR1"]["alarms_raised"]
    memory = summary["memory"]["roles"]
    assert {"harness", "idc", "station SEIS1", "station HYDR1"} <= set(memory)
    assert memory["station SEIS1"]["processes"] == 2 and memory["idc"]["processes"] == 2  # restarted once
