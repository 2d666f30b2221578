"""The truth generator itself: its recursive first-order-hold simulation equals scipy's continuous-time
``lsim``, so the fit tests compare against the sensor, not against a copy of the fit's own model.
Inputs start at 0 so that both start from rest the same way."""

from __future__ import annotations

import numpy as np
from scipy.signal import lsim, zpk2tf

from calibration.response import Seismometer, hydrophone
from calibration.signals import random_telegraph, sine
from tests.calibration.truth import continuous_output


def _lsim(system, x, rate):
    num, den = zpk2tf(system.zeros, system.poles, system.scale)
    _, y, _ = lsim((np.real(num), np.real(den)), x, np.arange(len(x)) / rate)  # linear between samples
    return y


def test_first_order_hold_path_equals_lsim_for_a_seismometer():
    system = Seismometer(1.0, 0.6, -2000.0).coil_response()
    x = np.concatenate([[0.0], random_telegraph(30.0, 100.0, 1000.0, interval=0.05, seed=2)])  # at rest
    y = continuous_output(system, x, 100.0)
    assert np.max(np.abs(y - _lsim(system, x, 100.0))) < 1e-9 * np.max(np.abs(y))


def test_first_order_hold_path_equals_lsim_for_a_pressure_sensor():
    system = hydrophone(-0.15, 2.0, 40.0, output_units="V")
    x = sine(5.0, 100.0, 10.0, 200.0)
    y = continuous_output(system, x, 200.0)
    assert np.max(np.abs(y - _lsim(system, x, 200.0))) < 1e-9 * np.max(np.abs(y))
