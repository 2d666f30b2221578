"""Particulate (HPGe) analysis of one SAMPLEPHD: calibration curves from the file, peak search, region
fits, nuclide activities with interference correction, concentrations at the collection stop, Currie
limits and the IDC-style flags. Method and formulas: docs/rn-analysis.md.

Two fits of the same spectrum. The first fits the peaks the search found, centroids free: it gives the
reported peaks (energy, area, FWHM) and which library lines were seen. The second measures the
library: one component at each strong library line (and at every found peak, so that unknown peaks are
not counted as background), every centroid fixed; the areas it gives at library lines go into the joint
activity solution. A line's area is then measured whether or not the search saw it, so weak lines are
neither dropped nor picked only when they fluctuate upwards, and lines a fraction of a FWHM apart are
separate components of one multiplet.

``fit_particulate`` keeps every intermediate (for plots and tests); ``analyse_particulate`` returns
the shared ``AnalysisResult``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gci_link.ims2 import PhdMessage

from . import decay, flags
from .curves import FWHM_PER_SIGMA, GammaCalibration, gamma_calibration, gamma_spectrum
from .errors import AnalysisError
from .library import NOBLE_GASES, NUCLIDES, Line, Nuclide
from .peakfit import fit_region
from .peaksearch import find_peaks
from .quantify import K_ALPHA, Activities, solve
from .result import AnalysisResult, NuclideResult, Peak

SEARCH_KEV = (42.0, 2700.0)  # the IDC's search range (spec sheet 11.6)
MULTIPLET_FWHM = 4.0  # peaks closer than this are fitted together
REGION_FWHM = 3.0  # a region reaches this far beyond its outer peaks
MATCH_FWHM = 0.5  # a found peak is the peak of a library line this close (or 3 sigma of its centroid)
MERGE_FWHM = 0.25  # library lines closer than this are one component (a shared line)
FORCE_FRACTION = 0.1  # lines measured: efficiency x intensity >= this x the nuclide's strongest line's
WEAK_PASSES = 1  # refits with the weak lines' predicted counts (a second one changed no figure)
MAX_DECAY_EXPONENT = 20.0  # lambda t_p above which a concentration at the collection stop is not reported


@dataclass
class Slot:
    """A peak in a fit: found by the search (free centroid) or placed at library lines (fixed)."""

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
    slots: list[Slot]  # first fit: the found peaks, ``lines`` the library lines each one matches
    regions: list[Region]
    components: list[Slot]  # second fit: library lines and found peaks at fixed centroids
    component_regions: list[Region]
    nuclides: list[Nuclide]  # those with a measured line, in the order of the activities
    activities: Activities | None
    log_conversion: np.ndarray  # ln(Bq/m3 per decay) per nuclide

    def model(self) -> np.ndarray:
        """The first fit's counts per channel over its regions (NaN elsewhere), for plots."""
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
        raise AnalysisError("the message has no #Collection block: no collection times or air volume")
    collection_s = (m.collection_stop_ns - m.collection_start_ns) / 1e9
    if collection_s <= 0:
        raise AnalysisError(f"#Collection stops {-collection_s:.1f} s before it starts")
    if not m.air_volume_m3 > 0:
        raise AnalysisError(f"#Collection air volume is {m.air_volume_m3} m3, it must be positive")
    if not m.live_time_s > 0:
        raise AnalysisError(f"#Acquisition live time is {m.live_time_s} s, it must be positive")
    if not m.real_time_s >= m.live_time_s:
        raise AnalysisError(f"#Acquisition real time {m.real_time_s} s is below the live time "
                                 f"{m.live_time_s} s")
    decay_s = (m.acquisition_start_ns - m.collection_stop_ns) / 1e9
    if decay_s < 0:
        raise AnalysisError(f"#Acquisition starts {-decay_s:.1f} s before the collection stops")
    return decay.Timing(collection_s, decay_s, m.real_time_s, m.live_time_s, m.air_volume_m3)


def particulate_nuclides() -> list[Nuclide]:
    return [n for n in NUCLIDES.values() if n.gammas and n.name not in NOBLE_GASES]


