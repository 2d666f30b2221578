"""The DP5 driver against the simulated PX5-HPGe on a pseudo-terminal: configuration, faults on the
line and in the detector, a port that vanishes mid-readout, and the simulator's truth (peak areas
against activity x intensity x efficiency x live time).

Data time is set by hand (a ``SimClock`` on a fake monotonic), so a day-long count costs nothing.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator

import numpy as np
import pytest

from digitizer.dp5_driver import Dp5CommandError, Dp5Driver, InstrumentUnavailable, LinkConfig
from hil.faults import LineFaults
from hil.gamma_response import Efficiency, EnergyCalibration, Resolution
from hil.nuclides import Source
from hil.serialport import CLEAN, PtyLine
from hil.sim_dp5 import Dp5SimConfig, SimDp5
from hil.simclock import SimClock
from rn_analysis.library import decays_between, nuclide
from timeunits import NS_PER_S

pytestmark = pytest.mark.pty
T0_NS = 1_700_000_000 * NS_PER_S
WIRE_BAUD = 2_000_000


class Rig:
    def __init__(self, config: Dp5SimConfig, faults: LineFaults = CLEAN, **link: object) -> None:
        self.data_s = 0.0
        self.clock = SimClock(T0_NS, monotonic=lambda: self.data_s)
        self.line = PtyLine(WIRE_BAUD, to_host=faults, seed=3)
        self.sim = SimDp5(self.line, self.clock, config)
        link = {"base_timeout_s": 0.5, "backoff_initial_s": 0.05, "backoff_max_s": 0.2} | link
        self.driver = Dp5Driver(LinkConfig(self.line.path, baudrate=1_000_000, **link))  # type: ignore[arg-type]

    def advance(self, seconds: float) -> None:
        self.data_s += seconds


@pytest.fixture
def rig_factory() -> Iterator:
    rigs: list[Rig] = []

    def make(config: Dp5SimConfig | None = None, **kwargs: object) -> Rig:
        rig = Rig(config or Dp5SimConfig(sources=[Source("Cs-137", 200.0, T0_NS)]), **kwargs)
        rig.sim.start()
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.sim.stop()
        rig.driver.close()
        rig.line.close()


def test_configure_count_and_read(rig_factory) -> None:
    rig = rig_factory()
    d = rig.driver
    d.configure({"MCAC": 1024, "PRET": 600})
    assert d.read_configuration(["MCAC", "PRET"]) == {"MCAC": "1024", "PRET": "600"}
    d.clear()
    d.start()
    rig.advance(300)
    running = d.status()
    assert running.mca_enabled and running.accumulation_time_s == pytest.approx(300)
    rig.advance(1000)
    spectrum = d.read_spectrum()
    assert spectrum.channels == 1024
    s = spectrum.status
    assert not s.mca_enabled
    assert s.accumulation_time_s == pytest.approx(600) and s.real_time_s == pytest.approx(600)
    assert s.device_type == "PX5" and s.serial_number == 5501 and s.high_voltage_v == 3000
    assert int(spectrum.counts.sum()) == s.slow_count <= s.fast_count
    np.testing.assert_array_equal(spectrum.counts, rig.sim.spectrum())
    assert d.counters.retries == 0 and d.counters.garbled == 0


def test_refused_settings_raise_at_once(rig_factory) -> None:
    d = rig_factory().driver
    with pytest.raises(Dp5CommandError, match="BAD_PARAMETER.*MCAC=1000"):
        d.configure({"MCAC": 1000})
    with pytest.raises(Dp5CommandError, match="UNRECOGNIZED_COMMAND.*ZZZZ"):
        d.configure({"ZZZZ": 1})
    assert d.counters.retries == 0 and d.counters.device_errors == 2
    assert d.read_configuration(["MCAC"]) == {"MCAC": "8192"}  # nothing was half applied


def test_noise_and_damaged_packets_are_retried_and_the_spectrum_is_exact(rig_factory) -> None:
    rig = rig_factory(faults=LineFaults(bit_error_rate=5e-7), attempts=6)  # ~1 flipped bit in 10 spectra
    d = rig.driver
    d.configure({"MCAC": 8192, "PRET": 3600})
    d.start()
    rig.advance(4000)
    rig.sim.inject_noise(500)
    first = d.read_spectrum()
    rig.sim.corrupt_next_reply()
    second = d.read_spectrum()
    for spectrum in (first, second):
        np.testing.assert_array_equal(spectrum.counts, rig.sim.spectrum())
    assert d.counters.resyncs >= 1 and d.counters.garbled >= 1 and d.counters.retries >= 1
    assert d.counters.failures == 0


def test_vanished_mid_readout_is_reported_and_never_half_read(rig_factory) -> None:
    rig = rig_factory(attempts=2)
    d = rig.driver
    d.configure({"MCAC": 8192, "PRET": 600})
    d.start()
    rig.advance(700)
    rig.sim.vanish_during_next_spectrum(down_s=1.5)
    with pytest.raises(InstrumentUnavailable, match="spectrum failed after 2 attempts"):
        d.read_spectrum()
    assert d.counters.port_errors >= 1 and d.counters.failures == 1
    # back again: the next call reopens the port and gets the whole spectrum
    rig.sim.vanish_during_next_spectrum(down_s=0.2)  # and a short outage is ridden out within one call
    d.link.config.attempts = 5
    time.sleep(1.6)
    spectrum = d.read_spectrum()
    np.testing.assert_array_equal(spectrum.counts, rig.sim.spectrum())
    assert d.counters.opens >= 3 and d.counters.failures == 1
    assert [f["kind"] for f in rig.sim.faults] == ["vanished_mid_readout", "vanished_mid_readout"]


def test_detector_faults_show_in_the_status(rig_factory) -> None:
    rig = rig_factory()
    d = rig.driver
    d.configure({"MCAC": 2048})
    d.start()
    rig.advance(600)
    rig.sim.drop_hv()
    before = d.status().slow_count
    rig.advance(600)
    s = d.status()
    assert s.high_voltage_v < 10 and s.slow_count == before and s.mca_enabled
    cooled = rig_factory()
    cooled.driver.start()
    cooled.sim.fail_cooler()
    cooled.advance(3600)
    warm = cooled.driver.status()
    assert warm.detector_temperature_k == pytest.approx(105.0) and warm.hpge_hv_inhibited is False
    cooled.advance(3600)
    hot = cooled.driver.status()
    assert hot.detector_temperature_k > 110 and hot.hpge_hv_inhibited is True and hot.high_voltage_v < 10
    stuck = rig_factory()
    stuck.driver.start()
    stuck.advance(100)
    stuck.sim.stick()
    stuck.advance(500)
    frozen = stuck.driver.status()
    assert frozen.mca_enabled and frozen.real_time_s == pytest.approx(100)


def _net_area(counts: np.ndarray, cal: EnergyCalibration, res: Resolution,
              energy: float) -> tuple[float, float]:
    """Net peak area and its 1-sigma: +-2.5 FWHM window, linear background from 2-FWHM side bands."""
    n = counts.shape[0]
    centre = cal.channel(energy, n)
    fwhm_ch = res.fwhm(energy) / (cal.energy(centre + 0.5) - cal.energy(centre - 0.5))
    lo, hi = int(round(centre - 2.5 * fwhm_ch)), int(round(centre + 2.5 * fwhm_ch)) + 1
    band = int(round(2 * fwhm_ch))
    left, right = counts[lo - band:lo], counts[hi:hi + band]
    gross = float(counts[lo:hi].sum())
    background = (left.mean() + right.mean()) / 2 * (hi - lo)
    var = gross + ((hi - lo) / (2 * band)) ** 2 * (left.sum() + right.sum())
    return gross - background, math.sqrt(var)


def test_truth_peak_areas_match_activity_intensity_efficiency_live_time(rig_factory, tmp_path) -> None:
    sample = [Source("Cs-137", 30.0, T0_NS), Source("Be-7", 400.0, T0_NS - 86_400 * NS_PER_S),
              Source("Ba-140", 60.0, T0_NS), Source("I-131", 40.0, T0_NS)]
    rig = rig_factory(Dp5SimConfig(sources=sample, seed=11))
    d = rig.driver
    d.configure({"MCAC": 8192, "PRET": 86_400})
    d.clear()
    d.start()
    rig.advance(90_000)
    spectrum = d.read_spectrum()
    status = spectrum.status
    truth = json.loads(rig.sim.write_truth(tmp_path).read_text())
    count = truth["counts"][-1]
    # the reported live time (accumulation x slow/fast) is the true live time
    assert status.live_time_s == pytest.approx(count["live_s"], rel=2e-4)
    live_fraction = count["live_s"] / count["real_s"]
    cal, res, eff = EnergyCalibration(), Resolution(), Efficiency()
    checked = []
    for src in sample:
        nuc = nuclide(src.nuclide)
        since_ref = (T0_NS - src.reference_ns) / NS_PER_S
        decays = decays_between(src.activity_bq, nuc.decay_constant, since_ref, since_ref + 86_400)
        for line in nuc.gammas:
            if line.intensity < 0.1:
                continue
            expected = decays * line.intensity * eff(line.energy_kev) * live_fraction
            area, sigma = _net_area(spectrum.counts.astype(np.float64), cal, res, line.energy_kev)
            checked.append((src.nuclide, line.energy_kev, expected, area, sigma))
            assert abs(area - expected) < 4 * sigma, (src.nuclide, line.energy_kev, expected, area, sigma)
    assert len(checked) == 4 and all(area > 10 * sigma for *_, area, sigma in checked)
    assert {s["nuclide"] for s in truth["sources"] if s["sample"]} == {"Cs-137", "Be-7", "Ba-140", "I-131"}
