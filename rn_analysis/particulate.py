"""Particulate (HPGe) analysis of one SAMPLEPHD: calibration curves from the file, peak search, region
fits, nuclide activities with interference correction, concentrations at the collection stop, Currie
limits and the IDC-style flags. Method and formulas: docs/rn-analysis.md.

``fit_particulate`` keeps every intermediate (for plots and tests); ``analyse_particulate`` returns
the shared ``AnalysisResult``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gci_link.ims2 import PhdMessage

from . import decay, flags
from .curves import FWHM_PER_SIGMA, GammaCalibration, gamma_calibration
from .errors import AnalysisInputError
from .library import NOBLE_GASES, NUCLIDES, Line, Nuclide
from .peakfit import fit_region
from .peaksearch import find_peaks
from .quantify import K_ALPHA, Activities, solve
from .result import AnalysisResult, NuclideResult, Peak

SEARCH_KEV = (42.0, 2700.0)  # the IDC's search range (spec sheet 11.6)
MULTIPLET_FWHM = 4.0  # peaks closer than this are fitted together
REGION_FWHM = 3.0  # a region reaches this far beyond its outer peaks
SHARE_FWHM = 1.0  # a library line this close to a peak (its fitted centroid) is part of that peak
FORCE_FRACTION = 0.1  # lines placed even when not found: efficiency x intensity >= this x the key line's
MAX_DECAY_EXPONENT = 20.0  # lambda t_p above which a concentration at the collection stop is not reported


@dataclass
class Slot:
    """A peak in the fit: found by the search (free centroid) or placed at a library line (fixed)."""

    start: float  # array index the fit starts from
    found: bool
    lines: list[tuple[Nuclide, Line]] = field(default_factory=list)
    area: float = 0.0
    area_var: float = 0.0
    centroid: float = 0.0  # array index
    centroid_var: float = 0.0
    region: int = -1


@dataclass(frozen=True)
class Region:
    lo: int
    hi: int  # inclusive
    b0: float
    b1: float
    xc: float
    slots: tuple[int, ...]
    area_cov: np.ndarray


@dataclass(frozen=True)
class ParticulateFit:
    message: PhdMessage
    counts: np.ndarray
    first_label: int
    calibration: GammaCalibration
    timing: decay.Timing
    slots: list[Slot]
    regions: list[Region]
    nuclides: list[Nuclide]
    activities: Activities | None
    log_conversion: np.ndarray  # ln(Bq/m3 per decay) per nuclide

    def model(self) -> np.ndarray:
        """The fitted counts per channel over the regions (NaN elsewhere), for plots."""
        out = np.full(self.counts.size, np.nan)
        sigma = self.calibration.sigma_channels(np.arange(self.counts.size, dtype=np.float64))
        for r in self.regions:
            x = np.arange(r.lo, r.hi + 1, dtype=np.float64)
            y = r.b0 + r.b1 * (x - r.xc)
            for i in r.slots:
                s = self.slots[i]
                y = y + s.area * _unit_peak(x, s.centroid, float(sigma[int(round(s.start))]))
            out[r.lo:r.hi + 1] = y
        return out


def _unit_peak(x: np.ndarray, mu: float, sig: float) -> np.ndarray:
    from scipy.special import erf
    return 0.5 * (erf((x + 0.5 - mu) / (sig * math.sqrt(2))) - erf((x - 0.5 - mu) / (sig * math.sqrt(2))))


def timing_of(message: PhdMessage) -> decay.Timing:
    m = message
    if m.collection_start_ns is None or m.collection_stop_ns is None or m.air_volume_m3 is None:
        raise AnalysisInputError("the message has no #Collection block: no collection times or air volume")
    collection_s = (m.collection_stop_ns - m.collection_start_ns) / 1e9
    if collection_s <= 0:
        raise AnalysisInputError(f"#Collection stops {-collection_s:.1f} s before it starts")
    if not m.air_volume_m3 > 0:
        raise AnalysisInputError(f"#Collection air volume is {m.air_volume_m3} m3, it must be positive")
    if not m.live_time_s > 0:
        raise AnalysisInputError(f"#Acquisition live time is {m.live_time_s} s, it must be positive")
    if not m.real_time_s >= m.live_time_s:
        raise AnalysisInputError(f"#Acquisition real time {m.real_time_s} s is below the live time "
                                 f"{m.live_time_s} s")
    decay_s = (m.acquisition_start_ns - m.collection_stop_ns) / 1e9
    if decay_s < 0:
        raise AnalysisInputError(f"#Acquisition starts {-decay_s:.1f} s before the collection stops")
    return decay.Timing(collection_s, decay_s, m.real_time_s, m.live_time_s, m.air_volume_m3)


def _spectrum(message: PhdMessage) -> tuple[np.ndarray, int]:
    if message.g_spectrum is None:
        raise AnalysisInputError("the message has no #g_Spectrum block")
    counts = np.asarray(message.g_spectrum, dtype=np.float64)
    if counts.size < 64:
        raise AnalysisInputError(f"#g_Spectrum has {counts.size} channels, too few for an HPGe analysis")
    if counts.sum() <= 0:
        raise AnalysisInputError("#g_Spectrum is empty (every channel holds 0 counts)")
    first = message.g_first_channel if message.g_first_channel is not None else 1
    return counts, first


def particulate_nuclides() -> list[Nuclide]:
    return [n for n in NUCLIDES.values() if n.gammas and n.name not in NOBLE_GASES]


def _slots(cal: GammaCalibration, counts: np.ndarray, sigma: np.ndarray, lo: int, hi: int,
           nuclides: list[Nuclide]) -> list[Slot]:
    slots = [Slot(float(c), True) for c in find_peaks(counts, sigma, lo, hi)]
    for n in nuclides:
        lines = [ln for ln in n.gammas if lo <= cal.energy.index(ln.energy_kev) < hi]
        if not lines:
            continue
        weight = [ln.intensity * float(cal.efficiency(ln.energy_kev)) for ln in lines]
        for ln, w in zip(lines, weight, strict=True):
            at = float(cal.energy.index(ln.energy_kev))
            tol = SHARE_FWHM * FWHM_PER_SIGMA * sigma[int(at)]
            near = min(slots, key=lambda s: abs(s.start - at), default=None)
            if near is not None and abs(near.start - at) <= tol:
                near.lines.append((n, ln))
            elif w >= FORCE_FRACTION * max(weight):
                slots.append(Slot(at, False, [(n, ln)]))
    slots.sort(key=lambda s: s.start)
    return slots


def _fit_regions(counts: np.ndarray, sigma: np.ndarray, slots: list[Slot]) -> list[Region]:
    n = counts.size
    fwhm = [FWHM_PER_SIGMA * sigma[int(s.start)] for s in slots]
    groups: list[list[int]] = []
    for i, s in enumerate(slots):
        if groups and s.start - slots[groups[-1][-1]].start <= MULTIPLET_FWHM * fwhm[i]:
            groups[-1].append(i)
        else:
            groups.append([i])
    regions = []
    for members in groups:
        lo = max(0, int(math.floor(slots[members[0]].start - REGION_FWHM * fwhm[members[0]])))
        hi = min(n - 1, int(math.ceil(slots[members[-1]].start + REGION_FWHM * fwhm[members[-1]])))
        # neighbours whose peak reaches into the region are fitted too (and their areas discarded)
        extra = [j for j, s in enumerate(slots) if j not in members
                 and lo - 1.5 * fwhm[j] <= s.start <= hi + 1.5 * fwhm[j]]
        every = members + extra
        x = np.arange(lo, hi + 1, dtype=np.float64)
        mu0 = np.array([slots[j].start for j in every])
        sig = np.array([sigma[int(slots[j].start)] for j in every])
        free = np.array([slots[j].found and j in members for j in every])
        b0, b1, xc, area, mu, area_cov, mu_var = fit_region(counts[lo:hi + 1], x, mu0, sig, free)
        k = len(members)
        for pos, j in enumerate(members):
            s = slots[j]
            s.area, s.area_var = float(area[pos]), float(area_cov[pos, pos])
            s.centroid, s.centroid_var, s.region = float(mu[pos]), float(mu_var[pos]), len(regions)
        regions.append(Region(lo, hi, float(b0), float(b1), float(xc), tuple(members), area_cov[:k, :k]))
    return regions


def _drop_strays(cal: GammaCalibration, slots: list[Slot]) -> None:
    """A found peak whose fitted centroid left its library line is no longer that line's peak."""
    for s in slots:
        if not s.found or not s.lines:
            continue
        e = float(cal.energy.energy(s.centroid))
        fwhm = float(cal.resolution.fwhm(e))
        e_unc = math.sqrt(s.centroid_var) * float(cal.energy.kev_per_channel(s.centroid))
        tol = max(SHARE_FWHM * fwhm, 3 * e_unc)
        s.lines = [(n, ln) for n, ln in s.lines if abs(e - ln.energy_kev) <= tol]


