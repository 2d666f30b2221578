"""Noble-gas (beta-gamma) analysis: a SAMPLEPHD with its gas and detector backgrounds to activity
concentrations, uncertainties and Currie limits of Xe-131m, Xe-133m, Xe-133 and Xe-135.

Steps (docs/rn-analysis-betagamma.md has the formulas and the comparison with openSpex):
1. ROI gross counts of each file by its own calibration (``bg_rois``; the sample's when a background
   carries none).
2. Detector background scaled by live time: z = G - (t_l / t_l,det) D, var = G + (t_l / t_l,det)^2 D.
3. Gas background (the xenon the previous sample left in the cell): its activities, solved like a
   sample, decay to the sample's acquisition start (exp(-lambda tau)) and are subtracted with their
   covariance.
4. Activities at the acquisition start by least squares over disjoint ROIs (``bg_model``), Currie LC
   and LD per isotope.
5. Concentrations at the collection's end with the decay over collection and processing, from the
   air volume the stable xenon stands for; Xe-133m ingrowth into Xe-133; QC flags.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gci_link import ims2
from gci_link.ims2.tables import BetaEnergyPoint, EnergyPoint, Ratio, RoiLimits
from rn_analysis.bg_model import Solution, disjoint_counts, efficiencies, response, solve
from rn_analysis.bg_rois import roi_channels, roi_gross_counts
from rn_analysis.errors import AnalysisError
from rn_analysis.result import AnalysisResult, Flag, NuclideResult, Peak
from rn_analysis.xenon import ISOTOPES, XE_ML_PER_M3_AIR

NS = 1e9
UBQ = 1e6
XE133_MDC_LIMIT_UBQ_M3 = 1000.0  # IMS requirement, spec §13 (S10)
XE_VOLUME_MIN_ML = 0.43  # IDC noble-gas QC, spec §13 (S3)
TIME_LIMITS_S = (14_400.0, 90_000.0)  # collection and acquisition between 4 h and 25 h (S3)
ROI_REGIONS = {1: (0,), 2: (1,), 3: (2,), 4: (3, 4, 5), 5: (4,), 6: (5,)}  # disjoint regions in each ROI
ROI_ISOTOPE = {1: 0, 2: 1, 3: 2, 4: 2, 5: 3, 6: 4}  # index into ISOTOPES
INDEX = {iso.name: k for k, iso in enumerate(ISOTOPES)}
Calibration = tuple[tuple[RoiLimits, ...], tuple[EnergyPoint, ...], tuple[BetaEnergyPoint, ...]]


@dataclass(frozen=True, slots=True)
class _Sample:
    """What the sample must carry beyond its counts, checked before anything is computed."""

    calibration: Calibration
    efficiencies: dict[int, float]
    ratios: tuple[Ratio, ...]
    collection_s: float
    processing_s: float  # collection stop to acquisition start
    xe_volume_ml: float
    xe_volume_unc_ml: float


@dataclass(frozen=True, slots=True)
class _Count:
    """One file's ROI counts (ROIs 1..10), times and ROI limits in channels."""

    gross: np.ndarray
    limits: np.ndarray
    real_s: float
    live_s: float
    start_ns: int


