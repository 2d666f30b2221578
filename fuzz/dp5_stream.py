"""DP5: arbitrary serial bytes into the Amptek DP5 packet parser, host side (the station reading the gamma
MCA's responses) or device side (the simulated firmware reading requests).

Input layout: byte 0 picks the side (bit 0), whether the stream ends in a time-out (bit 1: ``flush``) and
whether every packet's checksum is set right first (bit 2: so that changed contents reach the decoders);
byte 1 how the stream is cut into reads; the rest is the serial stream.

Invariants:
- ``feed`` and ``flush`` never raise and return only the documented events, in stream order;
- every ``Received`` is a checksummed packet of the stream at the offset it names, of a PID1 this side
  receives and a length within its limit, and the message is what its bytes say: decoded again from the
  data, the encoder of its kind makes a packet that decodes to the same message (status and spectrum),
  or exactly the packet received (requests, ACKs with ASCII text, other packets, read-backs it can send);
- every ``Malformed`` is a checksummed packet whose body the decoder refuses with ``Dp5FormatError``, the
  event carrying that message; every ``BadChecksum`` is a header of the stream whose checksum is wrong,
  with the sums it names; every ``Truncated`` names a header of the stream and fewer bytes than it claims;
- the parser never holds two largest packets' worth of bytes between reads;
- how the bytes are cut into reads changes nothing: the same events (time-out or not).
"""

from __future__ import annotations

import random
from typing import get_args

import numpy as np

from digitizer.dp5 import (
    ACK_PID1,
    HEADER_SIZE,
    MAX_REQUEST_DATA,
    MAX_RESPONSE_DATA,
    OVERHEAD,
    REQ_TEXT_CONFIG,
    REQUEST_PID1,
    RESPONSE_PID1,
    RSP_CONFIG_READBACK,
    RSP_SPECTRUM_PID1,
    RSP_STATUS,
    SYNC,
    Ack,
    AckCode,
    BadChecksum,
    ConfigReadback,
    Dp5FormatError,
    Event,
    Malformed,
    OtherPacket,
    PacketParser,
    Received,
    Request,
    Resync,
    Spectrum,
    Status,
    Truncated,
    checksum,
    decode_response,
    encode_ack,
    encode_config_readback,
    encode_packet,
    encode_request,
    encode_spectrum_response,
    encode_status_response,
    request_disable_mca,
    request_enable_mca,
    request_spectrum,
    request_status,
    request_text_readback,
)
from fuzz.draw import read_sizes

EVENTS = get_args(Event)
# libFuzzer's input cap: a 1024-channel spectrum with its status and a few packets around it
MAX_LEN = 4096

READ_SIZES = (1, 2, 5, 6, 7, 64, 1000)  # the reads a stream is cut into, for the cutting check


def check(data: bytes) -> None:
    mode = data[0] if data else 0
    host, timeout = not mode & 1, bool(mode & 2)
    stream = _checksums_made_right(data[2:]) if mode & 4 else data[2:]
    whole = _run(stream, host, timeout, [len(stream)] if stream else [])
    cuts = random.Random(data[1] if len(data) > 1 else 0)
    cut = _run(stream, host, timeout, read_sizes(len(stream), cuts, READ_SIZES))
    assert whole == cut, "the events depend on how the bytes were cut into reads"


def _checksums_made_right(stream: bytes) -> bytes:
    """The stream with the checksum of every complete packet after a header set right, so that changed
    packet contents reach the decoders (a mutated packet almost never keeps a good checksum)."""
    out = bytearray(stream)
    j = out.find(SYNC)
    while 0 <= j <= len(out) - OVERHEAD:
        end = j + OVERHEAD + int.from_bytes(out[j + 4 : j + 6], "big")
        if end <= len(out):
            out[end - 2 : end] = checksum(out[j : end - 2]).to_bytes(2, "big")
        j = out.find(SYNC, j + 2)
    return bytes(out)


