"""Canadian compression: spec test vectors, libcancomp width rules, edge data and random round trips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gci_link.cd11 import Cd11FormatError, canadian

VECTORS = [
    (list(range(20)), 20, "00000000000010000000000000000000"),
    ([100, -100] * 10, 100, "36db00000064ce1909c190" + "9c1909c190" * 4),
    # the spec sheet prints this stream shifted by one nibble (0186a0cf2c0186a00000); libcancomp's 20-bit
    # packing (MSB first: 100000, -200000, 100000, 0 as 20-bit fields) gives these bytes
    ([0, 100000] + [0] * 18, 0, "c00000000000186a0cf2c0186a0000000000000000000000"),
]
INT32 = st.integers(-(2**31), 2**31 - 1)


@pytest.mark.parametrize(("samples", "v0", "stream"), VECTORS)
def test_spec_vectors(samples, v0, stream):
    assert canadian.encode(samples, v0).hex() == stream
    decoded = canadian.decode_stream(bytes.fromhex(stream), len(samples))
    assert decoded.samples.tolist() == samples and decoded.v0 == v0 and decoded.bytes_used == len(stream) // 2


def test_extrapolated_v0_is_default_and_zeroes_last_difference():
    x = np.array([5, 9, 20, 18] * 5, np.int32)
    assert canadian.encode(x) == canadian.encode(x, 2 * 18 - 20)
    assert canadian.decode_stream(canadian.encode(x), 20).v0 == 16


def test_zero_samples():
    assert canadian.encode([]) == b""
    assert canadian.decode(b"", 0).size == 0


@pytest.mark.parametrize("n", [1, 3, 4, 7, 19, 21, 39, 41, 399])
def test_counts_not_multiple_of_20(n):
    x = np.random.default_rng(n).integers(-5000, 5000, n).astype(np.int32)
    stream = canadian.encode(x)
    assert np.array_equal(canadian.decode(stream, n), x)
    assert np.array_equal(canadian.decode(stream + b"\0\0\0", n), x)  # padding tolerated


def _samples_with_second_differences(y: list[int], first: int = 0) -> tuple[np.ndarray, int]:
    """Samples whose stored second differences are ``y`` (mod 2**32), and the v0 that ends them."""
    d = np.cumsum(np.array(y, dtype=np.int64)) % 2**32
    x = (first + np.concatenate([[0], np.cumsum(d)])) % 2**32
    wrapped = ((x + 2**31) % 2**32 - 2**31).astype(np.int64)
    return wrapped[:-1].astype(np.int32), int(wrapped[-1])


@pytest.mark.parametrize(
    ("magnitude", "width", "code"), [(2**31 - 1, 32, 7), (2**27 - 1, 28, 6), (2**19 - 1, 20, 4)]
)
def test_wide_groups_pack_every_bit(magnitude, width, code):
    y = [magnitude, -magnitude - 1, 1, -1] + [0] * 16
    x, v0 = _samples_with_second_differences(y, first=-5)
    stream = canadian.encode(x, v0)
    key = int.from_bytes(stream[:2], "big")
    assert key >> 15 == 1 and (key >> 12) & 7 == code and key & 0xFFF == 0
    packed = 0
    for value in y[:4]:
        packed = (packed << width) | (value & ((1 << width) - 1))
    assert stream[2:6] == (-5).to_bytes(4, "big", signed=True)
    assert stream[6:] == packed.to_bytes(width // 2, "big") + bytes(8)
    decoded = canadian.decode_stream(stream, 20)
    assert np.array_equal(decoded.samples, x) and decoded.v0 == v0


def test_narrow_groups_round_up_when_block_is_wide():
    y = [
        2**20,
        0,
        0,
        0,
        5,
        0,
        0,
        0,
        40,
        0,
        0,
        0,
        300,
        0,
        0,
        0,
        2000,
        0,
        0,
        0,
    ]  # widths 24, 4, 8, 10, 12 alone
    x, v0 = _samples_with_second_differences(y)
    key = int.from_bytes(canadian.encode(x, v0)[:2], "big")
    assert [(key >> s) & 7 for s in (12, 9, 6, 3, 0)] == [5, 0, 1, 2, 2]  # 24, 4, 8, 12, 12 in the wide table
    x, v0 = _samples_with_second_differences([0] * 4 + y[4:])
    key = int.from_bytes(canadian.encode(x, v0)[:2], "big")
    assert key >> 15 == 0 and [(key >> s) & 7 for s in (12, 9, 6, 3, 0)] == [0, 0, 2, 3, 4]  # 4, 4, 8, 10, 12


def test_truncated_stream_is_a_format_error():
    stream = canadian.encode(np.arange(40, dtype=np.int32) ** 2)
    for cut in (0, 3, 7, len(stream) - 1):
        with pytest.raises(Cd11FormatError, match="Canadian"):
            canadian.decode(stream[:cut], 40)
    with pytest.raises(Cd11FormatError, match="cannot fit"):
        canadian.decode(stream, 10**9)


def test_rejects_non_int32_input():
    with pytest.raises(ValueError, match="int32"):
        canadian.encode([2**31])


@settings(max_examples=150, deadline=None)
@given(st.lists(INT32, max_size=130), st.one_of(st.none(), INT32))
def test_round_trip_any_int32(samples, v0):
    x = np.array(samples, np.int32)
    decoded = canadian.decode_stream(canadian.encode(x, v0), len(x))
    assert np.array_equal(decoded.samples, x)
    if x.size:
        assert decoded.v0 == (canadian.extrapolated_v0(x) if v0 is None else v0)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 300), st.integers(0, 2**31 - 1), st.integers(0, 2**32))
def test_round_trip_random_walks(n, scale, seed):
    rng = np.random.default_rng(seed)
    steps = rng.integers(-max(scale >> 8, 1), max(scale >> 8, 1), n)
    x = (np.cumsum(steps) % 2**32).astype(np.uint32).view(np.int32)
    stream = canadian.encode(x)
    assert np.array_equal(canadian.decode(stream, n), x)
    # libcancomp width rule: every stored group is as narrow as its values allow
    assert len(stream) <= 2 * ((n + 19) // 20) + 4 + ((n + 3) // 4) * 16