def fit_particulate(message: PhdMessage) -> ParticulateFit:
    if message.system_type == "B":
        raise AnalysisInputError("system type B is a beta-gamma sample, not a particulate (HPGe) one")
    counts, first = _spectrum(message)
    timing = timing_of(message)
    cal = gamma_calibration(message, counts.size, first)
    index = np.arange(counts.size, dtype=np.float64)
    sigma = cal.sigma_channels(index)
    if not np.all(np.isfinite(sigma) & (sigma > 0)):
        raise AnalysisInputError("the resolution and energy calibrations give a peak width that is not "
                                 "positive")
    lo_e, hi_e = SEARCH_KEV
    lo = int(np.searchsorted(cal.energy.energy(index), lo_e))
    hi = int(np.searchsorted(cal.energy.energy(index), hi_e))
    lo, hi = max(lo, 16), min(hi, counts.size - 16)
    if hi <= lo:
        raise AnalysisInputError("the energy calibration puts no channel between 42 and 2700 keV")
    nuclides = particulate_nuclides()
    slots = _slots(cal, counts, sigma, lo, hi, nuclides)
    regions = _fit_regions(counts, sigma, slots)
    _drop_strays(cal, slots)
    used = [n for n in nuclides if any(n is m for s in slots for m, _ in s.lines)]
    rows = [i for i, s in enumerate(slots) if s.lines]
    activities = None
    if used:
        k = np.zeros((len(rows), len(used)))
        col = {n.name: j for j, n in enumerate(used)}
        for r, i in enumerate(rows):
            for n, ln in slots[i].lines:
                k[r, col[n.name]] += ln.intensity * float(cal.efficiency(ln.energy_kev))
        cov = np.zeros((len(rows), len(rows)))
        for a, i in enumerate(rows):
            for b, j in enumerate(rows):
                if slots[i].region == slots[j].region:
                    reg = regions[slots[i].region]
                    cov[a, b] = reg.area_cov[reg.slots.index(i), reg.slots.index(j)]
        activities = solve(np.array([slots[i].area for i in rows]), cov, k)
    log_conv = np.array([decay.log_concentration_per_decay(n, timing) for n in used])
    return ParticulateFit(message, counts, first, cal, timing, slots, regions, used, activities, log_conv)


