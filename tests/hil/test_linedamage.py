"""Line damage the Güralp protocol cannot detect, found with the receiver's own code and counted apart
from corruption; the damage is the kind the bounded soak met (two compensating bit flips in one frame)."""

from __future__ import annotations

import numpy as np

from digitizer import brp
from digitizer.gcf import GcfBlock, decode_block, encode_block
from hil.compare import compare_channel
from hil.linedamage import undetected_damage
from timeunits import NS_PER_S

T0 = 1_796_000_000 * NS_PER_S
DIFFS_AT = 20  # byte offset of the first difference in a GCF data block (header 16, FIC 4)


def _frame() -> tuple[bytes, np.ndarray]:
    """A 50 sps hydrophone-like block in 16-bit differences (samples of a few thousand counts)."""
    rng = np.random.default_rng(7)
    samples = rng.integers(-2000, 2000, 250).astype(np.int32)
    block = GcfBlock("HYDR", "HYDRA0", T0, 50.0, 0, samples)
    gcf = encode_block(block)
    assert decode_block(gcf).compression == 2
    return brp.frame_block(17, gcf), samples


def _flip(frame: bytes, *bits: tuple[int, int]) -> bytes:
    """``frame`` with bit ``b`` of byte ``i`` flipped for each (i, b)."""
    damaged = bytearray(frame)
    for index, bit in bits:
        damaged[index] ^= 1 << bit
    return bytes(damaged)


def _compensating_pair(frame: bytes, samples: np.ndarray) -> tuple[int, int, int, int]:
    """Differences i < j whose bit 13 (bit 5 of their high byte) is 0 and 1, so flipping both keeps the
    byte sum: d[i] gains 8192 and d[j] loses it. Returns (i, j, byte of i, byte of j) in the frame."""
    diffs = np.diff(samples.astype(np.int64), prepend=samples[0])
    clear = [k for k in range(1, len(diffs)) if not (int(diffs[k]) & 0x2000)]
    set_ = [k for k in range(1, len(diffs)) if int(diffs[k]) & 0x2000]
    i = clear[10]
    j = next(k for k in set_ if k > i + 5)
    return i, j, 4 + DIFFS_AT + 2 * i, 4 + DIFFS_AT + 2 * j


def test_two_compensating_bit_flips_pass_the_checksum_and_the_ric_and_are_reported():
    frame, samples = _frame()
    i, j, byte_i, byte_j = _compensating_pair(frame, samples)
    damaged = _flip(frame, (byte_i, 5), (byte_j, 5))
    receiver = brp.BrpReceiver()  # the station's own acceptance: a good block, acknowledged
    received = [e for e in receiver.feed(damaged, 0) if isinstance(e, brp.BlockReceived)]
    assert len(received) == 1
    as_received = decode_block(received[0].gcf)  # passes GCF's check too
    expected = samples.copy()
    expected[i:j] += 8192
    np.testing.assert_array_equal(as_received.samples, expected)
    accepted = undetected_damage(frame, damaged)
    assert accepted is not None
    np.testing.assert_array_equal(accepted.samples, expected)
    assert (accepted.stream_id, accepted.start_ns) == ("HYDRA0", T0)


def test_damage_a_check_catches_is_not_reported():
    frame, samples = _frame()
    _, _, byte_i, byte_j = _compensating_pair(frame, samples)
    assert undetected_damage(frame, frame) is None  # no damage
    assert undetected_damage(frame, _flip(frame, (byte_i, 5))) is None  # one flip: the checksum
    assert undetected_damage(frame, _flip(frame, (byte_i, 5), (byte_j, 4))) is None  # sum differs
    # same byte sum, but a high byte against a low byte: the offsets do not cancel, the RIC catches it
    low = next(b for b in range(byte_i + 3, len(frame) - 6, 2) if frame[b] & 0x20)
    pair = _flip(frame, (byte_i, 5), (low, 5))
    assert sum(pair) == sum(frame)
    assert undetected_damage(frame, pair) is None
    assert undetected_damage(frame, frame[:100] + frame[101:]) is None  # a lost byte


def test_archived_samples_as_the_line_delivered_them_are_counted_apart_from_corruption():
    truth = np.arange(100, dtype=np.int32)
    delivered = truth[40:50].copy()
    delivered[3:7] += 8192
    undetected = [(40 * NS_PER_S, delivered)]
    archive = [(0, np.concatenate([truth[:40], delivered, truth[50:]]))]
    got = compare_channel("X.EDH.", 0, 1.0, truth, archive, undetected=undetected)
    assert (got.line_undetected, got.corrupted, got.exact) == (4, 0, True)
    other = archive[0][1].copy()
    other[45] += 1  # not what the line delivered: corruption, whatever else the block suffered
    got = compare_channel("X.EDH.", 0, 1.0, truth, [(0, other)], undetected=undetected)
    assert (got.line_undetected, got.corrupted, got.exact) == (3, 1, False)
    plain = compare_channel("X.EDH.", 0, 1.0, truth, archive)  # without the line's record: corruption
    assert (plain.line_undetected, plain.corrupted, plain.exact) == (0, 4, False)
