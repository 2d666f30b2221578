"""BRP receiver and transmitter without any port: spec vectors and a scripted link with faults."""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
import obspy
import pytest

from digitizer.brp import (
    AckMessage,
    BlockModeResumed,
    BlockReceived,
    BreakIn,
    BrpReceiver,
    BrpTransmitter,
    ChecksumFailed,
    ConsoleInput,
    DamagedFrame,
    DuplicateIgnored,
    Frame,
    FrameScanner,
    GapGivenUp,
    HeldBlockReplaced,
    NakMessage,
    PcByteParser,
    Resync,
    SendBytes,
    TerminalText,
    ack_bytes,
    checksum,
    frame_block,
    nak_bytes,
    parse_pc_bytes,
)
from digitizer.gcf import GcfBlock, encode_block
from timeunits import NS_PER_S

OBSPY_GCF = Path(obspy.__file__).parent / "io" / "gcf" / "tests" / "data"
STREAM = "TESTZ0"
WORD = int.from_bytes(encode_block(GcfBlock("T", STREAM, 1_600_000_000 * NS_PER_S, 1.0, 4,
                                            np.zeros(4, np.int32)))[4:8], "big")


def _blocks(n: int) -> list[bytes]:
    """Distinct small blocks (4 s of 1 sps each), so every sequence slot carries different bytes."""
    out = []
    for i in range(n):
        samples = (np.arange(4, dtype=np.int32) + i) * 3
        out.append(encode_block(GcfBlock("T", STREAM, (1_600_000_000 + 4 * i) * NS_PER_S, 1.0, 4, samples)))
    return out


Fault = Callable[[int, int, bytes], bytes]  # (seq, how many times this seq was sent before, frame) -> bytes


class ScriptedLink:
    """A digitizer (BrpTransmitter) and a receiver exchanging bytes in memory, 100 ms per frame."""

    def __init__(self, rx: BrpReceiver, fault: Fault | None = None, honour_naks: bool = True) -> None:
        self.rx, self.tx, self.pc = rx, BrpTransmitter(), PcByteParser()
        self.fault, self.honour_naks = fault, honour_naks
        self.now = 0
        self.events: list = []
        self.naks: list[int] = []
        self._sent: dict[int, int] = {}

    def run(self, blocks: list[bytes]) -> None:
        new, resend = deque(blocks), deque()
        while new or resend:
            frame = resend.popleft() if resend else self.tx.frame(new.popleft())[1]
            seq = frame[1]
            attempt = self._sent.get(seq, 0)
            self._sent[seq] = attempt + 1
            wire = self.fault(seq, attempt, frame) if self.fault else frame
            self.now += 100_000_000
            for event in self.rx.feed(wire, self.now):
                self.events.append(event)
                if isinstance(event, SendBytes):
                    for message in self.pc.feed(event.data):
                        if isinstance(message, NakMessage):
                            self.naks.append(message.seq)
                            if self.honour_naks:
                                resend = deque(self.tx.rewind(message.seq))

    def delivered(self) -> list[bytes]:
        return [e.gcf for e in self.events if isinstance(e, BlockReceived)]

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


# -- spec §12 vectors --------------------------------------------------------------------------------


def test_frames_and_checksums_match_spec_vectors() -> None:
    data = (OBSPY_GCF / "20160603_1955n.gcf").read_bytes()
    f0, f1 = frame_block(0, data[:824]), frame_block(1, data[1024:1024 + 424])
    assert f0[:4].hex() == "47000338" and f0[-6:].hex() == "ffff3eafa698" and len(f0) == 830
    assert checksum(f0[:-2]) == 0xA698 and checksum(data[:824]) == 0xA616  # not the block-only sum
    assert hashlib.sha256(f0).hexdigest() == \
        "3b5a0744a1b407d6ea1ce2191a11bb218817193d062b1a7039ab9ad42c4bac16"
    assert hashlib.sha256(f1).hexdigest() == \
        "b952ccb31e0d3e520e1d1781dd7f008f329034dabf00cd9a9e06475b0a9a5dbc"
    b = (OBSPY_GCF / "20160603_1910n.gcf").read_bytes()
    assert frame_block(1, b[1024:])[-6:].hex() == "ffff3e27066c"


def test_ack_and_nak_bytes_match_spec_table() -> None:
    assert ack_bytes(0x15A0BA00).hex() == "010000baa015"
    assert ack_bytes(0x15A0BA00, 1).hex() == "010081baa015"
    assert ack_bytes(0x15A0B9FE, control=0x13).hex() == "01fe13b9a015"
    assert nak_bytes(0x15A0B9FE, 0).hex() == "02fe00b9a015"
    assert parse_pc_bytes(bytes.fromhex("010081baa015")) == [AckMessage(0x15A0BA00, 0x81)]


