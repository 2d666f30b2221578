"""Energy calibration from a known source: found peaks matched to the source's lines, then a polynomial.

Matching must not trust the current gain, which may be off by tens of percent after an amplifier or
high-voltage change. A coarse scan tries every gain g from ``GAIN_RANGE`` times the nominal one (keV
per channel: the file's ``#g_Energy`` slope, else its spectrum's energy span / channels) in steps small
enough that the highest line moves by less than half the match tolerance, predicts each line's channel
as E / g, and counts the lines that fall on a found peak. The gain matching the most lines (ties: the
strongest peaks, then the smallest misfit) wins; a straight line through those pairs then matches again
with a tolerance of a quarter FWHM, and the final polynomial (degree min(2, n - 1)) is fitted through
the matched centroids weighted by their uncertainties in energy. The fit's coefficient covariance is
scaled by chi2/dof when that exceeds 1 (the Birge ratio), so the stated uncertainties cover a model
that is not quite right; the residuals are kept for the report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rn_analysis.curves import FWHM_PER_SIGMA, EnergyCurve

from .detector_peaks import FittedPeak
from .detector_source import SourceLine

GAIN_RANGE = (0.5, 2.0)
SCAN_TOLERANCE_FWHM = 1.0  # coarse scan: a line on a peak within this many FWHM
FINE_TOLERANCE_FWHM = 0.25


class CalibrationError(ValueError):
    """The spectrum does not give the calibration asked for; the message says why."""


@dataclass(frozen=True, slots=True)
class Match:
    line: SourceLine
    peak: FittedPeak


@dataclass(frozen=True)
class EnergyFit:
    coefficients: np.ndarray  # E = sum c_i index^i keV (array index, lowest power first)
    covariance: np.ndarray
    matches: list[Match]
    residuals_kev: np.ndarray  # line energy - fitted energy at the centroid, per match
    residual_unc_kev: np.ndarray  # the centroid's uncertainty in keV
    chi2: float
    dof: int
    gain_scan: float  # the coarse scan's keV per channel
    channels: int

    def curve(self) -> EnergyCurve:
        return EnergyCurve(self.coefficients, self.channels)

    def energy_unc(self, index: np.ndarray | float) -> np.ndarray:
        """Standard uncertainty of the fitted energy at an array index, from the coefficient covariance."""
        v = np.vander(np.atleast_1d(np.asarray(index, dtype=np.float64)), len(self.coefficients),
                      increasing=True)
        return np.sqrt(np.einsum("ij,jk,ik->i", v, self.covariance, v))


def _pairs(lines: list[SourceLine], peaks: list[FittedPeak], energy_of: np.ndarray, tol_kev: np.ndarray
           ) -> list[Match]:
    """Each line on its nearest peak within tolerance, one line per peak (the line nearest wins)."""
    best: dict[int, tuple[float, SourceLine]] = {}
    for line in lines:
        miss = np.abs(energy_of - line.energy_kev)
        i = int(np.argmin(miss))
        if miss[i] <= tol_kev[i] and (i not in best or miss[i] < best[i][0]):
            best[i] = (float(miss[i]), line)
    return [Match(line, peaks[i]) for i, (_, line) in sorted(best.items())]


def scan_gain(lines: list[SourceLine], peaks: list[FittedPeak], nominal_kev_per_channel: float,
              offset_kev: float = 0.0, gain_range: tuple[float, float] = GAIN_RANGE) -> float:
    """The keV per channel that puts the most source lines on found peaks (see the module's note)."""
    centroids = np.array([p.centroid for p in peaks])
    fwhm_ch = np.array([p.fwhm_channels for p in peaks])
    strength = np.log1p(np.array([p.significance for p in peaks]))
    energies = np.array(sorted({ln.energy_kev for ln in lines}))
    top = energies.max() / nominal_kev_per_channel * gain_range[1]
    step = 0.5 * SCAN_TOLERANCE_FWHM * float(np.min(fwhm_ch)) / max(top, 1.0)
    gains = nominal_kev_per_channel * np.exp(np.arange(math.log(gain_range[0]), math.log(gain_range[1]),
                                                       max(step, 1e-5)))
    predicted = (energies[None, :] - offset_kev) / gains[:, None]  # channel of each line at each gain
    miss = np.abs(predicted[:, :, None] - centroids[None, None, :])  # gains x lines x peaks
    near = np.argmin(miss, axis=2)
    ok = np.take_along_axis(miss, near[:, :, None], 2)[:, :, 0] <= SCAN_TOLERANCE_FWHM * fwhm_ch[near]
    matched = ok.sum(axis=1)
    score = matched * 1e6 + np.where(ok, strength[near], 0).sum(axis=1) * 1e2 - np.where(
        ok, np.take_along_axis(miss, near[:, :, None], 2)[:, :, 0] / fwhm_ch[near], 0).sum(axis=1)
    best = int(np.argmax(score))
    if matched[best] < 2:
        raise CalibrationError(f"no gain within {gain_range[0]}-{gain_range[1]} x "
                               f"{nominal_kev_per_channel:.4g} keV/channel puts two source lines on peaks")
    return float(gains[best])


def _polyfit(x: np.ndarray, y: np.ndarray, sy: np.ndarray, degree: int
             ) -> tuple[np.ndarray, np.ndarray, float]:
    v = np.vander(x, degree + 1, increasing=True)
    w = 1.0 / sy
    a = v * w[:, None]
    cov = np.linalg.inv(a.T @ a)
    coef = cov @ (a.T @ (y * w))
    chi2 = float(np.sum(((y - v @ coef) * w) ** 2))
    return coef, cov, chi2


def fit_energy(lines: list[SourceLine], peaks: list[FittedPeak], channels: int,
               nominal_kev_per_channel: float, offset_kev: float = 0.0, degree: int = 2,
               gain_range: tuple[float, float] = GAIN_RANGE) -> EnergyFit:
    """Match ``peaks`` to ``lines`` whatever the gain within ``gain_range`` x nominal, fit E(index)."""
    if len(peaks) < 2:
        raise CalibrationError(f"the search found {len(peaks)} peak(s); an energy calibration needs two")
    gain = scan_gain(lines, peaks, nominal_kev_per_channel, offset_kev, gain_range)
    centroids = np.array([p.centroid for p in peaks])
    fwhm_ch = np.array([p.fwhm_channels for p in peaks])
    matches = _pairs(lines, peaks, offset_kev + gain * centroids, SCAN_TOLERANCE_FWHM * gain * fwhm_ch)
    for _ in range(2):  # refine: a straight line through the matches, then a tighter match
        x = np.array([m.peak.centroid for m in matches])
        e = np.array([m.line.energy_kev for m in matches])
        slope, intercept = np.polyfit(x, e, 1)
        tol = np.maximum(FINE_TOLERANCE_FWHM * slope * fwhm_ch,
                         3 * slope * np.array([p.centroid_unc for p in peaks]))
        matches = _pairs(lines, peaks, intercept + slope * centroids, tol)
        if len(matches) < 2:
            raise CalibrationError("fewer than two source lines stay on found peaks after the gain scan")
    x = np.array([m.peak.centroid for m in matches])
    e = np.array([m.line.energy_kev for m in matches])
    degree = min(degree, len(matches) - 1)
    slope = np.polyfit(x, e, 1)[0]
    sx = np.array([max(m.peak.centroid_unc, 1e-3) for m in matches]) * abs(slope)
    coef, cov, chi2 = _polyfit(x, e, sx, degree)
    dof = len(matches) - degree - 1
    if dof > 0 and chi2 / dof > 1:
        cov = cov * (chi2 / dof)
    curve = EnergyCurve(coef, channels)
    if np.any(curve.kev_per_channel(np.arange(channels)) <= 0):
        raise CalibrationError("the fitted energy does not rise with the channel over the whole spectrum")
    residuals = e - curve.energy(x)
    return EnergyFit(coef, cov, matches, residuals, sx, chi2, dof, gain, channels)


def fwhm_kev(fit: EnergyFit, peak: FittedPeak) -> tuple[float, float]:
    """A peak's FWHM and its uncertainty in keV, through the fitted keV per channel at its centroid."""
    k = float(fit.curve().kev_per_channel(peak.centroid))
    return FWHM_PER_SIGMA * peak.sigma * k, FWHM_PER_SIGMA * peak.sigma_unc * k
