"""The DP5 packet protocol core without any port: framing, checksum, resync, every ACK code, status and
spectrum decoding, truncation and the parser's bound."""

from __future__ import annotations

import numpy as np
import pytest

from digitizer import dp5


def _status(**changes: object) -> dp5.Status:
    base = dict(fast_count=123_456, slow_count=120_000, gp_count=7, accumulation_time_s=3600.123,
                real_time_s=3600.5, reported_live_time_s=None, firmware="6.07", firmware_build=3, fpga="6.13",
                serial_number=5501, high_voltage_v=-3000.5, detector_temperature_k=85.3,
                board_temperature_c=-4,
                preset_real_time_reached=True, mca_enabled=False, preset_count_reached=True, configured=True,
                first_since_reboot=True, device_type="PX5", hpge_hv_inhibited=False)
    base.update(changes)
    return dp5.Status(**base)  # type: ignore[arg-type]


def test_checksums_match_the_programmers_guide_examples() -> None:
    # DP5 Programmer's Guide §4.1: "Request Netfinder Packet" and "Autoset Input Offset" in full
    assert dp5.encode_packet(0x03, 0x07) == bytes.fromhex("F5FA03070000FE07")
    assert dp5.encode_packet(0xF0, 0x05) == bytes.fromhex("F5FAF0050000FD1C")
    packet = dp5.request_text_configuration({"MCAC": 8192, "PRET": 600})
    assert (sum(packet[:-2]) + int.from_bytes(packet[-2:], "big")) & 0xFFFF == 0
    assert packet[:6] == b"\xf5\xfa\x20\x02\x00\x13" and packet[6:-2] == b"MCAC=8192;PRET=600;"


def test_requests_carry_the_documented_pids() -> None:
    assert dp5.request_status()[2:4] == b"\x01\x01"
    assert dp5.request_spectrum(with_status=False)[2:4] == b"\x02\x01"
    assert dp5.request_spectrum(with_status=False, clear=True)[2:4] == b"\x02\x02"
    assert dp5.request_spectrum()[2:4] == b"\x02\x03"
    assert dp5.request_spectrum(clear=True)[2:4] == b"\x02\x04"
    assert dp5.request_clear_spectrum()[2:4] == b"\xf0\x01"
    assert dp5.request_enable_mca()[2:4] == b"\xf0\x02"
    assert dp5.request_disable_mca()[2:4] == b"\xf0\x03"
    assert dp5.request_text_readback(["MCAC", "PRET"])[2:6] == b"\x20\x03\x00\x0a"


@pytest.mark.parametrize("settings, problem", [
    ({"mcac": 1}, "4 upper-case"), ({"MCACX": 1}, "4 upper-case"), ({"PRET": "1;MCAC=2"}, "cannot be sent"),
    ({"PRET": ""}, "cannot be sent"), ({"PRET": "é"}, "cannot be sent")])
def test_bad_settings_are_refused_by_name(settings: dict[str, object], problem: str) -> None:
    with pytest.raises(dp5.Dp5FormatError, match=problem):
        dp5.request_text_configuration(settings)


def test_request_data_is_bounded() -> None:
    with pytest.raises(dp5.Dp5FormatError, match="exceeds 512"):
        dp5.encode_request(dp5.REQ_TEXT_CONFIG, b"x" * 513)


def test_status_round_trip_and_field_decoding() -> None:
    s = _status()
    raw = dp5.encode_status(s)
    assert len(raw) == 64
    # layout spot checks against the SDK's byte positions
    assert int.from_bytes(raw[0:4], "little") == 123_456
    assert raw[12] == 23 and int.from_bytes(raw[13:16], "little") == 36001  # 1 ms + 100 ms units
    assert int.from_bytes(raw[20:24], "little") == 3_600_500
    assert raw[24] == 0x67 and raw[39] == 1
    assert int.from_bytes(raw[30:32], "big", signed=True) == -6001
    back = dp5.decode_status(raw)
    assert back == dp5.Status(**{**{f: getattr(s, f) for f in s.__dataclass_fields__}, "raw": raw})
    assert back.live_time_basis == "accumulation*slow/fast"
    assert back.live_time_s == pytest.approx(3600.123 * 120_000 / 123_456)
    assert back.dead_time_fraction == pytest.approx(1 - 120_000 / 123_456)