def _key_line(fit: ParticulateFit, n: Nuclide) -> Line:
    return max(n.gammas, key=lambda ln: ln.intensity * float(fit.calibration.efficiency(ln.energy_kev)))


def nuclide_results(fit: ParticulateFit) -> list[NuclideResult]:
    act = fit.activities
    if act is None:
        return []
    seen = {n.name for s in fit.slots if s.found and _above_critical(s) for n, _ in s.lines}
    out = []
    for j, n in enumerate(fit.nuclides):
        if decay.effective_decay_constant(n) * fit.timing.decay_s > MAX_DECAY_EXPONENT:
            continue  # decayed away before the count: no meaningful concentration at the collection stop
        scale = math.exp(fit.log_conversion[j]) * 1e6  # uBq/m3 per decay
        rel_eff = float(fit.calibration.efficiency.relative_uncertainty(_key_line(fit, n).energy_kev))
        theta = float(act.theta[j])
        unc = math.hypot(float(act.sigma[j]), theta * rel_eff) * scale
        identified = bool(theta > act.lc[j]) and n.name in seen
        out.append(NuclideResult(n.name.upper(), identified, theta * scale, unc,
                                 float(act.ld[j]) * scale, float(act.lc[j]) * scale))
    return out


def _above_critical(s: Slot) -> bool:
    """Whether a peak's area passes Currie's decision threshold (its variance less its own counts)."""
    null_var = max(s.area_var - max(s.area, 0.0), 0.01 * s.area_var)
    return s.area > K_ALPHA * math.sqrt(null_var)


def peak_results(fit: ParticulateFit) -> list[Peak]:
    cal, act = fit.calibration, fit.activities
    names = {n.name: j for j, n in enumerate(fit.nuclides)}
    rows = [i for i, s in enumerate(fit.slots) if s.lines]
    peaks = []
    for i, s in enumerate(fit.slots):
        if not s.found:
            continue
        if not _above_critical(s):
            continue  # the search's candidate was noise
        e = float(cal.energy.energy(s.centroid))
        owner = None
        if act is not None and s.lines:
            r = rows.index(i)
            best = 0.0
            for n, _ in s.lines:
                j = names[n.name]
                share = act.contribution[r, j]
                if act.theta[j] > act.lc[j] and share > best:
                    owner, best = n.name.upper(), share
        peaks.append(Peak(e, s.centroid + fit.first_label, s.area, math.sqrt(s.area_var),
                          float(cal.resolution.fwhm(e)), owner))
    return peaks


def analyse_particulate_fit(message: PhdMessage) -> tuple[AnalysisResult, ParticulateFit]:
    """The result and the fit behind it (for plots)."""
    fit = fit_particulate(message)
    nuclides = nuclide_results(fit)
    peaks = peak_results(fit)
    result = AnalysisResult(message.sample_id or message.srid, "particulate", peaks, nuclides,
                            flags.particulate_flags(message, fit.timing, nuclides, peaks, fit.calibration))
    return result, fit


def analyse_particulate(message: PhdMessage) -> AnalysisResult:
    """The analysis of a particulate (HPGe) sample; ``AnalysisInputError`` names what makes it impossible."""
    return analyse_particulate_fit(message)[0]
