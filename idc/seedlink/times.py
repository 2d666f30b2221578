"""SeedLink time arguments and INFO time stamps, to and from integer nanoseconds UTC.

Accepted everywhere a time is: ``YYYY,MM,DD,hh,mm,ss`` (protocol 3; seconds may have a fraction, and a
7th field of nanoseconds is taken as SeedLink 4 drafts wrote it) and ISO 8601 ``YYYY-MM-DDThh:mm:ss[.f]Z``
(protocol 4; the Z may be left out, the time of day too).
"""

from __future__ import annotations

import calendar
import re
import time

from timeunits import NS_PER_S

_COMMAS = re.compile(
    r"(\d{4}),(\d{1,2}),(\d{1,2})"  # date
    r"(?:,(\d{1,2})(?:,(\d{1,2})(?:,(\d{1,2})(\.\d{1,9})?(?:,(\d{1,9}))?)?)?)?"  # h, m, s[.f], [ns]
)
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{1,2})(?::(\d{1,2})(\.\d{1,9})?)?)?Z?")


def parse_time(text: str) -> int:
    """Nanoseconds since 1970 UTC of a SeedLink time argument; ValueError saying what is wrong."""
    match = _COMMAS.fullmatch(text) or _ISO.fullmatch(text)
    if match is None:
        raise ValueError(f"time {text!r}: expected YYYY,MM,DD,hh,mm,ss or YYYY-MM-DDThh:mm:ss[.f]Z")
    year, month, day = (int(match.group(i)) for i in (1, 2, 3))
    hour, minute, second = (int(match.group(i) or 0) for i in (4, 5, 6))
    if not (year >= 1 and 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        raise ValueError(f"time {text!r}: no such date")
    if hour > 23 or minute > 59 or second > 60:
        raise ValueError(f"time {text!r}: hour, minute or second out of range")
    fraction = match.group(7)
    ns = int((fraction[1:] + "000000000")[:9]) if fraction else 0
    if match.re is _COMMAS and match.group(8):
        ns += int(match.group(8))
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) * NS_PER_S + ns


def format_v3(time_ns: int) -> str:
    """``YYYY/MM/DD hh:mm:ss.ffff`` as SeedLink 3 INFO documents write stream times."""
    seconds, ns = divmod(time_ns, NS_PER_S)
    return time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(seconds)) + f".{ns // 100_000:04d}"


def format_iso(time_ns: int) -> str:
    """``YYYY-MM-DDThh:mm:ss.ffffffZ`` as SeedLink 4 INFO documents write times."""
    seconds, ns = divmod(time_ns, NS_PER_S)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ns // 1000:06d}Z"
