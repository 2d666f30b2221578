"""The random-calibration fit against ObsPy's relative calibration (``rel_calib_stack``) on one recording.

ObsPy treats the calibration input as a "known sensor" with a flat unit response, so what it
returns is the input-to-output transfer function, the same quantity as ``coil_response()`` of the
fit. Its estimator averages per-window spectral ratios, which scatter by several percent bin by bin,
so it is compared in third-octave band means, over the band where it is valid: from 10 cycles per
window (Hann leakage from the strong low frequencies spoils fewer) up to 0.5/interval (beyond, the
telegraph's power falls towards its first null). ObsPy forms conj(Y)·X, so its phase has the
opposite sign to ours (e^{+jωt}); our phase includes the fitted channel delay there.
Stated tolerance: 3 % in amplitude and 2° in phase per band, median bin bias below 0.5 %.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from obspy import Trace
from obspy.signal.calibration import rel_calib_stack

from calibration.response import Seismometer
from calibration.seismometer import fit_response
from calibration.signals import random_telegraph
from tests.calibration.truth import record

SENSOR = Seismometer(1.0, 0.6, -2000.0)
RATE, INTERVAL, WINDOW = 100.0, 0.05, 20.0
UNIT_RESPONSE = {"poles": [], "zeros": [], "sensitivity": 1.0}


def _band_means(freqs, obspy_amp, obspy_phase, ours):
    lo, hi = 10 / WINDOW, 0.5 / INTERVAL
    edges = np.geomspace(lo, hi, int(round(3 * np.log2(hi / lo))) + 1)
    amplitude, phase = [], []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        m = (freqs >= a) & (freqs < b)
        amplitude.append(np.mean(obspy_amp[m]) / np.mean(np.abs(ours[m])) - 1)
        # ObsPy's phase is −arg(Y/X): e^{−j·phase} · conj(H)/|H| = e^{j(arg(Y/X) − arg H)}
        unit_ratio = np.exp(-1j * obspy_phase[m]) * np.conj(ours[m]) / np.abs(ours[m])
        phase.append(np.degrees(np.angle(np.mean(unit_ratio))))
    in_band = (freqs >= lo) & (freqs <= hi)
    bias = np.median(obspy_amp[in_band] / np.abs(ours[in_band]) - 1)
    return np.array(amplitude), np.array(phase), bias


def test_fitted_response_agrees_with_obspy_rel_calib_stack():
    rec = record(partial(random_telegraph, amplitude=1000.0, interval=INTERVAL, seed=1), RATE,
                 SENSOR.coil_response(), duration=600.0, preroll=5.0, delay_fine_samples=3, seed=11)
    fit = fit_response(rec.cal_input, rec.output, RATE)
    known = Trace(rec.cal_input.copy(), header={"sampling_rate": RATE, "station": "CAL", "channel": "BC0"})
    unknown = Trace(rec.output.copy(), header={"sampling_rate": RATE, "station": "STA", "channel": "SHZ"})
    freqs, amp, phase = rel_calib_stack(known, unknown, UNIT_RESPONSE, WINDOW, save_data=False)

    def ours(sensor: Seismometer) -> np.ndarray:
        return sensor.coil_response()(freqs) * np.exp(-2j * np.pi * freqs * fit.delay)

    amplitude_dev, phase_dev, bias = _band_means(freqs, amp, phase, ours(fit.sensor()))
    print(f"ObsPy vs fit, third-octave bands: amplitude max {np.max(np.abs(amplitude_dev)):.2%}, phase max "
          f"{np.max(np.abs(phase_dev)):.2f}°, median bin bias {bias:+.3%}")
    assert len(amplitude_dev) >= 12  # 0.5–10 Hz, around the 1 Hz corner
    assert np.max(np.abs(amplitude_dev)) < 0.03, amplitude_dev
    assert np.max(np.abs(phase_dev)) < 2.0, phase_dev
    assert abs(bias) < 0.005
    # The comparison can tell: a response 10 % off in gain or 10 % off in period disagrees with ObsPy.
    for wrong in (Seismometer(fit.period, fit.damping, 1.1 * fit.gain),
                  Seismometer(1.1 * fit.period, fit.damping, fit.gain)):
        wrong_amplitude, _, _ = _band_means(freqs, amp, phase, ours(wrong))
        assert np.max(np.abs(wrong_amplitude)) > 0.05
