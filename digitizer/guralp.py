"""Güralp digitizer driver: serial port → BRP → GCF → ``Packet``/``Status``/``StreamGap``, over bad lines.

One thread owns the port. It opens any pyserial URL, feeds received bytes to ``brp.BrpReceiver``,
writes back its ACK/NAKs, decodes blocks and queues what the station consumes. It reopens the port
when reads fail (cable pulled) or the line stays silent longer than the watchdog, with exponential
back-off while the port is missing. After a reconnect it asks the digitizer to rewind (NAK) far enough
to refetch what its 255-block buffer still holds and reports what the buffer no longer has as ``StreamGap``s
with exact start and end: a block is never silently skipped or delivered twice.

A re-sent block (the replay after a rewind, or the digitizer repeating a block whose ACK it missed) is
recognised by identity, not by time: the same BRP sequence number and the same bytes as the last block
this instance handled under that number. The digitizer keeps 255 blocks and numbers them mod 256, so
a block it can still resend has never had its slot taken by a newer one. Time cannot tell a re-send
from new data: after a backward step of the digitizer's clock (GPS re-lock, an operator setting the
time) new blocks carry earlier times, and they are delivered in arrival order for the station to
handle as a time tear. Gaps are judged per stream against the previous block in sequence order, a
re-sent one included: a replay retraces the stream's past, so no gap is reported twice.

A new driver instance cannot know what its predecessor (a killed process) ACKed but never made
durable, so by default (``startup_rewind``) its first block also triggers a rewind as deep as the
buffer allows; with nothing handled yet, those blocks are delivered as normal packets and the station
trims what its outbox already framed (``station.recovery``). A digitizer that ignores a NAK outside its
buffer (young firmware) is asked again, less deep, down to the first block seen, which it surely holds.

Terminal (console) commands are queued from any thread and run by the port thread between blocks:
break in with ^S, send the lines, collect the text up to each `` ok`` prompt, leave with ``GO``.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field

import serial

from digitizer import brp
from digitizer.gcf import GcfBlock, GcfFormatError, block_to_packet, decode_block
from digitizer.gcf_status import status_from_block
from digitizer.packet import Packet, Status
from timeunits import NS_PER_S

log = logging.getLogger(__name__)

CAL_COMPONENTS = {"Z": "Z", "N": "N/S", "E": "E/W", "ALL": "ALL"}


@dataclass(frozen=True, slots=True)
class StreamGap:
    """Samples of ``stream_id`` from ``start_ns`` (inclusive) to ``end_ns`` (exclusive) will never come."""

    system_id: str
    stream_id: str
    start_ns: int
    end_ns: int


@dataclass
class DriverCounters:
    """Everything unusual the driver met; each increment is also logged."""

    bytes_in: int = 0
    blocks: int = 0
    packets: int = 0
    statuses: int = 0
    checksum_failures: int = 0
    ric_mismatches: int = 0  # first difference ≠ 0 or last sample ≠ RIC
    bad_blocks: int = 0  # any other GCF format error
    resyncs: int = 0
    unrecoverable_brp_gaps: int = 0  # BRP gave up on sequence numbers
    gaps: int = 0  # time gaps reported downstream
    duplicates: int = 0  # re-sent blocks dropped (by BRP within a session, by identity across sessions)
    time_steps_back: int = 0  # new blocks starting before their stream's previous block ended
    rewinds: int = 0  # NAKs sent after a reconnect to refetch the buffer
    opens: int = 0
    open_failures: int = 0
    port_errors: int = 0
    watchdog_reopens: int = 0
    terminal_sessions: int = 0
    terminal_failures: int = 0


@dataclass
class DriverConfig:
    port: str  # device path or pyserial URL
    baudrate: int = 115200
    watchdog_s: float = 10.0  # reopen when nothing arrives for this long
    read_timeout_s: float = 0.05
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 10.0
    nak_timeout_s: float = 0.5
    max_naks: int = 13
    rewind_margin: int = 24  # blocks the digitizer may send between its newest block and our NAK
    rewind_timeout_s: float = 1.0
    startup_rewind: bool = True  # refetch the buffer on this instance's first block (process restarts)
    queue_size: int = 100_000
    command_timeout_s: float = 20.0


@dataclass
class _Command:
    lines: list[str]
    future: Future = field(default_factory=Future)
    deadline: float = 0.0
    state: str = "break"  # break → line → go
    index: int = 0
    text: bytearray = field(default_factory=bytearray)
    reply: list[str] = field(default_factory=list)
    next_break: float = 0.0


@dataclass(frozen=True, slots=True)
class _Handled:
    """The last block handled under one BRP sequence number; data blocks also give where they ended."""

    gcf: bytes
    stream_id: str | None = None
    end_ns: int = 0


@dataclass
class _Rewind:
    """A NAK waiting to be honoured: resume ``distance`` blocks before ``anchor`` (the first block seen)."""

    anchor: int
    distance: int
    stream_word: int
    tries: int = 1  # NAKs sent for the current distance
    deadline: float = 0.0
    skipped: int = 0  # frames that arrived since that NAK, none of them the target

    @property
    def target(self) -> int:
        return (self.anchor - self.distance) % brp.SEQ_MODULO


class GuralpDriver:
    """Run with ``start()``; iterate (or ``get()``) for items; ``stop()`` or the stop event ends it."""

    def __init__(self, config: DriverConfig, stop_event: threading.Event | None = None,
                 monotonic: Callable[[], float] = time.monotonic):
        self.config = config
        self.stop_event = stop_event or threading.Event()
        self.counters = DriverCounters()
        self._monotonic = monotonic
        self._items: queue.Queue[Packet | Status | StreamGap] = queue.Queue(config.queue_size)
        self._commands: deque[_Command] = deque()
        self._thread: threading.Thread | None = None
        self._port: serial.SerialBase | None = None
        self._handled: dict[int, _Handled] = {}  # BRP sequence → last block handled with it (all sessions)
        self._expected_end: dict[str, int] = {}  # data stream → end of its latest block in sequence order
        self._recent_starts: deque[int] = deque(maxlen=256)  # block times, for the block-rate estimate
        self._last_seq: int | None = None
        self._clock_locked: bool | None = None
        self._reset_session()

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"guralp:{self.config.port}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def get(self, timeout: float | None = None) -> Packet | Status | StreamGap | None:
        try:
            return self._items.get(timeout=timeout)
        except queue.Empty:
            return None

    def __iter__(self) -> Iterator[Packet | Status | StreamGap]:
        while not (self.stop_event.is_set() and self._items.empty()):
            item = self.get(timeout=0.1)
            if item is not None:
                yield item

    # -- terminal ------------------------------------------------------------------------------------
    def command(self, *lines: str, timeout: float | None = None) -> str:
        """Run console lines (e.g. ``"3 MINUTE"``, ``"Z 1 HZ SINEWAVE"``) and return their output."""
        cmd = _Command(list(lines))
        cmd.deadline = self._monotonic() + (timeout or self.config.command_timeout_s)
        self._commands.append(cmd)
        return cmd.future.result(timeout=(timeout or self.config.command_timeout_s) + 2.0)

    def status(self, timeout: float | None = None) -> str:
        return self.command("STATUS", timeout=timeout)

    def start_calibration(self, kind: str, component: str = "Z", minutes: int = 2, *,
                          frequency_hz: int | None = None, period_s: int | None = None,
                          timeout: float | None = None) -> str:
        """Start a ``sine`` (give ``frequency_hz`` or ``period_s``, 1-10), ``square`` or ``random`` cal."""
        comp = CAL_COMPONENTS.get(component.upper())
        if comp is None:
            raise ValueError(f"component {component!r} is not one of {sorted(CAL_COMPONENTS)}")
        if kind == "sine":
            if (frequency_hz is None) == (period_s is None):
                raise ValueError("a sine calibration needs exactly one of frequency_hz or period_s")
            n, unit = (frequency_hz, "HZ") if frequency_hz is not None else (period_s, "SECOND")
            if not 1 <= n <= 10:
                raise ValueError(f"sine {unit.lower()} value {n} is outside 1-10")
            word = f"{comp} {n} {unit} SINEWAVE"
        elif kind == "square":
            word = f"{comp} SQUAREWAVE"
        elif kind == "random":
            word = f"{comp} RANDOMCAL"
        else:
            raise ValueError(f"calibration kind {kind!r} is not sine, square or random")
        return self.command(f"{minutes} MINUTE", word, timeout=timeout)

    def stop_calibration(self, timeout: float | None = None) -> str:
        return self.command("STOPCAL", timeout=timeout)

    # -- port loop -----------------------------------------------------------------------------------
    def run(self) -> None:
        """Open, read, reopen until stopped."""
        backoff = self.config.backoff_initial_s
        while not self.stop_event.is_set():
            try:
                port = serial.serial_for_url(self.config.port, baudrate=self.config.baudrate,
                                             timeout=self.config.read_timeout_s)
            except (serial.SerialException, OSError) as exc:
                self.counters.open_failures += 1
                log.warning("cannot open digitizer port; retrying", extra={"port": self.config.port,
                            "error": str(exc), "retry_s": round(backoff, 3)})
                self.stop_event.wait(backoff)
                backoff = min(2 * backoff, self.config.backoff_max_s)
                continue
            backoff = self.config.backoff_initial_s
            self.counters.opens += 1
            log.info("digitizer port open", extra={"port": self.config.port})
            self._port = port
            try:
                self._session()
            except Exception:  # a bug met by some input must not end the driver thread: log, reopen
                self.counters.port_errors += 1
                log.exception("digitizer session failed; reopening", extra={"port": self.config.port})
                self.stop_event.wait(backoff)
            finally:
                self._port = None
                try:
                    port.close()
                except (serial.SerialException, OSError):
                    pass
        for cmd in self._commands:
            cmd.future.set_exception(RuntimeError("driver stopped"))

    def _reset_session(self) -> None:
        self._rx: brp.BrpReceiver | None = None  # None until the first block of a session is seen
        self._pending = bytearray()
        self._rewind: _Rewind | None = None

    def _session(self) -> None:
        self._reset_session()
        last_data = self._monotonic()
        while not self.stop_event.is_set():
            try:
                data = self._port.read(1)
                if data and self._port.in_waiting:
                    data += self._port.read(self._port.in_waiting)
            except (serial.SerialException, OSError) as exc:
                self.counters.port_errors += 1
                log.warning("digitizer port failed; reopening", extra={"port": self.config.port,
                                                                         "error": str(exc)})
                return
            now = self._monotonic()
            if data:
                last_data = now
                self.counters.bytes_in += len(data)
                self._on_bytes(data, now)
            elif now - last_data > self.config.watchdog_s:
                self.counters.watchdog_reopens += 1
                log.warning("digitizer line silent; reopening", extra={"port": self.config.port,
                            "silent_s": round(now - last_data, 2)})
                return
            if self._rx is not None:
                self._handle(self._rx.poll(int(now * NS_PER_S)))
            self._check_rewind(now)
            self._drive_terminal(now)

    def _write(self, data: bytes) -> None:
        try:
            self._port.write(data)
        except (serial.SerialException, OSError) as exc:  # the read side notices and reopens
            log.warning("write to digitizer failed", extra={"port": self.config.port, "error": str(exc)})

    def _new_receiver(self) -> brp.BrpReceiver:
        return brp.BrpReceiver(nak_timeout_ns=int(self.config.nak_timeout_s * NS_PER_S),
                               max_naks=self.config.max_naks)

    # -- reconnect: rewind into the digitizer's buffer ----------------------------------------------
    def _on_bytes(self, data: bytes, now: float) -> None:
        if self._rx is not None:
            self._handle(self._rx.feed(data, int(now * NS_PER_S)))
            return
        self._pending += data
        while True:
            probe = self._new_receiver()
            events = probe.feed(bytes(self._pending))
            first = next((e for e in events if isinstance(e, brp.BlockReceived)), None)
            if first is None:
                del self._pending[:-2048]  # text or noise before the first frame
                return
            if self._rewind is None:
                distance = self._rewind_distance(first.seq, first.gcf)
                if distance:
                    self._start_rewind(first.seq, distance, brp.stream_word_of(first.gcf), now)
                    del self._pending[:first.offset + len(first.gcf) + brp.FRAME_OVERHEAD]
                    continue
            elif first.seq != self._rewind.target:
                del self._pending[:first.offset + len(first.gcf) + brp.FRAME_OVERHEAD]
                self._rewind_skipped(first.seq, now)
                continue
            self._resume(now, first.offset)
            return

    def _resume(self, now: float, start: int = 0) -> None:
        """Rewind done (or given up): a fresh receiver takes the bytes held back, from ``start`` on."""
        self._rewind = None
        self._rx = self._new_receiver()
        data, self._pending = bytes(self._pending[start:]), bytearray()
        self._handle(self._rx.feed(data, int(now * NS_PER_S)))

    def _rewind_distance(self, seq: int, gcf: bytes) -> int:
        """How many blocks before ``seq`` to resume: back to the next expected block, or as deep as the
        buffer holds (first block of this instance with ``startup_rewind``, or too much missed); 0: none.

        A store-and-forward digitizer that held its position resumes at the expected block by itself,
        so no NAK is sent then and the two recoveries never compete.
        """
        deepest = brp.DEFAULT_DEPTH - 1 - self.config.rewind_margin
        if self._last_seq is None:
            return deepest if self.config.startup_rewind else 0
        expected = (self._last_seq + 1) % brp.SEQ_MODULO
        if seq == expected:
            return 0
        try:
            start_ns = decode_block(gcf).start_ns
        except GcfFormatError:
            start_ns = None
        missed = 256  # unknown: assume the worst
        if start_ns is not None and len(self._recent_starts) > 8:
            span = self._recent_starts[-1] - self._recent_starts[0]
            if span > 0:
                rate = (len(self._recent_starts) - 1) / span
                missed = rate * max(0, start_ns - self._recent_starts[-1])
        if missed < brp.DEFAULT_DEPTH - 2 * self.config.rewind_margin:
            return (seq - expected) % brp.SEQ_MODULO
        return deepest

    def _start_rewind(self, anchor: int, distance: int, stream_word: int, now: float) -> None:
        self._rewind = _Rewind(anchor, distance, stream_word, deadline=now + self.config.rewind_timeout_s)
        self.counters.rewinds += 1
        log.info("asking the digitizer to resend from its buffer",
                 extra={"seq": self._rewind.target, "blocks_back": distance})
        self._write(brp.nak_bytes(stream_word, self._rewind.target))

    def _rewind_skipped(self, seq: int, now: float) -> None:
        """A frame other than the target arrived while rewinding (sent before our NAK was read, or the
        NAK was ignored): the digitizer going back elsewhere by itself (a store-and-forward resend) or
        streaming on past the margin means the target is outside its buffer, so ask less deep."""
        rw = self._rewind
        rw.skipped += 1
        went_back_elsewhere = 0 < (seq - rw.target) % brp.SEQ_MODULO <= rw.distance
        if went_back_elsewhere or rw.skipped > self.config.rewind_margin:
            self._ask_less_deep(now)

    def _check_rewind(self, now: float) -> None:
        """No answer in time: repeat the NAK once (it may have been lost), then ask less deep."""
        rw = self._rewind
        if rw is None or now < rw.deadline:
            return
        if rw.tries < 2:
            rw.tries += 1
            rw.skipped = 0
            rw.deadline = now + self.config.rewind_timeout_s
            self._write(brp.nak_bytes(rw.stream_word, rw.target))
        else:
            self._ask_less_deep(now)

    def _ask_less_deep(self, now: float) -> None:
        rw = self._rewind
        if rw.distance == 0:  # take what comes; the time check reports anything missing as a gap
            log.warning("digitizer did not rewind; resuming without its buffer", extra={"seq": rw.target})
            self._resume(now)
            return
        rw.distance = rw.distance // 4 if rw.distance >= 16 else 0
        rw.tries, rw.skipped = 1, 0
        rw.deadline = now + self.config.rewind_timeout_s
        log.info("digitizer did not rewind; asking for fewer blocks",
                 extra={"seq": rw.target, "blocks_back": rw.distance})
        self._write(brp.nak_bytes(rw.stream_word, rw.target))

    # -- events --------------------------------------------------------------------------------------
    def _handle(self, events: list) -> None:
        for ev in events:
            if isinstance(ev, brp.SendBytes):
                self._write(ev.data)
            elif isinstance(ev, brp.BlockReceived):
                self._on_block(ev.seq, ev.gcf)
            elif isinstance(ev, brp.TerminalText):
                self._on_text(ev.data)
            elif isinstance(ev, brp.BlockModeResumed):
                self._on_block_mode()
            elif isinstance(ev, brp.ChecksumFailed):
                self.counters.checksum_failures += 1
                log.warning("BRP checksum failure", extra={"seq": ev.seq, "offset": ev.offset,
                                                            "nak": ev.nak_sent})
            elif isinstance(ev, brp.Resync):
                self.counters.resyncs += 1
                log.warning("BRP resync after unframed bytes",
                            extra={"skipped": ev.skipped, "offset": ev.offset})
            elif isinstance(ev, brp.GapGivenUp):
                self.counters.unrecoverable_brp_gaps += 1
                log.error("BRP blocks unrecoverable",
                          extra={"sequences": len(ev.sequences), "reason": ev.reason})
            elif isinstance(ev, brp.DuplicateIgnored):
                self.counters.duplicates += 1

    def _on_block(self, seq: int, gcf: bytes) -> None:
        self._last_seq = seq
        self.counters.blocks += 1
        if self._is_resent(seq, gcf):
            return
        self._handled[seq] = _Handled(gcf)  # bad and status blocks too: their re-sends are no news either
        try:
            block = decode_block(gcf)
        except GcfFormatError as exc:
            if exc.field in ("RIC", "first_difference"):
                self.counters.ric_mismatches += 1
            else:
                self.counters.bad_blocks += 1
            log.error("bad GCF block dropped", extra={"seq": seq, "field": exc.field, "offset": exc.offset,
                                                      "error": str(exc)})
            return
        self._recent_starts.append(block.start_ns)
        if block.is_status:
            self._on_status_block(block)
            return
        stream = block.stream_id
        self._handled[seq] = _Handled(gcf, stream, block.end_ns)
        expected = self._expected_end.get(stream)
        if expected is not None and block.start_ns > expected:
            self._report_gap(StreamGap(block.system_id, stream, expected, block.start_ns))
        elif expected is not None and block.start_ns < expected:
            self.counters.time_steps_back += 1
            log.warning("stream time stepped back; new block delivered", extra={
                "stream": stream, "seq": seq, "start_ns": block.start_ns, "expected_ns": expected,
                "step_s": (block.start_ns - expected) / NS_PER_S})
        self._expected_end[stream] = block.end_ns
        self._put(block_to_packet(block, seq, self._clock_locked))
        self.counters.packets += 1

    def _is_resent(self, seq: int, gcf: bytes) -> bool:
        """Whether this is the block already handled under ``seq`` (BRP drops such repeats within one
        receiver; this catches them across reconnects). A data block's stream then stands where it
        stood after that block, as the replay goes on from there."""
        seen = self._handled.get(seq)
        if seen is None or seen.gcf != gcf:
            return False
        self.counters.duplicates += 1
        if seen.stream_id is not None:
            self._expected_end[seen.stream_id] = seen.end_ns
        log.info("re-sent block dropped", extra={"seq": seq, "stream": seen.stream_id})
        return True

    def _on_status_block(self, block: GcfBlock) -> None:
        status = status_from_block(block)
        if status is not None:
            if status.gps_locked is not None:
                self._clock_locked = status.gps_locked
            self._put(status)
            self.counters.statuses += 1

    def _report_gap(self, gap: StreamGap) -> None:
        self.counters.gaps += 1
        log.error("gap in stream", extra={
            "stream": gap.stream_id, "start_ns": gap.start_ns, "end_ns": gap.end_ns,
            "seconds": (gap.end_ns - gap.start_ns) / NS_PER_S})
        self._put(gap)

    def _put(self, item: Packet | Status | StreamGap) -> None:
        while not self.stop_event.is_set():  # a full queue holds the ACKs back: the digitizer buffers
            try:
                self._items.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    # -- terminal session ----------------------------------------------------------------------------
    def _drive_terminal(self, now: float) -> None:
        if not self._commands:
            return
        cmd = self._commands[0]
        if now > cmd.deadline:
            self._commands.popleft()
            self.counters.terminal_failures += 1
            log.error("console command timed out", extra={"state": cmd.state, "lines": " | ".join(cmd.lines)})
            self._write(b"GO\r")
            cmd.future.set_exception(TimeoutError(f"console did not answer in state {cmd.state}"))
            return
        if cmd.state == "break" and now >= cmd.next_break:
            self._write(bytes((brp.BREAK_IN,)) + b"\r")
            cmd.next_break = now + 1.0

    def _on_text(self, data: bytes) -> None:
        if not self._commands:
            log.info("terminal text outside a session", extra={"text": data[:80].decode("ascii", "replace")})
            return
        cmd = self._commands[0]
        cmd.text += data
        if cmd.state in ("break", "line") and cmd.text.endswith(brp.PROMPT):
            if cmd.state == "line":
                cmd.reply.append(cmd.text[: -len(brp.PROMPT)].decode("ascii", "replace"))
                cmd.index += 1
            else:
                self.counters.terminal_sessions += 1
            cmd.text.clear()
            if cmd.index < len(cmd.lines):
                cmd.state = "line"
                self._write(cmd.lines[cmd.index].encode("ascii") + b"\r")
            else:
                cmd.state = "go"
                self._write(b"GO\r")

    def _on_block_mode(self) -> None:
        if self._commands and self._commands[0].state == "go":
            cmd = self._commands.popleft()
            cmd.future.set_result("".join(cmd.reply))
