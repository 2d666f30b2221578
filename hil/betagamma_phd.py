"""A noble-gas sample set (SAMPLEPHD, GASBKPHD, DETBKPHD) counted by the simulated beta-gamma system,
with known truth and the calibration blocks of the simulated detector, for the analysis tests and bench.

The instrument is ``sim_betagamma.SimBetaGamma`` driven without a line (``begin_count``/``read_count``)
on a clock this module moves, so a set takes milliseconds. The order is the station's: a long detector
background of the empty cell; the previous sample; the cell evacuated (the memory effect stays) and the
gas background counted; the new sample loaded and counted.

Calibration blocks: the simulator's resolutions (FWHM = k sqrt(E)) and gamma efficiencies at a few
energies; the ROI energies are those of the real MIX58 sample (spec §11.1); the energy
points follow the simulator's linear channel scale (centroid of energy E in channel E / width - 1/2);
``#b-gEfficiency`` and ``#Ratios`` are what a calibration with pure sources would measure on this
detector: the simulator's expected coincidences per decay, summed over each ROI in channel space. The
ratio rows are openSpex's 20 in its order: its 16, the metastables' cross-talk (6 -> 5, 5 -> 6)
and their counts in ROI 4 beyond their own ROI (5 -> 4, 6 -> 4).

Truth is given as activity concentrations (uBq/m3) of air sampled at a constant concentration; the
activity loaded into the cell follows from the collection and processing decay, written forward here.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gci_link import ims2
from hil.nuclides import BETA_GAMMA_BRANCHES, Branch
from hil.sim_betagamma import BetaGammaSimConfig, SimBetaGamma
from hil.simclock import SimClock
from rn_analysis.bg_rois import roi_channels, roi_gross_counts
from rn_analysis.library import nuclide
from rn_analysis.xenon import XE_ML_PER_M3_AIR
from timeunits import NS_PER_S

T0_NS = 1_764_547_200 * NS_PER_S  # 2025-12-01 00:00:00 UTC
MIX58_ROIS = (  # keV: roi, beta low, beta high, gamma low, gamma high (spec §11.1)
    (1, 29.80, 597.67, 320.90, 384.70), (2, 29.80, 733.912, 228.98, 280.54),
    (3, 29.80, 352.50, 71.15, 99.83), (4, 29.80, 394.14, 19.25, 41.03),
    (5, 78.20, 166.00, 19.25, 41.03), (6, 170.73, 252.93, 19.25, 41.03),
    (7, 29.80, 78.20, 19.25, 41.03), (8, 252.93, 394.14, 19.25, 41.03),
    (9, 170.73, 394.14, 19.25, 41.03), (10, 29.80, 166.00, 19.25, 41.03),
)
RATIO_FLOOR = 1e-6
G_POINTS_KEV = (30.0, 81.0, 250.0, 352.0, 661.66)
B_POINTS_KEV = (45.0, 129.0, 199.0, 400.0)
DEFAULT_UBQ_M3 = {"Xe-133": 5000.0, "Xe-135": 1000.0, "Xe-131m": 600.0, "Xe-133m": 400.0}


@dataclass
class SetTimes:
    collection_s: float = 43_200.0
    processing_s: float = 14_400.0  # collection stop to acquisition start
    sample_s: float = 43_200.0
    gasbk_s: float = 39_600.0
    detbk_s: float = 86_400.0
    previous_s: float = 43_200.0  # the previous sample's stay in the cell


@dataclass
class SampleSet:
    sample: ims2.PhdMessage
    gasbk: ims2.PhdMessage
    detbk: ims2.PhdMessage
    truth_ubq_m3: dict[str, float]
    loaded_bq: dict[str, float] = field(default_factory=dict)  # in the cell at the acquisition start


def _branch(name: str, photon_kev: float | None = None) -> Branch:
    """The simulator's branch of ``name`` (the one with this photon when it has several)."""
    return next(b for b in BETA_GAMMA_BRANCHES
                if b.nuclide == name and (photon_kev is None or abs(b.photon_kev - photon_kev) < 1))


