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

Console commands run one at a time between blocks: break in with ^S, send the lines, collect the text
up to each `` ok`` prompt, leave with ``GO`` and wait for the digitizer's ESC DC1.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

from digitizer import brp
from digitizer.gcf import GcfBlock, GcfFormatError, block_to_packet, decode_block
from digitizer.gcf_status import status_from_block
from digitizer.packet import Packet, Status
from timeunits import NS_PER_S

CAL_COMPONENTS = {"Z": "Z", "N": "N/S", "E": "E/W", "ALL": "ALL"}
BREAK_IN_REPEAT_NS = NS_PER_S  # a break-in the console did not answer is sent again after this
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


class ConsoleState(enum.Enum):
    """Where a console request stands; the values are the words used in messages."""

    BREAK_IN = "break"  # ^S sent, waiting for the first prompt
    LINE = "line"  # a command line sent, waiting for its prompt
    GO = "go"  # GO sent, waiting for ESC DC1 (block mode)


@dataclass(frozen=True, eq=False)
class ConsoleRequest:
    """Console lines to run, to be answered by ``deadline_ns``; each request is its own identity."""

    lines: tuple[str, ...]
    deadline_ns: int

    def __post_init__(self) -> None:
        if not self.lines:
            raise ValueError("a console request needs at least one line")
        for line in self.lines:  # a CR or a control byte would end the line early or leave the console
            if not line or not line.isascii() or not line.isprintable():
                raise ValueError(f"console line {line!r} is not a non-empty line of printable ASCII")


@dataclass(frozen=True, slots=True)
class ConsoleReply:
    """The console's output for ``request``, each line's text up to its prompt, joined."""

    request: ConsoleRequest
    text: str


@dataclass(frozen=True, slots=True)
class ConsoleFailed:
    """``request`` ran out of time in ``state``; ``GO`` was sent to leave the console."""

    request: ConsoleRequest
    state: ConsoleState


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


@dataclass(frozen=True, slots=True)
class StrayText:
    """Console text arrived while no console request was running."""

    text: bytes


Event = (RewindRequested | RewindNarrowed | RewindAbandoned | BadBlock | TimeSteppedBack | ResentBlockDropped
         | StrayText | brp.ChecksumFailed | brp.Resync | brp.GapGivenUp | brp.HeldBlockReplaced)
Output = brp.SendBytes | Packet | Status | StreamGap | ConsoleReply | ConsoleFailed | LineSilent | Event


def calibration_lines(kind: str, component: str = "Z", minutes: int = 2, *, frequency_hz: int | None = None,
                      period_s: int | None = None) -> tuple[str, ...]:
    """Console lines for a ``sine`` (give ``frequency_hz`` or ``period_s``, 1-10), ``square`` or
    ``random`` calibration of ``component`` (Z, N, E or ALL) lasting ``minutes``."""
    comp = CAL_COMPONENTS.get(component.upper())
    if comp is None:
        raise ValueError(f"component {component!r} is not one of {sorted(CAL_COMPONENTS)}")
    if kind == "sine":
        if frequency_hz is not None and period_s is None:
            n, unit = frequency_hz, "HZ"
        elif period_s is not None and frequency_hz is None:
            n, unit = period_s, "SECOND"
        else:
            raise ValueError("a sine calibration needs exactly one of frequency_hz or period_s")
        if not 1 <= n <= 10:
            raise ValueError(f"sine {unit.lower()} value {n} is outside 1-10")
        word = f"{comp} {n} {unit} SINEWAVE"
    elif kind == "square":
        word = f"{comp} SQUAREWAVE"
    elif kind == "random":
        word = f"{comp} RANDOMCAL"
    else:
        raise ValueError(f"calibration kind {kind!r} is not sine, square or random")
    return f"{minutes} MINUTE", word


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


@dataclass
class _ConsoleExchange:
    request: ConsoleRequest
    state: ConsoleState = ConsoleState.BREAK_IN
    index: int = 0  # next line to send
    text: bytearray = field(default_factory=bytearray)  # console output since the last prompt
    reply: list[str] = field(default_factory=list)
    next_break_ns: int | None = None


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
        self._console: deque[_ConsoleExchange] = deque()
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
        self._drive_console(now_ns, out)
        if self._last_bytes_ns is not None and now_ns - self._last_bytes_ns > self.config.watchdog_ns:
            self.counters.watchdog_reopens += 1
            out.append(LineSilent(now_ns - self._last_bytes_ns))
            self._last_bytes_ns = None
        return out

    def submit(self, request: ConsoleRequest) -> None:
        """Queue console lines; ``poll`` starts them once the requests before them are done."""
        self._console.append(_ConsoleExchange(request))

    # -- BRP events ----------------------------------------------------------------------------------
    def _handle(self, events: list[brp.Event], out: list[Output]) -> None:
        counters = self.counters
        for ev in events:
            if isinstance(ev, brp.BlockReceived):
                self._on_block(ev.seq, ev.gcf, out)
            elif isinstance(ev, brp.SendBytes):
                out.append(ev)
            elif isinstance(ev, brp.TerminalText):
                self._on_text(ev.data, out)
            elif isinstance(ev, brp.BlockModeResumed):
                self._on_block_mode(out)
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
    def _drive_console(self, now_ns: int, out: list[Output]) -> None:
        if not self._console:
            return
        ex = self._console[0]
        if now_ns > ex.request.deadline_ns:
            self._console.popleft()
            self.counters.terminal_failures += 1
            out.append(brp.SendBytes(b"GO\r"))
            out.append(ConsoleFailed(ex.request, ex.state))
            return
        if ex.state is ConsoleState.BREAK_IN and (ex.next_break_ns is None or now_ns >= ex.next_break_ns):
            out.append(brp.SendBytes(bytes((brp.BREAK_IN,)) + b"\r"))
            ex.next_break_ns = now_ns + BREAK_IN_REPEAT_NS

    def _on_text(self, data: bytes, out: list[Output]) -> None:
        if not self._console:
            out.append(StrayText(data))
            return
        ex = self._console[0]
        ex.text += data
        if ex.state is ConsoleState.GO or not ex.text.endswith(brp.PROMPT):
            return
        if ex.state is ConsoleState.LINE:
            ex.reply.append(ex.text[: -len(brp.PROMPT)].decode("ascii", "replace"))
            ex.index += 1
        else:
            self.counters.terminal_sessions += 1
        ex.text.clear()
        lines = ex.request.lines
        if ex.index < len(lines):
            ex.state = ConsoleState.LINE
            out.append(brp.SendBytes(lines[ex.index].encode("ascii") + b"\r"))
        else:
            ex.state = ConsoleState.GO
            out.append(brp.SendBytes(b"GO\r"))

    def _on_block_mode(self, out: list[Output]) -> None:
        if self._console and self._console[0].state is ConsoleState.GO:
            ex = self._console.popleft()
            out.append(ConsoleReply(ex.request, "".join(ex.reply)))