def _library_lines(cal: GammaCalibration, sigma: np.ndarray, lo: int, hi: int,
                   nuclides: list[Nuclide]) -> tuple[list[Slot], list[tuple[Nuclide, Line]]]:
    """Components at the measured lines of every nuclide (lines closer than MERGE_FWHM shared), and the
    weak lines left out of them."""
    comps: list[Slot] = []
    weak: list[tuple[Nuclide, Line]] = []
    for n in nuclides:
        lines = [ln for ln in n.gammas if lo <= cal.energy.index(ln.energy_kev) < hi]
        if not lines:
            continue
        weight = [ln.intensity * float(cal.efficiency(ln.energy_kev)) for ln in lines]
        for ln, w in zip(lines, weight, strict=True):
            if w < FORCE_FRACTION * max(weight):
                weak.append((n, ln))
                continue
            at = float(cal.energy.index(ln.energy_kev))
            near = min(comps, key=lambda c: abs(c.start - at), default=None)
            if near is not None and abs(near.start - at) <= MERGE_FWHM * FWHM_PER_SIGMA * sigma[int(at)]:
                near.lines.append((n, ln))
            else:
                comps.append(Slot(at, False, [(n, ln)]))
    return comps, weak


def _fit_regions(counts: np.ndarray, sigma: np.ndarray, slots: list[Slot],
                 known: np.ndarray | None = None) -> list[Region]:
    n = counts.size
    fwhm = [FWHM_PER_SIGMA * sigma[int(s.start)] for s in slots]
    groups: list[list[int]] = []
    for i, s in enumerate(slots):
        if groups and s.start - slots[groups[-1][-1]].start <= MULTIPLET_FWHM * fwhm[i]:
            groups[-1].append(i)
        else:
            groups.append([i])
    regions: list[Region] = []
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
        given = np.zeros(hi + 1 - lo) if known is None else known[lo:hi + 1]
        b0, b1, xc, area, mu, area_cov, mu_var = fit_region(counts[lo:hi + 1], x, mu0, sig, free, given)
        k = len(members)
        for pos, j in enumerate(members):
            s = slots[j]
            s.area, s.area_var = float(area[pos]), float(area_cov[pos, pos])
            s.centroid, s.centroid_var, s.region = float(mu[pos]), float(mu_var[pos]), len(regions)
        regions.append(Region(lo, hi, float(b0), float(b1), float(xc), tuple(members), area_cov[:k, :k]))
    return regions


def _match_lines(cal: GammaCalibration, peaks: list[Slot], nuclides: list[Nuclide]) -> None:
    """Each found peak's ``lines``: the library lines within MATCH_FWHM (or 3 sigma) of its centroid."""
    for s in peaks:
        e = float(cal.energy.energy(s.centroid))
        tol = max(MATCH_FWHM * float(cal.resolution.fwhm(e)),
                  3 * math.sqrt(s.centroid_var) * float(cal.energy.kev_per_channel(s.centroid)))
        s.lines = [(n, ln) for n in nuclides for ln in n.gammas if abs(e - ln.energy_kev) <= tol]


def _weak_lines(cal: GammaCalibration, sigma: np.ndarray, weak: list[tuple[Nuclide, Line]],
                theta: dict[str, float], channels: int) -> np.ndarray:
    """Counts per channel that the weak lines of nuclides with these decays add to the spectrum."""
    out = np.zeros(channels)
    for n, ln in weak:
        decays = theta.get(n.name, 0.0)
        if decays <= 0:
            continue
        at = float(cal.energy.index(ln.energy_kev))
        sig = float(sigma[int(at)])
        lo, hi = max(0, int(at - 6 * sig)), min(channels, int(at + 6 * sig) + 2)
        x = np.arange(lo, hi, dtype=np.float64)
        out[lo:hi] += decays * ln.intensity * float(cal.efficiency(ln.energy_kev)) * _unit_peak(x, at, sig)
    return out


def _row_areas(components: list[Slot], regions: list[Region]) -> tuple[np.ndarray, np.ndarray]:
    """Areas of the components at library lines and their covariance (block-diagonal by region)."""
    rows = [i for i, c in enumerate(components) if c.lines]
    cov = np.zeros((len(rows), len(rows)))
    for a, i in enumerate(rows):
        reg = regions[components[i].region]
        for b, j in enumerate(rows):
            if components[j].region == components[i].region:
                cov[a, b] = reg.area_cov[reg.slots.index(i), reg.slots.index(j)]
    return np.array([components[i].area for i in rows]), cov


@dataclass(frozen=True)
class Background:
    """A detector background's areas at the sample's library components, already scaled to the sample's
    live time (``scale`` = t_l sample / t_l background), and their covariance."""

    areas: np.ndarray
    cov: np.ndarray
    scale: float


