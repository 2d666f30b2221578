"""A gamma calibration spectrum (CALIBPHD or QCPHD) in, energy, resolution and efficiency curves out.

Steps: the spectrum's peaks (``detector_peaks``), matched to the source's lines and an energy
polynomial (``detector_energy``), then the FWHM and efficiency curves (``detector_efficiency``; the
efficiency only when the certificate gives activities). The peak search's kernel width comes from the
file's own ``#g_Resolution``/``#g_Energy`` when it has them (a gain error of tens of percent changes
that width by as much, which the search tolerates), else a sigma of ``DEFAULT_SIGMA_CHANNELS``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gci_link.ims2 import PhdMessage
from rn_analysis.curves import FWHM_PER_SIGMA, energy_curve, gamma_spectrum, resolution_curve
from rn_analysis.errors import AnalysisError

from .detector_efficiency import (
    EfficiencyFit,
    ResolutionFit,
    efficiency_points,
    fit_efficiency,
    fit_resolution,
)
from .detector_energy import CalibrationError, EnergyFit, fit_energy
from .detector_peaks import FittedPeak, search_and_fit
from .detector_source import SourceError, SourceLine, source_lines

DEFAULT_SIGMA_CHANNELS = 2.0
SEARCH_THRESHOLD = 5.0  # sigmas: a calibration spectrum's lines are strong; noise must not be matched


@dataclass(frozen=True)
class DetectorCalibration:
    message: PhdMessage
    counts: np.ndarray
    first_label: int
    lines: list[SourceLine]
    peaks: list[FittedPeak]
    energy: EnergyFit
    resolution: ResolutionFit
    efficiency: EfficiencyFit | None  # None: the source's activities are not certified


def spectrum_of(message: PhdMessage) -> tuple[np.ndarray, int]:
    try:
        counts, first = gamma_spectrum(message, 32, "to calibrate")
    except AnalysisError as exc:
        raise CalibrationError(str(exc)) from None
    if not message.live_time_s > 0 or not message.real_time_s >= message.live_time_s:
        raise CalibrationError(f"#Acquisition live time {message.live_time_s} s and real time "
                               f"{message.real_time_s} s: the live time must be positive and not above "
                               "the real time")
    return counts, first


def nominal_scale(message: PhdMessage, counts: np.ndarray, first: int) -> tuple[float, float, np.ndarray]:
    """(keV per channel, offset keV, search sigma per channel) from the file's own tables, else from
    its energy span and a fixed sigma."""
    index = np.arange(counts.size, dtype=np.float64)
    try:
        curve = energy_curve(message, counts.size, first)
        gain = float(curve.kev_per_channel(counts.size / 2))
        offset = float(curve.energy(counts.size / 2)) - gain * counts.size / 2
        try:
            res = resolution_curve(message)
            sigma = res.fwhm(curve.energy(index)) / FWHM_PER_SIGMA / np.abs(curve.kev_per_channel(index))
            sigma = np.where(np.isfinite(sigma) & (sigma > 0.5), sigma, 0.5)
        except AnalysisError:
            sigma = np.full(counts.size, DEFAULT_SIGMA_CHANNELS)
        return gain, offset, sigma
    except AnalysisError:
        span = message.g_energy_span_kev
        if not span or span <= 0:
            raise CalibrationError("the message has neither #g_Energy nor a #g_Spectrum energy span: "
                                   "no starting gain") from None
        return span / counts.size, 0.0, np.full(counts.size, DEFAULT_SIGMA_CHANNELS)


def calibrate_detector(message: PhdMessage, nuclides: list[str] | None = None, *,
                       threshold: float = SEARCH_THRESHOLD) -> DetectorCalibration:
    """Raises ``CalibrationError`` or ``SourceError`` (both ``ValueError``) naming what is wrong."""
    counts, first = spectrum_of(message)
    lines = source_lines(message, nuclides)
    gain, offset, sigma = nominal_scale(message, counts, first)
    peaks = search_and_fit(counts, sigma, threshold)
    energy = fit_energy(lines, peaks, counts.size, gain, offset)
    resolution = fit_resolution(energy)
    certified = [m for m in energy.matches if m.line.activity_bq is not None]
    efficiency = None
    if certified:
        efficiency = fit_efficiency(efficiency_points(certified, message.acquisition_start_ns,
                                                      message.real_time_s, message.live_time_s))
    return DetectorCalibration(message, counts, first, lines, peaks, energy, resolution, efficiency)


__all__ = ["CalibrationError", "DetectorCalibration", "SourceError", "calibrate_detector"]
