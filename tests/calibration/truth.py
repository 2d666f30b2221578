"""Recordings of simulated sensors with known responses (T0, h, G): the truth the calibration is tested on.

Deliberately a different path from the fit's frequency-domain simulation: the continuous-time
sensor is discretised exactly for piecewise-linear input (first-order hold, ``cont2discrete``) at
``OVERSAMPLE`` times the recording rate and run as a recursive filter in the time domain; the
channel delay is a whole number of those fine samples; a shared FIR anti-alias filter then
decimates input and output, as the digitizer does for both channels. ``test_truth.py`` checks this
path against ``scipy.signal.lsim`` on the continuous-time system.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.signal import cont2discrete, lfilter, resample_poly, zpk2tf

from calibration.response import PolesZeros

OVERSAMPLE = 8
ANTI_ALIAS = ("kaiser", 10.0)  # about −90 dB stopband, so nothing aliases at the 0.1 % level


@dataclass(frozen=True)
class Recording:
    cal_input: np.ndarray
    output: np.ndarray
    sample_rate: float
    delay: float  # true output-after-input delay, s


def continuous_output(system: PolesZeros, x: np.ndarray, sample_rate: float) -> np.ndarray:
    """Exact output of ``system`` at the sample instants for an input linear between samples, at rest
    before the first sample."""
    num, den = zpk2tf(system.zeros, system.poles, system.scale)
    b, a, _ = cont2discrete((np.real(num), np.real(den)), 1.0 / sample_rate, method="foh")
    return lfilter(np.ravel(b), a, x)


def record(signal: Callable[[float, float], np.ndarray], sample_rate: float, system: PolesZeros, *,
           duration: float, preroll: float, delay_fine_samples: int = 0, noise: float = 0.01,
           offset: float = 0.0, drift: float = 0.0, seed: int = 0) -> Recording:
    """``system`` (e.g. ``Seismometer.coil_response()``) driven by ``signal(duration, rate)``:
    ``duration`` s recorded after ``preroll`` s of the same signal (the sensor is not at rest when
    the record starts); ``noise`` is the output noise rms as a fraction of the output rms."""
    fine_rate = sample_rate * OVERSAMPLE
    postroll = 200.0 / sample_rate  # beyond the anti-alias filter's reach
    x_fine = signal(preroll + duration + postroll, fine_rate)
    y_fine = continuous_output(system, x_fine, fine_rate)
    if delay_fine_samples:
        y_fine = np.concatenate([np.zeros(delay_fine_samples), y_fine[:-delay_fine_samples]])
    x = resample_poly(x_fine, 1, OVERSAMPLE, window=ANTI_ALIAS)
    y = resample_poly(y_fine, 1, OVERSAMPLE, window=ANTI_ALIAS)
    keep = slice(int(round(preroll * sample_rate)), int(round((preroll + duration) * sample_rate)))
    x, y = x[keep], y[keep]
    rng = np.random.default_rng(seed)
    t = np.arange(len(y)) / sample_rate
    y = y + rng.normal(0.0, noise * float(np.std(y)), len(y)) + offset + drift * t
    return Recording(x, y, sample_rate, delay_fine_samples / fine_rate)


def relative_error(value: float, truth: float) -> float:
    return abs(value - truth) / abs(truth) if truth else math.inf
