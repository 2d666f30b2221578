"""Gain-drift and resolution monitoring: a QC spectrum's peaks against the detector's calibration.

The QC source's lines are found and matched as in a calibration (``detector_energy``: the gain scan
tolerates a drift of tens of percent, so a large drift is measured rather than missed). For every
matched line the reference calibration (the energy and resolution curves of ``rn_analysis.curves``,
from a CALIBPHD's or the station's tables) predicts where the peak should be and how wide; the QC
peak says where it is and how wide it is.

- Shift: E_ref(centroid) - E_line in keV, and in units of the reference FWHM there. The analysis fixes
  library centroids from the file's calibration and assumes it right to a fraction of a FWHM
  (docs/rn-analysis.md), so the default limit is ``max_shift_fwhm`` = 0.5.
- Gain: the relative change of keV per channel, the slope of the QC's line energies against the
  reference energies of their centroids, minus 1 (reported, judged by the shift).
- Resolution: measured FWHM / reference FWHM per line, judged on the weighted mean ratio against
  ``max_fwhm_ratio`` (default 1.15), so one noisy narrow line does not raise an alarm alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gci_link.ims2 import PhdMessage
from rn_analysis.curves import energy_curve, resolution_curve
from rn_analysis.errors import AnalysisError

from .detector_calibration import nominal_scale, spectrum_of
from .detector_energy import CalibrationError, fit_energy, fwhm_kev
from .detector_peaks import search_and_fit
from .detector_source import source_lines


@dataclass(frozen=True, slots=True)
class MonitorLimits:
    max_shift_fwhm: float = 0.5
    max_fwhm_ratio: float = 1.15


@dataclass(frozen=True, slots=True)
class LineCheck:
    nuclide: str
    energy_kev: float
    shift_kev: float  # reference energy at the QC centroid - line energy
    shift_fwhm: float
    fwhm_kev: float
    fwhm_unc_kev: float
    reference_fwhm_kev: float


@dataclass(frozen=True)
class QcVerdict:
    lines: list[LineCheck]
    gain_change: float  # relative change of keV per channel against the reference
    max_shift_fwhm: float  # the largest |shift| in FWHM
    fwhm_ratio: float  # weighted mean of measured / reference FWHM
    fwhm_ratio_unc: float
    limits: MonitorLimits

    @property
    def gain_drifted(self) -> bool:
        return self.max_shift_fwhm > self.limits.max_shift_fwhm

    @property
    def resolution_degraded(self) -> bool:
        return self.fwhm_ratio > self.limits.max_fwhm_ratio

    def summary(self) -> str:
        lim = self.limits
        return (f"QC: largest line shift {self.max_shift_fwhm:.2f} FWHM (limit {lim.max_shift_fwhm}), "
                f"gain {100 * self.gain_change:+.2f} %, FWHM x {self.fwhm_ratio:.3f} "
                f"+- {self.fwhm_ratio_unc:.3f} (limit {lim.max_fwhm_ratio})")


def check_qc(qc: PhdMessage, reference: PhdMessage | None = None, limits: MonitorLimits | None = None,
             nuclides: list[str] | None = None) -> QcVerdict:
    """Compare ``qc``'s peaks with ``reference``'s ``#g_Energy``/``#g_Resolution`` (default: the QC
    file's own tables, which a station writes from its configured calibration). Raises
    ``CalibrationError``/``SourceError`` (``ValueError``) naming what is wrong."""
    limits = limits or MonitorLimits()
    reference = reference or qc
    counts, first = spectrum_of(qc)
    try:
        ref_energy = energy_curve(reference, counts.size, first)
        ref_resolution = resolution_curve(reference)
    except AnalysisError as exc:
        raise CalibrationError(f"the reference calibration is unusable: {exc}") from None
    lines = source_lines(qc, nuclides)
    gain, offset, sigma = nominal_scale(reference, counts, first)
    fit = fit_energy(lines, search_and_fit(counts, sigma), counts.size, gain, offset, degree=1)
    checks = []
    for m in fit.matches:
        e_ref = float(ref_energy.energy(m.peak.centroid))
        ref_fwhm = float(ref_resolution.fwhm(m.line.energy_kev))
        width, width_unc = fwhm_kev(fit, m.peak)
        checks.append(LineCheck(m.line.nuclide, m.line.energy_kev, e_ref - m.line.energy_kev,
                                (e_ref - m.line.energy_kev) / ref_fwhm, width, width_unc, ref_fwhm))
    e_line = np.array([c.energy_kev for c in checks])
    e_ref = e_line + np.array([c.shift_kev for c in checks])
    slope = np.polyfit(e_ref, e_line, 1)[0] if len(checks) >= 2 else math.nan
    ratio = np.array([c.fwhm_kev / c.reference_fwhm_kev for c in checks])
    w = 1.0 / np.maximum(np.array([c.fwhm_unc_kev / c.reference_fwhm_kev for c in checks]), 1e-6) ** 2
    return QcVerdict(checks, float(slope - 1.0), max(abs(c.shift_fwhm) for c in checks),
                     float(np.sum(w * ratio) / np.sum(w)), float(1.0 / math.sqrt(np.sum(w))), limits)