def test_pc_byte_parser_keeps_partial_messages() -> None:
    parser = PcByteParser()
    data = nak_bytes(WORD, 9) + b"\x13\r" + ack_bytes(WORD, 200)
    got = parser.feed(data[:4]) + parser.feed(data[4:10]) + parser.feed(data[10:])
    assert got == [NakMessage(WORD, 9), BreakIn(), ConsoleInput(b"\r"), AckMessage(WORD, 0x80 | 200 & 0x7F)]
    assert got[-1].seq7 == 200 & 0x7F and not got[-1].break_in


def test_transmitter_keeps_255_frames_and_matches_acks() -> None:
    tx = BrpTransmitter(first_seq=250)
    frames = [tx.frame(b)[1] for b in _blocks(300)]
    assert [f[1] for f in frames[:8]] == [250, 251, 252, 253, 254, 255, 0, 1]
    newest = frames[-1][1]
    assert tx.rewind(newest) == [frames[-1]]
    assert tx.rewind((newest - 254) % 256) == frames[-255:]
    assert tx.rewind((newest - 255) % 256) == []  # left the buffer
    assert tx.acknowledges(AckMessage(WORD, 0x80 | 0x67), 0xE7)
    assert not tx.acknowledges(AckMessage(WORD, 0xE6), 0xE7)


# -- receiver on a scripted link -------------------------------------------------------------------


def test_clean_stream_across_two_wraps_is_delivered_once_in_order_and_acked() -> None:
    blocks = _blocks(600)
    link = ScriptedLink(BrpReceiver())
    link.run(blocks)
    assert link.delivered() == blocks
    assert [e.seq for e in link.of(BlockReceived)] == [i % 256 for i in range(600)]
    acks = [e.data for e in link.of(SendBytes)]
    assert acks == [ack_bytes(WORD, i % 256) for i in range(600)] and not link.naks


def test_corrupted_frame_is_naked_resent_and_delivered_once() -> None:
    def corrupt_first_send_of_5(seq: int, attempt: int, frame: bytes) -> bytes:
        if seq == 5 and attempt == 0:
            return frame[:30] + bytes([frame[30] ^ 0x40]) + frame[31:]
        return frame

    blocks = _blocks(20)
    link = ScriptedLink(BrpReceiver(), corrupt_first_send_of_5)
    link.run(blocks)
    assert link.delivered() == blocks
    (failed,) = link.of(ChecksumFailed)
    assert failed.seq == 5 and failed.nak_sent and failed.computed != failed.received
    assert link.naks == [5]
    assert nak_bytes(WORD, 5) in [e.data for e in link.of(SendBytes)]


def test_lost_blocks_are_naked_held_and_delivered_in_order() -> None:
    blocks = _blocks(30)
    link = ScriptedLink(BrpReceiver(), lambda seq, attempt, f: b"" if seq in (7, 8) and attempt == 0 else f)
    link.run(blocks)
    assert link.delivered() == blocks
    assert link.naks == [7]  # one NAK for the gap, sent when block 9 showed it
    assert not link.of(GapGivenUp)


def test_duplicate_resends_are_ignored() -> None:
    blocks = _blocks(3)
    frames = [frame_block(i, b) for i, b in enumerate(blocks)]
    rx = BrpReceiver()
    events = rx.feed(frames[0] + frames[1] + frames[1] + frames[0] + frames[2], 0)
    assert [e.gcf for e in events if isinstance(e, BlockReceived)] == blocks
    assert [e.seq for e in events if isinstance(e, DuplicateIgnored)] == [1, 0]


def test_garbage_between_frames_is_skipped_with_exact_count() -> None:
    blocks = _blocks(4)
    garbage = b"\x00\x01\xfe\x80" * 5 + b"G\x05\x08\x00"  # a false 'G' whose size is impossible
    link = ScriptedLink(BrpReceiver(), lambda seq, attempt, f: garbage + f if seq == 2 else f)
    link.run(blocks)
    assert link.delivered() == blocks
    (resync,) = link.of(Resync)
    assert resync.skipped == 23  # 20 noise bytes + the false header's 3 binary bytes
    assert [e.data for e in link.of(TerminalText)] == [b"G"]  # a printable byte is reported as text
    assert not link.naks


def test_terminal_text_interleaved_with_frames() -> None:
    blocks = _blocks(3)
    text = b"2006 1 18 14:56:15 GPS ok\r\n ok\r\n\x1b\x11"
    frames = [frame_block(i, b) for i, b in enumerate(blocks)]
    stream = frames[0] + text[:10] + text[10:] + frames[1] + frames[2]
    for chunks in ([stream], [stream[i:i + 1] for i in range(len(stream))]):  # whole and byte by byte
        rx = BrpReceiver()
        events = [e for c in chunks for e in rx.feed(c, 0)]
        assert [e.gcf for e in events if isinstance(e, BlockReceived)] == blocks
        assert b"".join(e.data for e in events if isinstance(e, TerminalText)) == text
        (resumed,) = [e for e in events if isinstance(e, BlockModeResumed)]
        assert resumed.offset == len(frames[0]) + len(text)
        assert not [e for e in events if isinstance(e, Resync | ChecksumFailed)]


