"""Güralp Block Recovery Protocol (BRP) over a serial line, as sans-I/O state machines (spec §§7-10).

The digitizer frames each GCF block as ``'G' seq size block checksum`` and keeps its last 255 blocks, so
the PC can answer a damaged or missing block with a NAK that makes it rewind and resend from there.
Bytes between frames are terminal (console) text.

``FrameScanner`` finds frames, damaged frames and terminal text in received bytes. ``BrpReceiver`` (PC
side) puts the frames in sequence: blocks delivered in sequence order exactly once, the ACK/NAK bytes to
write back, terminal text, resyncs, checksum failures and gaps given up on. A caller that must look at
frames before any is acknowledged (the driver's rewind after a reconnect) runs its own scanner and hands
frames to ``BrpReceiver.accept`` once it wants them sequenced. Nothing here reads a clock or logs:
callers pass ``now_ns`` and call ``poll`` so NAK retries and give-up run on whatever time the caller
uses (real or simulated), and they log the events they are given. ``BrpTransmitter`` and
``PcByteParser`` are the digitizer side, for simulated firmware.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field

FRAME_START = 0x47  # 'G'
FRAME_OVERHEAD = 6  # 'G', sequence, 2 size bytes, 2 checksum bytes
MIN_BLOCK_SIZE = 16  # a GCF header
MAX_BLOCK_SIZE = 1024
SEQ_MODULO = 256
DEFAULT_DEPTH = 255  # blocks a digitizer keeps for resending (§8)

ACK, NAK = 0x01, 0x02
BREAK_IN = 0x13  # ^S: request the console (alone, as ACK control byte, or after a NAK)
ESC_DC1 = b"\x1b\x11"  # digitizer leaves the console and returns to block mode
PROMPT = b" ok\r\n"  # the console's prompt after each command (DM24 Mk3)
PC_MESSAGE_SIZE = 6

_TEXT_OR_BINARY = re.compile(rb"([\t\n\r\x1b\x11\x20-\x7e]+)|([^\t\n\r\x1b\x11\x20-\x7e]+)")


# --------------------------------------------------------------------------------------------------
# wire format


def checksum(data: bytes | bytearray | memoryview) -> int:
    """BRP checksum: byte sum mod 65536 over the 4 transport bytes and the block (libgcf2's rule)."""
    return sum(data) & 0xFFFF


def frame_block(seq: int, gcf: bytes) -> bytes:
    """The frame the digitizer sends for block bytes ``gcf`` (already cut to their used length)."""
    if not 0 <= seq < SEQ_MODULO:
        raise ValueError(f"BRP sequence {seq} is not 0-255")
    if not MIN_BLOCK_SIZE <= len(gcf) <= MAX_BLOCK_SIZE:
        raise ValueError(f"GCF block of {len(gcf)} bytes cannot be framed (16-1024)")
    head = bytes((FRAME_START, seq, len(gcf) >> 8, len(gcf) & 0xFF)) + gcf
    return head + checksum(head).to_bytes(2, "big")


def _pc_message(kind: int, stream_word: int, code: int) -> bytes:
    w = stream_word.to_bytes(4, "little")
    return bytes((kind, w[0], code, w[1], w[2], w[3]))


def ack_bytes(stream_word: int, seq: int | None = None, *, control: int | None = None) -> bytes:
    """6-byte ACK: with ``seq`` the BRP form ``0x80 | seq & 0x7F``, else ``control`` (default 0x00)."""
    if seq is not None:
        code = 0x80 | (seq & 0x7F)
    else:
        code = 0x00 if control is None else control
    return _pc_message(ACK, stream_word, code)


def nak_bytes(stream_word: int, seq: int) -> bytes:
    """6-byte NAK asking the digitizer to rewind to ``seq`` and resend from there."""
    return _pc_message(NAK, stream_word, seq & 0xFF)


def stream_word_of(gcf: bytes) -> int:
    """Stream-ID word of a block (header offset 4), which ACK/NAK bytes echo."""
    return int.from_bytes(gcf[4:8], "big")


# --------------------------------------------------------------------------------------------------
# scanner and receiver events


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame whose checksum matched, not yet put in sequence; ``offset`` is where it began."""

    seq: int
    gcf: bytes = field(repr=False)
    offset: int


@dataclass(frozen=True, slots=True)
class DamagedFrame:
    """A frame whose checksum did not match (its sequence byte, even its size, may be damaged too)."""

    seq: int
    offset: int
    computed: int
    received: int


@dataclass(frozen=True, slots=True)
class BlockReceived:
    """A good block, delivered in sequence order; ``offset`` is its frame's position in the byte stream."""

    seq: int
    gcf: bytes = field(repr=False)
    offset: int = 0


@dataclass(frozen=True, slots=True)
class SendBytes:
    """Bytes (an ACK or NAK) to write to the digitizer now."""

    data: bytes


@dataclass(frozen=True, slots=True)
class TerminalText:
    """Out-of-band console output found between frames."""

    data: bytes
    offset: int


@dataclass(frozen=True, slots=True)
class BlockModeResumed:
    """The digitizer sent ESC DC1: its console closed and blocks follow again."""

    offset: int


@dataclass(frozen=True, slots=True)
class Resync:
    """A good frame was found after ``skipped`` bytes that were neither frames nor text."""

    skipped: int
    offset: int


@dataclass(frozen=True, slots=True)
class ChecksumFailed:
    """A frame whose checksum did not match; ``nak_sent`` tells whether recovery was asked for."""

    seq: int
    offset: int
    computed: int
    received: int
    nak_sent: bool


@dataclass(frozen=True, slots=True)
class GapGivenUp:
    """Blocks that will never arrive: recovery failed or they left the digitizer's buffer."""

    sequences: tuple[int, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class DuplicateIgnored:
    """A resent block already delivered (or held) was dropped."""

    seq: int


@dataclass(frozen=True, slots=True)
class HeldBlockReplaced:
    """A block held for later delivery was replaced by a different block under the same sequence."""

    seq: int


ScanEvent = Frame | DamagedFrame | TerminalText | BlockModeResumed | Resync
Event = BlockReceived | SendBytes | TerminalText | BlockModeResumed | Resync | ChecksumFailed | GapGivenUp \
    | DuplicateIgnored | HeldBlockReplaced


# --------------------------------------------------------------------------------------------------
# framing


class FrameScanner:
    """Splits received bytes into frames, damaged frames, terminal text and unframed bytes (``Resync``).

    It keeps a partial frame until the rest arrives and numbers positions from the first byte it was fed.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._buf_offset = 0  # stream offset of _buf[0]
        self._garbage_until = 0  # stream offset before which out-of-frame bytes are not text
        self._skipped = 0
        self._esc_at = -2  # stream offset of the last ESC seen in text

    def feed(self, data: bytes) -> list[ScanEvent]:
        self._buf += data
        events: list[ScanEvent] = []
        buf, i, n = self._buf, 0, len(self._buf)
        run = 0  # start of the out-of-frame bytes not yet reported
        while i < n:
            j = buf.find(FRAME_START, i)
            if j < 0:
                i = n
                break
            if n - j < 4:
                i = j
                break
            size = buf[j + 2] << 8 | buf[j + 3]
            if not MIN_BLOCK_SIZE <= size <= MAX_BLOCK_SIZE:
                i = j + 1  # a 'G' in text or noise
                continue
            end = j + 4 + size + 2
            if n < end:
                i = j
                break
            computed = checksum(memoryview(buf)[j:end - 2])
            received = buf[end - 2] << 8 | buf[end - 1]
            if computed != received:
                self._out_of_frame(run, j, events)
                run = j
                self._garbage_until = max(self._garbage_until, self._buf_offset + end)
                events.append(DamagedFrame(buf[j + 1], self._buf_offset + j, computed, received))
                i = j + 1  # rescan: the claimed size may be corrupt and hide a good frame
                continue
            self._out_of_frame(run, j, events)
            if self._skipped:
                events.append(Resync(self._skipped, self._buf_offset + j))
                self._skipped = 0
            events.append(Frame(buf[j + 1], bytes(buf[j + 4:end - 2]), self._buf_offset + j))
            i = run = end
        self._out_of_frame(run, i, events)
        del buf[:i]
        self._buf_offset += i
        return events

    def _out_of_frame(self, start: int, stop: int, events: list[ScanEvent]) -> None:
        """Bytes ``start:stop`` of the buffer belong to no frame: report text, count the rest."""
        if start >= stop:
            return
        base = self._buf_offset
        garbage_stop = min(stop, max(start, self._garbage_until - base))
        self._skipped += garbage_stop - start
        chunk = bytes(self._buf[garbage_stop:stop])
        for match in _TEXT_OR_BINARY.finditer(chunk):
            text = match.group(1)
            if text is None:
                self._skipped += match.end() - match.start()
                continue
            self._text(text, base + garbage_stop + match.start(), events)

    def _text(self, text: bytes, at: int, events: list[ScanEvent]) -> None:
        """``text`` (at stream offset ``at``) as ``TerminalText``, cut after each ESC DC1 so that its
        ``BlockModeResumed`` comes in stream order: what follows is the block-mode side's, however the
        bytes were cut into reads."""
        start = 0
        if text[0] == 0x11 and self._esc_at == at - 1:  # the ESC ended the previous piece of text
            events += [TerminalText(text[:1], at), BlockModeResumed(at + 1)]
            start = 1
        pos = text.find(ESC_DC1, start)
        while pos >= 0:
            events += [TerminalText(text[start : pos + 2], at + start), BlockModeResumed(at + pos + 2)]
            start = pos + 2
            pos = text.find(ESC_DC1, start)
        if start < len(text):
            events.append(TerminalText(text[start:], at + start))
        if text[-1] == 0x1B:
            self._esc_at = at + len(text) - 1


# --------------------------------------------------------------------------------------------------
# receiver


class BrpReceiver:
    """PC end of a BRP link: feed it bytes, write back the ``SendBytes`` it returns, act on the rest.

    Sequence numbers are unwrapped internally so a gap is known exactly. A block ahead of the expected
    one is held and the expected one NAKed (one NAK per gap; it is repeated every ``nak_timeout_ns``
    until ``max_naks``). A gap is given up when the retries run out or when ``depth`` newer blocks have
    arrived, i.e. the missing block has left the digitizer's resend buffer.
    """

    def __init__(self, *, nak_timeout_ns: int = 2_000_000_000, max_naks: int = 13, depth: int = DEFAULT_DEPTH,
                 ack_with_sequence: bool = True) -> None:
        if not 1 <= depth <= DEFAULT_DEPTH:
            raise ValueError(f"depth {depth} must be 1-255")
        self.nak_timeout_ns = nak_timeout_ns
        self.max_naks = max_naks
        self.depth = depth
        self.ack_with_sequence = ack_with_sequence
        self._scanner = FrameScanner()
        self._now_ns = 0
        self._started = False  # a first block fixed where the sequence starts
        self._next = 0  # unwrapped sequence of the next block to deliver (once started)
        self._held: dict[int, tuple[bytes, int]] = {}  # unwrapped seq -> (block, frame offset)
        self._delivered: dict[int, bytes] = {}  # wire seq -> last block delivered with it (256 slots)
        self._stream_word = 0
        self._naks = 0  # NAKs sent for the current gap
        self._nak_at = 0

    # public --------------------------------------------------------------------------------------

    @property
    def expected_seq(self) -> int | None:
        """Wire sequence number of the next block to deliver (None before the first block)."""
        return self._next % SEQ_MODULO if self._started else None

    @property
    def held_count(self) -> int:
        return len(self._held)

    def feed(self, data: bytes, now_ns: int | None = None) -> list[Event]:
        """Consume received bytes; ``now_ns`` (default: the last time given) stamps any NAK sent."""
        if now_ns is not None:
            self._now_ns = now_ns
        events: list[Event] = []
        for found in self._scanner.feed(data):
            if isinstance(found, Frame):
                self._good_frame(found, events)
            elif isinstance(found, DamagedFrame):
                self._bad_frame(found, events)
            else:
                events.append(found)
        return events

    def accept(self, found: Frame | DamagedFrame, now_ns: int) -> list[Event]:
        """Put one frame that the caller's own ``FrameScanner`` found in sequence (instead of ``feed``)."""
        self._now_ns = now_ns
        events: list[Event] = []
        if isinstance(found, Frame):
            self._good_frame(found, events)
        else:
            self._bad_frame(found, events)
        return events

    def poll(self, now_ns: int) -> list[Event]:
        """Run the NAK timer: repeat a NAK whose answer is overdue, or give the gap up."""
        self._now_ns = now_ns
        events: list[Event] = []
        if self._naks and now_ns - self._nak_at >= self.nak_timeout_ns:
            if self._naks >= self.max_naks:
                self._give_up_first_gap(events, f"no answer to {self._naks} NAKs")
            else:
                self._send_nak(events)
        return events

    def next_deadline_ns(self) -> int | None:
        """When ``poll`` has work to do next (None while no NAK is outstanding)."""
        return self._nak_at + self.nak_timeout_ns if self._naks else None

    # sequencing ----------------------------------------------------------------------------------

    def _bad_frame(self, bad: DamagedFrame, events: list[Event]) -> None:
        # Only a damaged copy of the block we wait for is NAKed at once: a damaged later block shows up
        # as a gap when the next good one arrives, and a false 'G' in noise must not trigger rewinds.
        nak = self._started and bad.seq == self._next % SEQ_MODULO
        if nak:
            self._send_nak(events)
        events.append(ChecksumFailed(bad.seq, bad.offset, bad.computed, bad.received, nak))

    def _good_frame(self, frame: Frame, events: list[Event]) -> None:
        seq, gcf = frame.seq, frame.gcf
        self._stream_word = stream_word_of(gcf)
        events.append(SendBytes(ack_bytes(self._stream_word, seq if self.ack_with_sequence else None)))
        if not self._started:
            self._started, self._next = True, seq
        if self._delivered.get(seq) == gcf:
            events.append(DuplicateIgnored(seq))
            return
        unwrapped = self._next + (seq - self._next) % SEQ_MODULO
        held = self._held.get(unwrapped)
        if held is not None:
            if held[0] == gcf:
                events.append(DuplicateIgnored(seq))
                return
            events.append(HeldBlockReplaced(seq))
        self._held[unwrapped] = (gcf, frame.offset)
        if unwrapped == self._next:
            self._naks = 0
            self._deliver_ready(events)
            return
        self._give_up_beyond_depth(unwrapped, events)
        if self._held and not self._naks:
            self._send_nak(events)

    def _deliver_ready(self, events: list[Event]) -> None:
        while self._next in self._held:
            self._deliver(self._held.pop(self._next), events)
            self._next += 1
        if self._held:
            # A further gap: the rewind under way resends it too, so just restart the NAK timer.
            self._naks = max(self._naks, 1)
            self._nak_at = self._now_ns
        else:
            self._naks = 0

    def _deliver(self, held: tuple[bytes, int], events: list[Event]) -> None:
        """Deliver the held block of sequence ``_next`` (the caller advances ``_next``)."""
        gcf, offset = held
        seq = self._next % SEQ_MODULO
        self._delivered[seq] = gcf
        events.append(BlockReceived(seq, gcf, offset))

    def _give_up_beyond_depth(self, newest: int, events: list[Event]) -> None:
        oldest_recoverable = newest - self.depth + 1
        if self._next >= oldest_recoverable:
            return
        # Blocks held below that line arrived intact: deliver them in order, and give up only the runs of
        # sequence numbers between them that never came (ignoring them would leave them held forever).
        lost: list[int] = []
        while self._next < oldest_recoverable:
            held = self._held.pop(self._next, None)
            if held is None:
                lost.append(self._next % SEQ_MODULO)
            else:
                self._give_up(lost, events)
                self._deliver(held, events)
            self._next += 1
            self._naks = 0
        self._give_up(lost, events)
        self._deliver_ready(events)

    def _give_up(self, lost: list[int], events: list[Event]) -> None:
        """Report (and forget) a run of blocks that left the digitizer's buffer before recovery."""
        if lost:
            events.append(GapGivenUp(tuple(lost), f"more than {self.depth - 1} newer blocks arrived"))
            lost.clear()

    def _give_up_first_gap(self, events: list[Event], reason: str) -> None:
        self._naks = 0
        if not self._held:
            return  # a NAK after a damaged frame, but no block is known to be missing
        first_held = min(self._held)
        lost = tuple(s % SEQ_MODULO for s in range(self._next, first_held))
        self._next = first_held
        events.append(GapGivenUp(lost, reason))
        self._deliver_ready(events)

    def _send_nak(self, events: list[Event]) -> None:
        self._naks += 1
        self._nak_at = self._now_ns
        events.append(SendBytes(nak_bytes(self._stream_word, self._next % SEQ_MODULO)))


# --------------------------------------------------------------------------------------------------
# digitizer side


@dataclass(frozen=True, slots=True)
class AckMessage:
    """An ACK from the PC; ``seq`` is the 7-bit sequence of the BRP form, None for control codes."""

    stream_word: int
    control: int

    @property
    def seq7(self) -> int | None:
        return self.control & 0x7F if self.control & 0x80 else None

    @property
    def break_in(self) -> bool:
        return self.control == BREAK_IN


@dataclass(frozen=True, slots=True)
class NakMessage:
    """A NAK: rewind to ``seq`` and resend from there."""

    stream_word: int
    seq: int


@dataclass(frozen=True, slots=True)
class BreakIn:
    """A lone ^S (0x13): the PC wants the console."""


@dataclass(frozen=True, slots=True)
class ConsoleInput:
    """Any other bytes from the PC (console commands in terminal mode, CR after a break-in)."""

    data: bytes


PcMessage = AckMessage | NakMessage | BreakIn | ConsoleInput


class PcByteParser:
    """Splits the PC's byte stream into ACK/NAK messages, break-ins and console bytes (keeps partials)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[PcMessage]:
        self._buf += data
        out: list[PcMessage] = []
        buf, i = self._buf, 0
        while i < len(buf):
            kind = buf[i]
            if kind in (ACK, NAK):
                if len(buf) - i < PC_MESSAGE_SIZE:
                    break
                m = buf[i:i + PC_MESSAGE_SIZE]
                word = int.from_bytes(bytes((m[5], m[4], m[3], m[1])), "big")
                out.append(AckMessage(word, m[2]) if kind == ACK else NakMessage(word, m[2]))
                i += PC_MESSAGE_SIZE
            elif kind == BREAK_IN:
                out.append(BreakIn())
                i += 1
            else:
                stop = i + 1
                while stop < len(buf) and buf[stop] not in (ACK, NAK, BREAK_IN):
                    stop += 1
                out.append(ConsoleInput(bytes(buf[i:stop])))
                i = stop
        del buf[:i]
        return out


def parse_pc_bytes(data: bytes) -> list[PcMessage]:
    """Stateless parse of complete PC bytes; a trailing partial ACK/NAK is dropped."""
    return PcByteParser().feed(data)


class BrpTransmitter:
    """Digitizer end: numbers and frames blocks and keeps the last ``depth`` frames for NAK rewinds."""

    def __init__(self, *, first_seq: int = 0, depth: int = DEFAULT_DEPTH) -> None:
        self.next_seq = first_seq % SEQ_MODULO
        self.depth = depth
        self._history: OrderedDict[int, bytes] = OrderedDict()  # wire seq -> frame, oldest first

    def frame(self, gcf: bytes) -> tuple[int, bytes]:
        """Assign the next sequence number to ``gcf`` and return (seq, frame); remembers the frame."""
        seq = self.next_seq
        frame = frame_block(seq, gcf)
        self._history.pop(seq, None)
        self._history[seq] = frame
        while len(self._history) > self.depth:
            self._history.popitem(last=False)
        self.next_seq = (seq + 1) % SEQ_MODULO
        return seq, frame

    def rewind(self, seq: int) -> list[bytes]:
        """Frames from ``seq`` to the newest, in order; empty when ``seq`` is no longer held."""
        if seq not in self._history:
            return []
        seqs = list(self._history)
        return [self._history[s] for s in seqs[seqs.index(seq):]]

    def acknowledges(self, message: AckMessage, seq: int) -> bool:
        """Whether ``message`` releases block ``seq`` (the BRP form must match its low 7 bits)."""
        return message.seq7 is None or message.seq7 == seq & 0x7F
