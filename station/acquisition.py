"""Acquisition: digitizer packets in, per-channel runs of contiguous samples out, for the framer.

Each channel keeps a *chain*: the time base (origin, exact rate, clock lock) that the next sample must
continue. A packet that continues it within a fraction of a sample is appended; one that starts later
waits up to the lateness budget (in data time) for the missing packets before the gap is declared final;
one that starts earlier is an overlap (its duplicate samples are dropped and counted, conflicting ones
counted and logged) or, beyond the overlap tolerance, a time tear that starts a new chain rather than
stalling the channel until data time catches up. A channel's first packet is held the same way (an
earlier one may still come, e.g. the driver's startup rewind), unless the framer needs the channel
started because the window it waits for is a lateness budget behind the leading channel. A clock lock
that is unknown (None: the digitizer has sent no status yet, as after every start) continues a chain
that is locked; only a change to or from unlocked breaks it, since only unlocked data is flagged.
Sample times are integer ns: origin plus round(index * 1e9 / rate) with the rate as an exact fraction,
so long runs never drift.

The framer reads ``complete_until_ns`` (data before it is final) and takes data out with ``extract``;
what it takes is dropped, and a cap on what is held raises an alarm instead of growing without bound.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
from collections import deque
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from digitizer.packet import Packet
from station.alarms import AlarmBoard, Severity
from timeunits import NS_PER_S

if TYPE_CHECKING:
    from station.config import AcquisitionSettings, ChannelConfig, StationConfig

log = logging.getLogger(__name__)

BUFFER_ALARM = "acquisition_buffer_full"
RECENT_GAPS = 64  # final gaps remembered to recognise packets that arrive after their gap closed


def exact_rate(sample_rate: float) -> Fraction:
    """The rate as an exact fraction (0.1 -> 1/10), so sample times are exact integer arithmetic."""
    return Fraction(sample_rate).limit_denominator(1_000_000)


def offset_ns(index: int, rate: Fraction) -> int:
    """ns from the first sample to sample ``index``: index * 1e9 / rate rounded half up, in integers."""
    numerator = index * NS_PER_S * rate.denominator
    return (2 * numerator + rate.numerator) // (2 * rate.numerator)


def samples_before(origin_ns: int, first: int, n: int, rate: Fraction, time_ns: int) -> int:
    """How many of samples first..first+n-1 (timed from origin_ns) fall before ``time_ns``."""
    k = math.ceil((time_ns - origin_ns) * rate / NS_PER_S) - first
    k = min(max(k, 0), n)
    while k > 0 and origin_ns + offset_ns(first + k - 1, rate) >= time_ns:
        k -= 1
    while k < n and origin_ns + offset_ns(first + k, rate) < time_ns:
        k += 1
    return k


def _tolerance_ns(samples: float, rate: Fraction) -> int:
    return int(samples * NS_PER_S * rate.denominator / rate.numerator)


@dataclass(frozen=True, slots=True)
class SampleRun:
    """Contiguous samples of one channel with one time base: what the framer puts in a subframe."""

    start_ns: int
    sample_rate: float
    samples: np.ndarray  # int32
    clock_locked: bool | None

    @property
    def nsamp(self) -> int:
        return int(self.samples.shape[0])

    def sample_time_ns(self, index: int) -> int:
        return self.start_ns + offset_ns(index, exact_rate(self.sample_rate))

    @property
    def end_ns(self) -> int:
        """Time just after the last sample."""
        return self.sample_time_ns(self.nsamp)


@dataclass(frozen=True, slots=True)
class ChannelGap:
    """Final absence of data: ``start_ns`` is when the next sample was due, ``end_ns`` when data resumed."""

    start_ns: int
    end_ns: int


@dataclass(slots=True)
class ChannelStats:
    """Counters an operator (and the metrics) read to see how clean a channel's data is."""

    packets: int = 0
    samples: int = 0
    gaps: int = 0
    gap_ns: int = 0
    duplicate_samples: int = 0
    conflicting_samples: int = 0
    reordered_packets: int = 0
    late_packets: int = 0  # arrived after their gap was declared final; dropped
    late_samples: int = 0
    time_tears: int = 0
    rate_changes: int = 0
    lock_changes: int = 0
    overflow_samples: int = 0  # dropped because nothing extracted them within the buffer cap
    rejected_packets: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class _Run:
    """Held samples on one time base; sample k is at origin + offset_ns(first + k)."""

    __slots__ = ("origin_ns", "first", "rate", "sample_rate", "clock_locked", "chunks", "n")

    def __init__(self, origin_ns: int, first: int, rate: Fraction, sample_rate: float,
                 clock_locked: bool | None) -> None:
        self.origin_ns, self.first, self.rate = origin_ns, first, rate
        self.sample_rate, self.clock_locked = sample_rate, clock_locked
        self.chunks: list[np.ndarray] = []
        self.n = 0

    def time_of(self, k: int) -> int:
        return self.origin_ns + offset_ns(self.first + k, self.rate)

    def index_at(self, time_ns: int) -> int:
        """Number of held samples before ``time_ns`` (0..n)."""
        return samples_before(self.origin_ns, self.first, self.n, self.rate, time_ns)

    def array(self) -> np.ndarray:
        if len(self.chunks) != 1:
            self.chunks = [np.concatenate(self.chunks) if self.chunks else np.empty(0, np.int32)]
        return self.chunks[0]

    def piece(self, i: int, j: int) -> _Run:
        run = _Run(self.origin_ns, self.first + i, self.rate, self.sample_rate, self.clock_locked)
        run.chunks, run.n = [self.array()[i:j]], j - i
        return run

    def segment(self) -> SampleRun:
        return SampleRun(self.time_of(0), self.sample_rate, self.array().copy(), self.clock_locked)


