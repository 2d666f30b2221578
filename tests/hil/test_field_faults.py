"""Field faults beyond the demo's: line noise, an unplugged cable, an IDC crash; still zero loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hil import scenario as scenarios
from hil.network import Network

pytestmark = [pytest.mark.pty, pytest.mark.slow]

SCENARIO = Path(__file__).parent / "scenarios" / "field_faults.toml"


def test_noise_unplug_and_receiver_crash_lose_nothing(tmp_path):
    scenario = scenarios.load(SCENARIO)
    summary = Network(scenario, tmp_path, show_progress=False).run()
    assert summary["zero_loss"], json.dumps(summary["stations"], indent=1)
    assert {f["fault"] for f in summary["faults"]} == {"unplug", "receiver_crash"}
    for report in summary["stations"].values():
        assert report["frames_sent"] == report["frames_acknowledged"] == report["frames_archived"]
        assert report["samples_truth"] > 0
    status = json.loads((tmp_path / "run" / "stations" / "NOISY" / "state" / "status.json").read_text())
    counters = status["digitizers"]["digitizer"]
    assert counters["checksum_failures"] + counters["resyncs"] > 0  # the noise really reached the driver
    plug = json.loads((tmp_path / "run" / "stations" / "PLUG" / "state" / "status.json").read_text())
    assert plug["digitizers"]["digitizer"]["opens"] >= 2  # the cable was pulled and the port reopened
