"""A simulated high-volume air sampler (the particulate station's), on the project's line protocol.

It answers ``*IDN?``, ``*RST`` and ``SOH?`` (docs/mca-protocol.md §4: flow, filter pressure drop,
volume since the filter was changed, sampler state, power); the counting commands get ``-113``, as an
instrument without that subsystem answers. The filter is changed every ``filter_s`` from
``origin_ns``; the pressure drop grows with the air that went through it. Faults: ``fail_flow`` (the
blower stops: flow 0, state FAIL) and ``lose_mains`` (on the UPS, whose charge runs down).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from digitizer import mca
from hil.serialport import PtyLine
from hil.simclock import SimClock
from hil.simthread import LineServer
from timeunits import NS_PER_S

log = logging.getLogger(__name__)


@dataclass
class AirSamplerConfig:
    flow_m3h: float = 900.0  # standard m3/h (the IMS asks for more than 500)
    flow_sd_m3h: float = 12.0
    filter_s: float = 86400.0
    origin_ns: int | None = None  # a filter change; None: when the sampler is built
    filter_dp_hpa: float = 30.0
    filter_dp_per_m3: float = 0.004
    ups_hours: float = 4.0
    serial: str = "AS-01"
    seed: int = 0


class SimAirSampler(LineServer):
    thread_name = "sim-air-sampler"

    def __init__(self, line: PtyLine, clock: SimClock, config: AirSamplerConfig | None = None) -> None:
        self.line, self.clock = line, clock
        self.config = c = config or AirSamplerConfig()
        self.origin_ns = clock.now_ns() if c.origin_ns is None else c.origin_ns
        self._rng = np.random.default_rng(c.seed)
        self._flow_failed_ns: int | None = None
        self._mains_lost_ns: int | None = None
        self.faults: list[dict[str, object]] = []
        self._parser = mca.CommandParser()
        LineServer.__init__(self)

    def fail_flow(self, failed: bool = True) -> None:
        self._flow_failed_ns = self.clock.now_ns() if failed else None
        self.faults.append({"kind": "flow_failure" if failed else "flow_restored",
                            "data_time_ns": self.clock.now_ns()})

    def lose_mains(self, lost: bool = True) -> None:
        self._mains_lost_ns = self.clock.now_ns() if lost else None
        self.faults.append({"kind": "mains_lost" if lost else "mains_restored",
                            "data_time_ns": self.clock.now_ns()})

    def volume_m3(self, t_ns: int) -> float:
        """Air through the current filter (a failed blower moves none after the failure)."""
        c = self.config
        period = round(c.filter_s * NS_PER_S)
        changed = self.origin_ns + (t_ns - self.origin_ns) // period * period
        until = t_ns if self._flow_failed_ns is None else max(changed, min(t_ns, self._flow_failed_ns))
        return c.flow_m3h * (until - changed) / NS_PER_S / 3600

    def soh(self) -> mca.Soh:
        c = self.config
        now = self.clock.now_ns()
        failed = self._flow_failed_ns is not None
        flow = 0.0 if failed else c.flow_m3h + c.flow_sd_m3h * float(self._rng.standard_normal())
        volume = self.volume_m3(now)
        charge = 100.0
        if self._mains_lost_ns is not None:
            charge = max(0.0, 100.0 * (1 - (now - self._mains_lost_ns) / 3600e9 / c.ups_hours))
        return mca.Soh(time_ns=now, flow_m3h=round(flow, 2), volume_m3=round(volume, 2),
                       filter_dp_hpa=round(c.filter_dp_hpa + c.filter_dp_per_m3 * volume, 2),
                       sampler="FAIL" if failed else "RUNNING",
                       power="MAIN" if self._mains_lost_ns is None else "UPS",
                       ups_charge_pct=round(charge, 1))

    def _run(self) -> None:
        while not self._stop.is_set():
            data = self.line.read(timeout=0.05)
            if not data:
                self._parser.lines.flush()
                continue
            for event in self._parser.feed(data):
                if isinstance(event, mca.CommandRejected):
                    self.line.write(mca.encode_error(event.tag, event.code, event.message))
                    continue
                cmd = event.command
                if cmd.name == mca.IDN:
                    reply = mca.encode_ok(cmd.tag, f"IMS-SIM,AIR-SAMPLER,{self.config.serial},1.0")
                elif cmd.name == mca.SOH:
                    reply = mca.encode_ok(cmd.tag, mca.format_soh(self.soh()))
                elif cmd.name == mca.RST:
                    reply = mca.encode_ok(cmd.tag, "")
                else:
                    reply = mca.encode_error(cmd.tag, mca.E_UNDEFINED_HEADER, f"{cmd.name}: no counting here")
                self.line.write(reply)
