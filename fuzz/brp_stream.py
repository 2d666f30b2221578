"""BRP: arbitrary serial bytes into ``BrpReceiver`` (PC side) and ``PcByteParser`` (digitizer side).

Input layout: byte 0 picks the receiver's resend depth, byte 1 how the stream is cut into reads and
when the NAK timer runs; the rest is the serial stream.

Invariants:
- feeding and polling never raise, and return only the documented events;
- every delivered block is exactly a checksummed ``G seq size block checksum`` frame of the stream, at
  the offset the event names;
- sequence accounting: from the first delivered block on, delivered and given-up sequence numbers follow
  each other one by one (mod 256): nothing is delivered twice, skipped silently or delivered out of order;
- no more blocks are held for reordering than the resend depth;
- only whole 6-byte ACK/NAK messages are written back;
- how the bytes are cut into reads changes nothing: the same blocks, gaps, replies and console text;
- the PC-side parser gives back exactly the bytes it consumed, however they were cut.
"""

from __future__ import annotations

import random
from typing import get_args

import numpy as np

from digitizer.brp import (
    ACK,
    DEFAULT_DEPTH,
    MAX_BLOCK_SIZE,
    MIN_BLOCK_SIZE,
    NAK,
    AckMessage,
    BlockModeResumed,
    BlockReceived,
    BreakIn,
    BrpReceiver,
    BrpTransmitter,
    ConsoleInput,
    Event,
    GapGivenUp,
    NakMessage,
    PcByteParser,
    SendBytes,
    TerminalText,
    ack_bytes,
    frame_block,
    nak_bytes,
    parse_pc_bytes,
)
from digitizer.gcf import GcfBlock, encode_block
from fuzz.draw import read_sizes

EVENTS = get_args(Event)  # the receiver's documented events; a new one joins the check with its declaration
NAK_TIMEOUT_NS = 1_000_000_000
# libFuzzer's input cap: two frames of the largest block (2 x 1030 bytes) and console text between them.
# The checks cost in proportion to the length; libFuzzer's default of 4 KB halves the rate for nothing new.
MAX_LEN = 2304
READ_SIZES = (1, 2, 3, 5, 7, 64, 1000)  # the reads a stream is cut into, for the cutting check


def check(data: bytes) -> None:
    depth = DEFAULT_DEPTH if len(data) < 1 or data[0] >= 128 else 1 + data[0] % DEFAULT_DEPTH
    cuts = random.Random(data[1] if len(data) > 1 else 0)
    stream = data[2:]
    whole = _run(stream, depth, [len(stream)], polls=False)
    pieces = read_sizes(len(stream), cuts, READ_SIZES)
    _assert_same(whole, _run(stream, depth, pieces, polls=False))
    _run(stream, depth, pieces, polls=True)  # the NAK timer between reads: invariants only
    _check_pc_parser(stream, pieces)


def _run(stream: bytes, depth: int, pieces: list[int], polls: bool) -> list:
    rx = BrpReceiver(depth=depth, nak_timeout_ns=NAK_TIMEOUT_NS, max_naks=3)
    events: list = []
    at, now = 0, 0
    for size in pieces:
        now += NAK_TIMEOUT_NS // 2
        events += rx.feed(stream[at : at + size], now)
        at += size
        if polls:
            events += rx.poll(now)
        assert rx.held_count <= depth, f"{rx.held_count} blocks held with a resend depth of {depth}"
    _check_events(stream, events)
    return events


