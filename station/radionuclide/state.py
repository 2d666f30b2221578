"""What the cycle must remember across a restart that neither the schedule nor the outbox can tell it.

- the count it put on the detector (the detector keeps counting while the station is down, and after a
  restart the cycle must know whether what the detector holds is that count), with its measurement id;
- the measurement ids of the last detector background and gas background (a sample's header names them);
- the air volume sampled so far per collection (flow readings integrated over time).

One small JSON file per system, replaced atomically (gci_link.durable), written when a count begins or
ends and with every RMSSOH message. The order of writes makes a crash harmless: a count's intent is
written before the detector is told, its start after; an unreadable file is set aside and the cycle
starts from the schedule and the detector.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gci_link.durable import write_atomically
from station.radionuclide.schedule import Count, CountKind

log = logging.getLogger(__name__)

KEEP_CYCLES = 4  # flow integrals kept (the collecting, the processing and the counted sample, one spare)


@dataclass
class CountRecord:
    kind: str  # CountKind name
    cycle: int
    start_ns: int  # scheduled
    end_ns: int  # scheduled; the detector's preset stops it there
    started_ns: int | None = None  # when the detector was started; None: intent written, not yet started
    measurement_id: str | None = None
    abandoned: bool = False  # lost (detector reset, spectrum never readable): no FULL will come

    @classmethod
    def planned(cls, count: Count) -> CountRecord:
        return cls(count.kind.name, count.cycle, count.start_ns, count.end_ns)

    @property
    def count(self) -> Count:
        return Count(CountKind[self.kind], self.cycle, self.start_ns, self.end_ns)

    @property
    def key(self) -> str:
        return self.count.key


@dataclass
class CycleState:
    count: CountRecord | None = None
    detbk_id: str | None = None  # last detector background counted in full
    gasbk: tuple[int, str] | None = None  # (cycle, measurement id) of the last gas background counted in full
    flow: dict[int, list[float]] = field(default_factory=dict)  # cycle -> [m3 sampled, seconds covered]

    def add_flow(self, cycle: int, m3: float, seconds: float) -> None:
        entry = self.flow.setdefault(cycle, [0.0, 0.0])
        entry[0] += m3
        entry[1] += seconds
        for old in sorted(self.flow)[:-KEEP_CYCLES]:
            del self.flow[old]


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> CycleState:
        try:
            data = json.loads(self.path.read_text())
            count = data.get("count")
            gasbk = data.get("gasbk")
            return CycleState(
                count=None if count is None else CountRecord(**count),
                detbk_id=data.get("detbk_id"),
                gasbk=None if gasbk is None else (int(gasbk[0]), str(gasbk[1])),
                flow={int(k): [float(v[0]), float(v[1])] for k, v in data.get("flow", {}).items()},
            )
        except FileNotFoundError:
            return CycleState()
        except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
            aside = self.path.with_name(self.path.name + ".unreadable")
            log.error("cycle state unreadable; set aside, starting from the schedule",
                      extra={"path": str(self.path), "error": str(exc), "kept_as": str(aside)})
            try:
                self.path.replace(aside)
            except OSError:
                pass
            return CycleState()

    def save(self, state: CycleState) -> None:
        data = {"count": None if state.count is None else asdict(state.count), "detbk_id": state.detbk_id,
                "gasbk": state.gasbk, "flow": {str(k): v for k, v in state.flow.items()}}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, (json.dumps(data, indent=1) + "\n").encode())
