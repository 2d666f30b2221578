"""Mutated real frames: decode_frame raises Cd11FormatError naming a field, or returns a frame that re-encodes
to the same bytes and whose samples an independent decoder confirms; any other outcome is a bug."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.cd11_frame import check_decode
from gci_link.cd11 import Cd11FormatError, crc64, decode_frame, frame_length
from tests.conftest import shared_fixture_dir

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def real_frames() -> list[bytes]:
    return [p.read_bytes() for p in sorted(shared_fixture_dir("cd11").glob("*.cd11"))]


def _with_crc(buf: bytes) -> bytes:
    """Re-seal a mutated frame so the mutation reaches the parser instead of the CRC check."""
    return buf[:-8] + crc64(buf[:-8]).to_bytes(8, "big") if len(buf) >= 8 else buf


def _decode_only_format_errors(buf: bytes) -> None:
    """The fuzz harness's invariants: only a Cd11FormatError naming a field (decode_frame has no catch-all, so
    a parser bug fails here), exact re-encoding, and samples equal to an independent reference decoder."""
    for candidate in (buf, _with_crc(buf)):
        check_decode(candidate)
        try:
            frame_length(candidate)
        except Cd11FormatError:
            pass


@FUZZ
@given(data=st.data())
def test_bit_flips(real_frames, data):
    raw = bytearray(data.draw(st.sampled_from(real_frames)))
    for pos in data.draw(st.lists(st.integers(0, len(raw) * 8 - 1), min_size=1, max_size=4)):
        raw[pos // 8] ^= 1 << (pos % 8)
    _decode_only_format_errors(bytes(raw))


@FUZZ
@given(data=st.data())
def test_truncation_and_extension(real_frames, data):
    raw = data.draw(st.sampled_from(real_frames))
    cut = data.draw(st.integers(0, len(raw) - 1))
    _decode_only_format_errors(raw[:cut])
    _decode_only_format_errors(raw + data.draw(st.binary(min_size=1, max_size=12)))


@FUZZ
@given(data=st.data())
def test_splices(real_frames, data):
    a, b = data.draw(st.sampled_from(real_frames)), data.draw(st.sampled_from(real_frames))
    i, j = data.draw(st.integers(0, len(a))), data.draw(st.integers(0, len(b)))
    _decode_only_format_errors(a[:i] + b[j:])
    k = data.draw(st.integers(0, len(a)))
    _decode_only_format_errors(a[:k] + data.draw(st.binary(max_size=64)) + a[k:])


def _field_offsets(raw: bytes) -> list[int]:
    """Offsets of every 32-bit size/count/offset field of a data frame (header, body, subframes, trailer)."""
    trailer = struct.unpack_from(">i", raw, 4)[0]
    nchan = struct.unpack_from(">i", raw, 36)[0]
    offsets = [4, 36, 40, 64, trailer, trailer + 4]
    s = 68 + ((struct.unpack_from(">i", raw, 64)[0] + 3) & ~3)
    for _ in range(nchan):
        length = struct.unpack_from(">i", raw, s)[0]
        status = struct.unpack_from(">i", raw, s + 60)[0]
        data_at = s + 64 + ((status + 3) & ~3)
        data = struct.unpack_from(">i", raw, data_at)[0]
        auth_at = data_at + 4 + ((data + 3) & ~3) + 8
        offsets += [s, s + 4, s + 52, s + 56, s + 60, data_at, auth_at]
        s += 4 + length
    return offsets


@FUZZ
@given(data=st.data())
def test_length_field_overwrites(real_frames, data):
    raw = bytearray(data.draw(st.sampled_from(real_frames)))
    at = data.draw(st.sampled_from(_field_offsets(bytes(raw))))
    current = struct.unpack_from(">i", raw, at)[0]
    value = data.draw(
        st.one_of(
            st.sampled_from([0, 1, 3, 4, 35, 36, 80, -1, -4, 2**31 - 1, -(2**31), 10**6, len(raw)]),
            st.integers(-(2**31), 2**31 - 1),
            st.integers(max(-64, -(2**31) - current), min(64, 2**31 - 1 - current)).map(
                lambda d: current + d
            ),
        )
    )
    struct.pack_into(">i", raw, at, value)
    _decode_only_format_errors(bytes(raw))


def test_known_corruptions_name_field_and_offset(real_frames):
    lbtb = next(f for f in real_frames if f[8:12] == b"LBTB")
    cases = {
        "trailer offset": (4, 12),
        "channel string size": (64, 30),
        "number of channels": (36, 10**6),
        "channel 0 channel length": (108, 617),
        "channel 0 channel data size": (204, 5000),
        "channel 0 samples": (164, 10**8),
    }
    for field, (at, value) in cases.items():
        raw = bytearray(lbtb)
        struct.pack_into(">i", raw, at, value)
        with pytest.raises(Cd11FormatError) as info:
            decode_frame(_with_crc(bytes(raw)))
        assert field in info.value.field or field in str(info.value), (field, info.value)
    fewer = bytearray(lbtb)
    struct.pack_into(">i", fewer, 36, 3)  # count disagrees with the 40-byte channel string
    with pytest.raises(Cd11FormatError, match="disagree with 3 channels"):
        decode_frame(_with_crc(bytes(fewer)))
    bad_time = bytearray(lbtb)
    bad_time[44:48] = b"20x9"
    with pytest.raises(Cd11FormatError, match="nominal time at byte 44"):
        decode_frame(_with_crc(bytes(bad_time)))
    with pytest.raises(Cd11FormatError, match="CRC-64 mismatch") as info:
        decode_frame(lbtb[:-1] + bytes([lbtb[-1] ^ 1]))
    assert info.value.offset == len(lbtb) - 8
