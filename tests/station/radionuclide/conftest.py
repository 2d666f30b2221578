"""Radionuclide systems for the cycle tests: configurations, and instruments that count on a fake clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitizer import mca
from digitizer.serial_link import InstrumentUnavailable
from station.config import parse_config
from station.radionuclide.instruments import CountState, DetectorSoh, Readout
from station.radionuclide.settings import RadionuclideConfig
from timeunits import NS_PER_S

BASE = """
[station]
name = "ZZS"
network = "XX"
[link]
endpoints = ["tcp://127.0.0.1:9"]
[archive]
path = "archive"
[outbox]
path = "outbox/outbox.sqlite"
"""


def system_toml(kind: str = "noble_gas", name: str = "gas", **cycle: int) -> str:
    detector_port = f"/dev/tty{name}0"
    sampler_port = detector_port if kind == "noble_gas" else f"/dev/tty{name}1"
    keys = "".join(f"{k} = {v}\n" for k, v in cycle.items())
    return (f'[[radionuclide]]\nname = "{name}"\nkind = "{kind}"\nstation = "ZZX01"\n'
            f'detector_code = "ZZX01_001"\nsrid_station = "01"\n'
            f'[radionuclide.detector]\nport = "{detector_port}"\n'
            f'[radionuclide.sampler]\nport = "{sampler_port}"\n'
            f"[radionuclide.cycle]\n{keys}")


def system_config(kind: str = "noble_gas", **cycle: int) -> RadionuclideConfig:
    return parse_config(BASE + system_toml(kind, **cycle), "test", Path(".")).radionuclide[0]


class Clock:
    def __init__(self, now_ns: int) -> None:
        self.now = now_ns

    def __call__(self) -> int:
        return self.now


@dataclass
class FakeDetector:
    """Counts one count per ``begin`` on the fake clock: real time runs until the preset; the spectrum's
    channel i holds the count's real time (s) x (i + 1), so every read tells when it was taken."""

    clock: Clock
    beta_gamma: bool = True
    channels: int = 16
    started_ns: int | None = None
    preset_s: float = 0.0
    running: bool = False
    fail_reads: int = 0  # the next reads raise
    dead: bool = False  # every request raises
    hv_v: float = 750.0
    temperature_c: float = 23.0
    begins: list[int] = field(default_factory=list)

    def _check(self) -> None:
        if self.dead:
            raise InstrumentUnavailable("fake detector: gone")

    def real_s(self) -> float:
        if self.started_ns is None:
            return 0.0
        return min((self.clock() - self.started_ns) / NS_PER_S, self.preset_s)

    def begin(self, preset_real_s: float) -> None:
        self._check()
        self.started_ns, self.preset_s, self.running = self.clock(), preset_real_s, True
        self.begins.append(self.clock())

    def stop(self) -> None:
        self._check()

    def state(self) -> CountState:
        self._check()
        return CountState(self.real_s() < self.preset_s, self.real_s())

    def read(self) -> Readout:
        self._check()
        if self.fail_reads:
            self.fail_reads -= 1
            raise mca.InstrumentError("DATA:SNAP", mca.E_HARDWARE, "fake read failure")
        real = self.real_s()
        gamma = (np.arange(1, self.channels + 1) * round(real)).astype(np.int64)
        if not self.beta_gamma:
            return Readout(real, real * 0.99, gamma)
        hist = np.ones((self.channels, self.channels), dtype=np.int64)
        return Readout(real, real * 0.99, gamma, gamma.copy(), hist)

    def soh(self) -> DetectorSoh:
        self._check()
        return DetectorSoh(self.hv_v, self.temperature_c)

    def close(self) -> None: ...


@dataclass
class FakeSampler:
    clock: Clock
    flow_m3h: float = 1.8
    sampler: str = "RUNNING"
    power: str = "MAIN"
    trap_temp_c: float = -5.0
    xe_volume_ml: float | None = 1.02

    def soh(self) -> mca.Soh:
        return mca.Soh(time_ns=self.clock(), hv_v=750.0, detector_temp_c=23.0, flow_m3h=self.flow_m3h,
                       filter_dp_hpa=18.0, sampler=self.sampler, trap_temp_c=self.trap_temp_c,
                       xe_volume_ml=self.xe_volume_ml, xe_volume_unc_ml=0.09, xe_yield=0.63,
                       xe_yield_unc=0.05, power=self.power, ups_charge_pct=100.0)

    def close(self) -> None: ...
