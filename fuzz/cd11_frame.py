"""CD-1.1 frames: ``decode_frame`` on arbitrary bytes, and encode-then-decode of frames the bytes describe.

Invariants (a broken one is a bug, whatever the exception):
- malformed bytes raise Cd11FormatError naming a field and an offset inside the frame; nothing else
  escapes, with or without the CRC check;
- a frame that decodes re-encodes to exactly its bytes, and the CRC check accepts it iff the stored CRC
  is right; a stream cutter (``frame_length``) agrees on its length as soon as the trailer has arrived;
- decoded samples equal those of an independent plain-Python decoder (canadian_reference) or a
  struct-based reading of uncompressed formats, and the reference fails exactly when the codec does;
- the bytes a channel signature covers can be computed for every decoded channel, and a copy
  re-encoded in memory gives the same bytes as the received ones (signer and verifier agree);
- a frame built from values the input describes (every body type, all sample formats, Canadian with
  extreme samples and v0) encodes, decodes back equal, and its samples come back exactly.
"""

from __future__ import annotations

import dataclasses
import struct

import numpy as np

from fuzz import canadian_reference
from fuzz.draw import Draw
from fuzz.seeding import shared_fixtures
from gci_link.cd11 import (
    AcknackBody,
    AlertBody,
    Cd11FormatError,
    ChannelStatus,
    CommandRequestBody,
    CommandResponseBody,
    ConnectionBody,
    DataBody,
    Frame,
    FrameHeader,
    FrameTrailer,
    FrameType,
    Ims2MessageBody,
    OptionBody,
    build_data_frame,
    build_subframe,
    canadian,
    channel_signed_bytes,
    crc64,
    decode_frame,
    encode_frame,
    frame_length,
)
from gci_link.cd11.data import CANADIAN, Transformation

_STRUCT_FORMATS = {"s4": ">i", "s2": ">h", "i4": "<i", "i2": "<h"}
_WIDTH = {"s4": 4, "s3": 3, "s2": 2, "i4": 4, "i2": 2}


def check(data: bytes) -> None:
    check_decode(data)
    _check_canadian_stream(data)
    _check_round_trip(Draw(data))


# ---------------------------------------------------------------------------------------------- decoding


def check_decode(data: bytes) -> None:
    try:
        frame = decode_frame(data, check_crc=False)
    except Cd11FormatError as exc:
        _assert_names_field(exc, data)
        try:
            decode_frame(data)
        except Cd11FormatError as again:
            _assert_names_field(again, data)
        else:
            raise AssertionError("the CRC check accepted a frame that fails without it") from None
        return
    assert frame_length(data) == len(data) == frame_length(data[:-8]), "frame_length disagrees with decoding"
    assert frame_length(data[:35]) is None, "frame_length did not wait for a whole header"
    crc_ok = len(data) >= 8 and crc64(data[:-8]) == int.from_bytes(data[-8:], "big")
    try:
        checked = decode_frame(data)
    except Cd11FormatError as exc:
        assert not crc_ok and exc.field == "comm verification", f"CRC check refused a good frame: {exc}"
    else:
        assert crc_ok, "a wrong CRC-64 was accepted"
        assert checked == frame
    encoded = encode_frame(frame)
    assert encoded[:-8] == data[:-8], "decoded frame does not re-encode to its bytes"
    assert encoded[-8:] == crc64(data[:-8]).to_bytes(8, "big")
    if isinstance(frame.body, DataBody):
        for sub in frame.body.channels:
            _check_samples(sub)
            _check_signed_span(sub)


def _assert_names_field(exc: Cd11FormatError, data: bytes) -> None:
    assert isinstance(exc.field, str) and exc.field, f"no field named: {exc!r}"
    assert 0 <= exc.offset <= len(data), f"offset {exc.offset} outside a {len(data)}-byte input: {exc}"


def _check_samples(sub) -> None:
    assert sub.samples.dtype == np.int32 and sub.samples.shape == (sub.nsamp,)
    if sub.transformation in CANADIAN:
        expected, v0, _ = canadian_reference.decode(sub.data, sub.nsamp)
        assert sub.v0 == v0, f"v0 {sub.v0} but the reference decoder recovers {v0}"
    else:
        assert sub.transformation == Transformation.NONE
        expected = _raw_reference(sub.data, sub.nsamp, sub.data_format)
    assert sub.samples.tolist() == expected, "decoded samples differ from the reference decoder"


