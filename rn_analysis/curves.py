"""Gamma calibration curves built from a PHD message's point tables (#g_Energy, #g_Resolution,
#g_Efficiency), in the spectrum's array indices (index = channel label - first label).

Interpolation, documented in docs/rn-analysis.md:
- energy: least-squares polynomial E(label) of degree min(2, n - 1) through the (channel, energy)
  points (the IDC's cubic term is 0 in the real export S2, its quadratic term tiny);
- resolution: FWHM(E) = a + b sqrt(E), least squares weighted by the FWHM uncertainties (the IDC
  form, spec sheet 11.6); one point gives FWHM proportional to sqrt(E);
- efficiency: ln eps = sum_i T_i L^i with L = ln(E0/E), E0 the geometric mean of the table energies,
  degree min(5, n - 2) (at least one degree of freedom left; 1 point: constant, 2 points: a power
  law), weighted by the relative uncertainties. Outside the table's energies the curve goes on as a
  straight line in log-log with the slope at the end point, because the polynomial diverges there.
  Its relative uncertainty is interpolated linearly in the table (held at the end values outside).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gci_link.ims2 import PhdMessage

from .errors import AnalysisError

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def _weights(values: np.ndarray, uncertainties: np.ndarray) -> np.ndarray:
    """1/unc where every uncertainty is positive, else equal weights."""
    if np.all(uncertainties > 0):
        return 1.0 / uncertainties
    return np.ones_like(values)


@dataclass(frozen=True)
class EnergyCurve:
    coefficients: np.ndarray  # E = sum c_i index^i keV, lowest power first
    channels: int

    def energy(self, index: np.ndarray | float) -> np.ndarray:
        return np.polynomial.polynomial.polyval(np.asarray(index, dtype=np.float64), self.coefficients)

    def kev_per_channel(self, index: np.ndarray | float) -> np.ndarray:
        deriv = np.polynomial.polynomial.polyder(self.coefficients)
        return np.polynomial.polynomial.polyval(np.asarray(index, dtype=np.float64), deriv)

    def index(self, energy_kev: np.ndarray | float) -> np.ndarray:
        """Fractional array index of an energy (by interpolation over the channel grid)."""
        grid = np.arange(self.channels, dtype=np.float64)
        return np.asarray(np.interp(energy_kev, self.energy(grid), grid, left=np.nan, right=np.nan))


@dataclass(frozen=True)
class ResolutionCurve:
    a: float
    b: float

    def fwhm(self, energy_kev: np.ndarray | float) -> np.ndarray:
        return self.a + self.b * np.sqrt(np.maximum(energy_kev, 0.0))


@dataclass(frozen=True)
class EfficiencyCurve:
    e0_kev: float
    terms: np.ndarray  # ln eps = sum T_i L^i, L = ln(E0/E)
    e_min: float
    e_max: float
    table_energy: np.ndarray
    table_rel_unc: np.ndarray

    def _log_eff(self, energy_kev: np.ndarray) -> np.ndarray:
        lg = np.log(self.e0_kev / energy_kev)
        return np.polynomial.polynomial.polyval(lg, self.terms)

    def __call__(self, energy_kev: np.ndarray | float) -> np.ndarray:
        e = np.atleast_1d(np.asarray(energy_kev, dtype=np.float64))
        out = self._log_eff(np.clip(e, self.e_min, self.e_max))
        below, above = e < self.e_min, e > self.e_max
        if below.any() or above.any():  # d ln eps / d ln E = -d ln eps / dL
            d = np.polynomial.polynomial.polyder(self.terms)
            for end, beyond in ((self.e_min, below), (self.e_max, above)):
                slope = -np.polynomial.polynomial.polyval(math.log(self.e0_kev / end), d)
                out[beyond] = self._log_eff(np.array([end]))[0] + slope * np.log(e[beyond] / end)
        result = np.exp(out)
        return result if np.ndim(energy_kev) else result[0]

    def relative_uncertainty(self, energy_kev: np.ndarray | float) -> np.ndarray:
        return np.interp(energy_kev, self.table_energy, self.table_rel_unc)


@dataclass(frozen=True)
class GammaCalibration:
    energy: EnergyCurve
    resolution: ResolutionCurve
    efficiency: EfficiencyCurve

    def sigma_channels(self, index: np.ndarray | float) -> np.ndarray:
        """The Gaussian sigma in channels at an array index, from the resolution curve."""
        e = self.energy.energy(index)
        return self.resolution.fwhm(e) / FWHM_PER_SIGMA / np.abs(self.energy.kev_per_channel(index))


def gamma_spectrum(message: PhdMessage, min_channels: int, purpose: str) -> tuple[np.ndarray, int]:
    """(counts as floats, label of the first channel) of the message's ``#g_Spectrum``, refused when it is
    missing, has fewer than ``min_channels`` channels (too few ``purpose``) or holds no counts. A file
    that does not say its first label numbers from 0 for a beta-gamma system, else from 1."""
    if message.g_spectrum is None:
        raise AnalysisError("the message has no #g_Spectrum block")
    counts = np.asarray(message.g_spectrum, dtype=np.float64)
    if counts.size < min_channels:
        raise AnalysisError(f"#g_Spectrum has {counts.size} channels, too few {purpose}")
    if counts.sum() <= 0:
        raise AnalysisError("#g_Spectrum is empty (every channel holds 0 counts)")
    first = message.g_first_channel
    if first is None:
        first = 0 if message.system_type == "B" else 1
    return counts, first


def _table(message: PhdMessage, block: str, attr: str, minimum: int) -> np.ndarray:
    rows = getattr(message, attr)
    if not rows:
        raise AnalysisError(f"the message has no {block} block: the analysis needs its calibration")
    if len(rows) < minimum:
        raise AnalysisError(f"{block} has {len(rows)} point(s), the analysis needs at least {minimum}")
    table = np.array([tuple(r) for r in rows], dtype=np.float64)
    if not np.all(np.isfinite(table)):
        raise AnalysisError(f"{block} holds a value that is not a finite number")
    return table


def energy_curve(message: PhdMessage, channels: int, first_label: int) -> EnergyCurve:
    table = _table(message, "#g_Energy", "g_energy", 2)
    energy, label = table[:, 0], table[:, 1]
    degree = min(2, len(table) - 1)
    coef = np.polynomial.polynomial.polyfit(label - first_label, energy, degree)
    curve = EnergyCurve(coef, channels)
    if np.any(curve.kev_per_channel(np.arange(channels)) <= 0):
        raise AnalysisError("#g_Energy gives an energy that does not rise with the channel "
                                 "over the whole spectrum")
    return curve


def resolution_curve(message: PhdMessage) -> ResolutionCurve:
    table = _table(message, "#g_Resolution", "g_resolution", 1)
    energy, fwhm, unc = table.T
    if np.any(energy <= 0) or np.any(fwhm <= 0):
        raise AnalysisError("#g_Resolution holds an energy or FWHM that is not positive")
    if len(table) == 1:
        return ResolutionCurve(0.0, float(fwhm[0] / math.sqrt(energy[0])))
    w = _weights(fwhm, unc)
    design = np.column_stack([np.ones_like(energy), np.sqrt(energy)]) * w[:, None]
    (a, b), *_ = np.linalg.lstsq(design, fwhm * w, rcond=None)
    curve = ResolutionCurve(float(a), float(b))
    if np.any(curve.fwhm(np.array([energy.min(), energy.max(), 30.0, 3000.0])) <= 0):
        raise AnalysisError("#g_Resolution gives a FWHM that is not positive inside 30-3000 keV")
    return curve


def efficiency_curve(message: PhdMessage) -> EfficiencyCurve:
    table = _table(message, "#g_Efficiency", "g_efficiency", 1)
    table = table[np.argsort(table[:, 0])]
    energy, eff, unc = table.T
    if np.any(energy <= 0) or np.any(eff <= 0):
        raise AnalysisError("#g_Efficiency holds an energy or efficiency that is not positive")
    e0 = float(np.exp(np.mean(np.log(energy))))
    n = len(table)
    degree = 0 if n == 1 else 1 if n == 2 else min(5, n - 2)
    rel = unc / eff
    w = _weights(eff, rel)
    terms = np.polynomial.polynomial.polyfit(np.log(e0 / energy), np.log(eff), degree, w=w)
    return EfficiencyCurve(e0, terms, float(energy[0]), float(energy[-1]), energy, rel)


def gamma_calibration(message: PhdMessage, channels: int, first_label: int) -> GammaCalibration:
    return GammaCalibration(energy_curve(message, channels, first_label), resolution_curve(message),
                            efficiency_curve(message))
