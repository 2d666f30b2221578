"""Beta-gamma ROI gross counts: ROI limits from keV to channels, and the sums of the histogram over them.

The rule is the IDC's, as openSpex implements it (spec §11.1): channel = p(E), a least-squares
quadratic through the ``#g_Energy`` (or ``#b_Energy``) points; each limit becomes ``int(p(E) + 0.5)``;
a ROI holds the cells with ``lo <= channel < hi`` on both axes. Inclusive upper limits give other
counts (216, 277, ... on the shared SAMPLE fixture instead of 211, 262, ...), so the rule is tested.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from gci_link.ims2.tables import BetaEnergyPoint, EnergyPoint, RoiLimits
from rn_analysis.errors import AnalysisError


def channel_polynomial(points: Sequence[EnergyPoint | BetaEnergyPoint],
                       what: str) -> np.polynomial.Polynomial:
    """channel(E) through the calibration points: quadratic with three or more, else linear."""
    energies = np.array([p.energy_kev for p in points], dtype=np.float64)
    channels = np.array([p.channel for p in points], dtype=np.float64)
    if len(points) < 2 or np.unique(energies).size < 2:
        raise AnalysisError(f"{what} needs two or more points at different energies, it has {len(points)}")
    return np.polynomial.Polynomial.fit(energies, channels, min(2, np.unique(energies).size - 1)).convert()


def roi_channels(rois: Sequence[RoiLimits], g_points: Sequence[EnergyPoint],
                 b_points: Sequence[BetaEnergyPoint]) -> np.ndarray:
    """(n_roi, 4) int64 rows ``beta_lo, beta_hi, gamma_lo, gamma_hi`` (upper limits exclusive), ROI order."""
    g, b = channel_polynomial(g_points, "#g_Energy"), channel_polynomial(b_points, "#b_Energy")
    ordered = sorted(rois, key=lambda r: r.roi)
    beta = np.array([[r.beta_low, r.beta_high] for r in ordered], dtype=np.float64)
    gamma = np.array([[r.gamma_low, r.gamma_high] for r in ordered], dtype=np.float64)
    limits = np.trunc(np.column_stack([b(beta), g(gamma)]) + 0.5).astype(np.int64)  # int() of the IDC rule
    return limits


@numba.njit(cache=True)
def _rectangle_sums(hist: np.ndarray, limits: np.ndarray) -> np.ndarray:
    n_gamma, n_beta = hist.shape
    out = np.zeros(limits.shape[0], dtype=np.int64)
    for r in range(limits.shape[0]):
        b0, b1 = max(limits[r, 0], 0), min(limits[r, 1], n_beta)
        g0, g1 = max(limits[r, 2], 0), min(limits[r, 3], n_gamma)
        total = 0
        for g in range(g0, g1):
            for b in range(b0, b1):
                total += hist[g, b]
        out[r] = total
    return out


def roi_gross_counts(histogram: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """Counts of the histogram (gamma rows, beta columns) inside each ROI of ``roi_channels``."""
    hist = np.ascontiguousarray(histogram, dtype=np.int64)
    if hist.ndim != 2:
        raise AnalysisError(f"the histogram must be 2-D (gamma x beta), not shape {hist.shape}")
    return _rectangle_sums(hist, np.ascontiguousarray(limits, dtype=np.int64))
