"""The station's PHD messages analysed as the IDC analyses them: a sample cycle run on a fake clock with the
simulated instruments driven without a line, configured with the calibration a simulated station writes
(``hil.rn_station``), sends every PHD type with the blocks its analysis needs, and the sample's
concentrations come back near the simulated truth."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from digitizer import mca
from gci_link import ims2
from hil.betagamma_phd import DEFAULT_UBQ_M3, SetTimes, loaded_activity
from hil.nuclides import Source
from hil.rn_station import calibration_toml, true_calibration
from hil.sim_betagamma import BetaGammaSimConfig, SimBetaGamma
from hil.sim_dp5 import Dp5SimConfig, SimDp5
from hil.sim_sampler import AirSamplerConfig, SimAirSampler
from hil.simclock import SimClock
from rn_analysis.betagamma import analyse_betagamma
from rn_analysis.library import nuclide
from rn_analysis.particulate import analyse_particulate
from rn_analysis.result import AnalysisResult
from rn_analysis.xenon import XE_ML_PER_M3_AIR
from station.config import parse_config
from station.radionuclide.instruments import KELVIN, CountState, DetectorSoh, Readout
from station.radionuclide.schedule import CountKind, Schedule
from station.radionuclide.settings import RadionuclideConfig
from tests.station.radionuclide.conftest import BASE, Clock, Rig, system_toml
from timeunits import NS_PER_S

T = 1_800_000_000 * NS_PER_S
STEP_S = 60
CALIBRATED_NS = T - 10 * 86_400 * NS_PER_S
SIGMAS = 4.0
# a 12 h noble-gas cycle whose slot holds a detector background, a gas background and the sample count
GAS_CYCLE = dict(detbk_s=7200, detbk_every=1, gasbk_s=2400, acquisition_s=33600)
FLOW_M3H = 900.0  # the particulate sampler's
FILTER_BQ = {"Be-7": 60.0, "Cs-137": 0.5}  # on the particulate filter at its collection stop


class SimHpge:
    """The station's detector interface over a simulated PX5-HPGe, without a line."""

    def __init__(self, sim: SimDp5, channels: int) -> None:
        self.sim, self.channels = sim, channels

    def begin(self, preset_real_s: float) -> None:
        self.sim.begin_count(preset_real_s, self.channels)

    def stop(self) -> None: ...  # the preset real time stops the count

    def state(self) -> CountState:
        status = self.sim.read_count()[1]
        return CountState(status.mca_enabled, status.real_time_s)

    def read(self) -> Readout:
        spectrum, status = self.sim.read_count()
        return Readout(status.real_time_s, status.live_time_s, spectrum.astype("int64"))

    def soh(self) -> DetectorSoh:
        status = self.sim.read_count()[1]
        return DetectorSoh(status.high_voltage_v, status.detector_temperature_k - KELVIN)

    def close(self) -> None: ...


class SimCell:
    """The station's detector and sampler interfaces over the simulated beta-gamma system, without a line."""

    def __init__(self, sim: SimBetaGamma) -> None:
        self.sim = sim

    def begin(self, preset_real_s: float) -> None:
        self.sim.begin_count(preset_real_s)

    def stop(self) -> None: ...  # the preset real time stops the count

    def state(self) -> CountState:
        real = self.sim.read_count()[1]
        return CountState(self.sim.running, real)

    def read(self) -> Readout:
        arrays, real, live, _ = self.sim.read_count()
        return Readout(real, live, arrays["GSGL"], arrays["BSGL"], arrays["HIST"])

    def soh(self) -> mca.Soh:  # as a sampler; as a detector, its HV and temperature
        return self.sim.soh()

    def close(self) -> None: ...


class CellDetector(SimCell):
    def soh(self) -> DetectorSoh:  # type: ignore[override]
        soh = self.sim.soh()
        return DetectorSoh(soh.hv_v, soh.detector_temp_c)


