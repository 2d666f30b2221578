"""``ims cal seismometer`` end to end against the simulated digitizer on a pseudo-terminal: the console
words go over the serial line, the returned signal and the output come back as GCF blocks, and the fit
must find the simulated sensor's own parameters. Data time runs 400 times faster than the wall.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from obspy import read_inventory

import station.bench_calibration  # noqa: F401  (imported before the digitizer starts: see rig)
from station.ims import main
from station.lock import StationLock
from tests.calibration.sim_station import (
    COIL_CONSTANT,
    TRUE_DAMPING,
    TRUE_PERIOD,
    TRUE_SENSITIVITY,
    SimDigitizerRig,
    station_toml,
    write_config,
)

SPEED = 400.0
# The fit's parameters against the simulated sensor's; measured errors are about 0.005 % (the
# simulated sensor is discretised with the bilinear transform, the fit is analogue).
TOLERANCE = 1e-3

pytestmark = [pytest.mark.pty, pytest.mark.timeout(60)]


def cal(config, *args: str) -> int:
    return main(["cal", "seismometer", "--config", str(config), "--channel", "BHZ", *args])


def test_random_calibration_recovers_the_simulated_sensor_and_writes_the_report(tmp_path, capsys):
    out = tmp_path / "report"
    with SimDigitizerRig(SPEED) as rig:
        config = write_config(tmp_path, station_toml(rig.port))
        status = cal(config, "--signal", "random", "--minutes", "30", "--out", str(out), "--operator", "test")
    printed = capsys.readouterr()
    assert status == 0, printed.err
    assert "SIM.BHZ.: PASS" in printed.out and "30/30 min recorded" in printed.err
    result = json.loads((out / "result.json").read_text())
    fit = result["fit"]
    truth = {"period": TRUE_PERIOD, "damping": TRUE_DAMPING, "gain": TRUE_SENSITIVITY * COIL_CONSTANT}
    errors = {name: fit[name] / value - 1 for name, value in truth.items()}
    print("recovered vs true:", {n: f"{fit[n]:.6g} ± {fit['uncertainty'][n]:.2g} vs {truth[n]:.6g} "
                                    f"({100 * e:+.4f} %)" for n, e in errors.items()})
    assert all(abs(e) < TOLERANCE for e in errors.values()), errors
    assert fit["samples"] + round(fit["settle_s"] * 20) >= 30 * 60 * 20  # the whole signal was recorded
    assert result["session"]["signal"] == "random, 30 min" and result["session"]["operator"] == "test"
    assert result["calib"] == pytest.approx(result["nominal_calib"], rel=TOLERANCE)
    for name in ("report.html", "response.png", "traces.png", "recording.npz"):
        assert (out / name).stat().st_size > 1000, name
    response = read_inventory(str(out / "response.xml"))[0][0][0].response
    assert response.instrument_sensitivity.value == pytest.approx(TRUE_SENSITIVITY, rel=TOLERANCE)
    recording = np.load(out / "recording.npz")
    assert set(np.unique(recording["input_0"])) <= {-15625, 0, 15625}  # 0.05 V at 3.2 µV per count


def test_sine_calibration_measures_each_frequency_against_nominal(tmp_path, capsys):
    out = tmp_path / "report"
    with SimDigitizerRig(SPEED, seed=2) as rig:
        config = write_config(tmp_path, station_toml(rig.port))
        status = cal(config, "--signal", "sine", "--minutes", "16", "--frequencies", "0.1,0.5", "--out",
                     str(out))
    printed = capsys.readouterr()
    assert status == 0, printed.err
    points = json.loads((out / "result.json").read_text())["sine"]["points"]
    assert [p["frequency"] for p in points] == [0.1, 0.5]
    print("sine points (Hz, amplitude %, phase °):",
          [(p["frequency"], round(100 * p["amplitude_deviation"], 3), round(p["phase_deviation_deg"], 3))
           for p in points])
    # the simulated sensor is nominal, so far inside the IMS 5 % / 5°: its bilinear discretisation
    # costs about 0.2 % at 0.5 Hz
    assert all(abs(p["amplitude_deviation"]) < 0.01 and abs(p["phase_deviation_deg"]) < 1 for p in points)
    assert (out / "response.xml").exists() and "Sine calibration" in (out / "report.html").read_text()


def test_no_returned_signal_is_a_refused_recording_with_its_own_exit_status(tmp_path, capsys):
    out = tmp_path / "report"
    with SimDigitizerRig(SPEED, seed=3) as rig:
        config = write_config(tmp_path, station_toml(rig.port, input_stream="SIMDC7"))  # wrong tap
        status = cal(config, "--signal", "random", "--minutes", "30", "--out", str(out))
        cal_was_running = rig.sim.calibration is not None
    printed = capsys.readouterr()
    assert status == 3, printed
    assert "REFUSED — no-signal: no calibration signal came back on SIMDC7" in printed.out
    assert not cal_was_running  # the session sent STOPCAL before giving up
    assert json.loads((out / "result.json").read_text())["problem"] == "no-signal"


def test_refuses_a_channel_the_running_daemon_acquires(tmp_path, capsys):
    config = write_config(tmp_path, station_toml("/dev/nonexistent-digitizer"))
    with StationLock.acquire(tmp_path / "state", "station daemon", channels=["SIM.BHZ."],
                             ports=["/dev/nonexistent-digitizer"]):
        status = cal(config, "--signal", "random", "--minutes", "30")
    err = capsys.readouterr().err
    assert status == 4
    assert "refused: station daemon" in err and "is acquiring SIM.BHZ." in err
    assert "calibrate BHZ random 30" in err  # the remote way, spelled out
    assert not (tmp_path / "calibrations").exists()


@pytest.mark.parametrize(("args", "message"), [
    (("--signal", "sine", "--minutes", "20"), "needs at least one frequency"),
    (("--signal", "sine", "--minutes", "20", "--frequencies", "0.3"), "not one the calibrator makes"),
    (("--signal", "random", "--minutes", "0"), "minutes must be 1"),
    (("--signal", "sine", "--minutes", "20", "--frequencies", "1,10"), "10 Hz are not below the channel's "
                                                                       "Nyquist frequency (10 Hz)"),
])
def test_bad_arguments_are_refused_before_anything_runs(tmp_path, capsys, args, message):
    config = write_config(tmp_path, station_toml("/dev/nonexistent-digitizer"))
    assert cal(config, *args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "state").exists()  # not even the lock was taken


def test_an_earlier_report_is_never_overwritten(tmp_path, capsys):
    config = write_config(tmp_path, station_toml("/dev/nonexistent-digitizer"))
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "result.json").write_text("{}")
    assert cal(config, "--signal", "random", "--minutes", "30", "--out", str(tmp_path / "old")) == 2
    assert "already holds a calibration report" in capsys.readouterr().err
    assert (tmp_path / "old" / "result.json").read_text() == "{}"
