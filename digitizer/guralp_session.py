"""The Güralp driver's protocol rules, without a port, a thread, a clock or a logger (sans-I/O).

Bytes and the time go in: ``connection_made(now_ns)`` when a port opens, ``receive(data, now_ns)`` for
what it read, ``poll(now_ns)`` for the timers, ``submit(request)`` for console commands. Out come, in
the order to act on them: ``brp.SendBytes`` to write, ``Packet``/``Status``/``StreamGap`` for the station,
``ConsoleReply``/``ConsoleFailed`` for console requests, ``LineSilent`` (reopen the port) and events
that the adapter (``digitizer.guralp``) logs once. Times are integer nanoseconds of the caller's clock.

Reconnect and rewind. Each connection is a new BRP session. Until its first block is taken, frames are
looked at without being acknowledged: the first one tells how far the digitizer went on meanwhile, and
the session asks it to rewind (NAK) far enough to refetch what its 255-block buffer still holds. Frames
that arrive before the one asked for are passed over; once it comes (or the rewind is given up) a
``brp.BrpReceiver`` takes over the sequence. What the buffer no longer has is reported as ``StreamGap``s
with exact start and end: a block is never silently skipped or delivered twice. A store-and-forward
digitizer that held its position resumes at the expected block by itself, so no NAK is sent then and
the two recoveries never compete. A digitizer that ignores a NAK outside its buffer (young firmware) is
asked again, less deep, down to the first block seen, which it surely holds.

Re-sent blocks. A re-sent block (the replay after a rewind, or the digitizer repeating a block whose ACK
it missed) is recognised by identity, not by time: the same BRP sequence number and the same bytes as
the last block this session handled under that number. The digitizer keeps 255 blocks and numbers them
mod 256, so a block it can still resend has never had its slot taken by a newer one. Time cannot tell a
re-send from new data: after a backward step of the digitizer's clock (GPS re-lock, an operator setting
the time) new blocks carry earlier times, and they are delivered in arrival order for the station to
handle as a time tear. Gaps are judged per stream against the previous block in sequence order, a
re-sent one included: a replay retraces the stream's past, so no gap is reported twice.

A new session cannot know what its predecessor (a killed process) ACKed but never made durable, so by
default (``startup_rewind``) its first block also triggers a rewind as deep as the buffer allows; with
nothing handled yet, those blocks are delivered as normal packets and the station trims what its outbox
already framed (``station.recovery``).

Console requests are handed to ``digitizer.guralp_console.Console``, which runs them between blocks.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from digitizer import brp
from digitizer.gcf import GcfBlock, GcfFormatError, block_to_packet, decode_block
from digitizer.gcf_status import status_from_block
from digitizer.guralp_console import (
    Console,
    ConsoleFailed,
    ConsoleOpened,
    ConsoleOutput,
    ConsoleReply,
    ConsoleRequest,
    StrayText,
)
from digitizer.packet import Packet, Status

_RECENT_BLOCKS = 256  # block start times kept for the block-rate estimate


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Protocol settings; ``digitizer.guralp.DriverConfig`` holds their defaults, in seconds."""

    watchdog_ns: int  # a line silent this long is reopened
    nak_timeout_ns: int  # BRP repeats an unanswered NAK after this
    max_naks: int  # and gives the gap up after this many
    rewind_margin: int  # blocks the digitizer may send between its newest block and our NAK
    rewind_timeout_ns: int  # a rewind NAK unanswered this long is repeated once, then asked less deep
    startup_rewind: bool  # refetch the buffer on this session's first block (process restarts)

    def __post_init__(self) -> None:
        for name in ("watchdog_ns", "nak_timeout_ns", "rewind_timeout_ns"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.max_naks < 1:
            raise ValueError(f"max_naks must be at least 1, got {self.max_naks}")
        most = (brp.DEFAULT_DEPTH - 1) // 2  # the rewind estimate needs two margins inside the buffer
        if not 0 <= self.rewind_margin <= most:
            raise ValueError(f"rewind_margin must be 0-{most}, got {self.rewind_margin}")


@dataclass
class SessionCounters:
    """What the session met; unusual things are also returned as events for the adapter to log."""

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
    watchdog_reopens: int = 0
    terminal_sessions: int = 0
    terminal_failures: int = 0


# --------------------------------------------------------------------------------------------------
# outputs


@dataclass(frozen=True, slots=True)
class StreamGap:
    """Samples of ``stream_id`` from ``start_ns`` (inclusive) to ``end_ns`` (exclusive) will never come."""

    system_id: str
    stream_id: str
    start_ns: int
    end_ns: int


@dataclass(frozen=True, slots=True)
class LineSilent:
    """Nothing arrived for ``silent_ns``: the adapter should reopen the port."""

    silent_ns: int


@dataclass(frozen=True, slots=True)
class RewindRequested:
    """A NAK asked the digitizer to resend from ``seq``, ``blocks_back`` before the first block seen."""

    seq: int
    blocks_back: int


@dataclass(frozen=True, slots=True)
class RewindNarrowed:
    """The digitizer did not rewind; it is asked again for fewer blocks."""

    seq: int
    blocks_back: int


@dataclass(frozen=True, slots=True)
class RewindAbandoned:
    """The digitizer did not rewind even to the first block seen; blocks are taken as they come."""

    seq: int


@dataclass(frozen=True, slots=True)
class BadBlock:
    """A block with a good BRP checksum failed GCF decoding and was dropped."""

    seq: int
    field: str
    offset: int
    error: str


@dataclass(frozen=True, slots=True)
class TimeSteppedBack:
    """A new block of ``stream_id`` starts before the previous one ended; it is delivered all the same."""

    stream_id: str
    seq: int
    start_ns: int
    expected_ns: int


@dataclass(frozen=True, slots=True)
class ResentBlockDropped:
    """A block handled before (same sequence, same bytes) came again and was dropped."""

    seq: int
    stream_id: str | None


Event = (RewindRequested | RewindNarrowed | RewindAbandoned | BadBlock | TimeSteppedBack | ResentBlockDropped
         | ConsoleOpened | StrayText
         | brp.ChecksumFailed | brp.Resync | brp.GapGivenUp | brp.HeldBlockReplaced)
Output = brp.SendBytes | Packet | Status | StreamGap | ConsoleReply | ConsoleFailed | LineSilent | Event


# --------------------------------------------------------------------------------------------------
# state


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
    deadline_ns: int
    tries: int = 1  # NAKs sent for the current distance
    skipped: int = 0  # frames that arrived since that NAK, none of them the target

    @property
    def target(self) -> int:
        return (self.anchor - self.distance) % brp.SEQ_MODULO


class GuralpSession:
    """One digitizer's protocol state across connections; see the module docstring for the rules."""

    def __init__(self, config: SessionConfig, counters: SessionCounters | None = None) -> None:
        self.config = config
        self.counters = counters if counters is not None else SessionCounters()
        self._handled: dict[int, _Handled] = {}  # BRP sequence → last block handled with it (all connections)
        self._expected_end: dict[str, int] = {}  # data stream → end of its latest block in sequence order
        self._recent_starts: deque[int] = deque(maxlen=_RECENT_BLOCKS)  # for the block-rate estimate
        self._last_seq: int | None = None
        self._clock_locked: bool | None = None
        self._console = Console()
        self._scanner = brp.FrameScanner()
        self._rx: brp.BrpReceiver | None = None  # None until the connection's first block is taken
        self._rewind: _Rewind | None = None
        self._last_bytes_ns: int | None = None  # None while no port is open (or after the watchdog fired)

    # -- inputs --------------------------------------------------------------------------------------
    def connection_made(self, now_ns: int) -> None:
        """A port was (re)opened: a new byte stream and a new BRP session, nothing known of either."""
        self._scanner = brp.FrameScanner()
        self._rx = None
        self._rewind = None
        self._last_bytes_ns = now_ns

    def receive(self, data: bytes, now_ns: int) -> list[Output]:
        """Bytes read from the port at ``now_ns``."""
        self._last_bytes_ns = now_ns
        self.counters.bytes_in += len(data)
        out: list[Output] = []
        for found in self._scanner.feed(data):
            if isinstance(found, brp.Frame | brp.DamagedFrame):
                if self._rx is not None:
                    self._handle(self._rx.accept(found, now_ns), out)
                elif isinstance(found, brp.Frame):
                    self._seek(found, now_ns, out)
                else:  # nothing expected yet, so nothing to NAK
                    self._handle([brp.ChecksumFailed(found.seq, found.offset, found.computed, found.received,
                                                     False)], out)
            else:
                self._handle([found], out)
        return out

    def poll(self, now_ns: int) -> list[Output]:
        """Run the timers: BRP NAK retries, the rewind, console break-ins and deadlines, the watchdog."""
        out: list[Output] = []
        if self._rx is not None:
            self._handle(self._rx.poll(now_ns), out)
        self._check_rewind(now_ns, out)
        self._take_console(self._console.poll(now_ns), out)
        if self._last_bytes_ns is not None and now_ns - self._last_bytes_ns > self.config.watchdog_ns:
            self.counters.watchdog_reopens += 1
            out.append(LineSilent(now_ns - self._last_bytes_ns))
            self._last_bytes_ns = None
        return out

    def submit(self, request: ConsoleRequest) -> None:
        """Queue console lines; ``poll`` starts them once the requests before them are done."""
        self._console.submit(request)

    # -- BRP events ----------------------------------------------------------------------------------
    def _handle(self, events: list[brp.Event], out: list[Output]) -> None:
        counters = self.counters
        for ev in events:
            if isinstance(ev, brp.BlockReceived):
                self._on_block(ev.seq, ev.gcf, out)
            elif isinstance(ev, brp.SendBytes):
                out.append(ev)
            elif isinstance(ev, brp.TerminalText):
                self._take_console(self._console.text(ev.data), out)
            elif isinstance(ev, brp.BlockModeResumed):
                self._take_console(self._console.block_mode(), out)
            elif isinstance(ev, brp.DuplicateIgnored):
                counters.duplicates += 1
            else:
                if isinstance(ev, brp.ChecksumFailed):
                    counters.checksum_failures += 1
                elif isinstance(ev, brp.Resync):
                    counters.resyncs += 1
                elif isinstance(ev, brp.GapGivenUp):
                    counters.unrecoverable_brp_gaps += 1
                out.append(ev)

    # -- reconnect: rewind into the digitizer's buffer ----------------------------------------------
    def _seek(self, frame: brp.Frame, now_ns: int, out: list[Output]) -> None:
        """A frame before the connection's first block is taken: rewind, pass it over, or start with it."""
        rw = self._rewind
        if rw is None:
            distance = self._rewind_distance(frame.seq, frame.gcf)
            if distance:
                self._start_rewind(frame.seq, distance, brp.stream_word_of(frame.gcf), now_ns, out)
                return
        elif frame.seq != rw.target:
            self._rewind_skipped(rw, frame, now_ns, out)
            return
        self._resume(frame, now_ns, out)

    def _resume(self, frame: brp.Frame | None, now_ns: int, out: list[Output]) -> None:
        """Rewind done (or given up): a BRP receiver takes over, starting with ``frame`` if there is one."""
        self._rewind = None
        self._rx = brp.BrpReceiver(nak_timeout_ns=self.config.nak_timeout_ns, max_naks=self.config.max_naks)
        if frame is not None:
            self._handle(self._rx.accept(frame, now_ns), out)

    def _rewind_distance(self, seq: int, gcf: bytes) -> int:
        """How many blocks before ``seq`` to resume: back to the next expected block, or as deep as the
        buffer holds (first block of this session with ``startup_rewind``, or too much missed); 0: none."""
        margin = self.config.rewind_margin
        deepest = brp.DEFAULT_DEPTH - 1 - margin
        if self._last_seq is None:
            return deepest if self.config.startup_rewind else 0
        expected = (self._last_seq + 1) % brp.SEQ_MODULO
        if seq == expected:
            return 0
        try:
            start_ns: int | None = decode_block(gcf).start_ns
        except GcfFormatError:
            start_ns = None
        missed: float = brp.SEQ_MODULO  # unknown: assume the worst
        if start_ns is not None and len(self._recent_starts) > 8:
            span = self._recent_starts[-1] - self._recent_starts[0]
            if span > 0:
                rate = (len(self._recent_starts) - 1) / span
                missed = rate * max(0, start_ns - self._recent_starts[-1])
        if missed < brp.DEFAULT_DEPTH - 2 * margin:
            return (seq - expected) % brp.SEQ_MODULO
        return deepest

    def _start_rewind(self, anchor: int, distance: int, stream_word: int, now_ns: int,
                      out: list[Output]) -> None:
        rw = self._rewind = _Rewind(anchor, distance, stream_word, now_ns + self.config.rewind_timeout_ns)
        self.counters.rewinds += 1
        out.append(RewindRequested(rw.target, distance))
        out.append(brp.SendBytes(brp.nak_bytes(stream_word, rw.target)))

    def _rewind_skipped(self, rw: _Rewind, frame: brp.Frame, now_ns: int, out: list[Output]) -> None:
        """A frame other than the target arrived while rewinding (sent before our NAK was read, or the
        NAK was ignored): the digitizer going back elsewhere by itself (a store-and-forward resend) or
        streaming on past the margin means the target is outside its buffer, so ask less deep."""
        rw.skipped += 1
        went_back_elsewhere = 0 < (frame.seq - rw.target) % brp.SEQ_MODULO <= rw.distance
        if went_back_elsewhere or rw.skipped > self.config.rewind_margin:
            self._ask_less_deep(rw, frame, now_ns, out)

    def _check_rewind(self, now_ns: int, out: list[Output]) -> None:
        """No answer in time: repeat the NAK once (it may have been lost), then ask less deep."""
        rw = self._rewind
        if rw is None or now_ns < rw.deadline_ns:
            return
        if rw.tries < 2:
            rw.tries += 1
            rw.skipped = 0
            rw.deadline_ns = now_ns + self.config.rewind_timeout_ns
            out.append(brp.SendBytes(brp.nak_bytes(rw.stream_word, rw.target)))
        else:
            self._ask_less_deep(rw, None, now_ns, out)

    def _ask_less_deep(self, rw: _Rewind, frame: brp.Frame | None, now_ns: int, out: list[Output]) -> None:
        """Narrow the rewind; at distance 0 already, take blocks as they come, ``frame`` (if any) first:
        the time check reports anything missing as a gap."""
        if rw.distance == 0:
            out.append(RewindAbandoned(rw.target))
            self._resume(frame, now_ns, out)
            return
        rw.distance = rw.distance // 4 if rw.distance >= 16 else 0
        rw.tries, rw.skipped = 1, 0
        rw.deadline_ns = now_ns + self.config.rewind_timeout_ns
        out.append(RewindNarrowed(rw.target, rw.distance))
        out.append(brp.SendBytes(brp.nak_bytes(rw.stream_word, rw.target)))

    # -- blocks --------------------------------------------------------------------------------------
    def _on_block(self, seq: int, gcf: bytes, out: list[Output]) -> None:
        self._last_seq = seq
        self.counters.blocks += 1
        if self._is_resent(seq, gcf, out):
            return
        self._handled[seq] = _Handled(gcf)  # bad and status blocks too: their re-sends are no news either
        try:
            block = decode_block(gcf)
        except GcfFormatError as exc:
            if exc.field in ("RIC", "first_difference"):
                self.counters.ric_mismatches += 1
            else:
                self.counters.bad_blocks += 1
            out.append(BadBlock(seq, exc.field, exc.offset, str(exc)))
            return
        self._recent_starts.append(block.start_ns)
        if block.is_status:
            self._on_status_block(block, out)
            return
        stream = block.stream_id
        self._handled[seq] = _Handled(gcf, stream, block.end_ns)
        expected = self._expected_end.get(stream)
        if expected is not None and block.start_ns > expected:
            self.counters.gaps += 1
            out.append(StreamGap(block.system_id, stream, expected, block.start_ns))
        elif expected is not None and block.start_ns < expected:
            self.counters.time_steps_back += 1
            out.append(TimeSteppedBack(stream, seq, block.start_ns, expected))
        self._expected_end[stream] = block.end_ns
        self.counters.packets += 1
        out.append(block_to_packet(block, seq, self._clock_locked))

    def _is_resent(self, seq: int, gcf: bytes, out: list[Output]) -> bool:
        """Whether this is the block already handled under ``seq`` (BRP drops such repeats within one
        connection; this catches them across reconnects). A data block's stream then stands where it
        stood after that block, as the replay goes on from there."""
        seen = self._handled.get(seq)
        if seen is None or seen.gcf != gcf:
            return False
        self.counters.duplicates += 1
        if seen.stream_id is not None:
            self._expected_end[seen.stream_id] = seen.end_ns
        out.append(ResentBlockDropped(seq, seen.stream_id))
        return True

    def _on_status_block(self, block: GcfBlock, out: list[Output]) -> None:
        status = status_from_block(block)
        if status is not None:
            if status.gps_locked is not None:
                self._clock_locked = status.gps_locked
            self.counters.statuses += 1
            out.append(status)

    # -- console -------------------------------------------------------------------------------------
    def _take_console(self, outputs: list[ConsoleOutput], out: list[Output]) -> None:
        for o in outputs:
            if isinstance(o, ConsoleOpened):
                self.counters.terminal_sessions += 1
            elif isinstance(o, ConsoleFailed):
                self.counters.terminal_failures += 1
        out += outputs
