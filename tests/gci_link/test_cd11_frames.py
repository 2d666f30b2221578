"""Frames of every type round-trip; builders, status, time strings, signature scopes and stream cutting."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gci_link.cd11 import (
    MAX_IMS2_FRAME_BYTES,
    MAX_IMS2_MESSAGE_BYTES,
    AcknackBody,
    AlertBody,
    AuthOffsetConvention,
    Cd11FormatError,
    ChannelStatus,
    CommandRequestBody,
    CommandResponseBody,
    ConnectionBody,
    Frame,
    FrameHeader,
    FrameTrailer,
    FrameType,
    Ims2MessageBody,
    OptionBody,
    Transformation,
    build_data_frame,
    build_subframe,
    channel_signed_bytes,
    decode_frame,
    encode_frame,
    encode_signed_frame,
    format_time,
    frame_length,
    frame_signed_bytes,
    parse_time,
    sign_all_channels,
    sign_frame,
)
from gci_link.cd11 import bodies as cd11_bodies
from gci_link.cd11.data import DataBody
from gci_link.cd11.status import FLAGS
from gci_link.keys import generate_key, sign_raw, verify_raw

MS = 1_000_000
T0 = 1_559_841_960 * 10**9  # 2019157 17:26:00.000


def text(width):
    return st.text(st.characters(min_codepoint=1, max_codepoint=255), max_size=width).filter(
        lambda s: len(s.encode("latin-1")) <= width and not s.endswith("\0")
    )


times = st.integers(0, 4_000_000_000_000).map(lambda ms: ms * MS)
i32 = st.integers(-(2**31), 2**31 - 1)
u32 = st.integers(0, 2**32 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
blobs = st.binary(max_size=60)


@st.composite
def subframes(draw):
    transformation = draw(st.sampled_from([0, 1, 2]))
    data_format = draw(st.sampled_from(["s4", "s3", "s2", "i4", "i2"]))
    # transformation 2 signs the samples in their data format, so they must fit it; 1 takes any int32
    bits = {"s4": 32, "i4": 32, "s3": 24, "s2": 16, "i2": 16}[data_format] if transformation != 1 else 32
    n = draw(st.integers(0, 70))
    samples = draw(st.lists(st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1), min_size=n, max_size=n))
    status = draw(
        st.one_of(
            st.builds(
                lambda f, sync, diff: ChannelStatus.format1(
                    last_gps_sync_ns=sync, clock_differential_us=diff, **f
                ),
                st.fixed_dictionaries({name: st.booleans() for name in FLAGS}),
                st.one_of(st.none(), times),
                i32,
            ),
            st.binary(max_size=40).map(ChannelStatus),
        )
    )
    sub = build_subframe(
        samples,
        site=draw(text(5)),
        channel=draw(text(3)),
        location=draw(text(2)),
        time_ns=draw(times),
        sample_rate=draw(st.sampled_from([1, 20, 40, 100])),
        calib=draw(st.floats(allow_nan=False, width=32)),
        calper=draw(st.floats(0, 100, width=32)),
        sensor_type=draw(st.integers(0, 4)),
        data_format=data_format,
        transformation=transformation,
        status=status,
        subframe_count=draw(i32),
        v0=draw(st.one_of(st.none(), i32)) if transformation else None,
    )
    return dataclasses.replace(
        sub,
        authentication=draw(st.integers(0, 1)),
        auth_key_id=draw(u32),
        auth_value=draw(blobs),
        auth_offset_convention=draw(st.sampled_from("AB")),
    )


addressee = dict(station=text(8), site=text(5), channel=text(3), location=text(2), time_ns=times)
bodies = {
    FrameType.CONNECTION_REQUEST: st.builds(
        ConnectionBody,
        station=text(8),
        station_type=text(4),
        service_type=text(4),
        ip_address=u32,
        port=st.integers(0, 65535),
        major_version=st.integers(-(2**15), 2**15 - 1),
    ),
    FrameType.OPTION_REQUEST: st.builds(OptionBody, st.lists(st.tuples(i32, blobs), max_size=4).map(tuple)),
    FrameType.ACKNACK: st.builds(
        AcknackBody,
        frame_set=text(20),
        lowest=i64,
        highest=i64,
        gaps=st.lists(st.tuples(i64, i64), max_size=5).map(tuple),
    ),
    FrameType.ALERT: st.builds(AlertBody, blobs),
    FrameType.COMMAND_REQUEST: st.builds(CommandRequestBody, **addressee, command=blobs),
    FrameType.COMMAND_RESPONSE: st.builds(CommandResponseBody, **addressee, request=blobs, response=blobs),
    FrameType.IMS2_MESSAGE: st.builds(Ims2MessageBody, blobs),
    FrameType.DATA: st.builds(
        DataBody,
        nominal_time_ns=times,
        channels=st.lists(subframes(), max_size=3).map(tuple),
        frame_time_length_ms=i32,
    ),
}
bodies[FrameType.CONNECTION_RESPONSE] = bodies[FrameType.CONNECTION_REQUEST]
bodies[FrameType.OPTION_RESPONSE] = bodies[FrameType.OPTION_REQUEST]
bodies[FrameType.CD1_ENCAPSULATION] = bodies[FrameType.DATA]


@st.composite
def frames(draw):
    frame_type = draw(st.sampled_from(sorted(bodies)))
    header = FrameHeader(frame_type, draw(text(8)), draw(text(8)), draw(st.integers(0, 2**64 - 1)), draw(i32))
    return Frame(header, draw(bodies[frame_type]), FrameTrailer(draw(u32), draw(blobs)))


@settings(max_examples=100, deadline=None)
@given(frames())
def test_every_frame_type_round_trips(frame):
    raw = encode_frame(frame)
    assert frame_length(raw) == len(raw) and frame_length(raw[:35]) is None
    back = decode_frame(raw)
    assert back.header == frame.header and back.body == frame.body
    assert (
        back.trailer.auth_key_id == frame.trailer.auth_key_id
        and back.trailer.auth_value == frame.trailer.auth_value
    )
    assert encode_frame(back) == raw
    if isinstance(frame.body, DataBody):
        for a, b in zip(frame.body.channels, back.body.channels, strict=True):
            assert np.array_equal(a.samples, b.samples) and a.v0 == b.v0


def test_sizes_and_extension_code():
    body = ConnectionBody("LBTB", ip_address=0x7F000001, port=8041)
    raw = encode_frame(Frame(FrameHeader(FrameType.CONNECTION_REQUEST, "LBTB"), body))
    assert (
        len(raw) == 36 + 32 + 16 and raw[56:60] == b"\x7f\0\0\x01" and raw[60:62] == (8041).to_bytes(2, "big")
    )
    ims2 = encode_frame(
        Frame(FrameHeader(FrameType.IMS2_MESSAGE, "ABC01"), Ims2MessageBody(b"BEGIN IMS2.0\n"))
    )
    assert (
        int.from_bytes(ims2[:4], "big") == 100
        and ims2[36:40] == (13).to_bytes(4, "big")
        and ims2[53:56] == bytes(3)
    )
    assert AlertBody(b"bye\0").text == "bye"


def test_time_strings():
    assert (
        format_time(T0) == b"2019157 17:26:00.000"
        and parse_time(b"2019157 17:26:00.000", field="t", offset=0) == T0
    )
    assert format_time(T0 + 499_999) == b"2019157 17:26:00.000" and format_time(T0 + 500_000).endswith(
        b".001"
    )
    assert parse_time(b"2020366 23:59:59.999", field="t", offset=0) == 1_609_459_199_999 * MS
    for bad in (b"2019366 00:00:00.000", b"2019157 24:00:00.000", b"2019157 17:26:00,000", b"\0" * 20):
        with pytest.raises(Cd11FormatError, match="t at byte 7"):
            parse_time(bad, field="t", offset=7)


def test_status_flags_and_raw_preservation():
    s = ChannelStatus.format1(
        clipped=True,
        vault_door_opened=True,
        backup_power_unstable=True,
        last_gps_sync_ns=T0,
        clock_differential_us=-12,
        undefined=b"\xc4\x13\x00",
    )
    assert s.raw[:8] == bytes([1, 0x04, 0x04, 0, 0x02, 0xC4, 0x13, 0])
    assert {k for k, v in s.flags().items() if v} == {"clipped", "vault_door_opened", "backup_power_unstable"}
    assert s.last_gps_sync_ns == T0 and s.clock_differential_us == -12
    assert ChannelStatus.format1().last_gps_sync_ns is None
    odd = ChannelStatus(b"\x02abc")
    assert odd.format == 2 and odd.flags() == {} and not odd.is_format1
    with pytest.raises(ValueError, match="format 1"):
        odd.flag("clipped")
    with pytest.raises(ValueError, match="unknown"):
        ChannelStatus.format1(on_fire=True)


def test_status_with_flags_sets_bits_and_keeps_every_other_byte():
    s = ChannelStatus.format1(clipped=True, last_gps_sync_ns=T0, clock_differential_us=7, undefined=b"xyz")
    t = s.with_flags(["gps_receiver_unlocked", "clipped"])
    assert {k for k, v in t.flags().items() if v} == {"clipped", "gps_receiver_unlocked"}
    changed = [i for i in range(len(s.raw)) if s.raw[i] != t.raw[i]]
    assert changed == [FLAGS["gps_receiver_unlocked"][0]]
    assert s.with_flags([]) == s
    with pytest.raises(ValueError, match="unknown channel status flag 'on_fire'"):
        s.with_flags(["on_fire"])
    with pytest.raises(ValueError, match="format 1"):
        ChannelStatus(b"\x02abc").with_flags(["clipped"])


def _station_frame():
    rng = np.random.default_rng(1)
    x = np.cumsum(rng.integers(-300, 300, 400)).astype(np.int32)
    subs = [
        build_subframe(x, site="ABC1", channel=c, time_ns=T0, sample_rate=40, calib=0.0133, transformation=t)
        for c, t in (("BHZ", 1), ("BHN", 2), ("BHE", 0))
    ]
    return x, build_data_frame(subs, creator="ABC", sequence=7, nominal_time_ns=T0)


def test_builder_makes_unsigned_grid_frame():
    x, frame = _station_frame()
    raw = encode_frame(frame)
    back = decode_frame(raw)
    assert back.trailer.auth_key_id == 0 and back.trailer.auth_value == b""
    assert [c.auth_value for c in back.body.channels] == [b""] * 3
    assert all(np.array_equal(c.samples, x) and c.time_length_ms == 10_000 for c in back.body.channels)
    assert back.body.channels[0].auth_offset_convention is AuthOffsetConvention.A


def _fake_sign(data: bytes) -> bytes:
    return hashlib.sha256(data).digest() + b"\x01\x02\x03\x04\x05\x06\x07\x08"  # 40 bytes like DSA


def test_signature_scopes_and_crc_after_signing():
    x, frame = _station_frame()
    signed = sign_frame(sign_all_channels(frame, 1364, _fake_sign), 1, _fake_sign)
    raw = encode_frame(signed)
    back = decode_frame(raw)  # CRC recomputed over the filled signatures, else this raises
    assert back.trailer.auth_value == _fake_sign(raw[: int.from_bytes(raw[4:8], "big")])
    assert frame_signed_bytes(raw) == frame_signed_bytes(back)
    pos = 36 + 4 + 4 + 20 + 4 + 32  # first subframe
    for c in back.body.channels:
        scope = channel_signed_bytes(c)
        assert c.authentication == 1 and c.auth_value == _fake_sign(scope)
        length = int.from_bytes(raw[pos : pos + 4], "big")
        if c.transformation != 2:  # as transmitted: subframe bytes from +8 up to the key id
            assert raw[pos + 8 : pos + 8 + len(scope)] == scope
            assert int.from_bytes(raw[pos + 8 + len(scope) : pos + 12 + len(scope)], "big") == 1364
        else:  # signed before compression: the scope holds the uncompressed s4 samples
            assert x.astype(">i4").tobytes() in scope and c.data not in scope
        pos += 4 + length
    tampered = bytearray(raw)
    tampered[200] ^= 1
    with pytest.raises(Cd11FormatError, match="CRC"):
        decode_frame(bytes(tampered))


@pytest.mark.parametrize("kind", ["data", "connection_request"])
def test_encode_signed_frame_is_sign_frame_then_encode_frame(kind):
    key = generate_key("ed25519")  # deterministic signatures: the two paths must give the same bytes

    def sign(data: bytes) -> bytes:
        return sign_raw(key, data)

    if kind == "data":
        frame = sign_all_channels(_station_frame()[1], 77, sign)
    else:
        frame = Frame(FrameHeader(FrameType.CONNECTION_REQUEST, "ABC"), ConnectionBody(station="ABC"))
    raw = encode_signed_frame(frame, 77, sign)
    assert raw == encode_frame(sign_frame(frame, 77, sign))
    back = decode_frame(raw)
    assert back.trailer.auth_key_id == 77
    verify_raw(key.public_key(), frame_signed_bytes(raw), back.trailer.auth_value)


def test_encode_signed_frame_signs_what_it_sends_with_ecdsa():
    key = generate_key("ecdsa-p256")  # random signatures: compare the verified scope instead
    frame = _station_frame()[1]
    raw = encode_signed_frame(frame, 5, lambda data: sign_raw(key, data))
    assert frame_signed_bytes(raw) == frame_signed_bytes(frame)
    verify_raw(key.public_key(), frame_signed_bytes(raw), decode_frame(raw).trailer.auth_value)


def test_decoded_scope_is_the_received_bytes_and_dropped_when_modified():
    _, frame = _station_frame()
    back = decode_frame(encode_frame(sign_all_channels(frame, 1364, _fake_sign)))
    for c in back.body.channels:
        encoded = channel_signed_bytes(dataclasses.replace(c))  # a copy: scope encoded afresh
        if c.transformation == 2:  # the scope holds uncompressed samples, not received bytes
            assert c.signed_span is None
        else:
            assert c.signed_span == encoded and channel_signed_bytes(c) is c.signed_span
        changed = dataclasses.replace(c, subframe_count=c.subframe_count + 1)
        assert changed.signed_span is None and channel_signed_bytes(changed) != encoded


def test_auth_offset_convention_b_is_kept():
    _, frame = _station_frame()
    subs = tuple(
        dataclasses.replace(c, auth_offset_convention=AuthOffsetConvention.B) for c in frame.body.channels
    )
    raw = encode_frame(dataclasses.replace(frame, body=dataclasses.replace(frame.body, channels=subs)))
    s = 108 - 8  # 3 channels: first subframe at 100
    key_position = int.from_bytes(raw[s + 4 : s + 8], "big") + 4
    assert int.from_bytes(raw[s + key_position : s + key_position + 4], "big") == 0
    assert [c.auth_offset_convention for c in decode_frame(raw).body.channels] == [AuthOffsetConvention.B] * 3


def test_auth_offset_of_neither_convention_is_refused():
    _, frame = _station_frame()
    raw = bytearray(encode_frame(frame))
    s = 108 - 8  # 3 channels: first subframe at 100
    key_position = int.from_bytes(raw[s + 4 : s + 8], "big")  # convention A: the offset is the position
    raw[s + 4 : s + 8] = (key_position - 8).to_bytes(4, "big")
    with pytest.raises(Cd11FormatError, match=f"nor B \\({key_position - 4}\\)") as info:
        decode_frame(bytes(raw), check_crc=False)
    assert info.value.field == "channel 0 authentication offset" and info.value.offset == s + 4


def test_unknown_auth_offset_convention_is_not_encoded():
    _, frame = _station_frame()
    subs = (dataclasses.replace(frame.body.channels[0], auth_offset_convention="C"),)
    with pytest.raises(Cd11FormatError, match="unknown convention 'C'") as info:
        encode_frame(dataclasses.replace(frame, body=DataBody(T0, subs)))
    assert info.value.field == "authentication offset"


def test_transformations_are_the_spec_bytes():
    """The enum names the byte values of spec §6; a decoded subframe carries the member, not a bare int."""
    assert [int(t) for t in Transformation] == [0, 1, 2, 3, 4]
    x = np.arange(40, dtype=np.int32)
    for t in list(Transformation)[:3]:  # the ones build_subframe makes (Steim is neither built nor decoded)
        sub = build_subframe(x, site="ABC1", channel="BHZ", time_ns=T0, sample_rate=40, transformation=t)
        raw = encode_frame(build_data_frame([sub], creator="ABC", sequence=1, nominal_time_ns=T0))
        assert raw[80 + 9] == t  # first subframe at 80, transformation byte at +9
        assert decode_frame(raw).body.channels[0].transformation is t


def test_steim_is_refused():
    _, frame = _station_frame()
    subs = (dataclasses.replace(frame.body.channels[0], transformation=Transformation.STEIM_BEFORE_SIGNING),)
    raw = encode_frame(dataclasses.replace(frame, body=DataBody(T0, subs)))
    with pytest.raises(Cd11FormatError, match="Steim") as info:
        decode_frame(raw)
    assert info.value.field == "channel 0 transformation" and info.value.offset == 80 + 9


@pytest.mark.parametrize("byte", [5, 255])
def test_unknown_transformation_is_refused(byte):
    _, frame = _station_frame()
    subs = (dataclasses.replace(frame.body.channels[0], transformation=byte),)
    raw = encode_frame(dataclasses.replace(frame, body=DataBody(T0, subs)))
    with pytest.raises(Cd11FormatError, match=f"unknown transformation {byte}") as info:
        decode_frame(raw)
    assert info.value.field == "channel 0 transformation" and info.value.offset == 80 + 9


def test_encode_errors_name_the_field():
    with pytest.raises(Cd11FormatError, match="frame creator"):
        encode_frame(Frame(FrameHeader(FrameType.ALERT, "TOOLONGNAME"), AlertBody(b"")))
    with pytest.raises(Cd11FormatError, match="cannot carry"):
        encode_frame(Frame(FrameHeader(FrameType.DATA, "X"), AlertBody(b"")))


def test_ims2_messages_up_to_the_carrier_limit_travel_and_larger_ones_are_refused(monkeypatch):
    big = b"BEGIN IMS2.0\n" + b"1234567 " * (2 * 2**20 // 8) + b"STOP\n"  # a message over 2 MB
    frame = Frame(FrameHeader(FrameType.IMS2_MESSAGE, "ABC01", sequence=7), Ims2MessageBody(big))
    assert decode_frame(encode_frame(frame)).body == Ims2MessageBody(big)
    header = FrameHeader(FrameType.IMS2_MESSAGE, "ABC01")
    largest = encode_frame(Frame(header, Ims2MessageBody(b"x" * MAX_IMS2_MESSAGE_BYTES)))
    assert len(largest) <= MAX_IMS2_FRAME_BYTES
    too_big = Frame(header, Ims2MessageBody(b"x" * (MAX_IMS2_MESSAGE_BYTES + 1)))
    with pytest.raises(Cd11FormatError, match="carrier limit") as refused:
        encode_frame(too_big)
    assert refused.value.field == "IMS 2.0 message size"
    monkeypatch.setattr(cd11_bodies, "MAX_IMS2_MESSAGE_BYTES", 2 * MAX_IMS2_MESSAGE_BYTES)  # a lax sender
    forged = encode_frame(too_big)
    monkeypatch.undo()
    with pytest.raises(Cd11FormatError, match="carrier limit"):
        decode_frame(forged)