def _run(stream: bytes, host: bool, timeout: bool, pieces: list[int]) -> list:
    parser = PacketParser.for_host() if host else PacketParser.for_device()
    events: list = []
    at = 0
    for size in pieces:
        events += parser.feed(stream[at : at + size])
        at += size
        held = parser.buffered
        assert held < 2 * (parser.max_data + OVERHEAD), f"{held} bytes held between reads"
    if timeout:
        events += parser.flush()
        assert parser.buffered == 0
    _check_events(stream, events, host)
    return [_comparable(e) for e in events]


def _comparable(event):
    """Events as values (numpy counts compare element-wise, so spectra are compared by their bytes)."""
    if isinstance(event, Received) and isinstance(event.message, Spectrum):
        return event.offset, event.message.counts.tobytes(), event.message.status
    return event


def _packet_at(stream: bytes, offset: int, host: bool) -> tuple[int, int, int, bytes]:
    """(pid1, pid2, claimed data length, packet bytes present) of the header at ``offset``, checked as the
    parser must have checked it."""
    head = stream[offset : offset + HEADER_SIZE]
    assert len(head) == HEADER_SIZE and head[:2] == SYNC, f"no packet header at offset {offset}"
    pid1, pid2, length = head[2], head[3], int.from_bytes(head[4:6], "big")
    assert pid1 in (RESPONSE_PID1 if host else REQUEST_PID1), f"PID1 {pid1:#x} taken on this side"
    assert length <= (MAX_RESPONSE_DATA if host else MAX_REQUEST_DATA), f"data length {length} taken"
    return pid1, pid2, length, stream[offset : offset + OVERHEAD + length]


def _check_events(stream: bytes, events: list, host: bool) -> None:
    last = -1
    for event in events:
        assert isinstance(event, EVENTS), f"unexpected event {event!r}"
        if isinstance(event, Resync):
            assert event.skipped > 0 and event.offset > last, event
            continue
        assert event.offset > last, f"event at offset {event.offset} after one at {last}"
        last = event.offset
        pid1, pid2, length, packet = _packet_at(stream, event.offset, host)
        if not isinstance(event, Received):
            assert (event.pid1, event.pid2) == (pid1, pid2), event
        if isinstance(event, Truncated):
            assert event.length == length and 0 < event.got < OVERHEAD + length, event
            continue
        assert len(packet) == OVERHEAD + length, f"{type(event).__name__} at {event.offset}: packet cut short"
        computed, received = checksum(packet[:-2]), int.from_bytes(packet[-2:], "big")
        if isinstance(event, BadChecksum):
            assert computed != received and event.length == length, event
            assert (event.computed, event.received) == (computed, received), event
            continue
        assert computed == received, f"{type(event).__name__} at {event.offset}: checksum wrong"
        data = packet[HEADER_SIZE:-2]
        if isinstance(event, Malformed):
            assert host and event.error
            try:
                decode_response(pid1, pid2, data)
            except Dp5FormatError as exc:
                assert str(exc) == event.error
            else:
                raise AssertionError(f"Malformed packet {pid1:#x}/{pid2:#x} decodes")
            continue
        _check_message(event.message, pid1, pid2, data, packet, host)


def _check_message(message, pid1: int, pid2: int, data: bytes, packet: bytes, host: bool) -> None:
    if not host:
        assert message == Request(pid1, pid2, data)
        assert encode_request((pid1, pid2), data) == packet
        return
    again = decode_response(pid1, pid2, data)
    if isinstance(message, Spectrum):
        assert isinstance(again, Spectrum) and pid1 == RSP_SPECTRUM_PID1
        assert message.counts.dtype == np.uint32 and np.array_equal(message.counts, again.counts)
        assert int(message.counts.max(initial=0)) < 1 << 24
        back = decode_response(pid1, pid2, encode_spectrum_response(message.counts, message.status)[6:-2])
        assert isinstance(back, Spectrum) and np.array_equal(back.counts, message.counts)
        assert _same_status(back.status, message.status), "a spectrum's status changed in a round trip"
        return
    assert message == again, "the same packet decodes differently"
    if isinstance(message, Status):
        assert (pid1, pid2) == RSP_STATUS
        back = decode_response(*RSP_STATUS, encode_status_response(message)[6:-2])
        assert _same_status(back, message), f"status changed in a round trip: {message} -> {back}"
    elif isinstance(message, Ack):
        assert pid1 == ACK_PID1 and message.code == pid2 and message.name
        assert message.name.startswith("UNKNOWN_") != (pid2 in set(AckCode))
        if data.isascii():
            assert encode_ack(message.code, message.detail) == packet
    elif isinstance(message, ConfigReadback):
        assert (pid1, pid2) == RSP_CONFIG_READBACK
        try:
            sent = encode_config_readback(message.settings)
        except Dp5FormatError:
            return  # a read-back our encoder cannot say (lower-case names, '=' in values): parsed leniently
        back = decode_response(*RSP_CONFIG_READBACK, sent[6:-2])
        assert isinstance(back, ConfigReadback) and back.settings == message.settings
    else:
        assert isinstance(message, OtherPacket) and message == OtherPacket(pid1, pid2, data)
        assert encode_packet(pid1, pid2, data) == packet


