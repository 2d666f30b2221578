"""Field faults beyond the demo's: line noise, an unplugged cable, an IDC crash; still zero loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hil import scenario as scenarios
from hil.diskfill import DiskUnavailable
from hil.network import Network

pytestmark = [pytest.mark.pty, pytest.mark.slow]

SCENARIOS = Path(__file__).parent / "scenarios"


def status_of(out: Path, station: str) -> dict:
    """The station daemon's last status snapshot (written at its clean shutdown)."""
    return json.loads((out / "run" / "stations" / station / "data" / "state" / "status.json").read_text())


def test_noise_unplug_and_receiver_crash_lose_nothing(tmp_path):
    scenario = scenarios.load(SCENARIOS / "field_faults.toml")
    summary = Network(scenario, tmp_path, show_progress=False).run()
    assert summary["zero_loss"], json.dumps(summary["stations"], indent=1)
    assert {f["fault"] for f in summary["faults"]} == {"unplug", "receiver_crash"}
    for report in summary["stations"].values():
        assert report["frames_sent"] == report["frames_acknowledged"] == report["frames_archived"]
        assert report["samples_truth"] > 0
    counters = status_of(tmp_path, "NOISY")["digitizers"]["digitizer"]
    assert counters["checksum_failures"] + counters["resyncs"] > 0  # the noise really reached the driver
    assert status_of(tmp_path, "PLUG")["digitizers"]["digitizer"]["opens"] >= 2  # cable pulled, port reopened


def test_a_full_station_disk_loses_nothing_and_is_alarmed(tmp_path):
    scenario = scenarios.load(SCENARIOS / "disk_full.toml")
    try:
        summary = Network(scenario, tmp_path, show_progress=False).run()
    except DiskUnavailable as exc:
        pytest.skip(str(exc))
    assert summary["zero_loss"], json.dumps(summary["stations"], indent=1)
    report = summary["stations"]["FULL"]
    assert "outbox_write_failed" in report["alarms_raised"]
    assert report["frames_sent"] == report["frames_acknowledged"] == report["frames_archived"] > 0
    assert not status_of(tmp_path, "FULL")["alarms"]  # every alarm cleared once space came back