def _check_events(stream: bytes, events: list) -> None:
    expected = None  # wire sequence number of the next block to deliver or give up
    for event in events:
        assert isinstance(event, EVENTS), f"unexpected event {event!r}"
        if isinstance(event, BlockReceived):
            assert MIN_BLOCK_SIZE <= len(event.gcf) <= MAX_BLOCK_SIZE
            size = len(event.gcf) + 6
            assert stream[event.offset : event.offset + size] == frame_block(event.seq, event.gcf), (
                "a delivered block is not a checksummed frame of the stream at its offset"
            )
            assert expected is None or event.seq == expected, f"block {event.seq} delivered, {expected} due"
            expected = (event.seq + 1) % 256
        elif isinstance(event, GapGivenUp):
            assert expected is not None and event.sequences, "a gap given up before any block"
            for seq in event.sequences:
                assert seq == expected, f"gap {event.sequences} given up, {expected} due"
                expected = (seq + 1) % 256
        elif isinstance(event, SendBytes):
            assert len(event.data) == 6 and event.data[0] in (ACK, NAK), f"reply {event.data.hex()}"


def _summary(events: list) -> tuple:
    """What must not depend on how reads cut the stream."""
    blocks = [(e.seq, e.gcf, e.offset) for e in events if isinstance(e, BlockReceived)]
    gaps = [e.sequences for e in events if isinstance(e, GapGivenUp)]
    replies = [e.data for e in events if isinstance(e, SendBytes)]
    text = b"".join(e.data for e in events if isinstance(e, TerminalText))
    resumed = [e.offset for e in events if isinstance(e, BlockModeResumed)]
    return blocks, gaps, replies, text, resumed


def _assert_same(whole: list, cut: list) -> None:
    for name, a, b in zip(("blocks", "gaps", "replies", "console text", "block-mode resumptions"),
                          _summary(whole), _summary(cut), strict=True):
        assert a == b, f"{name} depend on how the bytes were cut into reads"


def _check_pc_parser(stream: bytes, pieces: list[int]) -> None:
    whole = parse_pc_bytes(stream)
    parser, cut, at = PcByteParser(), [], 0
    for size in pieces:
        cut += parser.feed(stream[at : at + size])
        at += size
    rebuilt = _pc_bytes(whole)
    assert stream.startswith(rebuilt) and len(stream) - len(rebuilt) < 6, "PC parser lost or invented bytes"
    assert _pc_bytes(cut) == rebuilt, "PC parser result depends on how the bytes were cut"


def _pc_bytes(messages: list) -> bytes:
    out = bytearray()
    for m in messages:
        if isinstance(m, AckMessage):
            out += ack_bytes(m.stream_word, control=m.control)
        elif isinstance(m, NakMessage):
            out += nak_bytes(m.stream_word, m.seq)
        elif isinstance(m, BreakIn):
            out += b"\x13"
        else:
            assert isinstance(m, ConsoleInput) and m.data, f"unexpected PC message {m!r}"
            out += m.data
    return bytes(out)


# ---------------------------------------------------------------------------------------------- corpus


def _blocks(n: int) -> list[bytes]:
    return [encode_block(GcfBlock("FUZZ1", "FUZZZ2", (1_600_000_000 + 4 * i) * 1_000_000_000, 1.0, 4,
                                  (np.arange(4, dtype=np.int32) + i) * 3)) for i in range(n)]


def seeds() -> list[bytes]:
    """Transmitter output: clean runs, wrap-around, console text, a damaged frame, lost and resent frames."""
    tx = BrpTransmitter(first_seq=250)
    frames = [tx.frame(b)[1] for b in _blocks(12)]
    clean = b"".join(frames)
    damaged = bytearray(clean)
    damaged[len(frames[0]) + 9] ^= 0x40
    out = [
        clean,
        b"boot ok\r\n" + clean[:40] + b"\x1b\x11" + clean[40:],
        bytes(damaged),
        b"".join(frames[:3] + frames[5:] + frames[3:5]),
        b"".join(frames[:4] + frames[6:]),
        b"".join(frames + frames[2:6]),
        b"\x01\x00\x80\x00\x00\x00\x02\x00\x05\x00\x00\x00\x13SHOW\r",
    ]
    return [header + s for s in out for header in (b"\xff\x00", b"\x05\x07")]


DICTIONARY = [b"G", b"\x1b\x11", b" ok\r\n", b"\x00\x10", b"\x04\x00", b"\x13"]