class _Chain:
    """The time base new data must continue, and its last samples for overlap comparison."""

    __slots__ = ("origin_ns", "rate", "sample_rate", "clock_locked", "next_index", "recent")

    def __init__(self, origin_ns: int, rate: Fraction, sample_rate: float, clock_locked: bool | None) -> None:
        self.origin_ns, self.rate, self.sample_rate = origin_ns, rate, sample_rate
        self.clock_locked = clock_locked
        self.next_index = 0
        self.recent = np.empty(0, np.int32)

    @property
    def expected_ns(self) -> int:
        return self.origin_ns + offset_ns(self.next_index, self.rate)

    def nearest_index(self, time_ns: int) -> int:
        return round((time_ns - self.origin_ns) * self.rate / NS_PER_S)


class ChannelBuffer:
    """One channel's continuity: ordering, gaps, overlaps, tears; and the held data the framer extracts."""

    def __init__(
        self,
        name: str,
        *,
        lateness_budget_s: float = 30.0,
        overlap_tolerance_s: float = 1.0,
        jitter_tolerance_samples: float = 0.25,
        buffer_s: float = 600.0,
        alarms: AlarmBoard | None = None,
    ) -> None:
        self.name = name
        self.lateness_budget_ns = round(lateness_budget_s * NS_PER_S)
        self.overlap_tolerance_ns = round(overlap_tolerance_s * NS_PER_S)
        self.jitter_tolerance_samples = jitter_tolerance_samples
        self.buffer_s = buffer_s
        self.alarms = alarms
        self.stats = ChannelStats()
        self.recent_gaps: deque[ChannelGap] = deque(maxlen=RECENT_GAPS)
        self._chain: _Chain | None = None
        self._runs: list[_Run] = []
        self._pending: list[tuple[int, int, Packet]] = []  # (start_ns, arrival, packet), sorted
        self._arrivals = itertools.count()
        self._newest_end_ns: int | None = None  # latest data time seen on the current timeline
        self._latest_start_ns: int | None = None
        self._overflowing = False

    @classmethod
    def from_config(cls, channel: ChannelConfig, settings: AcquisitionSettings,
                    alarms: AlarmBoard | None = None) -> ChannelBuffer:
        return cls(channel.code, lateness_budget_s=settings.lateness_budget_s,
                   overlap_tolerance_s=settings.overlap_tolerance_s,
                   jitter_tolerance_samples=settings.jitter_tolerance_samples,
                   buffer_s=settings.buffer_s, alarms=alarms)

    # ------------------------------------------------------------------------------------ reading side

    @property
    def complete_until_ns(self) -> int | None:
        """Data before this time is final: no later packet can add to it. None until data starts."""
        return None if self._chain is None else self._chain.expected_ns

    @property
    def first_pending_ns(self) -> int | None:
        """Start of the oldest packet held back (not yet part of the chain); None when none is."""
        return self._pending[0][0] if self._pending else None

    @property
    def oldest_ns(self) -> int | None:
        """Time of the oldest held sample (after a backward time tear it may precede what was extracted)."""
        return min((run.time_of(0) for run in self._runs), default=None)

    @property
    def held_samples(self) -> int:
        return sum(run.n for run in self._runs)

    def extract(self, start_ns: int, end_ns: int) -> list[SampleRun]:
        """Remove and return held samples timed in [start_ns, end_ns), as segments ordered by start.

        Gaps are where consecutive segments do not meet. After a backward time tear two segments may
        overlap in time; each keeps its own clock_locked so the framer can tell them apart.
        """
        out: list[SampleRun] = []
        kept: list[_Run] = []
        for run in self._runs:
            i, j = run.index_at(start_ns), run.index_at(end_ns)
            if i < j:
                out.append(run.piece(i, j).segment())
            kept += [part for part in (run.piece(0, i), run.piece(j, run.n)) if part.n]
        self._runs = kept
        self._update_buffer_alarm(end_ns)
        out.sort(key=lambda s: s.start_ns)
        return out

    def flush(self) -> None:
        """Declare every open gap final now (shutdown, or the framer's wall-clock lateness expired)."""
        self._drain(force=True)

    def end_start_hold(self) -> None:
        """Start the chain now at the oldest held packet, without declaring later gaps final: the
        framer waited a lateness budget for a window this channel has held data in."""
        if self._chain is None and self._pending:
            self._commit(self._pending.pop(0)[2])
            self._drain(force=False)

    # ------------------------------------------------------------------------------------ writing side

    def ingest(self, packet: Packet) -> None:
        """Take one packet; never raises on bad data (it is counted and logged instead)."""
        problem = _packet_problem(packet)
        if problem:
            self.stats.rejected_packets += 1
            log.error("packet rejected: %s", problem,
                      extra={"channel": self.name, "start_ns": packet.start_ns})
            return
        if packet.nsamp == 0:
            return
        self.stats.packets += 1
        if self._latest_start_ns is not None and packet.start_ns < self._latest_start_ns:
            self.stats.reordered_packets += 1
        self._latest_start_ns = max(packet.start_ns, self._latest_start_ns or packet.start_ns)
        chain = self._chain
        rate = exact_rate(packet.sample_rate)
        if chain is not None and packet.start_ns < chain.expected_ns - self._tol(rate):
            if self._arrived_after_gap_closed(packet):
                return
            if chain.expected_ns - packet.start_ns > self.overlap_tolerance_ns:
                self._time_tear(chain, packet)
                return
        self._newest_end_ns = max(packet.end_ns, self._newest_end_ns or packet.end_ns)
        bisect.insort(self._pending, (packet.start_ns, next(self._arrivals), packet), key=lambda e: e[:2])
        self._drain(force=False)
        self._enforce_cap(packet.end_ns)

    def _tol(self, rate: Fraction) -> int:
        """Timing error, in ns, still treated as 'on time' (jitter) at this rate."""
        return _tolerance_ns(self.jitter_tolerance_samples, rate)

    def _drain(self, force: bool) -> None:
        """Commit pending packets in time order while they continue the chain or their gap is final."""
        while self._pending:
            start_ns, _, packet = self._pending[0]
            chain = self._chain
            due_ns = start_ns if chain is None else chain.expected_ns
            continues = chain is not None and start_ns <= due_ns + self._tol(exact_rate(packet.sample_rate))
            newest_ns = self._newest_end_ns  # set by ingest before any packet is pending
            late = newest_ns is not None and newest_ns - due_ns > self.lateness_budget_ns
            if not (continues or force or late):
                return
            self._pending.pop(0)
            self._commit(packet)

    def _commit(self, packet: Packet) -> None:
        """Add an in-order packet: drop what overlaps the chain, append or start a new chain."""
        rate = exact_rate(packet.sample_rate)
        tol_ns = self._tol(rate)
        samples = packet.samples
        start_ns = packet.start_ns
        chain = self._chain
        if chain is not None:
            skip = samples_before(packet.start_ns, 0, packet.nsamp, rate, chain.expected_ns - tol_ns)
            if skip:
                self._overlap(chain, packet, skip)
                samples = samples[skip:]
                if not samples.size:
                    return
                start_ns = packet.start_ns + offset_ns(skip, rate)
            continues = (rate == chain.rate and _same_lock(packet.clock_locked, chain.clock_locked)
                         and abs(start_ns - chain.expected_ns) <= tol_ns)
            if not continues:
                self._note_break(chain, packet, rate, start_ns, tol_ns)
                chain = None
        if chain is None:
            chain = self._chain = _Chain(start_ns, rate, packet.sample_rate, packet.clock_locked)
        self._append(chain, samples)

    def _append(self, chain: _Chain, samples: np.ndarray) -> None:
        last = self._runs[-1] if self._runs else None
        if last is None or (last.origin_ns, last.rate, last.first + last.n, last.clock_locked) != (
                chain.origin_ns, chain.rate, chain.next_index, chain.clock_locked):
            last = _Run(chain.origin_ns, chain.next_index, chain.rate, chain.sample_rate, chain.clock_locked)
            self._runs.append(last)
        last.chunks.append(samples)
        last.n += samples.size
        chain.next_index += samples.size
        keep = math.ceil(self.overlap_tolerance_ns * chain.rate / NS_PER_S) + 1
        chain.recent = np.concatenate((chain.recent, samples))[-keep:]
        self.stats.samples += samples.size

    def _note_break(self, chain: _Chain, packet: Packet, rate: Fraction, start_ns: int, tol_ns: int) -> None:
        """Count why the chain does not continue: a gap, a rate change, a change of clock lock."""
        if start_ns > chain.expected_ns + tol_ns:
            gap = ChannelGap(chain.expected_ns, start_ns)
            self.recent_gaps.append(gap)
            self.stats.gaps += 1
            self.stats.gap_ns += gap.end_ns - gap.start_ns
            level = logging.WARNING if gap.end_ns - gap.start_ns > self.lateness_budget_ns else logging.INFO
            log.log(level, "gap in data", extra={"channel": self.name, "gap_start_ns": gap.start_ns,
                                                 "gap_ns": gap.end_ns - gap.start_ns})
        if rate != chain.rate:
            self.stats.rate_changes += 1
            log.warning("sample rate changed", extra={"channel": self.name, "from_sps": chain.sample_rate,
                                                      "to_sps": packet.sample_rate, "at_ns": start_ns})
        if not _same_lock(packet.clock_locked, chain.clock_locked):
            self.stats.lock_changes += 1
            log.info("clock lock changed", extra={"channel": self.name, "clock_locked": packet.clock_locked,
                                                  "at_ns": start_ns})

    def _overlap(self, chain: _Chain, packet: Packet, count: int) -> None:
        """Compare the first ``count`` samples with the chain's; identical ones are duplicates."""
        index = chain.nearest_index(packet.start_ns)
        aligned = (exact_rate(packet.sample_rate) == chain.rate and abs(
            chain.origin_ns + offset_ns(index, chain.rate) - packet.start_ns)
            <= self._tol(chain.rate))
        recent_first = chain.next_index - chain.recent.size
        if aligned and index >= recent_first:
            held = chain.recent[index - recent_first:index - recent_first + count]
            differing = int(np.count_nonzero(held != packet.samples[:held.size])) + (count - held.size)
        else:
            differing = count  # not on the same sample grid: these cannot be the samples we hold
        self.stats.duplicate_samples += count - differing
        self.stats.conflicting_samples += differing
        if differing:
            log.warning("overlapping packet disagrees with data already received; kept the first",
                        extra={"channel": self.name, "start_ns": packet.start_ns, "overlap": count,
                               "conflicting": differing})

    def _arrived_after_gap_closed(self, packet: Packet) -> bool:
        tol_ns = self._tol(exact_rate(packet.sample_rate))
        for gap in self.recent_gaps:
            if gap.start_ns - tol_ns <= packet.start_ns < gap.end_ns:
                self.stats.late_packets += 1
                self.stats.late_samples += packet.nsamp
                log.warning("packet arrived after its gap was declared final; dropped",
                            extra={"channel": self.name, "start_ns": packet.start_ns, "nsamp": packet.nsamp})
                return True
        return False

    def _time_tear(self, chain: _Chain, packet: Packet) -> None:
        """Time stepped back beyond the overlap tolerance: close the old timeline, start a new one."""
        old_expected = chain.expected_ns
        self._drain(force=True)
        self.stats.time_tears += 1
        log.warning("time tear: data time stepped backwards; starting a new segment",
                    extra={"channel": self.name, "expected_ns": old_expected, "got_ns": packet.start_ns,
                           "step_ns": packet.start_ns - old_expected})
        rate = exact_rate(packet.sample_rate)
        self._chain = _Chain(packet.start_ns, rate, packet.sample_rate, packet.clock_locked)
        self.recent_gaps.clear()
        self._newest_end_ns = packet.end_ns
        self._latest_start_ns = packet.start_ns
        self._append(self._chain, packet.samples)
        self._enforce_cap(packet.end_ns)

    def _enforce_cap(self, time_ns: int) -> None:
        """Drop the oldest held samples beyond ``buffer_s`` and raise the alarm (nobody is extracting)."""
        cap = self._cap_samples()
        excess = self.held_samples - cap
        if excess <= 0:
            return
        if not self._overflowing:  # log the episode once; the counter keeps the tally
            self._overflowing = True
            log.error("acquisition buffer full; dropping oldest samples",
                      extra={"channel": self.name, "buffer_s": self.buffer_s})
        if self.alarms is not None:
            self.alarms.raise_alarm(BUFFER_ALARM, self.name, Severity.CRITICAL, time_ns,
                                    value=self.held_samples, threshold=cap,
                                    message=f"{self.name}: nothing extracted data within {self.buffer_s:g} s")
        self.stats.overflow_samples += excess
        while excess > 0:
            run = self._runs[0]
            cut = min(excess, run.n)
            excess -= cut
            if cut == run.n:
                self._runs.pop(0)
            else:
                self._runs[0] = run.piece(cut, run.n)

    def _cap_samples(self) -> int:
        rate = self._chain.rate if self._chain is not None else Fraction(1)
        return max(1, math.ceil(self.buffer_s * rate))

    def _update_buffer_alarm(self, time_ns: int) -> None:
        if self.held_samples > 0.9 * self._cap_samples():
            return
        self._overflowing = False
        if self.alarms is not None:
            self.alarms.clear_alarm(BUFFER_ALARM, self.name, time_ns, value=self.held_samples)