def sim_clock(clock: Clock) -> SimClock:
    """The simulators' clock, following the rig's fake one."""
    return SimClock(clock.now, monotonic=lambda start=clock.now: (clock.now - start) / NS_PER_S)


def configured(kind: str, sim: SimDp5 | SimBetaGamma, **cycle: int) -> RadionuclideConfig:
    text = BASE + system_toml(kind, **cycle) + calibration_toml(true_calibration(sim), CALIBRATED_NS)
    return parse_config(text, "station.toml", Path(".")).radionuclide[0]


def by_name(result: AnalysisResult) -> dict[str, tuple[float, float]]:
    return {n.name: (n.concentration_uBq_m3, n.uncertainty_uBq_m3) for n in result.nuclides}


def assert_near(result: AnalysisResult, truth_ubq_m3: dict[str, float]) -> None:
    got = by_name(result)
    for name, truth in truth_ubq_m3.items():
        value, sigma = got[name.upper()]
        assert abs(value - truth) <= SIGMAS * sigma, f"{name}: {value:.1f} +- {sigma:.1f}, truth {truth:.1f}"


def noble_gas_run(folder: Path, seed: int) -> tuple[Rig, int]:
    """A noble-gas cycle from the start of collection k to the end of its sample count (k returned)."""
    holder: dict[str, SimBetaGamma] = {}

    def instruments(clock: Clock) -> tuple[CellDetector, SimCell]:
        sim = SimBetaGamma(None, sim_clock(clock),  # type: ignore[arg-type]  # no line: not started
                           BetaGammaSimConfig(cycle_origin_ns=start, seed=seed))
        holder["sim"] = sim
        return CellDetector(sim), SimCell(sim)

    probe = SimBetaGamma(None, SimClock(T), BetaGammaSimConfig())  # type: ignore[arg-type]  # its calibration
    config = configured("noble_gas", probe, **GAS_CYCLE)
    schedule = Schedule(config.cycle)
    k = schedule.collecting(T) + 1
    start = schedule.collection(k)[0]
    rig = Rig(folder, config, start, instruments=instruments)
    sim = holder["sim"]
    collection_s = config.cycle.collection_s
    loaded: dict[int, dict[str, float]] = {}

    def xenon_unit(now_ns: int) -> None:
        """Empty the cell as a background count begins; load a sample of air at the truth concentrations
        as its count begins (sample k - 1 too: sample k's gas background measures what it left)."""
        for slot in (k - 1, k):
            for count in schedule.counts(slot):
                if not count.start_ns <= now_ns < count.start_ns + STEP_S * NS_PER_S:
                    continue
                if count.kind in (CountKind.DETBK, CountKind.GASBK):
                    sim.evacuate()
                elif count.kind is CountKind.SAMPLE:
                    times = SetTimes(collection_s=collection_s,
                                     processing_s=(now_ns - schedule.collection(slot)[1]) / NS_PER_S)
                    air_m3 = 1.0 / XE_ML_PER_M3_AIR  # the air whose 1 ml of xenon the unit extracts
                    loaded[slot] = {name: loaded_activity(name, c, times, air_m3)
                                    for name, c in DEFAULT_UBQ_M3.items()}
                    sim.load_sample(f"S{slot}", loaded[slot], xe_ml=1.0)

    sample_count = schedule.counts(k)[-1]
    rig.run_until(sample_count.end_ns + 5 * STEP_S * NS_PER_S, STEP_S, xenon_unit)
    assert sorted(loaded) == [k - 1, k]
    return rig, k