def _raw_reference(data: bytes, nsamp: int, data_format: str) -> list[int]:
    width = _WIDTH[data_format]
    assert 0 <= len(data) - nsamp * width < 4, "raw data size disagrees with the sample count"
    if data_format == "s3":
        return [int.from_bytes(data[3 * i : 3 * i + 3], "big", signed=True) for i in range(nsamp)]
    return list(struct.unpack(f"{_STRUCT_FORMATS[data_format][0]}{nsamp}{_STRUCT_FORMATS[data_format][1]}",
                              data[: nsamp * width]))


def _check_signed_span(sub) -> None:
    received = channel_signed_bytes(sub)
    rebuilt = channel_signed_bytes(dataclasses.replace(sub))  # replace() drops the received span
    assert isinstance(received, bytes)
    if sub.signed_span is not None:
        assert rebuilt == received, "a signer would sign other bytes than the verifier checks"


def _check_canadian_stream(data: bytes) -> None:
    """The codec and the reference decode any stream alike, and refuse the same short ones."""
    nsamp, stream = int.from_bytes(data[:2], "big") % 512, data[2:]
    try:
        expected = canadian_reference.decode(stream, nsamp)
    except canadian_reference.ShortStream:
        expected = None
    try:
        got = canadian.decode_stream(stream, nsamp)
    except Cd11FormatError as exc:
        assert expected is None, f"the codec refused a stream the reference decodes: {exc}"
        return
    assert expected is not None, "the codec decoded a stream too short for its samples"
    assert (got.samples.tolist(), got.v0, got.bytes_used) == expected, "codec and reference disagree"


# ------------------------------------------------------------------------------------------- round trip

_TEXT = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_TIME_LOW, _TIME_HIGH = -62_135_596_800_000, 253_402_300_799_999  # years 1..9999, in ms


def _samples(d: Draw, n: int, bits: int) -> np.ndarray:
    """A walk whose steps the input chooses, wrapped to ``bits``-bit integers (edges included)."""
    style = d.int_in(0, 3)
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if style == 0:
        values = [d.choice((low, high, 0, -1, 1)) for _ in range(n)]
    else:
        scale = (1, 1 << 8, 1 << 20, 1 << 31)[style]
        x, values = d.int_in(low, high), []
        for _ in range(n):
            values.append(x)
            x = (x + d.int_in(-scale, scale) - low) % (1 << bits) + low
    return np.array(values, dtype=np.int32)


def _subframe(d: Draw):
    transformation = d.choice((Transformation.NONE, *CANADIAN))
    data_format = d.choice(tuple(_WIDTH))
    bits = 32 if transformation == Transformation.CANADIAN_BEFORE_SIGNING else 8 * _WIDTH[data_format]
    nsamp = d.int_in(0, 120)
    samples = _samples(d, nsamp, bits)
    v0 = d.int_in(-(2**31), 2**31 - 1) if transformation != Transformation.NONE and d.flag() else None
    sub = build_subframe(
        samples,
        site=d.text(_TEXT, 1, 5),
        channel=d.text(_TEXT, 1, 3),
        location=d.text(_TEXT, 0, 2),
        time_ns=d.int_in(0, 4_000_000_000) * 1_000_000,
        sample_rate=d.choice((1.0, 20.0, 40.0, 100.0)),
        data_format=data_format,
        transformation=transformation,
        status=ChannelStatus(d.bytes(d.int_in(0, 40))) if d.flag() else None,
        v0=v0,
    )
    if d.flag():
        sub = dataclasses.replace(sub, auth_key_id=d.uint(4), auth_value=d.bytes(d.int_in(0, 72)),
                                  authentication=1, auth_offset_convention=d.choice("AB"))
    return sub, samples, v0


def _i64(d: Draw) -> int:
    return d.int_in(-(2**63), 2**63 - 1)