def analyse_betagamma(sample: ims2.PhdMessage, gasbk: ims2.PhdMessage | None = None,
                      detbk: ims2.PhdMessage | None = None, *, ingrowth: bool = True) -> AnalysisResult:
    """The analysis of ``sample``; ``AnalysisError`` names what makes it impossible. ``ingrowth``
    corrects Xe-133 for the decay of Xe-133m into it when Xe-133m is detected."""
    _check_kind(sample, "SAMPLEPHD", "sample")
    facts = _sample_facts(sample)
    s = _count(sample, facts.calibration, "sample")
    flags = []
    d = None
    if detbk is not None:
        _check_kind(detbk, "DETBKPHD", "detector background")
        _check_same_detector(sample, detbk, "detector background")
        d = _count(detbk, facts.calibration, "detector background")
        flags.append(_id_flag("detector_background", sample.detbk_id, detbk))
    else:
        flags.append(Flag("detector_background", False, "no DETBKPHD given: nothing subtracted"))
    c_s = response(facts.efficiencies, facts.ratios, s.real_s, s.live_s)
    z, gross = _net_of_detbk(s, d)
    extra = np.diag(_detbk_var(s, d))
    if gasbk is not None:
        z, extra = _less_memory(sample, gasbk, facts, s, d, c_s, z, extra)
        flags.append(_id_flag("gas_background", sample.gasbk_id, gasbk))
    else:
        flags.append(Flag("gas_background", False, "no GASBKPHD given: the memory effect is not subtracted"))
    solution = solve(c_s, z, gross, extra)
    nuclides = _concentrations(facts, s, solution, ingrowth)
    flags += _qc_flags(facts, s, nuclides)
    return AnalysisResult(sample_id=sample.sample_id or sample.msg_id, kind="beta-gamma",
                          peaks=_roi_peaks(facts, s, c_s, solution), nuclides=nuclides, flags=flags)


def _sample_facts(m: ims2.PhdMessage) -> _Sample:
    calibration = _calibration(m)
    if calibration is None:
        missing = [label for label, value in (("#g_Energy", m.g_energy), ("#b_Energy", m.b_energy),
                                              ("#ROI_Limits", m.roi_limits)) if value is None]
        raise AnalysisError(f"the sample has no {' and no '.join(missing)} block")
    if m.bg_efficiency is None:
        raise AnalysisError("the sample has no #b-gEfficiency block")
    if m.ratios is None:
        raise AnalysisError("the sample has no #Ratios block")
    if m.collection_start_ns is None or m.collection_stop_ns is None:
        raise AnalysisError("the sample has no #Collection block")
    if m.xe_volume_ml is None:
        raise AnalysisError("the sample has no #Processing block (xenon volume)")
    if not m.xe_volume_ml > 0:
        raise AnalysisError(f"the sample's xenon volume is {m.xe_volume_ml} ml")
    t_c = (m.collection_stop_ns - m.collection_start_ns) / NS
    t_p = (m.acquisition_start_ns - m.collection_stop_ns) / NS
    if t_c <= 0 or t_p < 0:
        raise AnalysisError(f"collection of {t_c:.0f} s ending {t_p:.0f} s before the acquisition")
    return _Sample(calibration, efficiencies(m.bg_efficiency), m.ratios, t_c, t_p, m.xe_volume_ml,
                   m.xe_volume_unc_ml or 0.0)


def _calibration(m: ims2.PhdMessage) -> Calibration | None:
    if m.roi_limits is None or m.g_energy is None or m.b_energy is None:
        return None
    return m.roi_limits, m.g_energy, m.b_energy