def _background(detbk: PhdMessage, counts: np.ndarray, sigma: np.ndarray, components: list[Slot],
                live_s: float) -> Background:
    if detbk.g_spectrum is None or detbk.g_spectrum.size != counts.size:
        size = None if detbk.g_spectrum is None else detbk.g_spectrum.size
        raise AnalysisError(f"the detector background has {size} gamma channels, the sample "
                                 f"{counts.size}")
    if not detbk.live_time_s > 0:
        raise AnalysisError(f"the detector background's live time is {detbk.live_time_s} s")
    copies = [Slot(c.start, False, c.lines) for c in components]
    regions = _fit_regions(np.asarray(detbk.g_spectrum, dtype=np.float64), sigma, copies)
    areas, cov = _row_areas(copies, regions)
    scale = live_s / detbk.live_time_s
    return Background(scale * areas, scale**2 * cov, scale)


def _activities(components: list[Slot], regions: list[Region], cal: GammaCalibration,
                used: list[Nuclide], background: Background | None) -> Activities:
    rows = [i for i, c in enumerate(components) if c.lines]
    k = np.zeros((len(rows), len(used)))
    col = {n.name: j for j, n in enumerate(used)}
    for r, i in enumerate(rows):
        for n, ln in components[i].lines:
            k[r, col[n.name]] += ln.intensity * float(cal.efficiency(ln.energy_kev))
    areas, cov = _row_areas(components, regions)
    if background is not None:
        areas, cov = areas - background.areas, cov + background.cov
    return solve(areas, cov, k, np.array([components[i].region for i in rows]))


def fit_particulate(message: PhdMessage, detbk: PhdMessage | None = None) -> ParticulateFit:
    """``detbk``: a detector background of the same detector, whose library-line areas (scaled by the
    live times) are subtracted before the activities are solved."""
    if message.system_type == "B":
        raise AnalysisError("system type B is a beta-gamma sample, not a particulate (HPGe) one")
    counts, first = gamma_spectrum(message, 64, "for an HPGe analysis")
    timing = timing_of(message)
    cal = gamma_calibration(message, counts.size, first)
    index = np.arange(counts.size, dtype=np.float64)
    energies = cal.energy.energy(index)
    lo = max(int(np.searchsorted(energies, SEARCH_KEV[0])), 16)
    hi = min(int(np.searchsorted(energies, SEARCH_KEV[1])), counts.size - 16)
    if hi <= lo:
        raise AnalysisError("the energy calibration puts no channel between 42 and 2700 keV")
    sigma = cal.sigma_channels(index)
    if not np.all(np.isfinite(sigma[lo:hi]) & (sigma[lo:hi] > 0)):
        raise AnalysisError("the resolution and energy calibrations give a peak width that is not "
                                 "positive between 42 and 2700 keV")
    sigma[:lo], sigma[hi:] = sigma[lo], sigma[hi - 1]  # outside the search range only regions' edges reach
    nuclides = particulate_nuclides()
    slots = [Slot(float(c), True) for c in find_peaks(counts, sigma, lo, hi)]
    regions = _fit_regions(counts, sigma, slots)
    _match_lines(cal, slots, nuclides)
    components, weak = _library_lines(cal, sigma, lo, hi, nuclides)
    for s in slots:
        width = FWHM_PER_SIGMA * sigma[int(s.start)]
        if _above_critical(s) and not s.lines and all(abs(c.start - s.centroid) > MERGE_FWHM * width
                                                       for c in components):
            components.append(Slot(s.centroid, False))  # a peak of no library line: fitted, not quantified
    components.sort(key=lambda c: c.start)
    used = [n for n in nuclides if any(n is m for c in components for m, _ in c.lines)]
    component_regions = _fit_regions(counts, sigma, components)
    activities = None
    if used:
        # the weak lines' counts follow from the gross activities (before any detector background is
        # subtracted: the sample spectrum holds both) that the strong lines give
        for _ in range(WEAK_PASSES if weak else 0):
            gross = _activities(components, component_regions, cal, used, None)
            known = _weak_lines(cal, sigma, weak, {n.name: max(float(t), 0.0) for n, t in zip(
                used, gross.theta, strict=True)}, counts.size)
            component_regions = _fit_regions(counts, sigma, components, known)
        background = None if detbk is None else _background(detbk, counts, sigma, components, timing.live_s)
        activities = _activities(components, component_regions, cal, used, background)
    log_conv = np.array([decay.log_concentration_per_decay(n, timing) for n in used])
    return ParticulateFit(message, counts, first, cal, timing, slots, regions, components, component_regions,
                          used, activities, log_conv)


