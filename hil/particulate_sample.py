"""Simulated particulate (HPGe) samples with known air concentrations, made without pseudo-terminals:
the expected counts of ``gamma_response`` for the nuclides a filter collected plus the shield's
background, drawn as Poisson numbers, in a SAMPLEPHD whose calibration tables describe the same
detector. Tests and benchmarks of the analysis use it to compare recovered concentrations with truth.

A constant concentration C (Bq/m3) over the collection time t_c at the flow V/t_c leaves
A = C (V/t_c) (1 - e^-lambda t_c) / lambda on the filter at the collection stop; the filter's
decays during the count are those of A from t_p to t_p + t_r, of which the live fraction t_l/t_r is
recorded. Dead time is that fraction only (no pile-up).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gci_link import ims2
from hil.gamma_response import GammaResponse, exponential_background
from hil.nuclides import Source
from hil.sim_dp5 import default_background
from rn_analysis.library import decays_between, nuclide

HOUR_NS = 3600 * 1_000_000_000
T0_NS = 1_709_251_200 * 1_000_000_000  # 2024-03-01 00:00 UTC
CAL_ENERGIES_KEV = (46.5, 122.06, 238.63, 477.6, 661.66, 1173.2, 1332.5, 1460.8, 2614.5)
EFF_ENERGIES_KEV = (46.5, 59.5, 88.0, 122.06, 165.9, 279.2, 391.7, 514.0, 661.66, 898.0, 1173.2, 1332.5,
                    1836.1, 2614.5)


@dataclass(frozen=True)
class SampleSetup:
    """The timing of one filter and the detector that counts it (defaults: the IDC's 24/24/24 h)."""

    collection_h: float = 24.0
    decay_h: float = 24.0
    real_s: float = 84_000.0
    live_fraction: float = 0.998
    flow_m3_h: float = 900.0
    continuum_cps: float = 1.5
    continuum_scale_kev: float = 250.0
    efficiency_rel_unc: float = 0.0  # written into #g_Efficiency; 0 tests the counting statistics alone
    background: bool = True  # the shield's K-40 and radon/thoron progeny (``sim_dp5.default_background``)
    response: GammaResponse = field(default_factory=GammaResponse)

    @property
    def air_volume_m3(self) -> float:
        return self.flow_m3_h * self.collection_h


def expected_counts(concentrations_bq_m3: dict[str, float], setup: SampleSetup) -> np.ndarray:
    """Expected counts per channel of the sample spectrum."""
    r = setup.response
    t_c, t_p, t_r = setup.collection_h * 3600, setup.decay_h * 3600, setup.real_s
    live = setup.live_fraction
    total = exponential_background(r.calibration.edges(r.channels), setup.continuum_cps,
                                   setup.continuum_scale_kev) * t_r * live
    for name, conc in concentrations_bq_m3.items():
        n = nuclide(name)
        lam = n.decay_constant
        on_filter = conc * setup.air_volume_m3 / t_c * -math.expm1(-lam * t_c) / lam
        total = total + decays_between(on_filter, lam, t_p, t_p + t_r) * live * r.per_decay(n)
    if setup.background:
        for src in default_background(0):
            total = total + _source_decays(src, t_r) * live * r.per_decay(nuclide(src.nuclide))
    return total


def _source_decays(src: Source, real_s: float) -> float:
    return src.decays(0, int(real_s * 1e9))


def calibration_tables(response: GammaResponse, channels: int | None = None,
                       efficiency_rel_unc: float = 0.0) -> dict[str, Any]:
    """The detector's #g_Energy, #g_Resolution and #g_Efficiency as a calibration with sources would give
    them, for its spectrum read out in ``channels`` channels (the native ones summed in groups, as an
    MCA does; default: native), numbered from 1."""
    group = response.channels // (channels or response.channels)

    def label(energy_kev: float) -> float:  # native index -> index of the group's centre -> number
        return (response.calibration.channel(energy_kev, response.channels) - (group - 1) / 2) / group + 1

    return {
        "g_energy": tuple(ims2.EnergyPoint(e, label(e), 0.01 / group) for e in CAL_ENERGIES_KEV),
        "g_resolution": tuple(ims2.ResolutionPoint(e, response.resolution.fwhm(e), 0.01)
                              for e in CAL_ENERGIES_KEV),
        "g_efficiency": tuple(ims2.EfficiencyPoint(e, response.efficiency(e),
                                                   response.efficiency(e) * efficiency_rel_unc)
                              for e in EFF_ENERGIES_KEV),
    }


def sample_message(counts: np.ndarray, setup: SampleSetup, *,
                   sample_id: str = "ZZP01_001-2024/03/03-00:00:00.0",
                   efficiency_rows: tuple[ims2.EfficiencyPoint, ...] | None = None) -> ims2.PhdMessage:
    """A SAMPLEPHD holding ``counts`` (channels numbered from 1) and the detector's calibration tables."""
    r = setup.response
    stop = T0_NS + int(setup.collection_h * HOUR_NS)
    acq = stop + int(setup.decay_h * HOUR_NS)
    tables = calibration_tables(r, efficiency_rel_unc=setup.efficiency_rel_unc)
    if efficiency_rows:
        tables["g_efficiency"] = efficiency_rows
    return ims2.PhdMessage(
        data_type="SAMPLEPHD", msg_id="20240304000000000", msg_source="ZZP01", station="ZZP01",
        detector="ZZP01_001", system_type="P", sample_geometry="FILTER", spectrum_qualifier="FULL",
        srid="01202403010011", sample_id=sample_id, transmit_ns=acq + int(setup.real_s * 1e9) + HOUR_NS // 6,
        collection_start_ns=T0_NS, collection_stop_ns=stop, air_volume_m3=round(setup.air_volume_m3, 3),
        acquisition_start_ns=acq, real_time_s=setup.real_s,
        live_time_s=round(setup.real_s * setup.live_fraction, 2),
        **tables,
        g_spectrum=np.asarray(counts, dtype=np.int64),
        g_energy_span_kev=float(np.round(r.calibration.energy(r.channels), 1)),
        g_first_channel=1,
    )


def detector_background(rng: np.random.Generator, setup: SampleSetup | None = None,
                        real_s: float = 2 * 84_000.0) -> ims2.PhdMessage:
    """A DETBKPHD of the same detector without a filter (``real_s`` of counting, default twice a sample's)."""
    setup = dataclasses.replace(setup or SampleSetup(), real_s=real_s)
    sample = sample_message(rng.poisson(expected_counts({}, setup)), setup,
                            sample_id="ZZP01_001-2024/02/01-00:00:00.0")
    return dataclasses.replace(sample, data_type="DETBKPHD", collection_start_ns=None,
                               collection_stop_ns=None, air_volume_m3=None)


def simulated_sample(concentrations_bq_m3: dict[str, float], rng: np.random.Generator,
                     setup: SampleSetup | None = None) -> ims2.PhdMessage:
    """One Poisson realisation of a filter with these air concentrations (Bq/m3)."""
    setup = setup or SampleSetup()
    return sample_message(rng.poisson(expected_counts(concentrations_bq_m3, setup)), setup)
