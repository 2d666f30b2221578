"""Beta-gamma energy and ROI calibration from a xenon calibration spectrum (CALIBPHD, system type B).

Gamma axis: the peaks of the gamma singles (``#g_Spectrum``) matched to the xenon isotopes' X-ray and
gamma lines by the gain scan of ``detector_energy`` (a straight line through two points, a quadratic
with three or more). Beta axis: the coincidence histogram gated on the K X-ray peak (the gamma rows
within one FWHM of it) holds the K conversion electrons that come with those X-rays as peaks on the
beta continuum; their fitted centroids are the beta points. With one conversion line (pure Xe-133) the
beta axis gets one point, which is compared with the file's ``#b_Energy`` but not fitted. ROI limits
in channels follow from the points by the IDC rule (``rn_analysis.bg_rois``).

Line energies (ENSDF via NuDat; K binding energies of Cs 35.985 keV and Xe 34.561 keV): Xe-133 gamma
80.997 keV, its K conversion electron 80.997 - 35.985 = 45.01 keV; Xe-131m 163.93 keV transition,
K electron 129.37 keV; Xe-133m 233.22 keV transition, K electron 198.66 keV; Xe-135 gamma 249.79 keV.
The K X-ray complexes are lumped at one energy, 30.6 keV for Cs (after Xe-133) and 29.8 keV for Xe
(after the metastables), the values the project's simulator uses; the real MIX58 CALIBPHD labels the
same peak 30.0 keV, a difference of a fifth of a channel there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gci_link.ims2 import BetaEnergyPoint, EnergyPoint, PhdMessage, RawBlock
from rn_analysis.bg_rois import channel_polynomial, roi_channels
from rn_analysis.curves import FWHM_PER_SIGMA
from rn_analysis.errors import AnalysisError
from rn_analysis.library import nuclide

from .detector_calibration import nominal_scale, spectrum_of
from .detector_energy import CalibrationError, EnergyFit, fit_energy
from .detector_peaks import FittedPeak, search_and_fit
from .detector_source import SourceLine

# isotope: (K X-ray keV, gamma lines keV, K conversion electron keV or None)
XENON: dict[str, tuple[float, tuple[float, ...], float | None]] = {
    "Xe-133": (30.6, (80.997,), 45.01),
    "Xe-131m": (29.8, (), 129.37),
    "Xe-133m": (29.8, (233.22,), 198.66),
    "Xe-135": (30.6, (249.79,), None),
}
BETA_FWHM_PER_SQRT_KEV = 60.2 / math.sqrt(199.56)  # without #b_Resolution: the MIX58 file's at 200 keV
BETA_THRESHOLD = 4.0
# the beta scan stays near the nominal gain: the gated beta spectrum's continuum has broad maxima that a
# wide scan can take for conversion lines
BETA_GAIN_RANGE = (0.8, 1.25)


@dataclass(frozen=True)
class BetaPoint:
    nuclide: str
    energy_kev: float
    peak: FittedPeak
    file_channel: float | None  # where the file's own #b_Energy puts this energy


@dataclass(frozen=True)
class BetaGammaCalibration:
    gamma: EnergyFit
    xray_peak: FittedPeak
    gate: tuple[int, int]  # gamma rows summed for the beta projection (inclusive)
    beta: list[BetaPoint]
    g_points: list[EnergyPoint]
    b_points: list[BetaEnergyPoint]
    roi_channels: np.ndarray | None  # (n, 4) beta lo/hi, gamma lo/hi from our points; None: too few
    file_roi_channels: np.ndarray | None


def _isotopes(message: PhdMessage, names: list[str] | None) -> list[str]:
    if names is None and isinstance(message.certificate, RawBlock):
        names = [w for line in message.certificate.lines for w in line.split()]
    if names is None and message.certificate is not None:
        names = sorted({row.nuclide for row in message.certificate.lines})  # type: ignore[union-attr]
    known = {k.upper(): k for k in XENON}
    out = [known[n.upper()] for n in names or () if n.upper() in known]
    if not out:
        raise CalibrationError(f"no xenon isotope named by the certificate or the caller ({names}); "
                               f"a beta-gamma calibration needs one of {', '.join(XENON)}")
    return out


def _lines(isotopes: list[str]) -> list[SourceLine]:
    out = []
    for name in isotopes:
        xray, gammas, _ = XENON[name]
        half_life = nuclide(name).half_life_s
        out += [SourceLine(name, e, 1.0, half_life) for e in (xray, *gammas)]
    unique = {round(s.energy_kev, 1): s for s in out}
    return list(unique.values())


def _file_channel(message: PhdMessage, energy_kev: float) -> float | None:
    try:
        return float(channel_polynomial(message.b_energy or (), "#b_Energy")(energy_kev))
    except AnalysisError:
        return None


def _beta_sigma(message: PhdMessage, channels: int, kev_per_channel: float) -> np.ndarray:
    """Expected conversion-peak sigma per beta channel: FWHM = k sqrt(E), k fitted through the file's
    ``#b_Resolution`` (else the MIX58 detector's), the energy of a channel from the nominal gain."""
    k = BETA_FWHM_PER_SQRT_KEV
    if message.b_resolution:
        e = np.array([r.energy_kev for r in message.b_resolution])
        f = np.array([r.fwhm_kev for r in message.b_resolution])
        if np.all(e > 0) and np.all(f > 0):
            k = float(np.sum(f * np.sqrt(e)) / np.sum(e))
    energy = np.maximum((np.arange(channels) + 0.5) * kev_per_channel, 10.0)
    return np.maximum(k * np.sqrt(energy) / FWHM_PER_SIGMA / kev_per_channel, 1.0)