def _body(d: Draw, kind: FrameType):
    if kind in (FrameType.CONNECTION_REQUEST, FrameType.CONNECTION_RESPONSE):
        return ConnectionBody(d.text(_TEXT, 1, 8), ip_address=d.uint(4), port=d.uint(2),
                              second_ip_address=d.uint(4), second_port=d.uint(2))
    if kind in (FrameType.OPTION_REQUEST, FrameType.OPTION_RESPONSE):
        return OptionBody(tuple((d.int_in(-(2**31), 2**31 - 1), d.bytes(d.int_in(0, 9)))
                                for _ in range(d.int_in(0, 3))))
    if kind == FrameType.ACKNACK:
        gaps = tuple((_i64(d), _i64(d)) for _ in range(d.int_in(0, 4)))
        return AcknackBody(d.text(_TEXT, 0, 20), _i64(d), _i64(d), gaps)
    if kind == FrameType.ALERT:
        return AlertBody(d.bytes(d.int_in(0, 30)))
    if kind == FrameType.IMS2_MESSAGE:
        return Ims2MessageBody(d.bytes(d.int_in(0, 30)))
    addressee = dict(station=d.text(_TEXT, 0, 8), site=d.text(_TEXT, 0, 5), channel=d.text(_TEXT, 0, 3),
                     location=d.text(_TEXT, 0, 2), time_ns=d.int_in(_TIME_LOW, _TIME_HIGH) * 1_000_000)
    if kind == FrameType.COMMAND_REQUEST:
        return CommandRequestBody(**addressee, command=d.bytes(d.int_in(0, 30)))
    return CommandResponseBody(**addressee, request=d.bytes(d.int_in(0, 20)),
                               response=d.bytes(d.int_in(0, 20)))


def _describe_frame(d: Draw) -> tuple[Frame, list]:
    """A frame of any type from the input's values, and per channel (subframe, samples, v0) as built."""
    kind = d.choice(tuple(FrameType))
    trailer = FrameTrailer(d.uint(4), d.bytes(d.int_in(0, 72)))
    creator, sequence = d.text(_TEXT, 1, 8), d.uint(8)
    if kind in (FrameType.DATA, FrameType.CD1_ENCAPSULATION):
        built = [_subframe(d) for _ in range(d.int_in(0, 3))]
        frame = build_data_frame([sub for sub, _, _ in built], creator=creator, sequence=sequence,
                                 nominal_time_ns=d.int_in(_TIME_LOW, _TIME_HIGH) * 1_000_000)
        frame = dataclasses.replace(frame, header=dataclasses.replace(frame.header, frame_type=kind))
    else:
        built = []
        header = FrameHeader(kind, creator, d.text(_TEXT, 1, 8), sequence, d.int_in(-(2**31), 2**31 - 1))
        frame = Frame(header, _body(d, kind))
    return dataclasses.replace(frame, trailer=trailer), built


def _check_round_trip(d: Draw) -> None:
    frame, built = _describe_frame(d)
    trailer = frame.trailer
    raw = encode_frame(frame)
    back = decode_frame(raw)
    assert back == dataclasses.replace(frame, trailer=dataclasses.replace(trailer, crc=back.trailer.crc))
    assert encode_frame(back) == raw
    for (sub, samples, v0), got in zip(built, getattr(back.body, "channels", ()), strict=True):
        assert np.array_equal(got.samples, samples), "samples changed in an encode/decode round trip"
        if v0 is not None and len(samples):  # an empty stream stores no v0
            assert got.v0 == v0, "v0 changed in an encode/decode round trip"
        assert channel_signed_bytes(got) == channel_signed_bytes(sub)


# ---------------------------------------------------------------------------------------------- corpus


def seeds() -> list[bytes]:
    """The real frames of the shared fixtures, and frames of every type built by the encoders."""
    found = [p.read_bytes() for p in sorted(shared_fixtures("cd11").glob("*.cd11"))]
    patterns = [bytes((i * 37 + k * (2 * i + 1)) % 256 for k in range(700)) for i in range(40)]
    return found + [encode_frame(_describe_frame(Draw(p))[0]) for p in patterns] + patterns


DICTIONARY = [b"s4", b"s3", b"s2", b"i4", b"i2", b"2019157 17:26:00.000", b"\x00\x00\x00\x28",
              b"\x00\x00\x00\x05", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff"]
