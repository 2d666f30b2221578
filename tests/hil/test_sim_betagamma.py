"""The line-protocol driver against the simulated beta-gamma analyser + air sampler + xenon unit on a
pseudo-terminal: chunked read-out over a noisy line, a port that vanishes mid-readout, SOH and faults,
and the simulator's truth (the 81 keV peak and the xenon memory effect)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator

import numpy as np
import pytest

from digitizer import mca
from digitizer.mca_driver import InstrumentUnavailable, LinkConfig, McaDriver
from hil.faults import LineFaults
from hil.nuclides import BETA_GAMMA_BRANCHES
from hil.serialport import CLEAN, PtyLine
from hil.sim_betagamma import BetaGammaSimConfig, SimBetaGamma
from hil.simclock import SimClock
from rn_analysis.library import decays_between, nuclide
from timeunits import NS_PER_S

pytestmark = pytest.mark.pty
T0_NS = 1_700_000_000 * NS_PER_S
WIRE_BAUD = 4_000_000


class Rig:
    def __init__(self, config: BetaGammaSimConfig, faults: LineFaults, **link: object) -> None:
        self.data_s = 0.0
        self.clock = SimClock(T0_NS, monotonic=lambda: self.data_s)
        self.line = PtyLine(WIRE_BAUD, to_host=faults, to_device=faults, seed=5)
        self.sim = SimBetaGamma(self.line, self.clock, config)
        link = {"base_timeout_s": 0.5, "backoff_initial_s": 0.05, "backoff_max_s": 0.2} | link
        self.driver = McaDriver(LinkConfig(self.line.path, baudrate=1_000_000, **link))  # type: ignore[arg-type]

    def advance(self, seconds: float) -> None:
        self.data_s += seconds

    def sim_arrays(self) -> dict[str, np.ndarray]:
        return {"HIST": self.sim.hist, "GSGL": self.sim.gamma, "BSGL": self.sim.beta}


@pytest.fixture
def rig_factory() -> Iterator:
    rigs: list[Rig] = []

    def make(config: BetaGammaSimConfig | None = None, faults: LineFaults = CLEAN, **link: object) -> Rig:
        rig = Rig(config or BetaGammaSimConfig(), faults, **link)
        rig.sim.start()
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.sim.stop()
        rig.driver.close()
        rig.line.close()


XENON = {"Xe-133": 4.0, "Xe-131m": 0.3, "Xe-133m": 0.2, "Xe-135": 0.8}


def _counted(rig: Rig, seconds: float, preset_s: float) -> None:
    d = rig.driver
    d.set_presets(real_s=preset_s)
    d.clear()
    d.start()
    rig.advance(seconds)


def test_identify_presets_and_a_whole_readout(rig_factory) -> None:
    rig = rig_factory()
    d = rig.driver
    assert d.identify() == mca.Identity("IMS-SIM", "BG-256", "0042", "1.0")
    rig.sim.load_sample("ZZX01-S1", XENON)
    _counted(rig, 50_000, 43_200)
    assert d.presets() == mca.Presets(43_200.0, 0.0)
    readout = d.read_spectrum()
    assert readout.acquisition.state == "DONE" and readout.acquisition.real_s == 43_200
    assert readout.arrays["HIST"].shape == (256, 256)
    for name, array in rig.sim_arrays().items():
        np.testing.assert_array_equal(readout.arrays[name], array)
    hist = readout.arrays["HIST"]
    assert hist.sum() < readout.arrays["GSGL"].sum()  # coincidences are a subset of the gamma singles
    assert set(np.argsort(hist.sum(axis=1))[-2:]) <= {9, 10, 11, 28, 29}  # 30 keV X-rays, 81 keV gamma
    assert d.counters.retries == 0


def test_readout_over_a_noisy_line_is_exact(rig_factory) -> None:
    rig = rig_factory(faults=LineFaults(bit_error_rate=1e-6), attempts=6)
    d = rig.driver
    rig.sim.load_sample("S", XENON)
    _counted(rig, 43_300, 43_200)
    rig.sim.inject_noise(300)
    rig.sim.corrupt_next_reply()
    readout = d.read_spectrum()
    for name, array in rig.sim_arrays().items():
        np.testing.assert_array_equal(readout.arrays[name], array)
    assert d.counters.garbled >= 1 and d.counters.failures == 0


def test_vanished_mid_readout_is_reported_and_never_half_read(rig_factory) -> None:
    rig = rig_factory(attempts=2)
    d = rig.driver
    rig.sim.load_sample("S", XENON)
    _counted(rig, 3_700, 3_600)
    rig.sim.vanish_during_readout(after_chunks=5, down_s=1.2)
    with pytest.raises(InstrumentUnavailable, match="DATA:CHUNK\\? 1 HIST 5 failed"):
        d.read_spectrum()
    assert d.counters.port_errors >= 1 and d.counters.failures == 1
    time.sleep(1.3)
    rig.sim.vanish_during_readout(after_chunks=20, down_s=0.2)  # a short outage is ridden out
    d.link.config.attempts = 5
    readout = d.read_spectrum()
    for name, array in rig.sim_arrays().items():
        np.testing.assert_array_equal(readout.arrays[name], array)
    assert readout.snap_id == 2 and d.counters.failures == 1


def test_refusals_soh_and_faults(rig_factory) -> None:
    rig = rig_factory()
    d = rig.driver
    rig.sim.load_sample("S", XENON, xe_ml=1.1, xe_yield=0.7)
    d.start()
    with pytest.raises(mca.InstrumentError) as exc:
        d.set_presets(real_s=100)
    assert exc.value.code == mca.E_SETTINGS_CONFLICT and d.counters.retries == 0
    rig.advance(3_600)
    soh = d.soh()
    assert soh.sampler == "RUNNING" and soh.stage == "COLLECT" and soh.sample_id == "S"
    assert soh.flow_m3h == pytest.approx(1.85, abs=0.1) and soh.volume_m3 == pytest.approx(1.85, rel=1e-3)
    assert soh.xe_volume_ml == pytest.approx(1.1) and soh.xe_yield == pytest.approx(0.7)
    assert soh.filter_dp_hpa > 18 and soh.trap_temp_c == -5 and soh.hv_v == 750
    rig.sim.fail_flow()
    rig.advance(3_600)
    soh = d.soh()
    assert soh.sampler == "FAIL" and soh.flow_m3h == 0 and soh.volume_m3 == pytest.approx(1.85, rel=1e-3)
    rig.advance(43_200 - 7_200 + 10)
    assert d.soh().stage == "PROCESS"
    rig.sim.fail_cooler()
    rig.advance(1_800)
    assert d.soh().trap_temp_c == pytest.approx(10.0)
    rig.sim.load_sample("S2", XENON, xe_yield=0.7)
    assert d.soh().xe_yield == pytest.approx(0.7 * (24 - 10) / 29)
    before = d.acquisition_status().live_s
    rig.sim.stick()
    rig.advance(600)
    assert d.acquisition_status().live_s == before and d.acquisition_status().state == "RUNNING"
    rig.sim.drop_hv()
    d.stop()
    with pytest.raises(mca.InstrumentError) as exc:
        d.start()
    assert exc.value.code == mca.E_HARDWARE and d.soh().hv_v < 10
    assert [f["kind"] for f in rig.sim.faults] == ["flow_failure", "cooler_failure", "stuck_acquisition",
                                                   "hv_drop"]


def _gamma_peak_area(gamma: np.ndarray, span_kev: float, energy: float, fwhm: float) -> tuple[float, float]:
    kev = span_kev / gamma.shape[0]
    lo, hi = int((energy - 1.5 * fwhm) / kev), int((energy + 1.5 * fwhm) / kev) + 1
    band = int(fwhm / kev)
    left, right = gamma[lo - band:lo], gamma[hi:hi + band]
    background = (left.mean() + right.mean()) / 2 * (hi - lo)
    gross = float(gamma[lo:hi].sum())
    return gross - background, math.sqrt(gross + ((hi - lo) / (2 * band)) ** 2 * (left.sum() + right.sum()))


def test_truth_81_kev_peak_and_memory_effect(rig_factory, tmp_path) -> None:
    config = BetaGammaSimConfig(seed=7)
    rig = rig_factory(config)
    d = rig.driver
    activity = 20.0
    rig.sim.load_sample("S", {"Xe-133": activity})
    _counted(rig, 43_300, 43_200)
    sample = d.read_spectrum()
    rig.sim.evacuate()
    _counted(rig, 43_300, 43_200)
    gasbk = d.read_spectrum()
    truth = json.loads(rig.sim.write_truth(tmp_path).read_text())
    lam = nuclide("Xe-133").decay_constant
    branch = next(b for b in BETA_GAMMA_BRANCHES if b.nuclide == "Xe-133" and b.photon_kev > 80)
    eff = rig.sim.gamma_efficiency(branch.photon_kev)
    fwhm = config.gamma_fwhm_81_kev
    # the sample: activity x branch x efficiency x live time (decay during the count integrated)
    live_fraction = sample.acquisition.live_s / sample.acquisition.real_s
    expected = decays_between(activity, lam, 0, 43_200) * branch.fraction * eff * live_fraction
    area, sigma = _gamma_peak_area(sample.arrays["GSGL"].astype(float), config.gamma_span_kev, 81.0, fwhm)
    assert abs(area - expected) < 4 * sigma and area > 20 * sigma, (expected, area, sigma)
    # the gas background: what the memory left, decayed since the evacuation
    residue = truth["samples"][-1]["residue_bq"]["Xe-133"]
    assert residue == pytest.approx(config.memory_fraction * activity * math.exp(-lam * 43_300))
    live_fraction = gasbk.acquisition.live_s / gasbk.acquisition.real_s
    expected_bk = decays_between(residue, lam, 0, 43_200) * branch.fraction * eff * live_fraction
    gamma_bk = gasbk.arrays["GSGL"].astype(float)
    area_bk, sigma_bk = _gamma_peak_area(gamma_bk, config.gamma_span_kev, 81.0, fwhm)
    assert abs(area_bk - expected_bk) < 4 * sigma_bk and area_bk > 5 * sigma_bk, (expected_bk, area_bk)
    assert truth["counts"][-1]["real_s"] == pytest.approx(43_200)