def test_noble_gas_station_messages_are_analysed_to_the_simulated_concentrations(tmp_path):
    rig, k = noble_gas_run(tmp_path, seed=3)
    assert rig.alerts() == []
    srid = rig.srid(k)
    (sample,) = rig.phd("SAMPLEPHD", cycle=k)
    (gasbk,) = rig.phd("GASBKPHD", cycle=k)
    detbk = next(m for m in rig.phd("DETBKPHD") if m.sample_id == sample.detbk_id)
    for m in (sample, gasbk, detbk):  # every type carries the blocks the analysis needs
        assert m.roi_limits and m.bg_efficiency and m.ratios and m.g_energy and m.b_energy, m.data_type
        assert m.calibration_ns == CALIBRATED_NS
        assert not m.warnings, m.warnings
    assert sample.srid == srid and sample.xe_volume_ml == pytest.approx(1.0)
    result = analyse_betagamma(sample, gasbk, detbk)
    assert all(f.passed for f in result.flags if f.name in ("detector_background", "gas_background"))
    assert_near(result, DEFAULT_UBQ_M3)
    assert by_name(result)["XE-133"][0] > 3 * by_name(result)["XE-133"][1]  # measured, not just bounded
    prel = rig.phd("SAMPLEPHD", "PREL", cycle=k)[-1]  # a PREL is analysable too
    assert analyse_betagamma(prel, gasbk, detbk).nuclides


def particulate_run(folder: Path, seed: int) -> tuple[Rig, int]:
    """A particulate cycle from the start of collection k to the end of its sample count (k returned)."""
    probe = SimDp5(None, SimClock(T))  # type: ignore[arg-type]  # its calibration
    config = configured("particulate", probe)
    schedule = Schedule(config.cycle)
    k = schedule.collecting(T) + 1
    start, stop = schedule.collection(k)

    def instruments(clock: Clock) -> tuple[SimHpge, SimAirSampler]:
        follows = sim_clock(clock)
        sources = [Source(n, a, stop) for n, a in FILTER_BQ.items()]
        dp5 = SimDp5(None, follows, Dp5SimConfig(sources=sources, seed=seed))  # type: ignore[arg-type]
        air = AirSamplerConfig(flow_m3h=FLOW_M3H, filter_s=config.cycle.collection_s, origin_ns=start,
                               seed=seed)
        return SimHpge(dp5, config.spectra.channels), SimAirSampler(None, follows, air)  # type: ignore[arg-type]

    rig = Rig(folder, config, start, instruments=instruments)
    rig.run_until(schedule.counts(k)[-1].end_ns + 5 * STEP_S * NS_PER_S, STEP_S)
    return rig, k


def filter_truth(sample: ims2.PhdMessage) -> dict[str, float]:
    """uBq/m3 such that a collection of the sample's air volume leaves ``FILTER_BQ`` at its stop."""
    assert sample.collection_start_ns is not None and sample.collection_stop_ns is not None
    assert sample.air_volume_m3 is not None
    t_c = (sample.collection_stop_ns - sample.collection_start_ns) / NS_PER_S
    truth = {}
    for name, bq in FILTER_BQ.items():
        lam = nuclide(name).decay_constant
        truth[name] = 1e6 * bq * lam * t_c / (sample.air_volume_m3 * -math.expm1(-lam * t_c))
    return truth


def test_particulate_station_messages_are_analysed_to_the_simulated_concentrations(tmp_path):
    rig, k = particulate_run(tmp_path, seed=5)
    assert rig.alerts() == []
    (sample,) = rig.phd("SAMPLEPHD", cycle=k)
    (qc,) = [m for m in rig.phd("QCPHD") if m.acquisition_start_ns >= rig.schedule.slot_start(k)]
    for m in (sample, qc):
        assert m.g_energy and m.g_resolution and m.g_efficiency, m.data_type
        assert m.calibration_ns == CALIBRATED_NS
    t_c = rig.config.cycle.collection_s
    assert sample.air_volume_m3 == pytest.approx(FLOW_M3H * t_c / 3600, rel=0.01)  # as the sampler reported
    truth = filter_truth(sample)
    result = analyse_particulate(sample)
    assert_near(result, truth)
    assert {"BE-7", "CS-137"} <= {n.name for n in result.nuclides if n.identified}