def test_give_up_when_block_leaves_the_digitizer_buffer() -> None:
    blocks = _blocks(300)
    link = ScriptedLink(BrpReceiver(), lambda seq, attempt, f: b"" if seq == 5 and attempt == 0 else f,
                        honour_naks=False)
    link.run(blocks)
    (gap,) = link.of(GapGivenUp)
    assert gap.sequences == (5,)
    # given up exactly when the 255th block after it arrived, then the 254 held blocks followed
    index = link.events.index(gap)
    received = [e for e in link.events[:index] if isinstance(e, BlockReceived)]
    assert len(received) == 5
    assert link.delivered() == blocks[:5] + blocks[6:]
    assert link.naks == [5]


def test_give_up_after_max_naks_by_poll() -> None:
    rx = BrpReceiver(nak_timeout_ns=1_000, max_naks=3)
    frames = [frame_block(i, b) for i, b in enumerate(_blocks(6))]
    events = rx.feed(frames[0] + frames[1] + frames[4] + frames[5], now_ns=0)
    assert [e.data for e in events if isinstance(e, SendBytes)] == [
        ack_bytes(WORD, 0), ack_bytes(WORD, 1), ack_bytes(WORD, 4), nak_bytes(WORD, 2), ack_bytes(WORD, 5)]
    assert rx.held_count == 2 and rx.next_deadline_ns() == 1_000
    assert rx.poll(999) == []
    assert rx.poll(1_000) == [SendBytes(nak_bytes(WORD, 2))]
    assert rx.poll(2_000) == [SendBytes(nak_bytes(WORD, 2))]
    final = rx.poll(3_000)
    assert final[0] == GapGivenUp((2, 3), "no answer to 3 NAKs")
    assert [e.seq for e in final if isinstance(e, BlockReceived)] == [4, 5]
    assert rx.next_deadline_ns() is None and rx.expected_seq == 6


def test_sequence_wrap_with_loss_at_the_wrap() -> None:
    blocks = _blocks(270)
    # drop the first sends of block 255 (seq 255) and block 256 (seq 0, whose first use was block 0)
    lost = {(255, 0), (0, 1)}
    link = ScriptedLink(BrpReceiver(), lambda seq, attempt, f: b"" if (seq, attempt) in lost else f)
    link.run(blocks)
    assert link.delivered() == blocks and link.naks == [255]


@pytest.mark.parametrize("ack_with_sequence", [True, False])
def test_ack_forms(ack_with_sequence: bool) -> None:
    rx = BrpReceiver(ack_with_sequence=ack_with_sequence)
    (ack, _block) = rx.feed(frame_block(130, _blocks(1)[0]), 0)
    assert ack.data == (ack_bytes(WORD, 130) if ack_with_sequence else ack_bytes(WORD))


def test_a_different_block_replacing_a_held_one_is_reported() -> None:
    blocks = _blocks(4)
    rx = BrpReceiver()
    rx.feed(frame_block(0, blocks[0]) + frame_block(2, blocks[2]), 0)  # 2 is held, 1 NAKed
    events = rx.feed(frame_block(2, blocks[3]), 0)
    assert events == [SendBytes(ack_bytes(WORD, 2)), HeldBlockReplaced(2)]
    events = rx.feed(frame_block(1, blocks[1]), 0)
    assert [e.gcf for e in events if isinstance(e, BlockReceived)] == [blocks[1], blocks[3]]


def test_own_scanner_and_accept_sequence_exactly_as_feed_and_nothing_is_logged(caplog) -> None:
    """The driver's session scans bytes itself and hands frames to ``accept``; BRP returns, never logs."""
    caplog.set_level(logging.DEBUG)
    frames = [frame_block(i % 256, b) for i, b in enumerate(_blocks(40))]
    damaged = bytearray(frames[6])
    damaged[20] ^= 0x10
    wire = b"".join(frames[:6]) + bytes(damaged) + b"\x00\xff boot\r\n" + b"".join(frames[8:30]) + frames[6] \
        + frames[7] + frames[7] + b"".join(frames[31:])  # 30 lost; 6 and 7 resent after a NAK, 7 twice
    chunks = [wire[i:i + 97] for i in range(0, len(wire), 97)]
    fed = BrpReceiver(nak_timeout_ns=10, max_naks=2)
    by_feed = [e for n, c in enumerate(chunks) for e in fed.feed(c, 10 * n) + fed.poll(10 * n)]
    scanner, accepting = FrameScanner(), BrpReceiver(nak_timeout_ns=10, max_naks=2)
    by_accept = []
    for n, chunk in enumerate(chunks):
        now = 10 * n
        for found in scanner.feed(chunk):
            by_accept += accepting.accept(found, now) if isinstance(found, Frame | DamagedFrame) else [found]
        by_accept += accepting.poll(now)
    assert by_accept == by_feed
    kinds = {type(e) for e in by_feed}
    assert {ChecksumFailed, Resync, TerminalText, DuplicateIgnored, GapGivenUp} <= kinds
    assert caplog.records == []
