"""Sine calibration: amplitude and phase of the output against the input, one run per frequency.

Each run's input and output are fitted, after the sensor's transient has died down, with
a·cos ωt + b·sin ωt + offset + drift·t at the known frequency; the ratio of the two phasors is the
measured response at that frequency, compared with the nominal response (any ``PolesZeros``: a
seismometer behind its coil, a microbarometer or hydrophone in front of a pistonphone). The
measured phase includes any delay between the two channels; pass a known ``delay`` to remove it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from calibration.recording import RecordingRejected, check_pair
from calibration.response import PolesZeros
from calibration.simulation import settle_time
from calibration.tolerance import Deviation, deviations, worst_deviation

# Whole cycles needed after the transient for a trustworthy amplitude and phase.
MIN_CYCLES = 5
# The sinusoid must explain this fraction of the input's variance (it is a sine at this frequency) ...
MIN_INPUT_SINE_FRACTION = 0.9
# ... and this fraction of the output's (the output responds to it, not to something else).
MIN_OUTPUT_SINE_FRACTION = 0.5


@dataclass(frozen=True)
class SineRun:
    """One recorded sine calibration: its frequency (Hz) and the two channels."""

    frequency: float
    cal_input: np.ndarray
    output: np.ndarray


@dataclass(frozen=True)
class SinePoint:
    """Measured and nominal response (output per input unit; phase in degrees) at one frequency."""

    frequency: float
    amplitude: float
    phase_deg: float
    nominal_amplitude: float
    nominal_phase_deg: float
    amplitude_deviation: float
    phase_deviation_deg: float


@dataclass(frozen=True)
class SineResult:
    points: tuple[SinePoint, ...]
    deviation: Deviation
    verdict: str
    reasons: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"points": [vars(p) for p in self.points], "deviation": vars(self.deviation),
                "verdict": self.verdict, "reasons": list(self.reasons)}


def _phasor(samples: np.ndarray, omega: float, t: np.ndarray, name: str, min_fraction: float) -> complex:
    """Complex amplitude A·e^{jφ} of the A·cos(ωt + φ) in ``samples``, with offset and drift removed."""
    design = np.column_stack([np.cos(omega * t), np.sin(omega * t), np.ones_like(t), t - t.mean()])
    coef, *_ = np.linalg.lstsq(design, samples, rcond=None)
    detrended = samples - design[:, 2:] @ coef[2:]
    explained = 1.0 - float(np.sum((samples - design @ coef) ** 2)) / float(np.sum(detrended**2))
    if explained < min_fraction:
        problem = "no-signal" if name == "calibration input" else "unrelated"
        raise RecordingRejected(problem, f"a sine at {omega / (2 * math.pi):.4g} Hz explains only "
                                         f"{explained:.0%} of the {name} (at least {min_fraction:.0%} "
                                         "needed)")
    return complex(coef[0], -coef[1])


def measure_sine(run: SineRun, sample_rate: float, settle_s: float, delay: float = 0.0,
                 full_scale: float | None = None) -> complex:
    """Output/input phasor ratio at ``run.frequency``, from the part of the run after ``settle_s``."""
    if not 0 < run.frequency < sample_rate / 2:
        raise ValueError(f"sine frequency {run.frequency!r} Hz is not between 0 and Nyquist")
    x, y = check_pair(run.cal_input, run.output, sample_rate, settle_s + MIN_CYCLES / run.frequency,
                      full_scale)
    skip = int(math.ceil(settle_s * sample_rate))
    t = np.arange(skip, len(x)) / sample_rate
    omega = 2 * math.pi * run.frequency
    input_phasor = _phasor(x[skip:], omega, t, "calibration input", MIN_INPUT_SINE_FRACTION)
    output_phasor = _phasor(y[skip:], omega, t, "sensor output", MIN_OUTPUT_SINE_FRACTION)
    return output_phasor / input_phasor * complex(np.exp(1j * omega * delay))


def sine_calibration(runs: Sequence[SineRun], sample_rate: float, nominal: PolesZeros, *,
                     delay: float = 0.0, full_scale: float | None = None) -> SineResult:
    """Measured response at each run's frequency against ``nominal``; pass when all are within 5 %/5°."""
    if not runs:
        raise ValueError("a sine calibration needs at least one run")
    settle = settle_time(nominal.poles) if nominal.poles else 0.0
    frequencies = np.array([r.frequency for r in runs])
    measured = np.array([measure_sine(r, sample_rate, settle, delay, full_scale) for r in runs])
    expected = nominal(frequencies)
    amplitude_dev, phase_dev = deviations(measured, expected)
    points = tuple(SinePoint(float(f), float(abs(m)), float(np.degrees(np.angle(m))), float(abs(e)),
                             float(np.degrees(np.angle(e))), float(a), float(p))
                   for f, m, e, a, p in zip(frequencies, measured, expected, amplitude_dev, phase_dev,
                                            strict=True))
    deviation = worst_deviation(frequencies, measured, expected)
    return SineResult(points, deviation, "pass" if deviation.passed else "fail", tuple(deviation.failures()))
