"""The simulated network end to end: the default scenario, compressed, with its faults and zero loss.

Real station and IDC processes, simulated digitizers on ptys; the archive is read back with ObsPy
and compared with the digitizers' ground truth sample for sample.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from hil import scenario as scenarios
from hil.compare import compare_channel
from hil.network import Network

pytestmark = [pytest.mark.pty, pytest.mark.slow]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    scenario = scenarios.load(None, {"duration_s": 1200.0, "speed": 40.0})
    out = tmp_path_factory.mktemp("network")
    summary = Network(scenario, out, show_progress=False).run()
    return scenario, out, summary


def test_default_scenario_archive_equals_truth(run):
    scenario, out, summary = run
    assert summary["zero_loss"], json.dumps(summary["stations"], indent=1)
    assert json.loads((out / "summary.json").read_text()) == summary
    for spec in scenario.stations:
        report = summary["stations"][spec.name]
        assert report["samples_truth"] >= len(spec.channels) * spec.sample_rate * 1150
        assert report["samples_lost"] == report["samples_duplicated"] == report["samples_corrupted"] == 0
        assert report["frames_sent"] == report["frames_acknowledged"] == report["frames_archived"] > 0
        for channel in report["channels"]:
            assert channel["archived_samples"] == channel["truth_samples"]


def test_every_fault_happened(run):
    scenario, _, summary = run
    assert {(f["fault"], f["phase"]) for f in summary["faults"]} == {
        (f.kind, phase) for f in scenario.faults for phase in ("begin", "end")}
    stations = summary["stations"]
    assert stations["INFR1"]["station_crashes"] == 1
    assert stations["SEIS1"]["link_bytes_swallowed"] > 0  # the outage really cut the link


def test_gps_unlock_reaches_the_idc_as_status_bits(run):
    _, _, summary = run
    hydro = summary["stations"]["HYDR1"]
    assert "gps_unlocked" in hydro["alarms_raised"]
    assert hydro["status_flags_at_idc"].get("gps_receiver_unlocked", 0) > 0
    assert "gps_receiver_unlocked" not in summary["stations"]["SEIS1"]["status_flags_at_idc"]


def test_truth_folder_is_readable_sds(run):
    from obspy import UTCDateTime
    from obspy.clients.filesystem.sds import Client

    _, out, summary = run
    start = UTCDateTime(summary["start"])
    # the data run past the scenario's end while a late calibration finishes (at most 30 real s)
    end = start + summary["scenario_started_s"] + summary["simulated_s"] + 30 * summary["speed"] + 100
    stream = Client(str(out / "truth")).get_waveforms("IM", "HYDR1", "", "EDH", start - 60, end)
    assert sum(tr.stats.npts for tr in stream) == summary["stations"]["HYDR1"]["samples_truth"]


def test_compare_counts_lost_duplicated_and_corrupted_samples():
    truth = np.arange(100, dtype=np.int32)
    ns = 1_000_000_000
    corrupt = truth[50:60].copy()
    corrupt[3] = -1
    traces = [(0, truth[:40]), (3 * ns, truth[30:45]), (5 * ns, corrupt), (95 * ns // 10, np.arange(10))]
    got = compare_channel("X.BHZ.", 0, 10.0, truth, traces)
    assert got.lost == 5 + 35  # samples 45-49 and 60-94 nobody archived
    assert got.duplicated == 10  # 30-39 twice
    assert got.corrupted == 1 + 5  # the flipped sample and the last trace's 5 in-range wrong values
    assert got.outside_truth == 5  # samples 100-104 of the last trace
    assert not got.exact


def test_remote_calibration_is_answered_and_its_bit_seen_at_the_idc(run):
    _, out, summary = run
    (cal,) = summary["calibrations"]
    assert cal["command"] == "calibrate BHZ random 5"  # 30 minutes compressed with the run
    assert cal["exit_code"] == 0 and isinstance(cal["response"], dict), cal
    assert cal["response"]["channel"] == "SEIS1.BHZ."
    # five minutes are too short to fit a 120 s sensor: a clear verdict, not a bogus fit
    assert cal["verdict"] == "refused" and cal["response"]["problem"] == "too-short"
    assert cal["subframes_flagged_at_idc"] > 0 and cal["other_channels_flagged_at_idc"] == 0
    assert cal["sds_records_flagged"] > 0
    assert len(cal["stationxml_epochs"]) == 1  # nothing accepted, nothing changed
    assert summary["checks"]["remote_calibration"]
    assert (out / "idc" / "stationxml" / "IM.SEIS1.xml").exists()
