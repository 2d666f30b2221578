"""Radionuclide systems for the cycle tests: configurations, instruments that count on a fake clock, and the
rig that drives a cycle step by step."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitizer import mca
from digitizer.serial_link import InstrumentUnavailable
from gci_link import ims2
from gci_link.cd11 import decode_frame
from gci_link.station_end.outbox import Outbox
from station.config import parse_config
from station.radionuclide.cycle import SampleCycle
from station.radionuclide.instruments import CountState, Detector, DetectorSoh, Readout, Sampler
from station.radionuclide.ledger import MessageLedger
from station.radionuclide.quarantine import Quarantine
from station.radionuclide.schedule import Schedule
from station.radionuclide.settings import RadionuclideConfig
from station.radionuclide.state import StateFile
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


def hour(t_ns: int) -> str:
    return time.strftime("%Y%m%d%H", time.gmtime(t_ns // NS_PER_S))


class Rig:
    """A cycle with its outbox, state file and quarantine under ``folder``; ``restart`` is a crash: a new
    cycle object on the same files, the detector counting on."""

    def __init__(self, folder: Path, config: RadionuclideConfig, start_ns: int, *,
                 instruments: Callable[[Clock], tuple[Detector, Sampler]] | None = None) -> None:
        """``instruments``: the detector and sampler on the rig's clock (default: the fakes)."""
        self.folder, self.config = folder, config
        self.clock = Clock(start_ns)
        gas = config.kind == "noble_gas"
        if instruments is not None:
            self.detector, self.sampler = instruments(self.clock)
        else:
            self.detector = FakeDetector(self.clock, beta_gamma=gas)
            if not gas:  # an HPGe crystal at liquid-nitrogen temperature
                self.detector.hv_v, self.detector.temperature_c = 3000.0, -188.0
            self.sampler = FakeSampler(self.clock, flow_m3h=1.8 if gas else 900.0)
        self.outbox = Outbox(folder / "outbox.sqlite", 1 << 30, clock=self.clock)
        self.schedule = Schedule(config.cycle)
        self.cycle = self._cycle()
        self.cycle.resume(self.clock())

    def _cycle(self) -> SampleCycle:
        ledger = MessageLedger(self.outbox, self.config.name, creator="ZZS", destination="0", signer=None)
        return SampleCycle(self.config, self.detector, self.sampler, ledger,
                           StateFile(self.folder / "state" / "rn.json"),
                           Quarantine(self.folder / "quarantine", self.config.name), self.clock)

    def run_until(self, t_ns: int, step_s: int = 10,
                  before_step: Callable[[int], None] | None = None) -> None:
        """Step the cycle every ``step_s``; ``before_step(now)`` plays what happens outside the station."""
        while self.clock.now < t_ns:
            self.clock.now += step_s * NS_PER_S
            if before_step is not None:
                before_step(self.clock.now)
            self.cycle.step(self.clock.now)

    def restart(self) -> None:
        self.cycle = self._cycle()
        self.cycle.resume(self.clock())

    def messages(self) -> list[tuple[str, ims2.Message]]:
        """(event, parsed message) of everything in the outbox, in sequence order."""
        out = []
        for seq, kind in self.outbox.kinds("ims2 "):
            stored = self.outbox.get(seq)
            assert stored is not None
            body = decode_frame(stored.frame).body
            out.append((kind.split(" ", 3)[3], ims2.parse(body.message.decode("ascii"))))
        return out

    def phd(self, data_type: str, qualifier: str = "FULL", cycle: int | None = None) -> list[ims2.PhdMessage]:
        """PHD messages of a type, of sample ``cycle`` only when given (by SRID)."""
        wanted = None if cycle is None else self.srid(cycle)
        return [m for _, m in self.messages() if isinstance(m, ims2.PhdMessage) and m.data_type == data_type
                and m.spectrum_qualifier == qualifier and wanted in (None, m.srid)]

    def srid(self, cycle: int) -> str:
        c = self.config
        return c.srid_station + hour(self.schedule.collection(cycle)[0]) + c.srid_digits + c.srid_letter

    def alerts(self) -> list[tuple[str, str, str]]:
        return [(m.data_type, m.condition, m.state) for _, m in self.messages()
                if isinstance(m, ims2.AlertMessage)]
