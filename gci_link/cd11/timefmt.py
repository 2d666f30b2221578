"""CD-1.1 time strings (``yyyyddd hh:mm:ss.ttt``, UTC) <-> integer nanoseconds since 1970.

Only the codec's edges see the text form; everything inside the project carries integer ns.
"""

from __future__ import annotations

import datetime as dt
import re

from timeunits import NS_PER_MS

from .errors import Cd11FormatError

TIME_SIZE = 20
_MS_PER_DAY = 86_400_000
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_PATTERN = re.compile(rb"(\d{4})(\d{3}) (\d{2}):(\d{2}):(\d{2})\.(\d{3})")
PARSED_CACHE_SIZE = 4096
_PARSED: dict[bytes, int] = {}  # time string -> ns, see parse_time


def parse_time(raw: bytes | memoryview, *, field: str, offset: int) -> int:
    """Nanoseconds since 1970 of a 20-byte CD-1.1 time string; strict, so re-formatting is exact.

    Every channel of a frame, and every station's frame of the same 10 s, carries the same few stamps,
    so parsed stamps are remembered (a receiver parses thousands per second).
    """
    key = bytes(raw)
    known = _PARSED.get(key)
    if known is not None:
        return known
    time_ns = _parse(key, field, offset)
    if len(_PARSED) >= PARSED_CACHE_SIZE:
        _PARSED.clear()
    _PARSED[key] = time_ns
    return time_ns


def _parse(raw: bytes, field: str, offset: int) -> int:
    match = _PATTERN.fullmatch(raw)
    if match is None:
        raise Cd11FormatError(f"not a time string yyyyddd hh:mm:ss.ttt: {raw!r}", field=field, offset=offset)
    year, doy, hour, minute, sec, msec = (int(g) for g in match.groups())
    if year < 1:
        raise Cd11FormatError(f"year {year} out of range", field=field, offset=offset)
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    if not 1 <= doy <= (366 if leap else 365) or hour > 23 or minute > 59 or sec > 59:
        raise Cd11FormatError(f"impossible date or time {raw.decode()!r}", field=field, offset=offset)
    days = dt.date(year, 1, 1).toordinal() - _EPOCH_ORDINAL + doy - 1
    ms = days * _MS_PER_DAY + ((hour * 60 + minute) * 60 + sec) * 1000 + msec
    return ms * NS_PER_MS


def format_time(time_ns: int, *, field: str = "time", offset: int = 0) -> bytes:
    """The 20-byte CD-1.1 time string of ``time_ns``, rounded to the nearest millisecond."""
    ms = (int(time_ns) + NS_PER_MS // 2) // NS_PER_MS
    days, ms_of_day = divmod(ms, _MS_PER_DAY)
    try:
        date = dt.date.fromordinal(days + _EPOCH_ORDINAL)
    except (ValueError, OverflowError) as exc:
        raise Cd11FormatError(
            f"time {time_ns} ns is outside years 1-9999", field=field, offset=offset
        ) from exc
    sec, msec = divmod(ms_of_day, 1000)
    minute, sec = divmod(sec, 60)
    hour, minute = divmod(minute, 60)
    doy = date.timetuple().tm_yday
    return f"{date.year:04d}{doy:03d} {hour:02d}:{minute:02d}:{sec:02d}.{msec:03d}".encode("ascii")


def iso_or_dash(time_ns: int | None) -> str:
    """``iso``, or "-" for a time not known (tables)."""
    return "-" if time_ns is None else iso(time_ns)


def iso(time_ns: int) -> str:
    """ISO-8601 UTC text with milliseconds, for humans (CLI, logs)."""
    ms = (int(time_ns) + NS_PER_MS // 2) // NS_PER_MS
    stamp = dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=ms)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
