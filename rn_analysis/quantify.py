"""Nuclide activities from peak areas, jointly, so that lines shared by two nuclides are split between
them (the interference correction), with Currie's decision threshold and detection limit.

Every nuclide n has one unknown, theta_n: its decays during the live time. A peak slot s (a fitted
peak, found or placed at a library line) expects ``sum_n K[s, n] theta_n`` counts, with K the sum of
efficiency x emission probability over the nuclide's lines in that slot. The generalised least
squares estimate with the slots' area covariance S (block-diagonal, one block per fitted region) is
theta = H a, H = (K' S^-1 K)^-1 K' S^-1. Currie (spec sheet 11.5, alpha = beta = 5 %, k = 1.645): with
q the variance that theta_n adds per unit of itself (its own Poisson counts, sum_s H[n,s]^2 K[s,n]) and
sigma0^2 = sigma^2 - q max(theta, 0) the variance theta_n would have if the nuclide were absent,
    LC = k sigma0,   LD = k^2 q + 2 k sigma0
(LD solves LD = LC + k sqrt(sigma0^2 + q LD); for one line without interference it is Currie's
L_D = k^2 + 2 L_C in counts). A nuclide is identified when theta > LC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

K_ALPHA = 1.6449  # one-sided 5 %


@dataclass(frozen=True)
class Activities:
    theta: np.ndarray  # decays during the live time, per nuclide
    sigma: np.ndarray  # its standard uncertainty (counting)
    lc: np.ndarray
    ld: np.ndarray


def _inverse(cov: np.ndarray) -> np.ndarray:
    """Inverse of a covariance, with eigenvalues that rounding made 0 or negative floored."""
    values, vectors = np.linalg.eigh(0.5 * (cov + cov.T))
    floor = 1e-12 * max(float(values.max(initial=0.0)), 1.0)
    return (vectors / np.maximum(values, floor)) @ vectors.T


def solve(areas: np.ndarray, cov: np.ndarray, k: np.ndarray, groups: np.ndarray) -> Activities:
    """``areas`` per slot, their covariance (block-diagonal: slots of different ``groups`` are
    uncorrelated), and K (slots x nuclides); every nuclide has a slot."""
    weight = np.zeros_like(cov)
    for g in np.unique(groups):
        at = np.flatnonzero(groups == g)
        weight[np.ix_(at, at)] = _inverse(cov[np.ix_(at, at)])
    normal_inv = _inverse(k.T @ weight @ k)
    h = normal_inv @ k.T @ weight  # H = (K'S^-1K)^-1 K'S^-1
    theta = h @ areas
    sigma = np.sqrt(np.maximum(np.einsum("ns,st,nt->n", h, cov, h), 0.0))
    q = np.einsum("ns,sn->n", h * h, k)
    sigma0 = np.sqrt(np.maximum(sigma**2 - q * np.maximum(theta, 0.0), 0.01 * sigma**2))
    lc = K_ALPHA * sigma0
    ld = K_ALPHA**2 * q + 2 * lc
    return Activities(theta, sigma, lc, ld)