def _less_memory(sample: ims2.PhdMessage, gasbk: ims2.PhdMessage, facts: _Sample, s: _Count,
                 d: _Count | None, c_s: np.ndarray, z: np.ndarray,
                 extra: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sample's region counts less what the xenon left in the cell gives during its count, and the
    covariance ``extra`` plus that of the subtraction: the gas background's activities, solved like a
    sample, decayed from its start to the sample's."""
    _check_kind(gasbk, "GASBKPHD", "gas background")
    _check_same_detector(sample, gasbk, "gas background")
    g = _count(gasbk, facts.calibration, "gas background")
    tau = (s.start_ns - g.start_ns) / NS
    if tau < 0:
        raise AnalysisError(f"the gas background starts {-tau:.0f} s after the sample")
    gz, g_gross = _net_of_detbk(g, d)
    c_g = response(facts.efficiencies, facts.ratios, g.real_s, g.live_s)
    memory = solve(c_g, gz, g_gross, np.diag(_detbk_var(g, d)))
    carry = c_s * np.exp([-iso.decay_constant * tau for iso in ISOTOPES])
    return z - carry @ memory.activity, extra + carry @ memory.covariance @ carry.T


def _check_kind(m: ims2.PhdMessage, data_type: str, what: str) -> None:
    if m.data_type != data_type or m.system_type != "B":
        raise AnalysisError(f"the {what} must be a beta-gamma (B) {data_type}, not a {m.system_type} "
                            f"{m.data_type}")


def _check_same_detector(sample: ims2.PhdMessage, other: ims2.PhdMessage, what: str) -> None:
    if other.detector != sample.detector:
        raise AnalysisError(f"the {what} is from detector {other.detector}, "
                            f"the sample from {sample.detector}")


def _id_flag(name: str, expected: str | None, m: ims2.PhdMessage) -> Flag:
    ok = expected is not None and m.sample_id == expected
    return Flag(name, ok, f"{m.data_type} {m.sample_id}; the sample's #Header names {expected}")


def _count(m: ims2.PhdMessage, sample_calibration: Calibration, what: str) -> _Count:
    """ROI gross counts by the file's own calibration blocks, or the sample's when it carries none."""
    if m.histogram is None or m.histogram.size == 0:
        raise AnalysisError(f"the {what} has no #Histogram")
    if not m.histogram.any():
        raise AnalysisError(f"the {what} histogram is empty (no counts)")
    if not (m.live_time_s > 0 and m.real_time_s >= m.live_time_s):
        raise AnalysisError(f"the {what} has live time {m.live_time_s} s and real time {m.real_time_s} s")
    limits = roi_channels(*(_calibration(m) or sample_calibration))
    if limits.shape[0] < 6:
        raise AnalysisError(f"the {what} #ROI_Limits has {limits.shape[0]} rows, the analysis needs 6")
    _check_nested(limits, what)
    return _Count(roi_gross_counts(m.histogram, limits), limits, m.real_time_s, m.live_time_s,
                  m.acquisition_start_ns)


def _check_nested(limits: np.ndarray, what: str) -> None:
    """ROIs 5 and 6 must lie inside ROI 4 and apart, so that ROI 4 minus both is a region of its own."""
    b0, b1, g0, g1 = limits[3]
    for roi in (4, 5):
        lb0, lb1, lg0, lg1 = limits[roi]
        if not (b0 <= lb0 and lb1 <= b1 and g0 <= lg0 and lg1 <= g1):
            raise AnalysisError(f"the {what}'s ROI {roi + 1} is not inside ROI 4 in channels: "
                                f"{limits[roi]} vs {limits[3]}")
    if limits[4, 1] > limits[5, 0] and limits[5, 1] > limits[4, 0]:
        raise AnalysisError(f"the {what}'s ROIs 5 and 6 overlap in beta channels")


def _net_of_detbk(c: _Count, d: _Count | None) -> tuple[np.ndarray, np.ndarray]:
    """Counts of the six regions less the detector background scaled by live time, and the counts."""
    gross = disjoint_counts(c.gross)
    net = gross if d is None else gross - c.live_s / d.live_s * disjoint_counts(d.gross)
    return net, gross


def _detbk_var(c: _Count, d: _Count | None) -> np.ndarray:
    if d is None:
        return np.zeros(6)
    return (c.live_s / d.live_s) ** 2 * disjoint_counts(d.gross)


def _concentration_factors(facts: _Sample) -> np.ndarray:
    """uBq/m3 per Bq in the cell at the acquisition start, per isotope:
    lambda t_c / (V (1 - exp(-lambda t_c)) exp(-lambda t_p)), V = xenon volume / 0.087 ml/m3."""
    t_c, t_p = facts.collection_s, facts.processing_s
    volume_m3 = facts.xe_volume_ml / XE_ML_PER_M3_AIR
    lam = np.array([iso.decay_constant for iso in ISOTOPES])
    return UBQ * lam * t_c / (volume_m3 * -np.expm1(-lam * t_c) * np.exp(-lam * t_p))


def ingrowth_factor(collection_s: float, processing_s: float, real_s: float) -> float:
    """Xe-133 concentration that the decay of 1 unit of Xe-133m concentration adds through collection,
    processing and counting (Axelsson and Ringbom, ARI 92 (2014) 12, eq. 15, spec S12)."""
    lam_m, lam_g = ISOTOPES[INDEX["Xe-133m"]].decay_constant, ISOTOPES[INDEX["Xe-133"]].decay_constant

    def factors(lam: float) -> float:
        return -math.expm1(-lam * collection_s) * math.exp(-lam * processing_s) * -math.expm1(-lam * real_s)

    return lam_g / (lam_g - lam_m) * ((lam_g / lam_m) ** 2 * factors(lam_m) / factors(lam_g) - 1)


def _concentrations(facts: _Sample, s: _Count, x: Solution, ingrowth: bool) -> list[NuclideResult]:
    f = _concentration_factors(facts)
    ac = f * x.activity
    cov = np.outer(f, f) * x.covariance
    lc, mdc = f * x.lc, f * x.ld
    detected = x.activity > x.lc
    g, m = INDEX["Xe-133"], INDEX["Xe-133m"]
    if ingrowth and detected[m]:
        xi = ingrowth_factor(facts.collection_s, facts.processing_s, s.real_s)
        ac[g] -= xi * ac[m]
        cov[g, g] += xi**2 * cov[m, m] - 2 * xi * cov[g, m]
    return [NuclideResult(iso.name.upper(), bool(detected[k]), float(ac[k]), math.sqrt(cov[k, k]),
                          float(mdc[k]), float(lc[k]))
            for k, iso in enumerate(ISOTOPES) if iso.name.startswith("Xe")]


def _roi_peaks(facts: _Sample, s: _Count, c: np.ndarray, x: Solution) -> list[Peak]:
    """ROIs 1 to 6: the net counts of the isotope each measures, at the centre of its gamma window."""
    rois = sorted(facts.calibration[0], key=lambda r: r.roi)
    peaks = []
    for roi, regions in ROI_REGIONS.items():
        k = ROI_ISOTOPE[roi]
        per_bq = float(sum(c[r, k] for r in regions))
        limits, channels = rois[roi - 1], s.limits[roi - 1]
        peaks.append(Peak(energy_keV=(limits.gamma_low + limits.gamma_high) / 2,
                          centroid_channel=float(channels[2] + channels[3] - 1) / 2,
                          area=per_bq * float(x.activity[k]), area_unc=per_bq * math.sqrt(x.covariance[k, k]),
                          fwhm_keV=limits.gamma_high - limits.gamma_low, nuclide=ISOTOPES[k].name.upper()))
    return peaks


def _qc_flags(facts: _Sample, s: _Count, nuclides: list[NuclideResult]) -> list[Flag]:
    xe133 = next(n for n in nuclides if n.name == "XE-133")
    volume = facts.xe_volume_ml + facts.xe_volume_unc_ml
    lo, hi = TIME_LIMITS_S
    t_c = facts.collection_s
    return [
        Flag("xe133_mdc", xe133.mdc_uBq_m3 <= XE133_MDC_LIMIT_UBQ_M3,
             f"Xe-133 MDC {xe133.mdc_uBq_m3:.0f} uBq/m3, IMS requirement <= {XE133_MDC_LIMIT_UBQ_M3:.0f}"),
        Flag("xe_volume", volume >= XE_VOLUME_MIN_ML,
             f"xenon volume + uncertainty {volume:.3f} ml, IDC minimum {XE_VOLUME_MIN_ML}"),
        Flag("collection_time", lo <= t_c <= hi, f"collection {t_c / 3600:.1f} h, IDC 4 h to 25 h"),
        Flag("acquisition_time", lo <= s.real_s <= hi,
             f"acquisition {s.real_s / 3600:.1f} h real, IDC 4 h to 25 h"),
    ]


__all__ = ["AnalysisError", "analyse_betagamma", "ingrowth_factor"]
