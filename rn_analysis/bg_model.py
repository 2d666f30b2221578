"""The linear model of a beta-gamma count: ROI counts = response x activities + backgrounds.

Unknowns are the activities at the start of the acquisition of the five isotopes of ``xenon.ISOTOPES``.
Observations are the counts in six disjoint regions: ROIs 1, 2, 3, 5, 6 and "4'" = ROI 4 without ROIs 5
and 6 (which lie inside it). Disjoint regions have independent Poisson counts, so their covariance is
diagonal, and Xe-133 seen in ROI 3 (81 keV) and ROI 4' (30 keV) is combined by the least-squares
solution itself. Counts per Bq of isotope k in its own ROI, during a count of real time t_r and live
time t_l (activity A at its start, decay during the count integrated):

    c_k = eff_k * b_k * (t_l / t_r) * (1 - exp(-lambda_k t_r)) / lambda_k

and in another ROI l, ``#Ratios`` R(u -> l) * c_k for the row whose upper ROI u is the isotope's own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gci_link.ims2.tables import BgEfficiency, Ratio
from rn_analysis.errors import AnalysisError
from rn_analysis.xenon import ISOTOPES, K_95, XE133_XRAY_BRANCHING

N_ISO = len(ISOTOPES)


def count_factor(lam: float, real_s: float, live_s: float) -> float:
    """Counts per (Bq at the count's start x efficiency x branching): live fraction x decays in t_r."""
    return live_s / real_s * -math.expm1(-lam * real_s) / lam


def efficiencies(rows: Sequence[BgEfficiency]) -> dict[int, float]:
    """``#b-gEfficiency`` by ROI; ROIs 2 to 6 must be there."""
    by_roi = {r.roi: r.efficiency for r in rows}
    missing = [roi for roi in (2, 3, 4, 5, 6) if roi not in by_roi]
    if missing:
        raise AnalysisError(f"#b-gEfficiency has no row for ROI {', '.join(map(str, missing))}")
    return by_roi


def response(eff: dict[int, float], ratios: Sequence[Ratio], real_s: float, live_s: float) -> np.ndarray:
    """(6 regions x 5 isotopes) counts per Bq at the count's start; regions ROI 1, 2, 3, 4', 5, 6."""
    roi4 = np.zeros(N_ISO)
    full = {roi: np.zeros(N_ISO) for roi in range(1, 7)}  # ROI 4 here is the whole ROI 4
    own = np.zeros(N_ISO)
    for k, iso in enumerate(ISOTOPES):
        g = count_factor(iso.decay_constant, real_s, live_s)
        own[k] = eff[iso.efficiency_roi] * iso.branching * g
        full[iso.roi][k] += own[k]
        if iso.name == "Xe-133":
            roi4[k] += eff[4] * XE133_XRAY_BRANCHING * g
    for r in ratios:
        for k, iso in enumerate(ISOTOPES):
            if r.upper_roi == iso.roi and r.lower_roi in full and r.lower_roi != iso.roi:
                full[r.lower_roi][k] += r.ratio * own[k]
    full[4] += roi4
    # Xe-133's ROI 4 efficiency and ratio cover all of ROI 4. A metastable's counts in its own ROI (5 or
    # 6) are in ROI 4 too; a ratio row from its ROI into ROI 4 (20-row sets) gives the rest of ROI 4, as
    # openSpex reads it; without one, the rest known is its cross-talk into the other metastable's ROI
    into_4 = {r.upper_roi for r in ratios if r.lower_roi == 4}
    for k, iso in enumerate(ISOTOPES):
        if iso.roi in (5, 6):
            other = 11 - iso.roi
            full[4][k] += own[k] + (0.0 if iso.roi in into_4 else full[other][k])
    regions = [full[1], full[2], full[3], full[4] - full[5] - full[6], full[5], full[6]]
    return np.array(regions)


def disjoint_counts(gross: np.ndarray) -> np.ndarray:
    """Gross counts of ROIs 1..10 to the six disjoint regions (ROI 4' = 4 - 5 - 6)."""
    g = np.asarray(gross, dtype=np.float64)
    return np.array([g[0], g[1], g[2], g[3] - g[4] - g[5], g[4], g[5]])


@dataclass(frozen=True, slots=True)
class Solution:
    activity: np.ndarray  # Bq at the count's start, per isotope
    covariance: np.ndarray
    lc: np.ndarray  # decision threshold (Bq)
    ld: np.ndarray  # detection limit (Bq)


VARIANCE_FLOOR = 1.0  # counts: an empty region keeps a finite weight


def solve(c: np.ndarray, z: np.ndarray, gross: np.ndarray, extra: np.ndarray) -> Solution:
    """Least squares of z = c x: ``gross`` the counts of the regions (their Poisson variance), ``z`` the
    same less the subtracted backgrounds, ``extra`` the covariance of those backgrounds. Currie limits
    per isotope.

    Under the null hypothesis x_k = 0 the Poisson variance loses the isotope's expected counts c_ik x_k,
    so var0_k = L_k V0 L_k^T with L the estimator's rows; LC = k sqrt(var0) and, as the variance at the
    limit grows by sum_i L_ki^2 c_ik per Bq, LD = k^2 sum_i L_ki^2 c_ik + 2 LC (Currie with
    alpha = beta, solved exactly).
    """
    v = extra + np.diag(np.maximum(gross, VARIANCE_FLOOR))
    try:
        w = np.linalg.inv(v)
        cov = np.linalg.inv(c.T @ w @ c)
    except np.linalg.LinAlgError:
        raise AnalysisError("the response matrix is singular: check #b-gEfficiency and #Ratios") from None
    estimator = cov @ c.T @ w
    x = estimator @ z
    lc = np.empty(N_ISO)
    ld = np.empty(N_ISO)
    for k in range(N_ISO):
        lk = estimator[k]
        v0 = extra + np.diag(np.maximum(gross - c[:, k] * x[k], VARIANCE_FLOOR))
        lc[k] = K_95 * math.sqrt(max(float(lk @ v0 @ lk), 0.0))
        ld[k] = K_95**2 * float(lk**2 @ c[:, k]) + 2 * lc[k]
    return Solution(x, cov, lc, ld)
