"""Peak search on a gamma spectrum: correlation with a zero-area Gaussian second-derivative kernel
whose width follows the resolution calibration (a Mariscotti-style generalised second difference).

At every channel the correlation S = sum k_j y_(i+j) is divided by its Poisson standard deviation
sqrt(sum k_j^2 y_(i+j)); a local maximum of that significance above the threshold is a candidate,
its centroid refined by a parabola through the three channels around it. The kernel sums to zero
and is symmetric, so a constant or linear background gives S = 0 whatever its level.
"""

from __future__ import annotations

import math

import numba
import numpy as np

DEFAULT_THRESHOLD = 3.0  # significance (sigmas) of a candidate


@numba.njit(cache=True)
def significance(counts: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """S / sqrt(var S) at every channel; ``sigma`` is the peak sigma in channels at each channel."""
    n = counts.size
    out = np.zeros(n)
    kernel = np.empty(64)
    for i in range(n):
        s = sigma[i]
        half = min(int(3.0 * s) + 1, 31)
        if i - half < 0 or i + half >= n:
            continue
        total = 0.0
        for j in range(-half, half + 1):
            u = j / s
            kernel[j + half] = (1.0 - u * u) * math.exp(-0.5 * u * u)
            total += kernel[j + half]
        mean = total / (2 * half + 1)
        num = 0.0
        var = 0.0
        for j in range(-half, half + 1):
            k = kernel[j + half] - mean
            y = counts[i + j]
            num += k * y
            var += k * k * max(y, 1.0)
        out[i] = num / math.sqrt(var)
    return out


def find_peaks(counts: np.ndarray, sigma: np.ndarray, lo: int, hi: int,
               threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Fractional indices of candidate peaks between indices ``lo`` and ``hi``."""
    z = significance(counts.astype(np.float64), sigma.astype(np.float64))
    inner = z[1:-1]
    is_max = (inner > threshold) & (inner >= z[:-2]) & (inner > z[2:])
    idx = np.flatnonzero(is_max) + 1
    idx = idx[(idx >= lo) & (idx < hi)]
    left, mid, right = z[idx - 1], z[idx], z[idx + 1]
    curvature = left - 2 * mid + right
    shift = np.where(curvature < 0, 0.5 * (left - right) / np.where(curvature < 0, curvature, -1.0), 0.0)
    return idx + np.clip(shift, -0.5, 0.5)
