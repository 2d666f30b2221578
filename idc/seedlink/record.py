"""What SeedLink needs to know of a 512-byte miniSEED 2 record, read from its fixed header, and the
text records that carry SeedLink 3 INFO documents.

The ring indexes records by channel and time without decoding samples: stations, streams and time
windows are selected on these few header fields. Every check names what is wrong, because a record
that the ring refuses must not silently vanish from the real-time feed.
"""

from __future__ import annotations

import calendar
import struct
import time
from functools import lru_cache
from typing import NamedTuple

from timeunits import NS_PER_S, NS_PER_US

RECORD_LENGTH = 512  # SeedLink 3 carries exactly this size; the ring stores nothing else
_FIXED = struct.Struct(">6scc5s2s3s2sHHBBBBHHhhBBBBiHH")  # SEED 2.4 fixed section of data header
_MAX_BLOCKETTES = 16
_QUALITY = frozenset(b"DRQM")
_CODE_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_TIME_CORRECTION_APPLIED = 0x02
INFO_TEXT_PER_RECORD = RECORD_LENGTH - 56  # header 48 + blockette 1000, then text


class RecordHeader(NamedTuple):
    """Channel codes (stripped, as SeedLink and SDS spell them) and the span of one record."""

    network: str
    station: str
    location: str
    channel: str
    start_ns: int  # first sample
    end_ns: int  # just after the last sample: when the next record of the channel would start


def check_code(value: str, longest: int, what: str, *, empty_ok: bool = False) -> None:
    """Refuse a channel code that is not 1..longest ASCII letters or digits (location may be empty)."""
    raw = value.encode("ascii", "replace")
    if len(raw) > longest or (not raw and not empty_ok) or not set(raw) <= _CODE_BYTES:
        shown = "empty" if not raw else repr(value)
        raise ValueError(f"{what} code {shown} is not 1 to {longest} ASCII letters or digits")


def _code(field: bytes, what: str, *, empty_ok: bool = False) -> str:
    text = field.rstrip(b" ")
    if (not text and not empty_ok) or not set(text) <= _CODE_BYTES:
        raise ValueError(f"record header {what} field {field!r} is not letters and digits padded with spaces")
    return text.decode("ascii")


@lru_cache(maxsize=64)
def _year_start_s(year: int) -> int:
    return calendar.timegm((year, 1, 1, 0, 0, 0, 0, 0, 0))


def _sample_rate(factor: int, multiplier: int) -> float:
    """Sample rate from the fixed header's factor and multiplier (SEED 2.4, fields 10 and 11)."""
    if factor == 0 or multiplier == 0:
        return 0.0
    rate = float(factor) if factor > 0 else -1.0 / factor
    return rate * multiplier if multiplier > 0 else -rate / multiplier


def read_header(record: bytes) -> RecordHeader:
    """Codes and time span of a big-endian 512-byte miniSEED 2 data record; ValueError naming the
    field that is wrong otherwise."""
    if len(record) != RECORD_LENGTH:
        raise ValueError(f"record is {len(record)} bytes; SeedLink carries {RECORD_LENGTH}-byte records only")
    (
        _seq,
        quality,
        _reserved,
        sta,
        loc,
        cha,
        net,
        year,
        doy,
        hour,
        minute,
        second,
        _unused,
        tenth_ms,
        nsamp,
        factor,
        multiplier,
        activity,
        _io,
        _dq,
        _nblk,
        correction,
        _data_offset,
        blockette_at,
    ) = _FIXED.unpack_from(record)
    if quality[0] not in _QUALITY:
        raise ValueError(f"record quality indicator {quality!r} is not D, R, Q or M: not a miniSEED 2 record")
    if not (1900 <= year <= 2500 and 1 <= doy <= 366 and hour < 24 and minute < 60 and second <= 60):
        raise ValueError(
            f"record start {year},{doy},{hour}:{minute}:{second} is not a big-endian BTIME "
            "(only big-endian records are carried)"
        )
    if tenth_ms > 9999:
        raise ValueError(f"record start fraction {tenth_ms} is above 9999 (0.0001 s units)")
    microseconds = 0
    rate = _sample_rate(factor, multiplier)
    exponent = 0
    seen = 0
    while blockette_at:
        if blockette_at < 48 or blockette_at + 8 > RECORD_LENGTH or seen == _MAX_BLOCKETTES:
            raise ValueError(f"record blockette chain is broken at offset {blockette_at}")
        kind, following = struct.unpack_from(">HH", record, blockette_at)
        if kind == 1000:
            exponent = record[blockette_at + 6]
        elif kind == 1001:
            microseconds = struct.unpack_from(">b", record, blockette_at + 5)[0]
        elif kind == 100:
            rate = float(struct.unpack_from(">f", record, blockette_at + 4)[0])
        if following and following <= blockette_at:
            raise ValueError(f"record blockette chain loops back from {blockette_at} to {following}")
        blockette_at = following
        seen += 1
    if exponent == 0:
        raise ValueError("record has no blockette 1000")
    if 1 << exponent != RECORD_LENGTH:
        raise ValueError(f"record blockette 1000 says {1 << exponent} bytes, the record has {RECORD_LENGTH}")
    seconds = _year_start_s(year) + (doy - 1) * 86_400 + hour * 3600 + minute * 60 + second
    start = seconds * NS_PER_S + tenth_ms * 100_000 + microseconds * NS_PER_US
    if correction and not activity & _TIME_CORRECTION_APPLIED:
        start += correction * 100_000
    end = start + round(nsamp * NS_PER_S / rate) if rate > 0 else start
    return RecordHeader(
        _code(net, "network"),
        _code(sta, "station"),
        _code(loc, "location", empty_ok=True),
        _code(cha, "channel"),
        start,
        end,
    )


def info_records(text: bytes, now_ns: int, error: bool) -> list[bytes]:
    """A SeedLink 3 INFO document as 512-byte text records (encoding 0), as SeedLink 3 servers send it:
    station INFO, channel INF (ERR for an error), network XX, the document split across records."""
    tm = time.gmtime(now_ns // NS_PER_S)
    channel = b"ERR" if error else b"INF"
    out = []
    for i, at in enumerate(range(0, max(len(text), 1), INFO_TEXT_PER_RECORD)):
        chunk = text[at : at + INFO_TEXT_PER_RECORD]
        header = _FIXED.pack(
            b"%06d" % (i % 999_999 + 1),
            b"D",
            b" ",
            b"INFO ",
            b"  ",
            channel,
            b"XX",
            tm.tm_year,
            tm.tm_yday,
            tm.tm_hour,
            tm.tm_min,
            min(tm.tm_sec, 59),
            0,
            0,
            len(chunk),
            0,
            0,
            0,
            0,
            0,
            1,
            0,
            56,
            48,
        )
        blockette = struct.pack(">HHBBBB", 1000, 0, 0, 1, 9, 0)  # text encoding, big-endian, 2**9 bytes
        out.append((header + blockette + chunk).ljust(RECORD_LENGTH, b"\0"))
    return out
