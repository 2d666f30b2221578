"""The sensor's output for a recorded calibration input, simulated in the frequency domain.

Why the frequency domain: input and output pass through the same digitizer (anti-alias filter,
decimation), so between the two *recorded* channels the relation is exactly the analogue
H(jω) = G·s/(s² + 2hω0·s + ω0²) at every frequency below Nyquist; multiplying the input's spectrum
by H(jω)·e^{−jωτ} applies it without the frequency warping of a bilinear filter or the
piecewise-constant assumption of impulse/step invariance, and makes the sub-sample delay τ exact.
The derivatives of H with respect to T0, h, G and τ are analytic, so a Jacobian column costs one
inverse FFT. Circular convolution is kept out of the result by zero padding as long as the sensor's
memory (``memory_s``); the start of the record, where the unknown state of the sensor before the
record still rings, is for the caller to leave out (``settle_time``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from scipy import fft

# The impulse response falls below e^-DECAY_E_FOLDS of its start after DECAY_E_FOLDS / (h·ω0).
DECAY_E_FOLDS = 12.0


def settle_time(poles: Iterable[complex]) -> float:
    """Seconds after which a sensor with these poles has forgotten its state (slowest decayed by e^-12)."""
    slowest = min(-complex(p).real for p in poles)
    return DECAY_E_FOLDS / slowest


class CoilSimulator:
    """Responses of T0, h, G, τ sensors to one recorded calibration input (spectrum computed once)."""

    def __init__(self, cal_input: np.ndarray, sample_rate: float, memory_s: float) -> None:
        x = np.asarray(cal_input, dtype=np.float64)
        self.n = len(x)
        self.sample_rate = sample_rate
        # The input's mean produces no output (zero at s = 0); removing it keeps the padding's jump small.
        self.length = fft.next_fast_len(self.n + int(math.ceil(memory_s * sample_rate)) + 1, real=True)
        self.spectrum = fft.rfft(x - x.mean(), self.length)
        self.s = 2j * math.pi * fft.rfftfreq(self.length, 1.0 / sample_rate)

    def _to_time(self, spectrum: np.ndarray) -> np.ndarray:
        return fft.irfft(spectrum, self.length)[: self.n]

    def _transfer(self, period: float, damping: float, delay: float) -> tuple[np.ndarray, np.ndarray, float]:
        omega0 = 2 * math.pi / period
        denominator = self.s * self.s + 2 * damping * omega0 * self.s + omega0 * omega0
        return self.s * np.exp(-self.s * delay) / denominator, denominator, omega0

    def output(self, period: float, damping: float, gain: float, delay: float = 0.0) -> np.ndarray:
        """The simulated output (before offset and drift) for these sensor parameters."""
        unit, _, _ = self._transfer(period, damping, delay)
        return self._to_time(gain * unit * self.spectrum)

    def derivatives(self, period: float, damping: float, gain: float, delay: float) -> np.ndarray:
        """Partial derivatives of ``output`` with respect to (T0, h, G, τ), as the four columns."""
        unit, denominator, omega0 = self._transfer(period, damping, delay)
        unit_response = unit * self.spectrum
        response = gain * unit_response
        # ∂H/∂ω0 = −H·(2h·s + 2ω0)/D and ∂ω0/∂T0 = −ω0/T0; ∂H/∂h = −H·2ω0·s/D; ∂H/∂τ = −s·H.
        d_period = response * (2 * damping * self.s + 2 * omega0) / denominator * (omega0 / period)
        d_damping = -response * (2 * omega0 * self.s) / denominator
        columns = np.empty((self.n, 4))
        for i, spectrum in enumerate((d_period, d_damping, unit_response, -self.s * response)):
            columns[:, i] = self._to_time(spectrum)
        return columns