def test_status_live_time_and_optional_fields() -> None:
    raw = bytearray(dp5.encode_status(_status(device_type="MCA8000D", hpge_hv_inhibited=None)))
    raw[16:20] = (1_234_567).to_bytes(4, "little")
    s = dp5.decode_status(bytes(raw))
    assert s.reported_live_time_s == pytest.approx(1234.567) and s.live_time_basis == "reported"
    assert s.hpge_hv_inhibited is None
    raw[29] = 0x80  # serial number not programmed
    assert dp5.decode_status(bytes(raw)).serial_number is None
    old = bytearray(raw)
    old[24] = 0x60  # firmware 6.00: no live time, no build number, no reboot flag
    s = dp5.decode_status(bytes(old))
    assert s.reported_live_time_s is None and s.firmware_build == 0 and not s.first_since_reboot
    inhibited = dp5.decode_status(dp5.encode_status(_status(hpge_hv_inhibited=True)))
    assert inhibited.hpge_hv_inhibited is True
    with pytest.raises(dp5.Dp5FormatError, match="63 bytes"):
        dp5.decode_status(bytes(63))


@pytest.mark.parametrize("pid2", range(1, 13))
def test_every_spectrum_variant_decodes_24_bit_counts(pid2: int) -> None:
    channels, with_status = dp5.SPECTRUM_PID2[pid2]
    rng = np.random.default_rng(pid2)
    counts = rng.integers(0, 1 << 24, channels).astype(np.uint32)
    counts[0], counts[-1] = (1 << 24) - 1, 0
    status = _status() if with_status else None
    packet = dp5.encode_spectrum_response(counts, status)
    assert packet[2:4] == bytes((0x81, pid2))
    events = dp5.PacketParser.for_host().feed(packet)
    assert len(events) == 1 and isinstance(events[0], dp5.Received)
    spectrum = events[0].message
    assert isinstance(spectrum, dp5.Spectrum)
    np.testing.assert_array_equal(spectrum.counts, counts)
    assert (spectrum.status is not None) == with_status
    if with_status:
        assert spectrum.status.slow_count == 120_000


def test_counts_saturate_at_24_bits() -> None:
    data = dp5.encode_counts(np.array([0, 1, 1 << 24, 5 << 24]))
    np.testing.assert_array_equal(dp5.decode_counts(data, 4), [0, 1, (1 << 24) - 1, (1 << 24) - 1])


def test_spectrum_of_the_wrong_size_is_malformed() -> None:
    packet = dp5.encode_packet(0x81, 3, bytes(512 * 3 - 3))
    (event,) = dp5.PacketParser.for_host().feed(packet)
    assert isinstance(event, dp5.Malformed) and "expected 1536" in event.error


@pytest.mark.parametrize("code", list(dp5.AckCode))
def test_every_ack_code_is_named_and_classified(code: dp5.AckCode) -> None:
    detail = "PRET=abc;" if code in (dp5.AckCode.BAD_PARAMETER, dp5.AckCode.UNRECOGNIZED_COMMAND) else ""
    (event,) = dp5.PacketParser.for_host().feed(dp5.encode_ack(code, detail))
    ack = event.message
    assert isinstance(ack, dp5.Ack)
    assert ack.name == code.name and ack.detail == detail
    oks = (dp5.AckCode.OK, dp5.AckCode.OK_SHARING_REQUEST, dp5.AckCode.OK_FPGA_UPLOAD_ADDRESS)
    assert ack.ok == (code in oks)


def test_unknown_ack_code_keeps_its_number() -> None:
    (event,) = dp5.PacketParser.for_host().feed(dp5.encode_packet(0xFF, 0x42))
    assert event.message.name == "UNKNOWN_0x42" and not event.message.ok


def test_config_readback_and_other_packets() -> None:
    parser = dp5.PacketParser.for_host()
    readback = dp5.encode_config_readback({"MCAC": 8192, "PRET": None})
    events = parser.feed(readback + dp5.encode_packet(0x82, 0x01))
    assert events[0].message == dp5.ConfigReadback({"MCAC": "8192", "PRET": "OFF"}, "MCAC=8192;PRET=OFF;")
    assert isinstance(events[1].message, dp5.OtherPacket) and events[1].message.pid2 == 1


