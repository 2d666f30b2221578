"""When each sample is collected and each count runs: a pure function of the configuration and data time.

Collections follow each other without gap, ``collection_s`` long, starting at 1970-01-01 UTC +
``offset_s`` + k x ``collection_s``; k numbers the cycle. Sample k is counted in slot k, which opens
``decay_s`` after its collection ends (for noble gas that wait is the xenon unit's processing) and lasts
one collection period, so slot k ends when slot k + 1 opens and the detector is never asked for two
counts at once. A slot holds, in this order: a QC count (every ``qc_every``-th slot), a detector
background (every ``detbk_every``-th slot), a gas background (noble gas, every slot), the sample count.

Every time here is integer nanoseconds; nothing reads a clock, so a restarted station finds the count
that should be running from the time alone, and tests walk through days of schedule in microseconds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from station.radionuclide.settings import CycleTimes
from timeunits import NS_PER_S


class CountKind(enum.Enum):
    """What a count measures, and the IMS 2.0 data type its spectrum is sent as."""

    QC = "QCPHD"
    DETBK = "DETBKPHD"
    GASBK = "GASBKPHD"
    SAMPLE = "SAMPLEPHD"

    @property
    def data_type(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Count:
    kind: CountKind
    cycle: int  # the slot, and for SAMPLE and GASBK the sample it belongs to
    start_ns: int
    end_ns: int

    @property
    def key(self) -> str:
        """Names the count in the outbox and the state file: ``SAMPLE 1234``."""
        return f"{self.kind.name} {self.cycle}"

    @property
    def length_s(self) -> float:
        return (self.end_ns - self.start_ns) / NS_PER_S


class Schedule:
    def __init__(self, times: CycleTimes) -> None:
        self.times = times
        self.period_ns = times.collection_s * NS_PER_S
        self.anchor_ns = times.offset_s * NS_PER_S
        self.decay_ns = times.decay_s * NS_PER_S

    # ------------------------------------------------------------------------------------ collection

    def collection(self, cycle: int) -> tuple[int, int]:
        """[start, end) of sample ``cycle``'s collection."""
        start = self.anchor_ns + cycle * self.period_ns
        return start, start + self.period_ns

    def collecting(self, t_ns: int) -> int:
        """The cycle whose collection runs at ``t_ns``."""
        return (t_ns - self.anchor_ns) // self.period_ns

    def processing(self, t_ns: int) -> int | None:
        """The cycle whose sample waits between collection and its count at ``t_ns`` (decay or xenon
        processing), or None when no sample waits."""
        cycle = self.collecting(t_ns) - 1
        return cycle if t_ns < self.sample_count(cycle).start_ns else None

    # ---------------------------------------------------------------------------------------- counts

    def slot_start(self, cycle: int) -> int:
        return self.collection(cycle)[1] + self.decay_ns

    def counts(self, cycle: int) -> list[Count]:
        """The counts of slot ``cycle``, in the order they run."""
        t = self.times
        planned = []
        if t.qc_every and cycle % t.qc_every == 0:
            planned.append((CountKind.QC, t.qc_s))
        if t.detbk_every and cycle % t.detbk_every == 0:
            planned.append((CountKind.DETBK, t.detbk_s))
        if t.gasbk_s:
            planned.append((CountKind.GASBK, t.gasbk_s))
        planned.append((CountKind.SAMPLE, t.acquisition_s))
        out, start = [], self.slot_start(cycle)
        for kind, seconds in planned:
            out.append(Count(kind, cycle, start, start + seconds * NS_PER_S))
            start += seconds * NS_PER_S
        return out

    def sample_count(self, cycle: int) -> Count:
        return self.counts(cycle)[-1]

    def slot_at(self, t_ns: int) -> int:
        """The slot open at ``t_ns``."""
        return (t_ns - self.anchor_ns - self.decay_ns) // self.period_ns - 1

    def count_at(self, t_ns: int) -> Count | None:
        """The count scheduled over ``t_ns``; None while the detector idles between counts."""
        return next((c for c in self.counts(self.slot_at(t_ns)) if c.start_ns <= t_ns < c.end_ns), None)

    def next_count(self, t_ns: int) -> Count:
        """The first count that starts at or after ``t_ns``."""
        for cycle in (self.slot_at(t_ns), self.slot_at(t_ns) + 1):
            for count in self.counts(cycle):
                if count.start_ns >= t_ns:
                    return count
        raise AssertionError("a slot always holds a sample count")  # every slot has one, so never here

    def prel_times(self, count: Count) -> list[int]:
        """When the PREL spectra of a sample count are due (none for other counts): every
        ``prel_interval_s`` after its scheduled start, before its end."""
        step = self.times.prel_interval_s * NS_PER_S
        if count.kind is not CountKind.SAMPLE or not step:
            return []
        return list(range(count.start_ns + step, count.end_ns, step))

    # ------------------------------------------------------------------------------------- SOH periods

    def soh_period(self, t_ns: int) -> tuple[int, int, int]:
        """(index, start, end) of the RMSSOH period holding ``t_ns``; periods are epoch-aligned."""
        length = self.times.rmssoh_s * NS_PER_S
        index = t_ns // length
        return index, index * length, (index + 1) * length