def _same_lock(a: bool | None, b: bool | None) -> bool:
    """Whether two clock-lock states frame alike: unknown (None) and locked do, unlocked stands apart."""
    return (a is False) == (b is False)


def _packet_problem(packet: Packet) -> str | None:
    # a driver bug must not get past here, so the fields are not trusted to have their declared types
    samples: object = packet.samples
    rate: object = packet.sample_rate
    start_ns: object = packet.start_ns
    if not isinstance(samples, np.ndarray) or samples.ndim != 1 or samples.dtype != np.int32:
        return f"samples must be a 1-D int32 array, got {getattr(samples, 'dtype', type(samples).__name__)}"
    if not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
        return f"sample rate must be a positive number, got {rate!r}"
    if not isinstance(start_ns, int):
        return f"start_ns must be an integer, got {type(start_ns).__name__}"
    return None


class Acquisition:
    """Routes packets from every digitizer to the channel buffers the configuration names."""

    def __init__(self, config: StationConfig, alarms: AlarmBoard | None = None) -> None:
        self.buffers: dict[str, ChannelBuffer] = {}
        self._routes: dict[tuple[str, str], ChannelBuffer] = {}
        self.unrouted: dict[tuple[str, str], int] = {}
        for channel in config.channels:
            buffer = ChannelBuffer.from_config(channel, config.acquisition, alarms)
            self.buffers[channel.code] = buffer
            self._routes[(config.digitizer(channel.digitizer).system_id, channel.stream_id)] = buffer

    def channel_code(self, packet: Packet) -> str | None:
        """SITE.CHA.LO of the channel the packet's stream feeds; None for an unconfigured stream."""
        buffer = self._routes.get((packet.system_id, packet.stream_id))
        return None if buffer is None else buffer.name

    def ingest(self, packet: Packet) -> ChannelBuffer | None:
        """Hand a packet to its channel; packets of unconfigured streams are counted and logged once."""
        key = (packet.system_id, packet.stream_id)
        buffer = self._routes.get(key)
        if buffer is None:
            if key not in self.unrouted:
                log.warning("packet from a stream no channel is configured for",
                            extra={"system_id": packet.system_id, "stream": packet.stream_id})
            self.unrouted[key] = self.unrouted.get(key, 0) + 1
            return None
        buffer.ingest(packet)
        return buffer

    def flush(self) -> None:
        for buffer in self.buffers.values():
            buffer.flush()
