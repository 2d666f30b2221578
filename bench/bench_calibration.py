"""Seismometer fit speed: a 30-minute, 100 sps random-telegraph calibration against the 10 s limit.

The recording comes from the tests' truth generator (``tests/calibration/truth.py``: a 120 s / 0.707
broadband sensor simulated in the time domain, 1 % output noise, a channel delay, offset and drift),
so the figures also show that the fit at this size still finds the truth. The limit is "under 10 s
on one core": the figure compared with it is the process CPU time of the fit, which counts every
thread a BLAS library might add, so it is no smaller than the single-core wall time would be.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from calibration.response import Seismometer
from calibration.seismometer import fit_response
from calibration.signals import random_telegraph
from tests.calibration.truth import record, relative_error

RATE = 100.0
MINUTES = 30
INTERVAL = 2.0  # telegraph switching interval, s: flat to about 0.2 Hz, 25 times the sensor's corner
SENSOR = Seismometer(120.0, 0.707, 1500.0)
NOMINAL = Seismometer(125.0, 0.68, 1450.0)  # a few percent off, as a datasheet value would be
LIMIT_S = 10.0
REPEATS = 3


def run(progress: Callable[[str], None]) -> dict:
    progress(f"simulating a {MINUTES} min, {RATE:g} sps telegraph calibration of a 120 s sensor")
    signal = partial(random_telegraph, amplitude=1000.0, interval=INTERVAL, seed=21)
    rec = record(signal, RATE, SENSOR.coil_response(), duration=MINUTES * 60.0, preroll=300.0,
                 delay_fine_samples=3, noise=0.01, offset=40.0, drift=0.01, seed=22)
    progress(f"fitting {len(rec.output)} samples, best of {REPEATS} after a warm-up")
    result = fit_response(rec.cal_input, rec.output, RATE, nominal=NOMINAL)
    best_cpu, best_wall = float("inf"), float("inf")
    for _ in range(REPEATS):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        result = fit_response(rec.cal_input, rec.output, RATE, nominal=NOMINAL)
        best_cpu = min(best_cpu, time.process_time() - cpu0)
        best_wall = min(best_wall, time.perf_counter() - wall0)
    return {
        "samples": len(rec.output),
        "fit_cpu_s": best_cpu,
        "fit_wall_s": best_wall,
        "ratio_to_10s_limit": best_cpu / LIMIT_S,
        "function_evaluations": result.evaluations,
        "period_error_percent": 100 * relative_error(result.period, SENSOR.period),
        "damping_error_percent": 100 * relative_error(result.damping, SENSOR.damping),
        "gain_error_percent": 100 * relative_error(result.gain, SENSOR.gain),
        "delay_error_ms": (result.delay - rec.delay) * 1e3,
        "target": "ratio < 1 (under 10 s on one core)",
    }