def test_resync_after_garbage_and_byte_at_a_time_feeding() -> None:
    garbage = b"\x00\xf5\xf5\xfa\x99\x01\x02" + bytes(range(200))  # a false sync among the noise
    stream = garbage + dp5.encode_ack(dp5.AckCode.OK) + dp5.encode_status_response(_status())
    parser = dp5.PacketParser.for_host()
    events = [e for b in stream for e in parser.feed(bytes((b,)))]
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Resync", "Received", "Received"]
    assert events[0].skipped == len(garbage) and events[1].offset == len(garbage)
    assert isinstance(events[2].message, dp5.Status)
    assert parser.buffered == 0


def test_bad_checksum_is_reported_and_the_next_packet_still_read() -> None:
    bad = bytearray(dp5.encode_status_response(_status()))
    bad[20] ^= 0x01
    parser = dp5.PacketParser.for_host()
    events = parser.feed(bytes(bad) + dp5.encode_ack(dp5.AckCode.OK))
    assert isinstance(events[0], dp5.BadChecksum) and events[0].offset == 0
    assert (events[0].pid1, events[0].pid2, events[0].length) == (0x80, 0x01, 64)
    assert isinstance(events[-1], dp5.Received) and events[-1].message == dp5.Ack(0)
    assert any(isinstance(e, dp5.Resync) for e in events)


def test_truncated_packet_followed_by_a_good_one() -> None:
    cut = dp5.encode_spectrum_response(np.arange(256), _status())[:300]
    good = dp5.encode_ack(dp5.AckCode.OK)
    events = dp5.PacketParser.for_host().feed(cut + good)
    assert isinstance(events[0], dp5.Truncated) and events[0].got == 300 and events[0].length == 256 * 3 + 64
    assert isinstance(events[-1], dp5.Received) and events[-1].message.ok


def test_truncated_packet_at_time_out_is_flushed() -> None:
    parser = dp5.PacketParser.for_host()
    assert parser.feed(dp5.encode_status_response(_status())[:40]) == []
    (event,) = parser.flush()
    assert isinstance(event, dp5.Truncated) and event.got == 40 and parser.buffered == 0
    (after,) = parser.feed(dp5.encode_ack(dp5.AckCode.OK))
    assert isinstance(after, dp5.Received) and after.offset == 40


def test_corrupt_length_does_not_hide_a_later_packet() -> None:
    bad = bytearray(dp5.encode_ack(dp5.AckCode.OK))
    bad[4] = 0x7F  # claims ~32 kB
    events = dp5.PacketParser.for_host().feed(bytes(bad) + dp5.encode_status_response(_status()))
    assert isinstance(events[0], dp5.Truncated)
    assert isinstance(events[-1], dp5.Received) and isinstance(events[-1].message, dp5.Status)


def test_buffer_stays_bounded_under_endless_noise() -> None:
    parser = dp5.PacketParser.for_host()
    rng = np.random.default_rng(3)
    peak = 0
    for _ in range(40):
        parser.feed(rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes())
        peak = max(peak, parser.buffered)
    assert peak <= dp5.OVERHEAD + dp5.MAX_RESPONSE_DATA
    parser.flush()
    (event,) = [e for e in parser.feed(dp5.encode_ack(dp5.AckCode.OK)) if isinstance(e, dp5.Received)]
    assert event.message.ok


def test_device_side_parser_reads_requests_only() -> None:
    parser = dp5.PacketParser.for_device()
    events = parser.feed(dp5.encode_ack(dp5.AckCode.OK) + dp5.request_spectrum()
                         + dp5.request_text_configuration({"PRET": 10}))
    requests = [e.message for e in events if isinstance(e, dp5.Received)]
    assert [r.pid for r in requests] == [dp5.REQ_SPECTRUM_STATUS, dp5.REQ_TEXT_CONFIG]
    assert requests[1].data == b"PRET=10;"


def test_parse_settings_rejects_parts_without_a_value() -> None:
    assert dp5.parse_settings("MCAC=1024;\r\nPRET=OFF;") == {"MCAC": "1024", "PRET": "OFF"}
    with pytest.raises(dp5.Dp5FormatError, match="NAME=value"):
        dp5.parse_settings("MCAC;")