def _same_status(a: Status | None, b: Status | None) -> bool:
    """Equal statuses, the raw bytes aside (the encoder quantises and leaves reserved bits as they were)."""
    if a is None or b is None:
        return a is b
    return all(getattr(a, f) == getattr(b, f) for f in Status.__dataclass_fields__ if f != "raw")


# ---------------------------------------------------------------------------------------------- corpus


def _status(**changes: object) -> Status:
    base: dict[str, object] = dict(
        fast_count=123_456, slow_count=120_000, gp_count=7, accumulation_time_s=3600.123, real_time_s=3600.5,
        reported_live_time_s=None, firmware="6.07", firmware_build=3, fpga="6.13", serial_number=5501,
        high_voltage_v=-3000.5, detector_temperature_k=85.3, board_temperature_c=-4,
        preset_real_time_reached=True, mca_enabled=False, preset_count_reached=True, configured=True,
        first_since_reboot=True, device_type="PX5", hpge_hv_inhibited=False)
    base.update(changes)
    return Status(**base)  # type: ignore[arg-type]


def seeds() -> list[bytes]:
    """Streams of the project's own encoders: responses (host side) and requests (device side), clean,
    with noise, cut short, with a damaged checksum."""
    counts = (np.arange(256, dtype=np.uint32) * 977) % (1 << 24)
    responses = [
        encode_status_response(_status()),
        encode_status_response(_status(device_type="MCA8000D", reported_live_time_s=12.5,
                                       serial_number=None)),
        encode_spectrum_response(counts, None),
        encode_spectrum_response(np.tile(counts, 4), _status(device_type="DP5G", hpge_hv_inhibited=None)),
        encode_ack(AckCode.OK),
        encode_ack(AckCode.UNRECOGNIZED_COMMAND, "MCAC=9999;"),
        encode_ack(0x42),
        encode_config_readback({"MCAC": 1024, "PRET": None, "GAIN": "12.5"}),
        encode_packet(0x8F, 0x01, bytes(range(40))),
    ]
    requests = [
        request_status(), request_spectrum(), request_spectrum(with_status=False, clear=True),
        encode_request(REQ_TEXT_CONFIG, b"MCAC=1024;PRET=600;"), request_text_readback(["MCAC", "PRET"]),
        request_enable_mca(), request_disable_mca(),
    ]
    out = []
    for side, packets in ((0, responses), (1, requests)):
        clean = b"".join(packets)
        damaged = bytearray(clean)
        damaged[9] ^= 0x10
        streams = [clean, b"\x00noise\xf5" + clean[:40] + clean, bytes(damaged), clean[:-3],
                   packets[0][:20] + packets[-1]]
        out += [bytes((side | flags, cut)) + s[: MAX_LEN - 2] for s in streams
                for flags, cut in ((0, 0), (2, 5), (4, 9))]
    return out + [bytes((4, 3)) + p for p in responses] + [bytes((5, 3)) + p for p in requests]


DICTIONARY = [SYNC, SYNC + b"\x80\x01\x00\x40", SYNC + b"\xff\x00\x00\x00", SYNC + b"\x81\x01\x03\x00",
              SYNC + b"\x82\x07", SYNC + b"\x01\x01\x00\x00", b"\x7f\xff", b"MCAC=", b";"]
