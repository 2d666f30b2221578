"""The instruments' state of health over one RMSSOH period, as the rows of that message.

Each poll reads the detector and the sampler; at the end of the period the readings become one row per
block (means, and the flow's standard deviation), with the period's start and length. Blocks and value
order: docs/ims2.md ("RMSSOH"); what a station does not measure is written ``-``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from digitizer import mca
from gci_link.ims2 import SohRow
from station.radionuclide.instruments import DetectorSoh
from timeunits import NS_PER_S


@dataclass(frozen=True, slots=True)
class Poll:
    time_ns: int
    detector: DetectorSoh | None  # None: the detector did not answer
    sampler: mca.Soh | None


@dataclass
class SohPeriod:
    index: int
    start_ns: int
    end_ns: int
    polls: list[Poll] = field(default_factory=list)

    def blocks(self, collecting: str | None, processing: str | None, acquiring: str | None
               ) -> dict[str, tuple[SohRow, ...]]:
        """The RMSSOH blocks; the three SRIDs fill ``#EquipStatus``."""
        start, seconds = self.start_ns, (self.end_ns - self.start_ns) // NS_PER_S

        def row(*values: float | int | str | None) -> tuple[SohRow, ...]:
            return (SohRow(values, start, seconds),)

        det = [p.detector for p in self.polls if p.detector is not None]
        sam = [p.sampler for p in self.polls if p.sampler is not None]
        flows = [s.flow_m3h for s in sam if s.flow_m3h is not None]
        drops = [s.filter_dp_hpa for s in sam if s.filter_dp_hpa is not None]
        traps = [s.trap_temp_c for s in sam if s.trap_temp_c is not None]
        hv = [abs(d.hv_v) for d in det if d.hv_v is not None]
        temps = [d.temperature_c for d in det if d.temperature_c is not None]
        out: dict[str, tuple[SohRow, ...]] = {}
        if flows:
            out["#AirSamplerFlow"] = row(_mean(flows), statistics.pstdev(flows))
        if drops:
            out["#AirSamplerEnv"] = row(None, _mean(drops), None)
        if hv or temps:
            out["#DetEnv"] = row(None, None, None, _rounded(hv), _rounded(temps), None, None, None)
        power = next((s for s in reversed(sam) if s.power is not None), None)
        if power is not None:
            charge = None if power.ups_charge_pct is None else round(power.ups_charge_pct)
            out["#PowerSupply"] = row(power.power, "ON", charge)
        out["#EquipStatus"] = row("C", collecting, "P", processing, "A", acquiring)
        if traps:
            out["#ProcessSensors"] = row("TEMP", "XE_TRAP", _mean(traps))
        return out


def _mean(values: list[float]) -> float:
    return round(statistics.fmean(values), 4)


def _rounded(values: list[float]) -> int | None:
    return round(statistics.fmean(values)) if values else None
