"""Peak fits: Gaussian peaks on a local linear background, every peak of a region fitted together.

A region's model per channel is ``b0 + b1 (x - xc) + sum_k A_k g_k(x)``, where g_k is the Gaussian of
unit area integrated over the channel (edges x +- 0.5) with its sigma fixed by the resolution
calibration at the peak's starting centroid; the centroids of found peaks are free, those placed at a
library line are fixed. Gauss-Newton on the Poisson-weighted squares: the first solve weights by the
data (max(y, 1)) with the centroids held, later ones by the model (Pearson weights), so that areas of
low-count peaks are not pulled down as data weights would. The area covariance is the inverse of the
weighted normal matrix at the end. Counts the model takes as known (``known``) are added to it and
enter the weights, but carry no parameter.
"""

from __future__ import annotations

import math

import numba
import numpy as np

ITERATIONS = 10
RegionFit = tuple[float, float, float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
SQRT2 = math.sqrt(2.0)
INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


@numba.njit(cache=True)
def _shapes(x: np.ndarray, mu: np.ndarray, sig: np.ndarray, g: np.ndarray, dg: np.ndarray) -> None:
    for k in range(mu.size):
        s = sig[k]
        for i in range(x.size):
            hi = (x[i] + 0.5 - mu[k]) / s
            lo = (x[i] - 0.5 - mu[k]) / s
            g[i, k] = 0.5 * (math.erf(hi / SQRT2) - math.erf(lo / SQRT2))
            dg[i, k] = (math.exp(-0.5 * lo * lo) - math.exp(-0.5 * hi * hi)) * INV_SQRT2PI / s


@numba.njit(cache=True)
def fit_region(y: np.ndarray, x: np.ndarray, mu0: np.ndarray, sig: np.ndarray, free: np.ndarray,
               known: np.ndarray) -> RegionFit:
    """Fit one region; ``known`` are counts per channel the model takes as given (weak lines whose size
    follows from their nuclide's other lines). Returns (b0, b1, xc, areas, centroids, area covariance,
    centroid variances)."""
    n, k = y.size, mu0.size
    xc = 0.5 * (x[0] + x[-1])
    mu = mu0.copy()
    free_now = free.copy()
    b0 = 0.5 * (y[0] + y[-1] - known[0] - known[-1])
    b1 = 0.0
    area = np.zeros(k)
    var = np.maximum(y, 1.0)
    g = np.empty((n, k))
    dg = np.empty((n, k))
    cov = np.zeros((2 + 2 * k, 2 + 2 * k))
    for it in range(ITERATIONS + 1):
        _shapes(x, mu, sig, g, dg)
        model = b0 + b1 * (x - xc) + known + g @ area
        if it >= 1:
            var = np.maximum(model, 0.5)
        hold = it == 0
        # parameters: b0, b1, areas, then centroids (a held centroid gets a unit column and is pinned)
        p = 2 + 2 * k
        jac = np.zeros((n, p))
        for i in range(n):
            jac[i, 0] = 1.0
            jac[i, 1] = x[i] - xc
            for j in range(k):
                jac[i, 2 + j] = g[i, j]
                if free_now[j] and not hold:
                    jac[i, 2 + k + j] = area[j] * dg[i, j]
        w = 1.0 / var
        jt_w = jac.T * w
        normal = jt_w @ jac
        for j in range(k):
            if not free_now[j] or hold:
                normal[2 + k + j, 2 + k + j] = 1.0
        for j in range(p):
            normal[j, j] += 1e-12 * (1.0 + normal[j, j])
        cov = np.linalg.inv(normal)
        if it == ITERATIONS:
            break
        step = cov @ (jt_w @ (y - model))
        b0 += step[0]
        b1 += step[1]
        for j in range(k):
            area[j] += step[2 + j]
            if free_now[j] and not hold:
                d = min(max(step[2 + k + j], -0.5 * sig[j]), 0.5 * sig[j])
                mu[j] += d
                if abs(mu[j] - mu0[j]) > 2.0 * sig[j]:  # wandered off: not a peak we can place
                    mu[j] = mu0[j]
                    free_now[j] = False
    area_cov = cov[2:2 + k, 2:2 + k].copy()
    mu_var = np.zeros(k)
    for j in range(k):
        if free_now[j]:
            mu_var[j] = cov[2 + k + j, 2 + k + j]
    return b0, b1, xc, area, mu, area_cov, mu_var
