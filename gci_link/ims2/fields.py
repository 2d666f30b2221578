"""Single values of IMS 2.0 text: numbers, words and UTC times, read with block and line for errors.

Times are integer nanoseconds since 1970 inside; the text form ``YYYY/MM/DD hh:mm:ss.s`` exists only
here. Floats are written in their shortest exact form, padded to a minimum number of decimals, so a
re-read gives the very same double.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .errors import Ims2FormatError

NS_PER_S = 1_000_000_000
_EPOCH = dt.datetime(1970, 1, 1)
_DATE = re.compile(r"(\d{4})[/-](\d{2})[/-](\d{2})")
_TIME = re.compile(r"(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?")
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INT = re.compile(r"[+-]?\d+")
MISSING = "-"


@dataclass(frozen=True)
class Where:
    """The block and message line a value comes from, so every error can name both."""

    block: str
    line: int

    def error(self, problem: str) -> Ims2FormatError:
        return Ims2FormatError(self.block, self.line, problem)


def to_float(token: str, where: Where, what: str) -> float:
    if not _FLOAT.fullmatch(token):
        raise where.error(f"bad number {token!r} for {what}")
    value = float(token)
    if not math.isfinite(value):  # 1e999: no writer could say it again
        raise where.error(f"number {token!r} for {what} is out of range")
    return value


def to_int(token: str, where: Where, what: str) -> int:
    if not _INT.fullmatch(token):
        raise where.error(f"bad integer {token!r} for {what}")
    return int(token)


def to_time(date: str, time: str, where: Where, what: str) -> int:
    """Nanoseconds of ``YYYY/MM/DD`` (or ``YYYY-MM-DD``) plus ``hh:mm:ss[.fff]``, UTC."""
    d = _DATE.fullmatch(date)
    t = _TIME.fullmatch(time)
    if d is None or t is None:
        raise where.error(f"bad date/time '{date} {time}' for {what} (want YYYY/MM/DD hh:mm:ss.s)")
    year, month, day = (int(g) for g in d.groups())
    hour, minute, second = (int(g) for g in t.groups()[:3])
    try:
        stamp = dt.datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise where.error(f"impossible date/time '{date} {time}' for {what}: {exc}") from None
    fraction = t.group(4) or ""
    seconds = (stamp - _EPOCH) // dt.timedelta(seconds=1)
    return seconds * NS_PER_S + int(fraction.ljust(9, "0") or 0)


def format_time(time_ns: int, separator: str = " ") -> str:
    """``YYYY/MM/DD hh:mm:ss.s``: tenths as the real files have them, more digits only if needed."""
    seconds, ns = divmod(int(time_ns), NS_PER_S)
    stamp = _EPOCH + dt.timedelta(seconds=seconds)
    fraction = f"{ns:09d}".rstrip("0").ljust(1, "0")
    # not %Y: it drops the leading zeros of years before 1000, which the reader (4 digits) refuses
    return f"{stamp.year:04d}/{stamp:%m/%d}{separator}{stamp:%H:%M:%S}.{fraction}"


def format_float(value: float, decimals: int = 6) -> str:
    """Fixed-point text of ``value`` with at least ``decimals`` decimals that reads back exactly."""
    if not np.isfinite(value):
        raise ValueError(f"cannot write the non-finite number {value!r}")
    trim: Literal["k", "-"] = "k" if decimals else "-"
    return np.format_float_positional(float(value), unique=True, min_digits=decimals, trim=trim)


def format_span(value: float) -> str:
    """An energy span: ``720`` rather than ``720.0`` (openSpex reads histogram spans with int())."""
    return format_float(value, 0)


def optional_float(token: str, where: Where, what: str) -> float | None:
    return None if token == MISSING else to_float(token, where, what)


def optional_int(token: str, where: Where, what: str) -> int | None:
    return None if token == MISSING else to_int(token, where, what)


def optional_word(token: str) -> str | None:
    return None if token == MISSING else token
