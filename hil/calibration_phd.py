"""Simulated calibration and QC spectra of an HPGe detector: a certified mixed source counted by
``gamma_response``, in a CALIBPHD (or QCPHD) with the ``#Certificate`` of the source. The detector's
truth (energy, resolution, efficiency) is the ``GammaResponse``'s; a ``gain`` other than 1 multiplies
its keV per channel (an amplifier drift), while the message's own calibration tables still describe the
undrifted detector, as a station's file would before anyone recalibrates.

The source is a mixed gamma standard of the kind used for HPGe efficiency calibration (nuclides,
lines, emission probabilities and half-lives from ENSDF as tabulated by NuDat; activities ours).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from gci_link import ims2
from hil.gamma_response import EnergyCalibration, GammaResponse, exponential_background
from hil.particulate_sample import CAL_ENERGIES_KEV, T0_NS
from rn_analysis.library import Line

DAY_NS = 86_400 * 1_000_000_000
# nuclide, half-life (value, unit), activity Bq at the reference time, rel. unc %, line keV, intensity %
MIXED_SOURCE: tuple[tuple[str, float, str, float, float, float, float], ...] = (
    ("AM-241", 432.6, "Y", 2000.0, 2.0, 59.5409, 35.92),
    ("CD-109", 461.4, "D", 20000.0, 2.0, 88.0336, 3.66),
    ("CO-57", 271.74, "D", 700.0, 2.0, 122.0607, 85.60),
    ("CE-139", 137.641, "D", 900.0, 2.0, 165.8575, 79.90),
    ("HG-203", 46.594, "D", 2500.0, 2.0, 279.1952, 81.56),
    ("SN-113", 115.09, "D", 2500.0, 2.0, 391.698, 64.97),
    ("SR-85", 64.849, "D", 3000.0, 2.0, 514.0048, 98.50),
    ("CS-137", 30.08, "Y", 2000.0, 2.0, 661.657, 85.10),
    ("Y-88", 106.626, "D", 5000.0, 2.0, 898.042, 93.70),
    ("CO-60", 5.2714, "Y", 3000.0, 2.0, 1173.228, 99.85),
    ("CO-60", 5.2714, "Y", 3000.0, 2.0, 1332.492, 99.9826),
    ("Y-88", 106.626, "D", 5000.0, 2.0, 1836.063, 99.20),
)
UNIT_S = {"Y": 365.2422 * 86_400.0, "D": 86_400.0}


def certificate(reference_ns: int, activity_unc_pct: float | None = None) -> ims2.Certificate:
    """The source's certificate; ``activity_unc_pct`` replaces the stated activity uncertainties (0 lets
    a test see the counting statistics alone)."""
    rows = tuple(ims2.CertificateLine(n, hl, u, a, unc if activity_unc_pct is None else activity_unc_pct,
                                      e, i, "-", 0.0, 0.0)
                 for n, hl, u, a, unc, e, i in MIXED_SOURCE)
    total = sum({n: a for n, _, _, a, *_ in MIXED_SOURCE}.values())
    return ims2.Certificate(total, reference_ns, "BQ", rows)


def drifted(response: GammaResponse, gain: float) -> GammaResponse:
    """The same detector with its keV per channel multiplied by ``gain``."""
    cal = EnergyCalibration(tuple(gain * a for a in response.calibration.coefficients))
    return dataclasses.replace(response, calibration=cal, _cache={})


def expected_counts(response: GammaResponse, acquisition_ns: int, reference_ns: int, real_s: float,
                    live_s: float, fwhm_factor: float = 1.0, continuum_cps: float = 2.0) -> np.ndarray:
    total = exponential_background(response.calibration.edges(response.channels), continuum_cps,
                                   250.0) * real_s
    for _, hl, unit, activity, _, energy, intensity in MIXED_SOURCE:
        lam = math.log(2) / (hl * UNIT_S[unit])
        at_start = activity * math.exp(-lam * (acquisition_ns - reference_ns) / 1e9)
        decays = at_start * -math.expm1(-lam * real_s) / lam * live_s / real_s
        total = total + decays * intensity / 100 * response.line_response(Line(energy, intensity / 100),
                                                                         fwhm_factor)
    return total


def calibration_message(rng: np.random.Generator, *, gain: float = 1.0, fwhm_factor: float = 1.0,
                        real_s: float = 20_000.0, data_type: str = "CALIBPHD",
                        nominal: GammaResponse | None = None, activity_unc_pct: float | None = None
                        ) -> ims2.PhdMessage:
    """One Poisson realisation of the mixed source on the detector ``nominal`` (default
    ``GammaResponse()``) drifted by ``gain`` and broadened by ``fwhm_factor``; the tables are nominal."""
    nominal = nominal or GammaResponse()
    truth = drifted(nominal, gain) if gain != 1.0 else nominal
    reference = T0_NS - 30 * DAY_NS
    live_s = round(0.99 * real_s, 2)
    counts = rng.poisson(expected_counts(truth, T0_NS, reference, real_s, live_s, fwhm_factor))
    r = nominal
    return ims2.PhdMessage(
        data_type=data_type, msg_id="20240301000000000", msg_source="ZZP01", station="ZZP01",
        detector="ZZP01_001", system_type="P", sample_geometry="FILTER", spectrum_qualifier="FULL",
        srid="01202403010011", sample_id="ZZP01_001-2024/03/01-00:00:00.0",
        transmit_ns=T0_NS + int((real_s + 600) * 1e9), acquisition_start_ns=T0_NS, real_time_s=real_s,
        live_time_s=live_s, calibration_ns=reference,
        g_energy=tuple(ims2.EnergyPoint(e, r.calibration.channel(e, r.channels) + 1, 0.01)
                       for e in CAL_ENERGIES_KEV),
        g_resolution=tuple(ims2.ResolutionPoint(e, r.resolution.fwhm(e), 0.01) for e in CAL_ENERGIES_KEV),
        g_efficiency=tuple(ims2.EfficiencyPoint(e, r.efficiency(e), 0.02 * r.efficiency(e))
                           for e in CAL_ENERGIES_KEV),
        g_spectrum=np.asarray(counts, dtype=np.int64), g_first_channel=1,
        g_energy_span_kev=float(np.round(r.calibration.energy(r.channels), 1)),
        certificate=certificate(reference, activity_unc_pct),
    )
