"""The calibration input and the sensor output, gathered from a digitizer's packets by data time.

Packets arrive on whichever thread reads the digitizer (the bench session's pump, the station's main
loop) while the session waits on another, so ``Capture`` is the one place they meet: it keeps the
packets of the two streams, wakes the waiting thread on each one, says how far data time has come,
and joins a span of both streams into sample-aligned arrays. A span with a hole, an overlap or two
different rates is refused (``RecordingRejected``), never patched.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from calibration.recording import RecordingRejected
from digitizer.packet import Packet
from timeunits import NS_PER_S

# Packets this close to contiguous (in samples) are contiguous: digitizer time stamps are rounded.
JITTER_SAMPLES = 0.25


class SessionAborted(RuntimeError):
    """The session was asked to stop (operator interrupt, station shutdown)."""


class DigitizerSilent(RuntimeError):
    """No packet of the calibrated channel came for too long (wall-clock guard: port or digitizer dead)."""


@dataclass(frozen=True)
class Streams:
    """The GCF streams of one calibration: the sensor output and the returned calibration signal."""

    system_id: str
    output: str
    cal_input: str


@dataclass(frozen=True)
class Progress:
    """Where data time stands, by the packets seen so far.

    ``data_time_ns``: end of the newest sensor output packet (None before the first). ``input_start_ns``
    and ``input_end_ns``: start of the first calibration-input packet at or after the time asked about,
    and end of the newest one (None while there is none). ``longest_packet_ns``: the longest packet
    of either stream so far (one stream's packet may come a packet's length before the other's).
    """

    data_time_ns: int | None
    input_start_ns: int | None
    input_end_ns: int | None
    longest_packet_ns: int = 0


@dataclass(frozen=True)
class Recording:
    """Both channels over one span, sample by sample: calibration input first, sensor output second."""

    start_ns: int
    sample_rate: float
    cal_input: np.ndarray
    output: np.ndarray

    @property
    def duration_s(self) -> float:
        return len(self.output) / self.sample_rate


class _Stream:
    """One stream's packets in time order (a late packet is put in its place)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.starts: list[int] = []
        self.packets: list[Packet] = []
        self.newest_end_ns: int | None = None
        self.longest_ns = 0

    def add(self, packet: Packet) -> None:
        at = bisect.bisect_right(self.starts, packet.start_ns)
        self.starts.insert(at, packet.start_ns)
        self.packets.insert(at, packet)
        self.newest_end_ns = max(packet.end_ns, self.newest_end_ns or packet.end_ns)
        self.longest_ns = max(self.longest_ns, packet.end_ns - packet.start_ns)

    def first_start_from(self, since_ns: int) -> int | None:
        at = bisect.bisect_left(self.starts, since_ns)
        return self.starts[at] if at < len(self.starts) else None

    def samples(self, start_ns: int, end_ns: int) -> tuple[float, np.ndarray]:
        """(rate, samples) covering exactly [start_ns, end_ns), refusing holes, overlaps and rate changes."""
        chosen = [p for p in self.packets if p.end_ns > start_ns and p.start_ns < end_ns]
        if not chosen:
            raise RecordingRejected("gap", f"{self.name} has no samples between {start_ns} and {end_ns} ns")
        rate = chosen[0].sample_rate
        tolerance_ns = JITTER_SAMPLES * NS_PER_S / rate
        if chosen[0].start_ns > start_ns + tolerance_ns or chosen[-1].end_ns < end_ns - tolerance_ns:
            raise RecordingRejected("gap", f"{self.name} does not cover the whole calibration: samples from "
                                           f"{chosen[0].start_ns} to {chosen[-1].end_ns} ns, needed "
                                           f"{start_ns} to {end_ns} ns")
        for before, after in zip(chosen, chosen[1:], strict=False):
            if after.sample_rate != rate:
                raise RecordingRejected("gap", f"{self.name} changes rate from {rate:g} to "
                                               f"{after.sample_rate:g} sps during the calibration")
            step_ns = after.start_ns - before.end_ns
            if abs(step_ns) > tolerance_ns:
                kind = "gap" if step_ns > 0 else "overlap"
                raise RecordingRejected("gap", f"{self.name} has a {kind} of {abs(step_ns) / NS_PER_S:.3f} "
                                               f"s at {before.end_ns} ns during the calibration")
        joined = np.concatenate([p.samples for p in chosen])
        first = round((start_ns - chosen[0].start_ns) * rate / NS_PER_S)
        count = round((end_ns - start_ns) * rate / NS_PER_S)
        return rate, joined[max(first, 0):max(first, 0) + count]


class Capture:
    """Packets of one calibration's two streams; ``feed`` from any thread, wait and read from another."""

    def __init__(self, streams: Streams, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.streams = streams
        self._output = _Stream(f"sensor output {streams.output}")
        self._input = _Stream(f"calibration input {streams.cal_input}")
        self._changed = threading.Condition()
        self._monotonic = monotonic
        self._last_packet_at = monotonic()

    def feed(self, packet: Packet) -> None:
        """Keep the packet if it belongs to one of the two streams; wake the waiting session."""
        if packet.system_id != self.streams.system_id or packet.nsamp == 0:
            return
        if packet.stream_id == self.streams.output:
            stream = self._output
        elif packet.stream_id == self.streams.cal_input:
            stream = self._input
        else:
            return
        with self._changed:
            stream.add(packet)
            if stream is self._output:
                self._last_packet_at = self._monotonic()
            self._changed.notify_all()

    def progress(self, since_ns: int | None = None) -> Progress:
        """Data time, and the calibration input's first packet at or after ``since_ns`` and its end."""
        with self._changed:
            return self._progress(since_ns)

    def _progress(self, since_ns: int | None) -> Progress:
        first = self._input.first_start_from(since_ns) if since_ns is not None else (
            self._input.starts[0] if self._input.starts else None)
        end = None if first is None else self._input.newest_end_ns
        return Progress(self._output.newest_end_ns, first, end,
                        max(self._output.longest_ns, self._input.longest_ns))

    def wait_for(self, ready: Callable[[Progress], bool], since_ns: int | None, *, abort: threading.Event,
                 stall_s: float) -> Progress:
        """Block until ``ready(progress(since_ns))``; raises ``SessionAborted`` once ``abort`` is set and
        ``DigitizerSilent`` when no output packet came for ``stall_s`` seconds of wall time."""
        with self._changed:
            while True:
                progress = self._progress(since_ns)
                if ready(progress):
                    return progress
                if abort.is_set():
                    raise SessionAborted("calibration session stopped")
                silent_s = self._monotonic() - self._last_packet_at
                if silent_s > stall_s:
                    raise DigitizerSilent(f"no packet of {self.streams.output} from {self.streams.system_id} "
                                          f"for {silent_s:.0f} s")
                self._changed.wait(timeout=0.2)

    def recording(self, start_ns: int, end_ns: int) -> Recording:
        """Both streams over [start_ns, end_ns) as float arrays of equal length."""
        with self._changed:
            input_rate, x = self._input.samples(start_ns, end_ns)
            output_rate, y = self._output.samples(start_ns, end_ns)
        if input_rate != output_rate:
            raise RecordingRejected("rate-mismatch", f"the calibration input {self.streams.cal_input} runs "
                                                     f"at {input_rate:g} sps and the output "
                                                     f"{self.streams.output} at {output_rate:g} sps; they "
                                                     "must match")
        n = min(len(x), len(y))
        return Recording(start_ns, output_rate, x[:n].astype(np.float64), y[:n].astype(np.float64))
