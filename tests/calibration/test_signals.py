"""Calibration input signals: levels, switching grid, reproducibility, PRBS period and spectrum."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import welch

from calibration.signals import prbs, random_telegraph, sine, step


def test_sine_has_its_frequency_amplitude_and_phase():
    x = sine(0.5, 3.0, 100.0, 20.0, phase_deg=90.0)
    assert len(x) == 2000 and x[0] == pytest.approx(3.0)
    spectrum = np.abs(np.fft.rfft(x))
    assert np.fft.rfftfreq(len(x), 1 / 20.0)[np.argmax(spectrum)] == pytest.approx(0.5)
    assert np.max(np.abs(x)) == pytest.approx(3.0, rel=1e-9)


def test_step_switches_on_and_off_at_the_given_times():
    x = step(10.0, 10.0, 2.5, onset=2.0, release=7.0)
    assert (x[:20] == 0).all() and (x[20:70] == 2.5).all() and (x[70:] == 0).all()


def test_random_telegraph_switches_only_on_its_grid_and_is_reproducible():
    x = random_telegraph(400.0, 20.0, 1000.0, interval=2.0, seed=4)
    assert set(np.unique(x)) == {-1000.0, 1000.0}
    switches = np.flatnonzero(np.diff(x)) + 1
    assert (switches % 40 == 0).all()
    assert 60 < len(switches) < 140  # 199 ticks, each switching with probability ½
    assert np.array_equal(x, random_telegraph(400.0, 20.0, 1000.0, interval=2.0, seed=4))
    assert not np.array_equal(x, random_telegraph(400.0, 20.0, 1000.0, interval=2.0, seed=5))


def test_binary_signals_keep_their_sequence_at_a_finer_sample_rate():
    for make in (lambda rate: random_telegraph(60.0, rate, 1.0, 0.5, seed=9),
                 lambda rate: prbs(60.0, rate, 1.0, 0.5, order=7, seed=3)):
        coarse, fine = make(10.0), make(80.0)
        assert np.array_equal(fine[::8], coarse)


def test_prbs_is_a_maximal_length_sequence():
    order, interval, rate = 7, 0.5, 4.0
    bits = prbs(2 * 127 * interval, rate, 1.0, interval, order=order, seed=11)[:: int(interval * rate)]
    period = 2**order - 1
    assert np.array_equal(bits[:period], bits[period:])  # repeats exactly after 2^n − 1 bits
    assert np.count_nonzero(bits[:period] > 0) == 2 ** (order - 1)  # one more +1 than −1
    other = prbs(2 * 127 * interval, rate, 1.0, interval, order=order, seed=12)[:: int(interval * rate)]
    assert not np.array_equal(other[:period], bits[:period])
    assert any(np.array_equal(np.roll(bits[:period], k), other[:period]) for k in range(period))


def test_telegraph_spectrum_is_flat_then_minus_3_db_near_0_443_over_interval():
    interval, rate = 1.0, 50.0
    x = random_telegraph(20000.0, rate, 1.0, interval, seed=1)
    f, pxx = welch(x, fs=rate, nperseg=2000)
    low = pxx[(f > 0.02) & (f < 0.08)].mean()
    corner = pxx[np.argmin(np.abs(f - 0.443 / interval))]
    assert corner / low == pytest.approx(0.5, abs=0.08)
    assert pxx[np.argmin(np.abs(f - 1 / interval))] < 0.01 * low  # first null at 1/interval


@pytest.mark.parametrize("build, message", [
    (lambda: sine(15.0, 1.0, 10.0, 20.0), "Nyquist"),
    (lambda: random_telegraph(10.0, 20.0, 1.0, interval=0.123), "whole number of samples"),
    (lambda: prbs(10.0, 20.0, 1.0, interval=0.5, order=1), "order"),
    (lambda: step(10.0, 10.0, 1.0, onset=12.0), "onset"),
    (lambda: random_telegraph(-1.0, 20.0, 1.0, interval=1.0), "positive"),
])
def test_bad_signal_parameters_are_refused(build, message):
    with pytest.raises(ValueError, match=message):
        build()