def calibration_blocks(sim: SimBetaGamma) -> dict[str, Any]:
    """The simulated detector's energy points, resolutions, gamma efficiencies, ROI limits, ROI efficiencies
    and interference ratios, as PhdMessage fields."""
    c = sim.config
    gw, bw = c.gamma_span_kev / c.gamma_channels, c.beta_span_kev / c.beta_channels
    g_energy = tuple(ims2.EnergyPoint(e, round(e / gw - 0.5, 4), 0.05) for e in G_POINTS_KEV)
    b_energy = tuple(ims2.BetaEnergyPoint(e, "C", round(e / bw - 0.5, 4), 0.1) for e in B_POINTS_KEV)
    rois = tuple(ims2.RoiLimits(*row) for row in MIX58_ROIS)
    limits = roi_channels(rois, g_energy, b_energy)

    def per_decay(branch: Branch) -> np.ndarray:  # counts in ROIs 1..10 per decay through ``branch``
        return _expected_roi_counts(sim.coincidence_response(branch), limits)

    rn, x135 = per_decay(_branch("Rn-222")), per_decay(_branch("Xe-135"))
    x81, x30 = per_decay(_branch("Xe-133", 81.0)), per_decay(_branch("Xe-133", 30.6))
    m131, m133 = per_decay(_branch("Xe-131m")), per_decay(_branch("Xe-133m"))
    b81, b30 = _branch("Xe-133", 81.0).fraction, _branch("Xe-133", 30.6).fraction
    eff = [("XE-135", 2, x135[1] / _branch("Xe-135").fraction), ("XE-133", 3, x81[2] / b81),
           ("XE-133", 4, x30[3] / b30), ("XE-131m", 5, m131[4] / _branch("Xe-131m").fraction),
           ("XE-133m", 6, m133[5] / _branch("Xe-133m").fraction)]
    eff += [(f"XE-133{roi}", roi, x30[roi - 1] / b30) for roi in (7, 8, 9, 10)]
    ratios = [(f"RN222_1:{lo}", 1, lo, rn[lo - 1] / rn[0]) for lo in range(2, 11)]
    # Xe-133 into ROI 4 and 7-10: the 81 keV branch only (the X-ray branch has its own efficiency there);
    # into ROIs 5 and 6, where only the ratio carries Xe-133, both branches
    ratios += [(f"XE133_3:{lo}", 3, lo, (x81[lo - 1] + (x30[lo - 1] if lo in (5, 6) else 0.0)) / x81[2])
               for lo in range(4, 11)]
    ratios += [("XE133M_6:5", 6, 5, m133[4] / m133[5]), ("XE131M_5:6", 5, 6, m131[5] / m131[4])]
    # and the metastables' counts in ROI 4 beyond their own ROI (openSpex's rows 19 and 20)
    ratios += [("XE131M_5:4", 5, 4, m131[3] / m131[4] - 1), ("XE133M_6:4", 6, 4, m133[3] / m133[5] - 1)]
    k_g, k_b = c.gamma_fwhm_81_kev / math.sqrt(81.0), c.beta_fwhm_200_kev / math.sqrt(199.56)
    return {
        "g_energy": g_energy, "b_energy": b_energy, "roi_limits": rois,
        "g_resolution": tuple(ims2.ResolutionPoint(e, round(k_g * math.sqrt(e), 4), 0.2)
                              for e in G_POINTS_KEV),
        "b_resolution": tuple(ims2.ResolutionPoint(e, round(k_b * math.sqrt(e), 4), 0.3)
                              for e in B_POINTS_KEV),
        "g_efficiency": tuple(ims2.EfficiencyPoint(e, round(sim.gamma_efficiency(e), 6),
                                                   round(0.01 * sim.gamma_efficiency(e), 6))
                              for e in G_POINTS_KEV),
        "bg_efficiency": tuple(ims2.BgEfficiency(n, r, round(float(e), 6), round(0.01 * float(e), 6))
                               for n, r, e in eff),
        # no real calibration measures a ratio of exactly 0, and openSpex divides by each (for its
        # relative uncertainty): 1e-6 stands for none, 1e-6 counts per count
        "ratios": tuple(ims2.Ratio(i, u, lo, max(round(float(r), 6), RATIO_FLOOR),
                                   max(round(0.01 * float(r), 6), RATIO_FLOOR)) for i, u, lo, r in ratios),
    }


