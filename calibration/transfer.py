"""Cross-spectral (Welch) estimate of the transfer function from calibration input to sensor output.

Model-free, so it serves as the independent look at the data: starting values for the fit, the
check that the output follows the input at all, and the measured points drawn against the fitted
and nominal curves in a report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import csd, welch

# Frequencies where the input's power is within this factor of its peak count as driven.
DRIVEN_POWER_RATIO = 1e-3


@dataclass(frozen=True)
class TransferEstimate:
    """H(f) = S_xy/S_xx and the magnitude-squared coherence, at Welch frequencies (0 Hz left out)."""

    frequency: np.ndarray
    response: np.ndarray
    coherence: np.ndarray
    output_power: np.ndarray  # S_yy, output units² per Hz
    driven: np.ndarray  # bool: the input has power here, so the estimate means something

    def coherent_fraction(self) -> float:
        """Fraction of the output's power that follows the input linearly: Σ γ²·S_yy / Σ S_yy."""
        return float(np.sum(self.coherence * self.output_power) / np.sum(self.output_power))


def segment_length(n: int, sample_rate: float, longest_period: float) -> int:
    """Welch segment: four times ``longest_period`` if the record allows at least 8 of them (≈ 15
    averages with half overlap, so an unrelated output shows a coherence near 0.1, not near 1)."""
    return int(min(max(4 * longest_period * sample_rate, 64), max(n // 8, min(64, n))))


def estimate_transfer(x: np.ndarray, y: np.ndarray, sample_rate: float, nperseg: int) -> TransferEstimate:
    """Welch estimate with Hann windows overlapping by half, trends removed per segment."""
    frequency, sxx = welch(x, fs=sample_rate, nperseg=nperseg, detrend="linear")
    _, syy = welch(y, fs=sample_rate, nperseg=nperseg, detrend="linear")
    _, sxy = csd(x, y, fs=sample_rate, nperseg=nperseg, detrend="linear")
    frequency, sxx, syy, sxy = frequency[1:], sxx[1:], syy[1:], sxy[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        response = np.where(sxx > 0, sxy / sxx, 0)
        coherence = np.where(sxx * syy > 0, np.abs(sxy) ** 2 / (sxx * syy), 0.0)
    return TransferEstimate(frequency, response, coherence, syy, sxx >= DRIVEN_POWER_RATIO * sxx.max())
