"""Record headers read by the ring agree with ObsPy (libmseed) on codes and times; bad records are named."""

from __future__ import annotations

import io
import struct

import numpy as np
import obspy
import pytest

from idc.seedlink.record import RECORD_LENGTH, info_records, read_header
from tests.idc.seedlink.conftest import T0, records, walk


@pytest.mark.parametrize(
    ("rate", "start_ns"),
    [
        (40.0, T0),
        (100.0, T0 + 123_456_789),  # a start off the 0.0001 s grid: blockette 1001 carries the microseconds
        (20.0, T0 + 5 * 10**8),
        (250.0, T0 + 1),
        (0.1, T0),  # below 1 sps: written as seconds per sample
    ],
)
def test_header_times_and_codes_agree_with_obspy(rate, start_ns):
    blob = records("XX", "ABC12", "", "HHZ", start_ns, walk(7, 3000), rate)
    for at in range(0, len(blob), RECORD_LENGTH):
        rec = blob[at : at + RECORD_LENGTH]
        head = read_header(rec)
        [trace] = obspy.read(io.BytesIO(rec))
        assert (head.network, head.station, head.location, head.channel) == ("XX", "ABC12", "", "HHZ")
        assert head.start_ns == trace.stats.starttime.ns
        assert head.end_ns == trace.stats.starttime.ns + round(trace.stats.npts * 1_000_000_000 / rate)


def test_bad_records_are_refused_naming_what_is_wrong():
    good = records("XX", "STA", "00", "BHZ", T0, walk(1, 400))[:RECORD_LENGTH]
    with pytest.raises(ValueError, match="1024 bytes"):
        read_header(good * 2)
    with pytest.raises(ValueError, match="quality indicator"):
        read_header(good[:6] + b"X" + good[7:])
    with pytest.raises(ValueError, match="station field"):
        read_header(good[:8] + b"S/../" + good[13:])
    no_blockette = good[:46] + struct.pack(">H", 0) + good[48:]
    with pytest.raises(ValueError, match="no blockette 1000"):
        read_header(no_blockette)
    looping = bytearray(good)
    struct.pack_into(">H", looping, 50, 48)  # blockette 1000 points back at itself
    with pytest.raises(ValueError, match="loops back"):
        read_header(bytes(looping))
    with pytest.raises(ValueError, match="BTIME"):
        read_header(good[:20] + b"\x00\x01" + good[22:])  # year 1


def test_info_records_are_text_records_obspy_reads():
    text = b"<seedlink>" + b"x" * 1000 + b"</seedlink>"
    recs = info_records(text, T0, error=False)
    assert len(recs) == 3 and all(len(r) == RECORD_LENGTH for r in recs)
    joined = b""
    for rec in recs:
        [trace] = obspy.read(io.BytesIO(rec))
        assert trace.id == "XX.INFO..INF"
        joined += np.asarray(trace.data).tobytes()
    assert joined == text
