"""Bad calibration recordings get a rejection that names the problem, never a fit."""

from __future__ import annotations

from functools import cache, partial

import numpy as np
import pytest

from calibration.recording import RecordingRejected
from calibration.response import Seismometer
from calibration.seismometer import fit_response
from calibration.signals import random_telegraph
from tests.calibration.truth import Recording, record

SENSOR = Seismometer(30.0, 0.7, 800.0)
RATE = 20.0


@cache
def good(seed: int = 5, noise: float = 0.01, duration: float = 900.0) -> Recording:
    signal = partial(random_telegraph, amplitude=1000.0, interval=2.0, seed=seed)
    return record(signal, RATE, SENSOR.coil_response(), duration=duration, preroll=60.0, noise=noise,
                  seed=seed + 1)


def rejected(cal_input, output, **kwargs) -> RecordingRejected:
    with pytest.raises(RecordingRejected) as caught:
        fit_response(cal_input, output, RATE, **kwargs)
    return caught.value


def test_nan_samples_are_named_with_their_position():
    rec = good()
    output = rec.output.copy()
    output[1234] = np.nan
    err = rejected(rec.cal_input, output)
    assert err.problem == "not-finite" and "index 1234" in str(err) and "sensor output" in str(err)
    cal_input = rec.cal_input.copy()
    cal_input[7] = np.inf
    assert rejected(cal_input, rec.output).problem == "not-finite"


def test_too_short_for_the_nominal_period():
    rec = good()
    err = rejected(rec.cal_input[:2400], rec.output[:2400], nominal=SENSOR)  # 120 s of a 30 s sensor
    assert err.problem == "too-short" and "120 s recorded" in str(err)


def test_too_short_without_a_nominal_is_found_from_the_data():
    rec = good()
    assert rejected(rec.cal_input[:3000], rec.output[:3000]).problem == "too-short"


def test_no_calibration_signal():
    rec = good()
    assert rejected(np.zeros_like(rec.cal_input), rec.output).problem == "no-signal"
    assert rejected(np.full_like(rec.cal_input, 512.0), rec.output).problem == "no-signal"


def test_dead_output():
    rec = good()
    err = rejected(rec.cal_input, np.full_like(rec.output, -17.0))
    assert err.problem == "no-output"


def test_clipped_output_is_recognised_from_the_rails():
    rec = good()
    rail = 0.6 * np.max(np.abs(rec.output))
    err = rejected(rec.cal_input, np.clip(rec.output, -rail, rail))
    assert err.problem == "clipped" and "sits on" in str(err)


def test_clipped_output_is_recognised_from_the_full_scale():
    rec = good()
    full_scale = float(np.max(np.abs(rec.output)))  # the loudest sample just reaches it
    err = rejected(rec.cal_input, rec.output, full_scale=full_scale)
    assert err.problem == "clipped" and "full scale" in str(err)


def test_quiet_integer_output_is_not_mistaken_for_clipping():
    rec = good()
    scale = 40.0 / np.std(rec.output)  # about ±100 counts: rounding makes values repeat at the peaks
    result = fit_response(rec.cal_input, np.round(rec.output * scale), RATE)
    assert abs(result.period / SENSOR.period - 1) < 0.02


def test_output_of_another_channel_is_unrelated():
    other = good(seed=9)  # same sensor type, driven by a different calibration sequence
    err = rejected(good().cal_input, other.output)
    assert err.problem == "unrelated" and "coherent" in str(err)


def test_output_of_pure_noise_is_unrelated():
    rec = good()
    noise = np.random.default_rng(3).normal(0, 1e4, len(rec.output))
    assert rejected(rec.cal_input, noise).problem == "unrelated"


def test_output_drowned_in_noise_is_a_poor_fit():
    rec = good(noise=0.6)
    err = rejected(rec.cal_input, rec.output)
    assert err.problem == "poor-fit" and "residual" in str(err)


def test_loop_back_without_a_sensor_does_not_give_a_fit():
    """The output channel records the calibration input itself (a loop-back): no pendulum to fit."""
    rec = good()
    loop_back = 3.0 * rec.cal_input + np.random.default_rng(4).normal(0, 30.0, len(rec.cal_input))
    assert rejected(rec.cal_input, loop_back).problem in ("fit-failed", "poor-fit")


def test_channels_of_different_length():
    rec = good()
    assert rejected(rec.cal_input, rec.output[:-1]).problem == "length-mismatch"


def test_samples_whose_power_overflows_are_refused_not_crashed_on():
    """Finite samples near 1e160 overflow the spectra to inf/NaN, so no starting point has a finite misfit."""
    rec = good()
    with np.errstate(over="ignore", invalid="ignore"):
        err = rejected(rec.cal_input * 1e160, rec.output * 1e160)
    assert err.problem == "fit-failed" and "starting grid" in str(err)