def calibrate_betagamma(message: PhdMessage, isotopes: list[str] | None = None) -> BetaGammaCalibration:
    if message.histogram is None:
        raise CalibrationError("the message has no #Histogram: not a beta-gamma spectrum")
    names = _isotopes(message, isotopes)
    counts, first = spectrum_of(message)
    gain, offset, sigma = nominal_scale(message, counts, first)
    lines = _lines(names)
    gamma = fit_energy(lines, search_and_fit(counts, sigma, 5.0), counts.size, gain, offset)
    xrays = [m for m in gamma.matches if m.line.energy_kev < 40.0]
    if not xrays:
        raise CalibrationError("no K X-ray peak (about 30 keV) among the matched gamma peaks: no gate for "
                               "the conversion electrons")
    xray = max(xrays, key=lambda m: m.peak.area).peak
    half = FWHM_PER_SIGMA * xray.sigma
    hist = np.asarray(message.histogram, dtype=np.float64)
    gate = (max(0, int(math.floor(xray.centroid - half))), min(hist.shape[0] - 1,
                                                                int(math.ceil(xray.centroid + half))))
    beta_counts = hist[gate[0]:gate[1] + 1].sum(axis=0)
    electrons = sorted({(e, n) for n in names if (e := XENON[n][2]) is not None})
    b_points: list[BetaPoint] = []
    b_gain = (message.b_energy_span_kev or message.histogram_beta_span_kev or 0.0) / hist.shape[1]
    try:
        b_nominal = channel_polynomial(message.b_energy or (), "#b_Energy")
        b_gain = 1.0 / float(b_nominal.deriv()(200.0))
    except AnalysisError:
        b_nominal = None
    peaks = []
    if beta_counts.sum() > 0 and b_gain > 0:
        peaks = search_and_fit(beta_counts, _beta_sigma(message, hist.shape[1], b_gain), BETA_THRESHOLD)
    if peaks and len(electrons) >= 2 and b_gain > 0:
        fit = fit_energy([SourceLine(n, e, 1.0, nuclide(n).half_life_s) for e, n in electrons], peaks,
                         hist.shape[1], b_gain, degree=1, gain_range=BETA_GAIN_RANGE)
        b_points = [BetaPoint(m.line.nuclide, m.line.energy_kev, m.peak, _file_channel(message,
                                                                                    m.line.energy_kev))
                    for m in fit.matches]
    elif peaks and len(electrons) == 1:
        e, n = electrons[0]
        expect = float(b_nominal(e)) if b_nominal is not None else e / b_gain if b_gain > 0 else None
        if expect is not None:  # the strongest conversion peak within a factor 2 of where it is expected
            near = [p for p in peaks if 0.5 * expect <= p.centroid <= 2.0 * expect]
            if near:
                b_points = [BetaPoint(n, e, max(near, key=lambda p: p.area), _file_channel(message, e))]
    g_points = sorted(EnergyPoint(m.line.energy_kev, round(m.peak.centroid + first, 4), round(
        m.peak.centroid_unc, 4)) for m in gamma.matches)
    bp = sorted(BetaEnergyPoint(p.energy_kev, "C", round(p.peak.centroid, 4), round(p.peak.centroid_unc, 4))
                for p in b_points)
    rois = message.roi_limits
    ours = theirs = None
    if rois:
        if len(bp) >= 2:
            ours = roi_channels(rois, g_points, bp)
        if message.g_energy and message.b_energy:
            theirs = roi_channels(rois, message.g_energy, message.b_energy)
    return BetaGammaCalibration(gamma, xray, gate, b_points, g_points, bp, ours, theirs)
