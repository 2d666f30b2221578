"""Calibration input signals, sampled: sine, step, random telegraph and pseudo-random binary sequence.

The binary signals switch only on a clock grid of ``interval`` seconds that must fall on samples, as
on real calibrators (Güralp, Q330). Their power spectrum is ∝ sinc²(f·interval): flat at low
frequency, −3 dB near 0.443/interval, first null at 1/interval; pick the interval so the flat part
covers the sensor's corner with margin. Random draws happen once per tick, so the same seed gives
the same switching sequence at any sample rate (a finer-sampled copy of a recording's input).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import max_len_seq


def _sample_count(duration: float, sample_rate: float) -> int:
    if not (sample_rate > 0 and duration > 0):
        raise ValueError(f"duration and sample rate must be positive, not {duration!r} and {sample_rate!r}")
    return int(round(duration * sample_rate))


def _samples_per_tick(interval: float, sample_rate: float) -> int:
    per_tick = interval * sample_rate
    if not interval > 0 or abs(per_tick - round(per_tick)) > 1e-9 * per_tick or round(per_tick) < 1:
        raise ValueError(f"switching interval {interval!r} s is not a whole number of samples at "
                         f"{sample_rate} sps")
    return int(round(per_tick))


def sine(frequency: float, amplitude: float, duration: float, sample_rate: float,
         phase_deg: float = 0.0) -> np.ndarray:
    """amplitude · sin(2π·f·t + phase) at t = n / sample_rate."""
    if not 0 < frequency < sample_rate / 2:
        raise ValueError(f"sine frequency {frequency!r} Hz is not between 0 and Nyquist "
                         f"({sample_rate / 2} Hz)")
    t = np.arange(_sample_count(duration, sample_rate)) / sample_rate
    return amplitude * np.sin(2 * math.pi * frequency * t + math.radians(phase_deg))


def step(duration: float, sample_rate: float, amplitude: float, onset: float,
         release: float | None = None) -> np.ndarray:
    """Zero until ``onset`` (s), then ``amplitude``; back to zero at ``release`` if given."""
    n = _sample_count(duration, sample_rate)
    if not 0 <= onset < duration or (release is not None and not onset < release <= duration):
        raise ValueError(f"step onset {onset!r} s / release {release!r} s do not fit a {duration} s record")
    t = np.arange(n) / sample_rate
    on = t >= onset
    if release is not None:
        on &= t < release
    return np.where(on, float(amplitude), 0.0)


def _hold(levels: np.ndarray, per_tick: int, n: int) -> np.ndarray:
    return np.repeat(levels, per_tick)[:n]


def random_telegraph(duration: float, sample_rate: float, amplitude: float, interval: float,
                     seed: int | None = None) -> np.ndarray:
    """±amplitude, changing sign with probability ½ at each tick of the ``interval`` grid."""
    n = _sample_count(duration, sample_rate)
    per_tick = _samples_per_tick(interval, sample_rate)
    ticks = -(-n // per_tick)
    flips = np.random.default_rng(seed).random(ticks) < 0.5
    levels = np.where(np.cumsum(flips) % 2 == 0, float(amplitude), -float(amplitude))
    return _hold(levels, per_tick, n)


def prbs(duration: float, sample_rate: float, amplitude: float, interval: float, order: int = 10,
         seed: int = 1) -> np.ndarray:
    """±amplitude following a maximal-length shift-register sequence of 2^order − 1 bits, repeated.

    ``seed`` picks the register's non-zero start state, i.e. where in the sequence the record begins;
    the exact repetition lets a long record be averaged period by period.
    """
    if not 2 <= order <= 32:
        raise ValueError(f"PRBS order must be 2..32, not {order!r}")
    n = _sample_count(duration, sample_rate)
    per_tick = _samples_per_tick(interval, sample_rate)
    ticks = -(-n // per_tick)
    period_bits = 2**order - 1
    state = np.array([(seed % period_bits + 1) >> i & 1 for i in range(order)], dtype=np.int8)
    bits, _ = max_len_seq(order, state=state, length=min(ticks, period_bits))
    bits = np.resize(bits, ticks)
    return _hold(np.where(bits == 1, float(amplitude), -float(amplitude)), per_tick, n)
