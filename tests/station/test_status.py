"""``ims station status``: the health of the station as an exit code for monitoring checks, in a table
with ISO 8601 UTC times and readable durations, or as one JSON object."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from station.ims import main
from station.lock import StationLock
from station.snapshot import write_snapshot

EXAMPLE = Path(__file__).resolve().parents[2] / "station" / "example_station.toml"
SOH_TABLE = "SOH\nno active alarms"


def _snapshot(written_ns: int, alarms: list[dict]) -> dict:
    return {
        "station": "XMPL", "written_ns": written_ns, "running": True,
        "link": dict.fromkeys(("frames_sent", "frames_acked", "frames_resent", "reconnects"), 0)
        | {"state": "data"},
        "outbox": dict.fromkeys(("frames", "unacked_frames", "bytes", "budget_bytes", "over_budget"), 0),
        "channels": {"XMPL.BHZ.": dict.fromkeys(("samples", "gaps", "duplicate_samples", "late_packets",
                                                  "time_tears"), 0) | {"complete_until": None}},
        "digitizers": {}, "alarms": alarms, "soh_table": SOH_TABLE,
    }


@pytest.fixture
def station(tmp_path: Path) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(EXAMPLE.read_text())
    return path


def _status(station: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["station", "status", "--config", str(station), *extra])
    return code, capsys.readouterr().out


def test_healthy_only_while_the_daemon_runs_fresh_and_without_alarms(station, capsys):
    state = station.parent / "state"
    now = time.time_ns()
    write_snapshot(state, _snapshot(now, []))
    code, out = _status(station, capsys, "--json")
    assert code == 1 and json.loads(out)["problems"] == ["the station daemon is not running"]
    with StationLock.acquire(state, "station daemon"):  # as the daemon holds it (this process is alive)
        code, out = _status(station, capsys, "--json")
        report = json.loads(out)
        assert code == 0 and report["healthy"] and report["running"] and report["problems"] == []
        assert report["snapshot"]["station"] == "XMPL" and report["snapshot_time"].endswith("Z")
        alarm = {"name": "gps_unlocked", "source": "XMPL01", "severity": "WARNING",
                 "raised_ns": 1_800_000_000_000_000_000}
        write_snapshot(state, _snapshot(now, [alarm]))
        code, out = _status(station, capsys)
        assert code == 1
        assert "health  UNHEALTHY: alarm gps_unlocked (XMPL01) since 2027-01-15T08:00:00.000Z" in out
        write_snapshot(state, _snapshot(now - 125 * 10**9, []))  # the example writes every 5 s
        code, out = _status(station, capsys)
        assert code == 1 and "status snapshot is 2 min 05 s old (daemon hung?)" in out
        assert "snapshot of " in out and "Z, 2 min 05 s old)" in out
    # a bench calibration holds the same lock: the daemon still does not run
    with StationLock.acquire(state, "bench calibration"):
        assert _status(station, capsys)[0] == 1


def test_no_snapshot_is_unhealthy(station, capsys):
    assert main(["station", "status", "--config", str(station)]) == 1
    assert "no status snapshot" in capsys.readouterr().err
