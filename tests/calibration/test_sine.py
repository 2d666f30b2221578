"""Sine calibrations of a seismometer, a microbarometer and a hydrophone against their nominal models."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from calibration.recording import RecordingRejected
from calibration.response import PolesZeros, Seismometer, hydrophone, microbarometer
from calibration.signals import sine
from calibration.simulation import settle_time
from calibration.sine import SineRun, sine_calibration
from tests.calibration.truth import record

SEISMOMETER = Seismometer(30.0, 0.7, 800.0)
DIGITIZER = 4e5  # counts per volt


def runs(system: PolesZeros, rate: float, frequencies, amplitude: float, delay_fine_samples: int = 0,
         nominal: PolesZeros | None = None) -> list[SineRun]:
    """One recorded run per frequency, long enough for the nominal sensor to settle, then 8 cycles."""
    out = []
    for i, f in enumerate(frequencies):
        duration = settle_time((nominal or system).poles) + 8 / f + 2.0
        rec = record(partial(sine, f, amplitude), rate, system, duration=duration, preroll=1.0,
                     delay_fine_samples=delay_fine_samples, noise=0.01, offset=3.0, seed=i)
        out.append(SineRun(f, rec.cal_input, rec.output))
    return out


def test_seismometer_matching_its_nominal_passes_with_small_deviations():
    recorded = runs(SEISMOMETER.coil_response(), 20.0, (0.02, 0.05, 0.1, 0.5, 1.0, 5.0), 1000.0)
    result = sine_calibration(recorded, 20.0, SEISMOMETER.coil_response())
    assert result.verdict == "pass" and result.reasons == ()
    for point in result.points:
        assert abs(point.amplitude_deviation) < 0.005 and abs(point.phase_deviation_deg) < 0.5
    at_corner = result.points[0]  # 0.02 Hz, below the 0.033 Hz corner: phase leads
    assert at_corner.phase_deg == pytest.approx(at_corner.nominal_phase_deg, abs=0.5)
    assert 0 < at_corner.phase_deg < 90


def test_seismometer_against_a_deliberately_wrong_nominal_fails():
    wrong = Seismometer(20.0, 0.7, 800.0).coil_response()
    result = sine_calibration(runs(SEISMOMETER.coil_response(), 20.0, (0.02, 0.05, 0.1, 1.0), 1000.0),
                              20.0, wrong)
    assert result.verdict == "fail"
    assert any("amplitude" in r for r in result.reasons) and any("phase" in r for r in result.reasons)


def test_channel_delay_shows_in_phase_unless_it_is_given():
    recorded = runs(SEISMOMETER.coil_response(), 20.0, (0.1, 1.0, 5.0), 1000.0, delay_fine_samples=3)
    delay = 3 / (8 * 20.0)  # three samples at the truth's 8-fold rate: 18.75 ms
    ignored = sine_calibration(recorded, 20.0, SEISMOMETER.coil_response())
    assert ignored.verdict == "fail"
    assert ignored.deviation.phase_deg == pytest.approx(-360 * 5.0 * delay, abs=0.5)
    assert sine_calibration(recorded, 20.0, SEISMOMETER.coil_response(), delay=delay).verdict == "pass"


def test_microbarometer_pistonphone_calibration():
    nominal = microbarometer(0.02, 0.01, 8.0).scaled(DIGITIZER, "counts")
    frequencies = (0.02, 0.1, 1.0, 4.0)
    good = sine_calibration(runs(nominal, 20.0, frequencies, 5.0), 20.0, nominal)
    assert good.verdict == "pass"
    assert good.points[2].amplitude == pytest.approx(0.02 * DIGITIZER, rel=0.01)  # counts per Pa mid-band
    clogged_leak = microbarometer(0.02, 0.02, 8.0).scaled(DIGITIZER, "counts")  # corner moved up an octave
    bad = sine_calibration(runs(clogged_leak, 20.0, frequencies, 5.0, nominal=nominal), 20.0, nominal)
    assert bad.verdict == "fail"
    assert bad.deviation.amplitude_frequency == 0.02 and bad.deviation.amplitude < -0.05


def test_hydrophone_polarity_is_checked():
    nominal = hydrophone(-0.15, 1.0, 60.0).scaled(DIGITIZER, "counts")
    frequencies = (2.0, 10.0, 50.0)
    assert sine_calibration(runs(nominal, 250.0, frequencies, 100.0), 250.0, nominal).verdict == "pass"
    rewired = hydrophone(0.15, 1.0, 60.0).scaled(DIGITIZER, "counts")
    result = sine_calibration(runs(rewired, 250.0, frequencies, 100.0), 250.0, nominal)
    assert result.verdict == "fail" and abs(result.deviation.phase_deg) == pytest.approx(180.0, abs=1.0)
    assert abs(result.deviation.amplitude) < 0.01  # amplitude right, sign wrong


def _rejection(run: SineRun, rate: float = 20.0) -> RecordingRejected:
    with pytest.raises(RecordingRejected) as caught:
        sine_calibration([run], rate, SEISMOMETER.coil_response())
    return caught.value


def test_bad_sine_runs_are_refused_by_name():
    (run,) = runs(SEISMOMETER.coil_response(), 20.0, (0.5,), 1000.0)
    assert _rejection(SineRun(0.7, run.cal_input, run.output)).problem == "no-signal"  # not at 0.7 Hz
    noise = np.random.default_rng(1).normal(0, 100.0, len(run.output))
    assert _rejection(SineRun(0.5, run.cal_input, noise)).problem == "unrelated"
    assert _rejection(SineRun(0.5, run.cal_input[:1000], run.output[:1000])).problem == "too-short"
    output = run.output.copy()
    output[5] = np.nan
    assert _rejection(SineRun(0.5, run.cal_input, output)).problem == "not-finite"
    rail = 0.5 * np.max(np.abs(run.output))
    assert _rejection(SineRun(0.5, run.cal_input, np.clip(run.output, -rail, rail))).problem == "clipped"
