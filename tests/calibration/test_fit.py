"""fit_response against simulated sensors of known T0, h and G recorded with 1 % output noise.

Record lengths are the shortest that keep the 0.1 % criterion honest: each stated uncertainty must
itself be below a third of 0.1 %, so passing is not luck, and each error must lie within 4 of
them, so the uncertainties mean something. Rates are the usual station rates (20 sps broadband,
100 sps short-period); the telegraph's switching interval puts its flat band (to ≈ 0.44/interval)
well above the sensor's corner; each record spans 15 to 300 free periods.
"""

from __future__ import annotations

import json
from functools import cache, partial

import pytest

from calibration.response import Seismometer
from calibration.seismometer import fit_response
from calibration.signals import random_telegraph
from tests.calibration.truth import Recording, record, relative_error

# name: (true sensor, sample rate, telegraph interval, recorded seconds)
CASES = {
    "broadband 120 s / 0.707": (Seismometer(120.0, 0.707, 1500.0), 20.0, 8.0, 1800.0),
    "broadband 30 s / 0.7": (Seismometer(30.0, 0.7, 800.0), 20.0, 2.0, 900.0),
    "short-period 1 s / 0.6, reversed polarity": (Seismometer(1.0, 0.6, -2000.0), 100.0, 0.05, 300.0),
}


@cache
def recording(name: str) -> Recording:
    sensor, rate, interval, duration = CASES[name]
    signal = partial(random_telegraph, amplitude=1000.0, interval=interval, seed=5)
    return record(signal, rate, sensor.coil_response(), duration=duration, preroll=2 * sensor.period,
                  delay_fine_samples=3, noise=0.01, offset=25.0, drift=0.02, seed=7)


@pytest.mark.parametrize("name", CASES)
def test_recovers_period_damping_and_gain_within_0_1_percent(name):
    sensor = CASES[name][0]
    rec = recording(name)
    result = fit_response(rec.cal_input, rec.output, rec.sample_rate)
    for parameter in ("period", "damping", "gain"):
        truth, value = getattr(sensor, parameter), getattr(result, parameter)
        sigma = getattr(result.uncertainty, parameter)
        assert relative_error(value, truth) < 1e-3, f"{parameter} {value} vs {truth}"
        assert sigma < 1e-3 / 3 * abs(truth), f"{parameter} uncertainty {sigma} too large for the test"
        assert abs(value - truth) < 4 * sigma, f"{parameter} error outside 4 × stated uncertainty {sigma}"
    assert abs(result.delay - rec.delay) < 4 * result.uncertainty.delay
    assert result.uncertainty.delay < 0.05 / rec.sample_rate
    assert result.relative_residual == pytest.approx(0.01, rel=0.1)  # the noise put in, no more
    assert result.verdict == "fitted" and result.deviation is None


def test_a_nominal_close_to_the_truth_passes():
    sensor = CASES["broadband 30 s / 0.7"][0]
    rec = recording("broadband 30 s / 0.7")
    nominal = Seismometer(sensor.period * 1.005, sensor.damping * 0.99, sensor.gain * 1.01)
    result = fit_response(rec.cal_input, rec.output, rec.sample_rate, nominal=nominal)
    assert result.verdict == "pass" and result.reasons == ()
    assert 0.005 < abs(result.deviation.amplitude) < 0.05 and abs(result.deviation.phase_deg) < 5


def test_a_wrong_nominal_fails_and_does_not_bend_the_fit():
    sensor = CASES["broadband 120 s / 0.707"][0]
    rec = recording("broadband 120 s / 0.707")
    wrong = Seismometer(100.0, 0.6, 1300.0)
    result = fit_response(rec.cal_input, rec.output, rec.sample_rate, nominal=wrong)
    assert result.verdict == "fail"
    assert any("amplitude" in r for r in result.reasons) and any("phase" in r for r in result.reasons)
    assert abs(result.deviation.amplitude) > 0.05 and abs(result.deviation.phase_deg) > 5
    assert relative_error(result.period, sensor.period) < 1e-3
    assert relative_error(result.damping, sensor.damping) < 1e-3


def test_result_serialises_to_json():
    rec = recording("short-period 1 s / 0.6, reversed polarity")
    nominal = Seismometer(1.0, 0.6, -2000.0)
    result = fit_response(rec.cal_input, rec.output, rec.sample_rate, nominal=nominal)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["period"] == result.period and data["uncertainty"]["gain"] == result.uncertainty.gain
    assert data["nominal"] == {"period": 1.0, "damping": 0.6, "gain": -2000.0}
    assert data["verdict"] == "pass" and data["deviation"]["amplitude"] == result.deviation.amplitude
