"""Peaks of a calibration spectrum: the analysis's correlation search, then fits whose width is free.

The sample analysis (``rn_analysis.peakfit``) fixes each peak's width from the resolution calibration;
a calibration has to measure that width, so here every peak is fitted with its own Gaussian sigma,
free centroid and area, the peaks of a multiplet together on one linear background (beta-gamma
conversion-electron peaks 3 FWHM apart differ in width by a quarter, which a shared sigma would turn
into centroid errors of a channel). Least squares on Poisson weights: the first pass weighted
by the data, the second by the first pass's model (so low-count channels do not pull the areas down).
Uncertainties come from the weighted Jacobian without rescaling: the weights are Poisson variances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares
from scipy.special import erf

from rn_analysis.curves import FWHM_PER_SIGMA
from rn_analysis.peaksearch import find_peaks
from rn_analysis.peaksearch import significance as correlation

MULTIPLET_FWHM = 4.0  # found peaks closer than this are fitted together
REGION_FWHM = 3.0  # a region reaches this far beyond its outer peaks
EDGE_CHANNELS = 4  # the search leaves this many channels at each end of the spectrum
REFIT_RATIO = (0.7, 1.4)  # a fitted sigma outside this ratio to the guess: the region is fitted again


@dataclass(frozen=True, slots=True)
class FittedPeak:
    centroid: float  # array index
    centroid_unc: float
    sigma: float  # channels
    sigma_unc: float
    area: float
    area_unc: float
    significance: float  # of the search's correlation at the peak (sigmas)

    @property
    def fwhm_channels(self) -> float:
        return FWHM_PER_SIGMA * self.sigma


def _model(p: np.ndarray, x: np.ndarray, xc: float, k: int) -> np.ndarray:
    out = p[0] + p[1] * (x - xc)
    for j in range(k):
        mu, area, sig = p[2 + 3 * j], p[3 + 3 * j], p[4 + 3 * j]
        hi, lo = (x + 0.5 - mu) / (sig * math.sqrt(2)), (x - 0.5 - mu) / (sig * math.sqrt(2))
        out = out + area * 0.5 * (erf(hi) - erf(lo))
    return out


def fit_multiplet(counts: np.ndarray, starts: list[float], sigma0: float,
                  significance: list[float]) -> list[FittedPeak]:
    """One region around ``starts`` (array indices), each peak with its own free sigma."""
    fwhm0 = FWHM_PER_SIGMA * sigma0
    lo = max(0, int(math.floor(starts[0] - REGION_FWHM * fwhm0)))
    hi = min(counts.size - 1, int(math.ceil(starts[-1] + REGION_FWHM * fwhm0)))
    x = np.arange(lo, hi + 1, dtype=np.float64)
    y = counts[lo:hi + 1].astype(np.float64)
    xc, k = 0.5 * (lo + hi), len(starts)
    edge = 0.5 * (y[:2].mean() + y[-2:].mean())
    p0 = [edge, 0.0]
    for s in starts:
        p0 += [s, max(float(np.interp(s, x, y)) - edge, 1.0) * sigma0 * math.sqrt(2 * math.pi), sigma0]
    lower = [-np.inf, -np.inf] + [v for s in starts for v in (s - 2 * sigma0, 0.0, 0.2 * sigma0)]
    upper = [np.inf, np.inf] + [v for s in starts for v in (s + 2 * sigma0, np.inf, 5.0 * sigma0)]
    p = np.clip(np.array(p0), np.array(lower) + 1e-9, np.array(upper) - 1e-9)
    var = np.maximum(y, 1.0)  # first pass: data weights; second: the first pass's model
    jac = np.empty((0, 0))
    for _ in range(2):
        w = 1.0 / np.sqrt(var)
        fit = least_squares(lambda q, w=w: (y - _model(q, x, xc, k)) * w, p, bounds=(lower, upper),
                            x_scale="jac")
        p, jac = fit.x, fit.jac
        var = np.maximum(_model(p, x, xc, k), 1.0)
    cov = np.linalg.pinv(jac.T @ jac)
    unc = np.sqrt(np.maximum(np.diag(cov), 0.0))
    return [FittedPeak(float(p[2 + 3 * j]), float(unc[2 + 3 * j]), float(p[4 + 3 * j]), float(unc[4 + 3 * j]),
                       float(p[3 + 3 * j]), float(unc[3 + 3 * j]), significance[j]) for j in range(k)]


def search_and_fit(counts: np.ndarray, sigma_guess: np.ndarray | float, threshold: float = 5.0
                   ) -> list[FittedPeak]:
    """Every peak the correlation search finds above ``threshold`` sigmas, fitted. ``sigma_guess`` is
    the expected peak sigma in channels (per channel, or one value): the search's kernel width and the
    fit's starting width."""
    counts = np.asarray(counts, dtype=np.float64)
    sigma = np.broadcast_to(np.asarray(sigma_guess, dtype=np.float64), counts.shape).copy()
    z = correlation(counts, sigma)
    found = find_peaks(counts, sigma, EDGE_CHANNELS, counts.size - EDGE_CHANNELS, threshold)
    peaks: list[FittedPeak] = []
    group: list[float] = []
    for c in [*found, math.inf]:
        if group and c - group[-1] > MULTIPLET_FWHM * FWHM_PER_SIGMA * sigma[int(group[-1])]:
            sig = float(sigma[int(np.mean(group))])
            zs = [float(z[int(round(g))]) for g in group]
            fitted = fit_multiplet(counts, group, sig, zs)
            widths = [f.sigma for f in fitted]
            if not all(REFIT_RATIO[0] <= w / sig <= REFIT_RATIO[1] for w in widths):
                # the guess was off (no resolution table): fit again over a region of the width found
                fitted = fit_multiplet(counts, [f.centroid for f in fitted], float(np.median(widths)), zs)
            peaks += fitted
            group = []
        group.append(c)
    return [p for p in peaks if p.area > 0 and p.area_unc > 0 and np.isfinite(p.centroid_unc)]
