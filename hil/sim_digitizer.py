"""Simulated Güralp-like digitizer firmware: GCF blocks over BRP on a ``PtyLine``.

It samples simulated sensors on data time (``SimClock``), cuts one block per stream per block length,
sends each as a BRP frame, waits up to ``ms_gap`` for the ACK/NAK, keeps the last 255 blocks sent so a
NAK can rewind to any of them (go-back-N, as the DM24 does), and holds blocks produced while it cannot
send (console open, hung, backlog) in a bounded "flash" queue, sending them later in order. Everything
it produced is kept in ``truth`` (the exact int32 samples) for tests to compare against, or in a
``TruthStore`` on disk for long runs. So that a comparison can tell the gaps the hardware made from the
ones the software did, the data blocks a full flash dropped are listed in ``flash_lost`` and those the
line damaged on some transmission (a bit flipped or a byte lost on the way) in ``damaged_blocks``, and
the blocks a host accepted although the line had damaged them (``hil.linedamage``) in ``undetected``.

Two transmission modes. ``"direct"`` follows spec §9 literally: an unanswered block is left behind after
``ms_gap``, so with nobody listening the stream goes into the void and only the 255-block NAK window
survives. ``"fifo"`` (store and forward, as Güralp units that file to flash do) notices a silent host
after ``silent_blocks`` unanswered blocks, stops advancing, probes by resending the oldest
unacknowledged block every ``probe_interval_s`` and, once the host answers, resumes in order from that
block at line speed, so an outage of any length up to the flash capacity loses nothing.

The console (terminal mode) is entered by 0x13 (alone or as ACK byte 2); it prompts `` ok``, answers
``STATUS``, calibration words (``Z 1 HZ SINEWAVE``, ``Z 5 SECOND SINEWAVE``, ``Z SQUAREWAVE``,
``Z RANDOMCAL``, ``3 MINUTE``, and the project-defined ``STOPCAL``), and ``GO`` leaves it with ESC DC1.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from digitizer import brp
from digitizer.base36 import from_base36
from digitizer.gcf import TEXT_STATUS_SUFFIX, GcfBlock, decode_block, encode_block
from hil import sensors
from hil.linedamage import undetected_damage
from hil.serialport import PtyLine
from hil.simclock import SimClock
from hil.simthread import LineServer
from hil.truth import TruthStore
from timeunits import NS_PER_S

log = logging.getLogger(__name__)

CAL_SUFFIX = "C0"
CONSOLE_IDLE_S = 60
MODES = ("direct", "fifo")


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """One output stream: ``suffix`` (2 characters after the 4-character serial), rate, block length."""

    suffix: str
    sample_rate: int
    block_seconds: int
    kind: str = "seismometer"  # seismometer | microbarometer | hydrophone | mass


DEFAULT_STREAMS = (
    StreamSpec("Z0", 100, 1), StreamSpec("N0", 100, 1), StreamSpec("E0", 100, 1),
    StreamSpec("M8", 1, 10, "mass"),
)


# Coil drive of the simulated calibrator. 0.05 V is 5e-4 m/s² of equivalent ground acceleration through
# the simulated broadband's 0.01 m/s²/V coil: a step then swings its output to about a quarter of the
# converter's range, as a bench calibration should; 1 V would clip it.
CAL_AMPLITUDE_V = 0.05
# The random calibration's generator clock: the level is redrawn (±amplitude, each with probability ½)
# at every tick and held between ticks, a random telegraph as on real calibrators. 2 s keeps its power
# flat up to about 0.2 Hz, far past the simulated broadband's 120 s corner, and little of it near the
# Nyquist frequency, where the simulated sensor (bilinear, at the output rate) departs from the analogue
# response that a real digitizer's identical filtering of both channels would preserve.
CAL_RANDOM_INTERVAL_S = 2.0


@dataclass
class Calibration:
    """An active calibration: which coil(s), what signal, when it stops (data time).

    ``drive`` is a function of time alone (the random levels are drawn once per tick, in tick order),
    so every coil and the returned signal see the same voltage whichever stream asks first.
    """

    components: str  # "Z", "N", "E" or "ZNE"
    kind: str  # sine | square | random
    start_ns: int
    end_ns: int
    period_s: float = 1.0
    amplitude_v: float = CAL_AMPLITUDE_V
    interval_s: float = CAL_RANDOM_INTERVAL_S
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    _levels: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def drive(self, t_ns: np.ndarray) -> np.ndarray:
        """Coil voltage at sample times ``t_ns`` (zero outside the calibration)."""
        t = (t_ns - self.start_ns) / NS_PER_S
        live = (t_ns >= self.start_ns) & (t_ns < self.end_ns)
        if self.kind == "sine":
            out = np.sin(2 * math.pi * t / self.period_s)
        elif self.kind == "square":  # up for the first half, down for the second (the DM24's two steps)
            half = (self.end_ns - self.start_ns) / NS_PER_S / 2
            out = np.where(t < half, 1.0, -1.0)
        else:
            out = self._random_levels(t_ns)
        return np.where(live, self.amplitude_v * out, 0.0)

    def _random_levels(self, t_ns: np.ndarray) -> np.ndarray:
        tick_ns = round(self.interval_s * NS_PER_S)
        last = (self.end_ns - self.start_ns - 1) // tick_ns
        ticks = np.clip((t_ns - self.start_ns) // tick_ns, 0, last)
        need = int(ticks.max()) + 1 if ticks.size else 0
        if need > len(self._levels):
            drawn = self.rng.choice([-1.0, 1.0], size=need - len(self._levels))
            self._levels = np.concatenate([self._levels, drawn])
        return self._levels[ticks]


class _Stream:
    def __init__(self, spec: StreamSpec, serial: str, rng: np.random.Generator, first_ns: int):
        self.spec = spec
        self.stream_id = serial + spec.suffix
        self.next_ns = first_ns
        fs = spec.sample_rate
        self.sensor: sensors.Sensor | None
        if spec.kind == "seismometer":
            self.sensor = sensors.broadband_seismometer(self.stream_id, fs, rng)
        elif spec.kind == "microbarometer":
            self.sensor = sensors.microbarometer(self.stream_id, fs, rng)
        elif spec.kind == "hydrophone":
            self.sensor = sensors.hydrophone(self.stream_id, fs, rng)
        elif spec.kind == "mass":
            self.sensor = None
            self._rng = rng
            self._level = float(rng.uniform(-2e5, 2e5))
        else:
            raise ValueError(f"stream {self.stream_id}: unknown sensor kind {spec.kind!r}")

    def samples(self, n: int, cal: np.ndarray | None) -> np.ndarray:
        if self.sensor is not None:
            return self.sensor.generate(n, cal)
        steps = self._rng.normal(0.0, 50.0, n)  # slow mass-position drift in counts
        values = self._level + np.cumsum(steps)
        self._level = float(values[-1])
        return np.rint(values).astype(np.int32)


@dataclass(frozen=True, slots=True)
class LostBlock:
    """A data block the full flash dropped: samples ``[start_ns, end_ns)`` of ``stream_id`` never left."""

    stream_id: str
    start_ns: int
    end_ns: int
    samples: int


@dataclass
class FirmwareCounters:
    blocks_made: int = 0
    frames_sent: int = 0
    resent: int = 0
    acks: int = 0
    naks: int = 0
    naks_out_of_window: int = 0
    console_sessions: int = 0
    link_downs: int = 0  # FIFO: times the host went silent and the transmitter stopped advancing
    probes: int = 0  # FIFO: oldest unacknowledged block resent to see whether the host is back
    flash_dropped: int = 0  # blocks lost because the flash queue was full (oldest first)
    flash_peak: int = 0  # most blocks ever waiting in flash


class SimDigitizer(LineServer):
    """The firmware; ``start()`` runs it in a thread, ``stop()`` ends it.

    ``mode`` is ``"fifo"`` (store and forward, the default) or ``"direct"`` (send regardless after
    ``ms_gap``). ``flash_blocks`` bounds the queue of blocks not yet sent; when it overflows the oldest
    block is dropped and counted in ``counters.flash_dropped``. FIFO only: ``silent_blocks`` unanswered
    blocks in a row mean the host is gone; ``probe_interval_s`` (real seconds) paces the probes.
    ``cal_amplitude_v`` is the calibrator's coil drive and ``cal_random_interval_s`` the clock of its
    random telegraph (see ``CAL_AMPLITUDE_V`` and ``CAL_RANDOM_INTERVAL_S``).
    """

    thread_name = "sim-digitizer"

    def __init__(self, line: PtyLine, clock: SimClock, *, system_id: str = "SIM1", serial: str = "SIMD",
                 streams: tuple[StreamSpec, ...] = DEFAULT_STREAMS, seed: int = 0,
                 ms_gap_s: float | None = None, status_every_s: int = 10, ttl: int = 0,
                 mode: str = "fifo", flash_blocks: int = 100_000, silent_blocks: int = 3,
                 probe_interval_s: float = 1.0, truth_store: TruthStore | None = None,
                 cal_amplitude_v: float = CAL_AMPLITUDE_V,
                 cal_random_interval_s: float = CAL_RANDOM_INTERVAL_S):
        if len(serial) != 4:
            raise ValueError(f"serial must have 4 characters, got {serial!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not (cal_amplitude_v > 0 and cal_random_interval_s > 0):
            raise ValueError(f"cal_amplitude_v ({cal_amplitude_v}) and cal_random_interval_s "
                             f"({cal_random_interval_s}) must be > 0")
        self.cal_amplitude_v, self.cal_random_interval_s = cal_amplitude_v, cal_random_interval_s
        if flash_blocks < 1 or silent_blocks < 1 or probe_interval_s <= 0:
            raise ValueError(f"flash_blocks ({flash_blocks}) and silent_blocks ({silent_blocks}) must be "
                             f">= 1 and probe_interval_s ({probe_interval_s}) > 0")
        self.mode, self.flash_blocks = mode, flash_blocks
        self.silent_blocks, self.probe_interval_s = silent_blocks, probe_interval_s
        self.line, self.clock = line, clock
        self.system_id, self.serial, self.ttl = system_id, serial, ttl
        self.ms_gap_s = 0.15 / clock.speed if ms_gap_s is None else ms_gap_s
        self.status_every_s = status_every_s
        first = -(-clock.now_ns() // NS_PER_S) * NS_PER_S  # next whole second
        seeds = np.random.SeedSequence(seed).spawn(len(streams) + 2)
        self._streams = [_Stream(s, serial, np.random.default_rng(q), first)
                         for s, q in zip(streams, seeds[:len(streams)], strict=True)]
        # the calibration signal is digitised alongside the fastest seismometer stream
        self._cal_source = max(self._streams,
                               key=lambda s: (s.spec.kind == "seismometer", s.spec.sample_rate))
        self._cal_rng = np.random.default_rng(seeds[-2])
        self._env_rng = np.random.default_rng(seeds[-1])
        self._next_status_ns = first
        self._clock_step_ns = 0  # the firmware's clock minus data time (step_clock)
        self.truth: dict[str, list[tuple[int, np.ndarray]]] = {}  # unused when a truth_store is given
        self._truth_store = truth_store
        self.flash_lost: list[LostBlock] = []
        self.damaged_blocks: set[tuple[str, int]] = set()  # (stream id, start ns)
        self.undetected: list[GcfBlock] = []  # damaged data blocks as the host accepted them
        self.counters = FirmwareCounters()
        # transmitter state
        self._flash: deque[GcfBlock] = deque()
        self._tx = brp.BrpTransmitter()
        self._parser = brp.PcByteParser()
        self._resend: deque[bytes] = deque()
        self._unacked: deque[tuple[int, bytes]] = deque()  # FIFO: (seq, frame) sent, not yet ACKed
        self._silent = 0  # frames sent since the host last answered anything
        self.link_down = False  # FIFO: host silent, transmitter holds its position and probes
        self._next_probe = 0.0
        self._stream_words = {from_base36(serial + s.suffix) for s in streams} | {
            from_base36(serial + sfx) for sfx in (TEXT_STATUS_SUFFIX, CAL_SUFFIX)}
        self._console = False
        self._console_active_ns = 0
        self._console_line = bytearray()
        LineServer.__init__(self)
        self._hung_until_ns = 0
        self._lock = threading.Lock()
        # health
        self.gps_locked = True
        self._clock_offset_s = 0.0
        self._last_lock_ns = first
        self.calibration: Calibration | None = None
        self._next_cal_minutes = 2
        # scripted faults (consumed by the transmitter)
        self._inject: deque[tuple[str, bytes | None]] = deque()  # (kind, the bytes of a "raw" one)
        self._acks_to_lose = 0
        self._sampling = True

    # -- control from tests ---------------------------------------------------------------------------
    def set_gps_lock(self, locked: bool) -> None:
        with self._lock:
            if locked and not self.gps_locked:
                self._clock_offset_s = 0.0
            self.gps_locked = locked

    def step_clock(self, seconds: float) -> None:
        """Step the firmware's clock by ``seconds`` (negative: back, as when a GPS re-lock corrects a
        clock that ran fast, or an operator sets the time). Sampling goes on without a break: only the
        time stamps jump, so a backward step stamps new samples with times already used."""
        step = round(seconds * NS_PER_S)
        with self._lock:
            self._clock_step_ns += step
            for st in self._streams:
                st.next_ns += step
            self._next_status_ns += step

    def lose_acks(self, count: int) -> None:
        """The next ``count`` ACKs from the host never arrive (a damaged receive wire); in FIFO mode the
        firmware then resends the blocks they would have released."""
        with self._lock:
            self._acks_to_lose += count

    def hang(self, data_seconds: float) -> None:
        """Freeze the transmitter (sampling goes on into flash) for ``data_seconds`` of data time."""
        self._hung_until_ns = self.clock.now_ns() + int(data_seconds * NS_PER_S)

    def inject_garbage(self, data: bytes) -> None:
        """Send ``data`` raw between two frames (line noise, boot text, a foreign device)."""
        self._inject.append(("raw", bytes(data)))

    def inject_truncated_frame(self) -> None:
        """Send the next block's frame cut short (as a mid-frame reset would)."""
        self._inject.append(("truncate", None))

    def inject_bad_integration(self, which: str) -> None:
        """Corrupt the next block's ``"fic"`` or ``"ric"`` with a valid BRP checksum (GCF must catch it)."""
        if which not in ("fic", "ric"):
            raise ValueError(f"which must be 'fic' or 'ric', got {which!r}")
        self._inject.append((which, None))

    def close_truth(self) -> None:
        """The run is over: close the truth store's files (what they hold stays readable)."""
        if self._truth_store is not None:
            self._truth_store.close()

    def stop_sampling(self) -> None:
        """End of a run: make no more data blocks, but keep sending (and resending) those already made.
        A last status block follows them, as the status stream of a real digitizer would: it takes the
        next sequence number, so a station that lost the last data block on the line sees the gap and
        NAKs it (with nothing after it, the loss could not be noticed)."""
        with self._lock:
            self._sampling = False
            self._queue_status(self._firmware_now_ns())

    @property
    def drained(self) -> bool:
        """Every block made has been sent and, in FIFO mode, acknowledged."""
        return not (self._flash or self._unacked or self._resend or self.link_down)

    @property
    def made_until_ns(self) -> int:
        """Data time up to which every stream has made its samples."""
        return min(stream.next_ns for stream in self._streams)

    @property
    def flash_waiting(self) -> int:
        """Blocks made but not yet sent (held in flash)."""
        return len(self._flash)

    def samples_of(self, stream_id: str) -> tuple[int, np.ndarray]:
        """(first sample time, all samples) produced so far for one stream (concatenated)."""
        if self._truth_store is not None:
            return self._truth_store.samples_of(stream_id)
        parts = self.truth.get(stream_id, [])
        if not parts:
            return 0, np.zeros(0, np.int32)
        return parts[0][0], np.concatenate([p for _, p in parts])

    # -- sampling -------------------------------------------------------------------------------------
    def _firmware_now_ns(self) -> int:
        """The time the firmware stamps data with: data time, plus any step of its clock."""
        return self.clock.now_ns() + self._clock_step_ns

    def _produce_due(self) -> None:
        if not self._sampling:
            return
        with self._lock:
            now_ns = self._firmware_now_ns()
            for st in self._streams:
                span = st.spec.block_seconds * NS_PER_S
                while st.next_ns + span <= now_ns:
                    self._make_block(st, st.next_ns)
                    st.next_ns += span
            while self._next_status_ns <= now_ns:
                self._queue_status(self._next_status_ns)
                self._next_status_ns += self.status_every_s * NS_PER_S
                self._drift(self.status_every_s)

    def _queue_status(self, t_ns: int) -> None:
        self._queue(GcfBlock(self.system_id, self.serial + TEXT_STATUS_SUFFIX, t_ns, 0.0,
                             status_text=self.status_text(t_ns), ttl=self.ttl))

    def _make_block(self, st: _Stream, start_ns: int) -> None:
        n = st.spec.sample_rate * st.spec.block_seconds
        cal = self.calibration
        drive = None
        if cal is not None and st.sensor is not None and st.spec.suffix[0] in cal.components \
                and st.spec.kind == "seismometer":
            t = start_ns + np.arange(n, dtype=np.int64) * (NS_PER_S // st.spec.sample_rate)
            drive = cal.drive(t)
        samples = st.samples(n, drive)
        self._record(st.stream_id, start_ns, samples, st.spec.sample_rate)
        if cal is not None and st is self._cal_source:
            self._make_cal_block(cal, start_ns, n, st.spec.sample_rate, drive)

    def _make_cal_block(
        self, cal: Calibration, start_ns: int, n: int, rate: int, drive: np.ndarray | None
    ) -> None:
        """The returned calibration signal, digitised on the auxiliary channel (stream ``…C0``)."""
        if drive is None:
            t = start_ns + np.arange(n, dtype=np.int64) * (NS_PER_S // rate)
            drive = cal.drive(t)
        counts = np.rint(drive / sensors.CAL_VOLTS_PER_COUNT).astype(np.int32)
        self._record(self.serial + CAL_SUFFIX, start_ns, counts, rate)
        if start_ns + n * (NS_PER_S // rate) >= cal.end_ns:
            log.info("calibration finished", extra={"stream": self.serial + CAL_SUFFIX})
            self.calibration = None

    def _record(self, stream_id: str, start_ns: int, samples: np.ndarray, rate: int) -> None:
        if self._truth_store is not None:
            self._truth_store.record(stream_id, start_ns, samples, rate)
        else:
            self.truth.setdefault(stream_id, []).append((start_ns, samples))
        self._queue(GcfBlock(self.system_id, stream_id, start_ns, float(rate), samples=samples, ttl=self.ttl))

    def _queue(self, block: GcfBlock) -> None:
        if len(self._flash) >= self.flash_blocks:
            dropped = self._flash.popleft()
            self.counters.flash_dropped += 1
            if dropped.samples is not None and dropped.sample_rate:
                n = len(dropped.samples)
                end_ns = dropped.start_ns + n * NS_PER_S // int(dropped.sample_rate)
                self.flash_lost.append(LostBlock(dropped.stream_id, dropped.start_ns, end_ns, n))
            log.error("flash full: oldest block dropped",
                      extra={"stream": dropped.stream_id, "start_ns": dropped.start_ns})
        self._flash.append(block)
        self.counters.blocks_made += 1
        self.counters.flash_peak = max(self.counters.flash_peak, len(self._flash))

    def _drift(self, seconds: float) -> None:
        if not self.gps_locked:
            self._clock_offset_s += 2e-6 * seconds  # free-running oscillator, 2 ppm

    def status_text(self, t_ns: int) -> str:
        """Status lines in the DM24 wording (``00`` stream and the ``STATUS`` console command)."""
        stamp = time.strftime("%Y %m %d %H:%M:%S", time.gmtime(t_ns // NS_PER_S))
        offset_us = round(self._clock_offset_s * 1e6)
        direction = "Fast" if offset_us >= 0 else "Slow"
        if self.gps_locked:
            gps = f"{stamp} {abs(offset_us)} MicroSeconds {direction} Freq error 0 e-9 Auto 3D"
        else:
            gps = f"{stamp} GPS Control settling Auto No Fix [0 Not sync'd]"
        supply = 12.2 + 0.1 * self._env_rng.standard_normal()
        temp = 21.0 + 0.2 * self._env_rng.standard_normal()
        masses = " ".join(str(int(v)) for v in self._env_rng.integers(-500, 500, 3))
        cal = self.calibration
        lines = [gps, f"{stamp} External supply : {supply:.1f}V Temperature {temp:.2f}'C",
                 f"{stamp} Mass positions {masses}",
                 f"{stamp} Calibration {cal.kind} {cal.components}" if cal else f"{stamp} No calibration"]
        return "\r\n".join(lines) + "\r\n"

    # -- transmitter ----------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._produce_due()
                if self.clock.now_ns() < self._hung_until_ns:
                    self._stop.wait(0.01)
                    continue
                self._drain_host(timeout=0.0)
                if self._console:
                    self._drain_host(timeout=0.02)
                    if self.clock.now_ns() - self._console_active_ns > CONSOLE_IDLE_S * NS_PER_S:
                        self._leave_console()  # the DM24 closes an idle console and resumes streaming
                    continue
                if self.link_down:
                    self._probe()
                elif self._inject:
                    self._send_injected()
                elif self._resend:
                    self.counters.resent += 1
                    self._transmit(self._resend.popleft())
                elif self._flash:
                    self._transmit(self._tx.frame(encode_block(self._flash.popleft()))[1], new=True)
                else:
                    due = min([s.next_ns + s.spec.block_seconds * NS_PER_S for s in self._streams]
                              + [self._next_status_ns])
                    idle = self.clock.real_seconds((due - self._firmware_now_ns()) / NS_PER_S)
                    self._drain_host(timeout=min(0.05, max(0.0, idle)))
        except Exception:  # a firmware crash must be visible in the test log, not silent
            log.exception("simulated digitizer crashed")
            raise

    def _transmit(self, frame: bytes, *, new: bool = False) -> None:
        """Send one frame and wait for its answer; ``new`` frames join the FIFO's unacknowledged list."""
        if new and self.mode == "fifo":
            self._unacked.append((frame[1], frame))
        line_faults = self.line.faults_to_host
        before = line_faults.bit_errors + line_faults.bytes_dropped
        delivered = self.line.write(frame)
        if line_faults.bit_errors + line_faults.bytes_dropped != before:
            block = decode_block(frame[4:-2])  # the frame as it was meant to arrive
            if not block.is_status:
                self.damaged_blocks.add((block.stream_id, block.start_ns))
            accepted = undetected_damage(frame, delivered)
            if accepted is not None and not accepted.is_status:
                self.undetected.append(accepted)
                log.warning("line damage the checksums cannot catch", extra={
                    "stream": accepted.stream_id, "start_ns": accepted.start_ns, "seq": frame[1]})
        self.counters.frames_sent += 1
        self._silent += 1  # any answer, even a late one for another block, resets it
        self._await_reply(frame[1])
        if self.mode == "fifo" and self._silent >= self.silent_blocks and not self.link_down:
            self.link_down = True
            self.counters.link_downs += 1
            self._resend.clear()
            self._next_probe = time.monotonic() + self.probe_interval_s
            log.warning("host silent: holding blocks in flash", extra={"unacked": len(self._unacked),
                                                                        "flash": len(self._flash)})

    def _probe(self) -> None:
        """FIFO with a silent host: resend the oldest unacknowledged block now and then, else listen."""
        left = self._next_probe - time.monotonic()
        if left > 0:
            self._drain_host(timeout=min(left, 0.05))
            return
        if not self._unacked:
            if not self._flash:
                self._drain_host(timeout=0.05)
                return
            self._unacked.append(self._tx.frame(encode_block(self._flash.popleft())))
        self._next_probe = time.monotonic() + self.probe_interval_s
        self.counters.probes += 1
        self._transmit(self._unacked[0][1])

    def _host_back(self) -> None:
        """The host answered; FIFO: carry on in order from the oldest unacknowledged block."""
        self._silent = 0
        if self.link_down:
            self.link_down = False
            log.info("host answering again: sending from flash", extra={"unacked": len(self._unacked),
                                                                         "flash": len(self._flash)})
            self._resend = deque(frame for _, frame in self._unacked)

    def _release(self, msg: brp.AckMessage, awaited: int | None) -> None:
        """FIFO: an ACK releases its block and every older unacknowledged one (go-back-N); a late ACK
        counts too. The 7-bit BRP form is matched against the oldest candidate (releases the least)."""
        seq7 = msg.seq7
        if seq7 is None:  # control-form ACK: it answers the block being awaited, if any
            if awaited is None:
                return
            hit = next((i for i, (s, _) in enumerate(self._unacked) if s == awaited), None)
        else:
            hit = next((i for i, (s, _) in enumerate(self._unacked) if s & 0x7F == seq7), None)
        for _ in range(0 if hit is None else hit + 1):
            self._unacked.popleft()

    def _send_injected(self) -> None:
        kind, payload = self._inject.popleft()
        if payload is not None:  # "raw"
            self.line.write(payload)
            return
        while not self._flash:  # the fault applies to the next real block
            if self._stop.wait(0.01):
                return
            self._produce_due()
        data = bytearray(encode_block(self._flash.popleft()))
        if kind == "truncate":
            frame = self._tx.frame(bytes(data))[1]
            self.line.write(frame[: len(frame) // 2])
            self.counters.frames_sent += 1
            return
        at = 16 if kind == "fic" else len(data) - 4  # FIC right after the header, RIC last
        data[at + 3] ^= 0x01
        self._transmit(self._tx.frame(bytes(data))[1])

    def _await_reply(self, seq: int) -> bool:
        """Wait up to ``ms_gap`` for the ACK of ``seq`` or a NAK (spec §9); False when none came."""
        end = time.monotonic() + self.ms_gap_s
        while not self._stop.is_set() and not self._console:
            left = end - time.monotonic()
            if left <= 0:
                return False
            if self._drain_host(timeout=left, awaited=seq):
                return True
        return True  # stopping, or the console opened (the host is there)

    # -- host bytes -----------------------------------------------------------------------------------
    def _drain_host(self, timeout: float, awaited: int | None = None) -> bool:
        """Read and act on host bytes; True once the awaited block was ACKed or any NAK came."""
        data = self.line.read(timeout=timeout)
        replied = False
        for msg in self._parser.feed(data) if data else ():
            if isinstance(msg, brp.NakMessage):
                if msg.stream_word not in self._stream_words:
                    continue  # a NAK mangled by line noise
                self.counters.naks += 1
                frames = self._tx.rewind(msg.seq)
                self._host_back()
                if frames:
                    self._resend = deque(frames)
                else:  # ignored, as a DM24 does; a FIFO keeps its own catch-up
                    self.counters.naks_out_of_window += 1
                replied = True
            elif isinstance(msg, brp.AckMessage):
                if msg.stream_word not in self._stream_words:
                    continue
                if msg.break_in:
                    self._host_back()
                    self._enter_console()
                    replied = True
                    continue
                if self._ack_lost():
                    continue
                self._release(msg, awaited)
                self._host_back()
                if awaited is not None and self._tx.acknowledges(msg, awaited):
                    self.counters.acks += 1
                    replied = True
            elif isinstance(msg, brp.BreakIn):
                self._host_back()
                self._enter_console()
                replied = True
            elif self._console:
                self._console_bytes(msg.data)
        return replied

    def _ack_lost(self) -> bool:
        with self._lock:
            if not self._acks_to_lose:
                return False
            self._acks_to_lose -= 1
            return True

    # -- console --------------------------------------------------------------------------------------
    def _enter_console(self) -> None:
        if not self._console:
            self._console = True
            self.counters.console_sessions += 1
            self._console_line.clear()
        self._console_active_ns = self.clock.now_ns()
        self.line.write(brp.PROMPT)

    def _leave_console(self) -> None:
        self._console = False
        self.line.write(brp.ESC_DC1)

    def _console_bytes(self, data: bytes) -> None:
        self._console_active_ns = self.clock.now_ns()
        for byte in data:
            if byte in (0x0D, 0x0A):
                if self._console_line:
                    line = self._console_line.decode("ascii", errors="replace")
                    self._console_line.clear()
                    self._console_command(line)
            else:
                self._console_line.append(byte)

    def _console_command(self, line: str) -> None:
        words = line.upper().split()
        reply = ""
        try:
            if words == ["GO"]:
                self._leave_console()
                return
            if words == ["STATUS"]:
                reply = self.status_text(self._firmware_now_ns())
            elif words == ["STOPCAL"]:
                self.calibration = None
            elif len(words) == 2 and words[1] == "MINUTE" and words[0].isdigit():
                self._next_cal_minutes = int(words[0])
            else:
                self._calibration_command(words)
        except ValueError as exc:
            reply = f"{line} undefined ({exc})\r\n"
        self.line.write(reply.encode("ascii") + brp.PROMPT)

    def _calibration_command(self, words: list[str]) -> None:
        components = {"Z": "Z", "N/S": "N", "N": "N", "E/W": "E", "E": "E", "ALL": "ZNE"}
        if not words or words[0] not in components:
            raise ValueError("unknown word")
        comp, rest = components[words[0]], words[1:]
        start = (self._firmware_now_ns() // NS_PER_S + 1) * NS_PER_S
        minutes = self._next_cal_minutes
        if len(rest) == 3 and rest[2] == "SINEWAVE" and rest[0].isdigit() and rest[1] in ("HZ", "SECOND"):
            n = int(rest[0])
            if not 1 <= n <= 10:
                raise ValueError("sine step must be 1-10")
            period = 1 / n if rest[1] == "HZ" else float(n)
            cal = Calibration(comp, "sine", start, start + minutes * 60 * NS_PER_S, period_s=period,
                              amplitude_v=self.cal_amplitude_v)
        elif rest == ["SQUAREWAVE"]:
            first = -(-start // (60 * NS_PER_S)) * 60 * NS_PER_S  # next clock minute
            cal = Calibration(comp, "square", first, first + 2 * minutes * 60 * NS_PER_S,
                              amplitude_v=self.cal_amplitude_v)
        elif rest == ["RANDOMCAL"]:
            cal = Calibration(comp, "random", start, start + minutes * 60 * NS_PER_S,
                              amplitude_v=self.cal_amplitude_v, interval_s=self.cal_random_interval_s,
                              rng=self._cal_rng)
        else:
            raise ValueError("unknown calibration")
        self.calibration = cal
        self._next_cal_minutes = 2