def _key_line(fit: ParticulateFit, n: Nuclide) -> Line:
    return max(n.gammas, key=lambda ln: ln.intensity * float(fit.calibration.efficiency(ln.energy_kev)))


def _critical_area(s: Slot) -> float:
    """Currie's decision threshold of a peak's area (its variance less its own counts)."""
    return K_ALPHA * math.sqrt(max(s.area_var - max(s.area, 0.0), 0.01 * s.area_var))


def _above_critical(s: Slot) -> bool:
    return s.area > _critical_area(s)


def identified(fit: ParticulateFit) -> set[str]:
    """Nuclides above their decision threshold that account for a found peak: the counts their activity
    puts into one of its lines there pass that peak's critical level on their own (so a nuclide that
    shares a peak with another, and is just above its threshold, does not borrow the other's peak)."""
    act = fit.activities
    if act is None:
        return set()
    theta = {n.name: float(t) for n, t in zip(fit.nuclides, act.theta, strict=True)}
    eff = fit.calibration.efficiency
    seen = {n.name for s in fit.slots if _above_critical(s) for n, ln in s.lines
            if n.name in theta and theta[n.name] * ln.intensity * float(eff(ln.energy_kev))
            > _critical_area(s)}
    return {n.name for j, n in enumerate(fit.nuclides) if act.theta[j] > act.lc[j] and n.name in seen}


def nuclide_results(fit: ParticulateFit) -> list[NuclideResult]:
    act = fit.activities
    if act is None:
        return []
    found = identified(fit)
    out = []
    for j, n in enumerate(fit.nuclides):
        if decay.effective_decay_constant(n) * fit.timing.decay_s > MAX_DECAY_EXPONENT:
            continue  # decayed away before the count: no meaningful concentration at the collection stop
        scale = math.exp(fit.log_conversion[j]) * 1e6  # uBq/m3 per decay
        rel_eff = float(fit.calibration.efficiency.relative_uncertainty(_key_line(fit, n).energy_kev))
        theta = float(act.theta[j])
        unc = math.hypot(float(act.sigma[j]), theta * rel_eff) * scale
        out.append(NuclideResult(n.name.upper(), n.name in found, theta * scale, unc,
                                 float(act.ld[j]) * scale, float(act.lc[j]) * scale))
    return out


def peak_results(fit: ParticulateFit) -> list[Peak]:
    """The found peaks above the critical level, each named after the identified nuclide whose lines
    there are expected to give it the most counts (or None)."""
    cal, act = fit.calibration, fit.activities
    found = identified(fit)
    theta = {n.name: float(act.theta[j]) for j, n in enumerate(fit.nuclides)} if act is not None else {}
    peaks = []
    for s in fit.slots:
        if not _above_critical(s):
            continue  # the search's candidate was noise
        e = float(cal.energy.energy(s.centroid))
        expected: dict[str, float] = {}
        for n, ln in s.lines:
            if n.name in found:
                expected[n.name] = expected.get(n.name, 0.0) + theta[n.name] * ln.intensity * float(
                    cal.efficiency(ln.energy_kev))
        owner = max(expected, key=expected.__getitem__).upper() if expected else None
        peaks.append(Peak(e, s.centroid + fit.first_label, s.area, math.sqrt(s.area_var),
                          float(cal.resolution.fwhm(e)), owner))
    return peaks


def analyse_particulate_fit(message: PhdMessage, detbk: PhdMessage | None = None
                            ) -> tuple[AnalysisResult, ParticulateFit]:
    """The result and the fit behind it (for plots)."""
    fit = fit_particulate(message, detbk)
    nuclides = nuclide_results(fit)
    peaks = peak_results(fit)
    result = AnalysisResult(message.sample_id or message.srid, "particulate", peaks, nuclides,
                            flags.particulate_flags(message, fit.timing, nuclides, peaks, fit.calibration))
    return result, fit


def analyse_particulate(message: PhdMessage, detbk: PhdMessage | None = None) -> AnalysisResult:
    """The analysis of a particulate (HPGe) sample, less a detector background if given;
    ``AnalysisError`` names what makes it impossible."""
    return analyse_particulate_fit(message, detbk)[0]