def _expected_roi_counts(expected: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """Expected (non-integer) counts inside each ROI, by the same channel rule as the gross counts."""
    scale = 1e12  # the integer kernel on scaled expectations: exact enough, one rule for both
    return roi_gross_counts(np.rint(expected * scale).astype(np.int64), limits) / scale


def loaded_activity(name: str, ubq_m3: float, times: SetTimes, air_m3: float) -> float:
    """Bq in the cell at the acquisition start from air at ``ubq_m3`` sampled evenly over the collection:
    each second adds (C V / t_c) Bq, which decays until the acquisition starts."""
    lam = nuclide(name).decay_constant
    at_stop = ubq_m3 * 1e-6 * air_m3 / times.collection_s * -math.expm1(-lam * times.collection_s) / lam
    return at_stop * math.exp(-lam * times.processing_s)


def _stamp(t_ns: int) -> str:
    return dt.datetime.fromtimestamp(t_ns / NS_PER_S, dt.UTC).strftime("%Y/%m/%d-%H:%M:%S.0")


def simulate_set(seed: int, truth_ubq_m3: dict[str, float] | None = None, *, channels: int = 256,
                 times: SetTimes | None = None, xe_ml: float = 1.0, xe_ml_unc: float = 0.09,
                 xe_yield: float = 0.63, detector: str = "SIM01_001") -> SampleSet:
    """Detector background, gas background and sample of one simulated cycle (about 60 ms of CPU)."""
    truth = dict(DEFAULT_UBQ_M3 if truth_ubq_m3 is None else truth_ubq_m3)
    times = times or SetTimes()
    now = [0.0]
    clock = SimClock(T0_NS, monotonic=lambda: now[0])
    sim = SimBetaGamma(None, clock, BetaGammaSimConfig(  # type: ignore[arg-type]  # no line: not started
        gamma_channels=channels, beta_channels=channels, seed=seed))
    calibration = calibration_blocks(sim)
    air_m3 = xe_ml / XE_ML_PER_M3_AIR  # the air whose xenon the cell holds
    loaded = {name: loaded_activity(name, c, times, air_m3) for name, c in truth.items()}

    def count(seconds: float) -> tuple[dict[str, np.ndarray], float, float, int]:
        sim.begin_count(seconds)
        start = clock.now_ns()
        now[0] += seconds + 1.0
        arrays, real, live, _ = sim.read_count()
        return arrays, real, live, start

    messages: dict[str, ims2.PhdMessage] = {}
    detbk = count(times.detbk_s)
    sim.load_sample("previous", loaded, xe_ml=xe_ml)
    now[0] += times.previous_s
    sim.evacuate()
    gasbk = count(times.gasbk_s)
    sim.load_sample("sample", loaded, xe_ml=xe_ml)
    sample = count(times.sample_s)
    counts = {"DETBKPHD": detbk, "GASBKPHD": gasbk, "SAMPLEPHD": sample}
    ids = {kind: f"{detector}-{_stamp(count[3])}" for kind, count in counts.items()}
    for kind, (arrays, real, live, start) in counts.items():
        is_sample = kind == "SAMPLEPHD"
        stop = start - round(times.processing_s * NS_PER_S)
        messages[kind] = ims2.PhdMessage(
            data_type=kind, msg_id=f"{seed:04d}{len(messages)}", station=detector.split("_")[0],
            detector=detector, system_type="B", sample_geometry="CYLINDER", spectrum_qualifier="FULL",
            srid="01" + _stamp(start)[:10].replace("/", "") + "0111X", sample_id=ids[kind],
            detbk_id=ids["DETBKPHD"] if kind != "DETBKPHD" else None,
            gasbk_id=ids["GASBKPHD"] if is_sample else None,
            transmit_ns=start + round((real + 600) * NS_PER_S),
            collection_start_ns=stop - round(times.collection_s * NS_PER_S) if is_sample else None,
            collection_stop_ns=stop if is_sample else None,
            air_volume_m3=round(air_m3 / xe_yield, 4) if is_sample else None,
            acquisition_start_ns=start, real_time_s=round(real, 2), live_time_s=round(live, 2),
            calibration_ns=T0_NS - 10 * 86_400 * NS_PER_S,
            xe_volume_ml=xe_ml if is_sample else None, xe_volume_unc_ml=xe_ml_unc if is_sample else None,
            xe_yield=xe_yield if is_sample else None, xe_yield_unc=0.05 if is_sample else None,
            g_spectrum=arrays["GSGL"], g_energy_span_kev=sim.config.gamma_span_kev,
            b_spectrum=arrays["BSGL"], b_energy_span_kev=sim.config.beta_span_kev,
            histogram=arrays["HIST"], histogram_gamma_span_kev=sim.config.gamma_span_kev,
            histogram_beta_span_kev=sim.config.beta_span_kev, **calibration,
        )
    return SampleSet(messages["SAMPLEPHD"], messages["GASBKPHD"], messages["DETBKPHD"], truth, loaded)


def calibration_phd(seed: int, activities_bq: dict[str, float], *, real_s: float = 43_200.0,
                    gamma_gain: float = 1.0, detector: str = "SIM01_001") -> ims2.PhdMessage:
    """A CALIBPHD of xenon calibration gases (Bq at the start of the count) in the simulated cell. The
    blocks are the simulated detector's; ``gamma_gain`` multiplies its keV per gamma channel (the
    spectrum's truth) while the blocks still describe the undrifted detector."""
    now = [0.0]
    clock = SimClock(T0_NS, monotonic=lambda: now[0])
    config = BetaGammaSimConfig(seed=seed, radon_bq=0.0)
    blocks = calibration_blocks(SimBetaGamma(None, clock, config))  # type: ignore[arg-type]
    config.gamma_span_kev *= gamma_gain
    sim = SimBetaGamma(None, clock, config)  # type: ignore[arg-type]  # no line: not started
    sim.load_sample("calibration", activities_bq, xe_ml=0.0)
    sim.begin_count(real_s)
    start = clock.now_ns()
    now[0] += real_s + 1.0
    arrays, real, live, _ = sim.read_count()
    return ims2.PhdMessage(
        data_type="CALIBPHD", msg_id=f"{seed:04d}9", station=detector.split("_")[0], detector=detector,
        system_type="B", sample_geometry="CYLINDER", spectrum_qualifier="FULL",
        srid="01" + _stamp(start)[:10].replace("/", "") + "0111K", sample_id=f"{detector}-{_stamp(start)}",
        transmit_ns=start + round((real + 600) * NS_PER_S), acquisition_start_ns=start,
        real_time_s=round(real, 2), live_time_s=round(live, 2), calibration_ns=start,
        g_spectrum=arrays["GSGL"], g_energy_span_kev=720.0, b_spectrum=arrays["BSGL"],
        b_energy_span_kev=config.beta_span_kev, histogram=arrays["HIST"], histogram_gamma_span_kev=720.0,
        histogram_beta_span_kev=config.beta_span_kev,
        certificate=ims2.RawBlock("#Certificate", (" ".join(activities_bq),)), **blocks,
    )
