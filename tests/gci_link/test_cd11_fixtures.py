"""Real CD-1.1 frames decode to the independently decoded expectations and re-encode byte for byte."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from gci_link.cd11 import canadian, crc64, decode_frame, encode_frame, frame_length, frame_signed_bytes
from gci_link.cd11.status import FLAG_BYTES, FLAGS
from gci_link.cd11.timefmt import format_time, iso
from tests.conftest import shared_fixture_dir

NAMES = ["LBTB-9720700", "H04N-1511040903185751", "KEST-1518458453053626", "GERES-1508852201870062"]


@pytest.fixture(params=NAMES)
def fixture(request):
    folder = shared_fixture_dir("cd11")
    raw = (folder / f"{request.param}.cd11").read_bytes()
    expected = json.loads((folder / "expected" / f"{request.param}.json").read_text())
    return raw, expected


def test_header_and_trailer(fixture):
    raw, exp = fixture
    frame = decode_frame(raw)
    h, t = frame.header, frame.trailer
    assert len(raw) == exp["frame_length"] == frame_length(raw)
    assert (h.frame_type, h.creator, h.destination, h.sequence, h.series) == (
        exp["header"]["frame_type"],
        exp["header"]["creator"],
        exp["header"]["destination"],
        exp["header"]["sequence"],
        exp["header"]["series"],
    )
    assert t.auth_key_id == exp["trailer"]["auth_key_id"]
    assert t.auth_value.hex() == exp["trailer"]["auth_value_hex"]
    assert f"{t.crc:016x}" == exp["trailer"]["comm_verification_hex"] == f"{crc64(raw[:-8]):016x}"
    assert len(frame_signed_bytes(frame)) == exp["trailer"]["offset"] == exp["header"]["trailer_offset"]
    assert frame_signed_bytes(frame) == frame_signed_bytes(raw)


def test_data_body(fixture):
    raw, exp = fixture
    body = decode_frame(raw).body
    d = exp["data_frame"]
    assert len(body.channels) == d["nchan"]
    assert body.frame_time_length_ms == d["frame_time_length_ms"]
    assert format_time(body.nominal_time_ns).decode() == d["nominal_time"]
    assert iso(body.nominal_time_ns) == d["nominal_time_iso"]
    assert [{"site": s, "channel": c, "location": loc} for s, c, loc in body.ids] == d[
        "channel_string_entries"
    ]


def test_every_channel_field(fixture):
    raw, exp = fixture
    channels = decode_frame(raw).body.channels
    assert len(channels) == len(exp["channels"])
    for c, e in zip(channels, exp["channels"], strict=True):
        where = f"{exp['file']} channel {e['index']}"
        assert (c.site, c.channel, c.location, c.data_format) == (
            e["site"],
            e["channel"],
            e["location"],
            e["data_format"],
        ), where
        assert (c.authentication, c.transformation, c.sensor_type, c.option_flag) == (
            e["authentication"],
            e["transformation"],
            e["sensor_type"],
            e["option_flag"],
        ), where
        assert struct.pack(">f", c.calib).hex() == e["calib_hex"] and c.calib == e["calib"], where
        assert struct.pack(">f", c.calper).hex() == e["calper_hex"] and c.calper == e["calper"], where
        assert format_time(c.time_ns).decode() == e["timestamp"] and iso(c.time_ns) == e["timestamp_iso"], (
            where
        )
        assert (c.time_length_ms, c.nsamp, c.sample_rate) == (
            e["time_length_ms"],
            e["nsamp"],
            e["sample_rate"],
        )
        assert len(c.data) == e["data_size"], where
        assert raw[e["data_offset"] : e["data_offset"] + e["data_size"]] == c.data, where
        assert (c.subframe_count, c.auth_key_id) == (e["subframe_count"], e["auth_key_id"]), where
        assert c.auth_value.hex() == e["auth_value_hex"] and len(c.auth_value) == e["auth_size"], where
        assert c.auth_offset_convention == e["auth_offset_convention"], where
        assert c.samples.dtype == np.int32 and np.array_equal(c.samples, np.array(e["samples"], np.int32)), (
            where
        )
        _check_status(c.status, e["status"], where)


def _check_status(status, e, where):
    assert status.raw.hex() == e["hex"] and status.format == e["format"], where
    for index, group in FLAG_BYTES.items():
        assert status.flag_bytes[group] == int(e[group]["byte"], 16), where
        for name, value in e[group]["flags"].items():
            assert FLAGS[name][0] == index and status.flag(name) is value, (where, name)
    assert status.undefined_bytes.hex() == e["undefined_bytes_6_8"], where
    assert status.last_gps_sync_raw.hex() == e["last_gps_sync_raw"], where
    assert format_time(status.last_gps_sync_ns).decode() == e["last_gps_sync"], where
    assert status.clock_differential_us == e["clock_differential_us"], where


def test_canadian_v0_and_reencoding(fixture):
    raw, exp = fixture
    for c, e in zip(decode_frame(raw).body.channels, exp["channels"], strict=True):
        if "canadian" not in e:
            assert c.transformation == 0 and c.v0 is None
            continue
        k = e["canadian"]
        stream = canadian.decode_stream(c.data, c.nsamp)
        assert (stream.v0, stream.bytes_used, int(stream.samples[0])) == (
            k["v0"],
            k["bytes_used"],
            k["first_sample"],
        )
        assert c.v0 == k["v0"]
        rule = (
            "extrapolate"
            if k["v0"] == canadian.extrapolated_v0(c.samples)
            else "zero"
            if k["v0"] == 0
            else "?"
        )
        assert rule == k["v0_convention"]
        assert c.data[: 2 * 4].hex().startswith(k["keys_hex"].rstrip(".")[:16])
        again = canadian.encode(c.samples, k["v0"])
        assert c.data == again + b"\0" * k["pad_bytes_inside_data_size"]
    assert sorted({e["canadian"]["v0_convention"] for e in exp["channels"] if "canadian" in e}) == sorted(
        exp["v0_conventions"]
    )


def test_reencode_is_byte_exact(fixture):
    raw, _ = fixture
    assert encode_frame(decode_frame(raw)) == raw
    assert encode_frame(decode_frame(memoryview(raw))) == raw
