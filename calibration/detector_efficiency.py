"""Resolution FWHM(E) and full-energy-peak efficiency from a certified source, with uncertainties.

Resolution: each matched peak's fitted width gives a point (E, FWHM +- unc); FWHM = a + b sqrt(E) is
fitted by weighted least squares (the form ``rn_analysis.curves`` reads back, spec sheet §11.6).

Efficiency: a matched line's point is eps = area / photons, photons = the line's emissions during the
live time (``SourceLine.photons_counted``: certified activity decayed to the acquisition start,
integrated over the real time, times t_l / t_r). Its relative uncertainty combines the area's and the
certificate's activity uncertainty. Lines of one nuclide share that activity, so their points are
correlated; the fit ignores this (as the IDC's tables carry one uncertainty per point). The curve is
``rn_analysis.curves``' log-polynomial, ln eps = sum T_i L^i with L = ln(E0/E), E0 the geometric mean
of the point energies, degree min(5, n - 2), weighted by the relative uncertainties; its covariance
gives the uncertainty of ln eps at any energy. Not modelled: true-coincidence summing (Co-60, Y-88
lines read low in a close geometry) and the uncertainty of emission probabilities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rn_analysis.curves import EfficiencyCurve, ResolutionCurve

from .detector_energy import CalibrationError, EnergyFit, Match, fwhm_kev


@dataclass(frozen=True)
class Points:
    energy_kev: np.ndarray
    value: np.ndarray
    unc: np.ndarray
    nuclides: list[str]


@dataclass(frozen=True)
class ResolutionFit:
    curve: ResolutionCurve
    covariance: np.ndarray  # of (a, b)
    points: Points
    chi2: float
    dof: int

    def fwhm_unc(self, energy_kev: np.ndarray | float) -> np.ndarray:
        e = np.atleast_1d(np.asarray(energy_kev, dtype=np.float64))
        v = np.column_stack([np.ones_like(e), np.sqrt(e)])
        return np.sqrt(np.einsum("ij,jk,ik->i", v, self.covariance, v))


@dataclass(frozen=True)
class EfficiencyFit:
    curve: EfficiencyCurve
    covariance: np.ndarray  # of the terms T_i
    points: Points
    chi2: float
    dof: int

    def rel_unc(self, energy_kev: np.ndarray | float) -> np.ndarray:
        """Relative uncertainty of the fitted efficiency (inside the points' energy range)."""
        e = np.atleast_1d(np.asarray(energy_kev, dtype=np.float64))
        v = np.vander(np.log(self.curve.e0_kev / e), len(self.curve.terms), increasing=True)
        return np.sqrt(np.einsum("ij,jk,ik->i", v, self.covariance, v))


def _weighted_fit(design: np.ndarray, y: np.ndarray, sy: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    a = design / sy[:, None]
    cov = np.linalg.inv(a.T @ a)
    coef = cov @ (a.T @ (y / sy))
    return coef, cov, float(np.sum(((y - design @ coef) / sy) ** 2))


def resolution_points(energy: EnergyFit) -> Points:
    pts = [(m.line.energy_kev, *fwhm_kev(energy, m.peak), m.line.nuclide) for m in energy.matches]
    pts.sort()
    return Points(np.array([p[0] for p in pts]), np.array([p[1] for p in pts]),
                  np.array([p[2] for p in pts]), [p[3] for p in pts])


def fit_resolution(energy: EnergyFit) -> ResolutionFit:
    pts = resolution_points(energy)
    if len(pts.energy_kev) < 2:
        raise CalibrationError("a resolution curve needs two matched peaks")
    design = np.column_stack([np.ones_like(pts.energy_kev), np.sqrt(pts.energy_kev)])
    coef, cov, chi2 = _weighted_fit(design, pts.value, np.maximum(pts.unc, 1e-6))
    return ResolutionFit(ResolutionCurve(float(coef[0]), float(coef[1])), cov, pts, chi2, len(pts.value) - 2)


def efficiency_points(matches: list[Match], acquisition_ns: int, real_s: float, live_s: float) -> Points:
    rows = []
    for m in matches:
        photons = m.line.photons_counted(acquisition_ns, real_s, live_s)
        eff = m.peak.area / photons
        rel = math.hypot(m.peak.area_unc / m.peak.area, m.line.activity_rel_unc)
        rows.append((m.line.energy_kev, eff, eff * rel, m.line.nuclide))
    rows.sort()
    return Points(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                  np.array([r[2] for r in rows]), [r[3] for r in rows])


def fit_efficiency(points: Points) -> EfficiencyFit:
    n = len(points.energy_kev)
    if n < 1:
        raise CalibrationError("no certified line was matched to a peak: no efficiency point")
    if np.any(points.value <= 0):
        raise CalibrationError("a measured efficiency is not positive")
    e0 = float(np.exp(np.mean(np.log(points.energy_kev))))
    degree = 0 if n == 1 else 1 if n == 2 else min(5, n - 2)
    design = np.vander(np.log(e0 / points.energy_kev), degree + 1, increasing=True)
    rel = np.maximum(points.unc / points.value, 1e-9)
    terms, cov, chi2 = _weighted_fit(design, np.log(points.value), rel)
    curve = EfficiencyCurve(e0, terms, float(points.energy_kev[0]), float(points.energy_kev[-1]),
                            points.energy_kev, rel)
    return EfficiencyFit(curve, cov, points, chi2, n - degree - 1)
