"""Bounds-checked big-endian reading and writing of CD-1.1 fields.

Every read names its field, so any malformed input ends in a Cd11FormatError with field and offset
rather than an IndexError or struct.error deep inside a parser.
"""

from __future__ import annotations

import struct

from .errors import Cd11FormatError
from .timefmt import TIME_SIZE, format_time, parse_time


def pad4(n: int) -> int:
    """``n`` rounded up to a multiple of 4 (CD-1.1 pads variable-length fields so)."""
    return (n + 3) & ~3


def text_field(value: str, width: int, *, field: str, offset: int = 0) -> bytes:
    """``value`` as Latin-1, NUL-filled to ``width`` bytes."""
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise Cd11FormatError(f"{value!r} is not Latin-1 text", field=field, offset=offset) from exc
    if len(raw) > width:
        raise Cd11FormatError(f"{value!r} is longer than {width} bytes", field=field, offset=offset)
    return raw.ljust(width, b"\0")


_TEXTS: dict[bytes, str] = {}  # station, channel and location names recur in every frame
_TEXTS_MAX = 65_536


def text_value(raw: bytes | memoryview) -> str:
    """Fixed-width text: trailing NULs stripped, nothing else, so encoding it back is exact."""
    key = raw if type(raw) is bytes else bytes(raw)  # a memoryview of a bytearray cannot be a key
    text = _TEXTS.get(key)
    if text is None:
        text = key.rstrip(b"\0").decode("latin-1")
        if len(_TEXTS) < _TEXTS_MAX:
            _TEXTS[key] = text
    return text


def require_nul_padding(raw: bytes | memoryview, *, field: str, offset: int) -> None:
    """Padding and reserved bytes are NUL (spec §1). Anything else is refused rather than dropped, so that
    a decoded frame re-encodes to exactly the bytes received."""
    if any(raw):
        raise Cd11FormatError(f"must be NUL bytes, found {bytes(raw).hex()}", field=field, offset=offset)


class Reader:
    """Cursor over ``buf[pos:end]`` whose reads raise Cd11FormatError past ``end``."""

    def __init__(self, buf: bytes | bytearray | memoryview, pos: int, end: int) -> None:
        self.buf = memoryview(buf)
        self.pos = pos
        self.end = end

    def take(self, n: int, field: str) -> memoryview:
        if n < 0 or self.pos + n > self.end:
            raise Cd11FormatError(
                f"needs {n} bytes but only {self.end - self.pos} remain", field=field, offset=self.pos
            )
        view = self.buf[self.pos : self.pos + n]
        self.pos += n
        return view

    def _unpack(self, fmt: str, size: int, field: str) -> int | float:
        return struct.unpack(fmt, self.take(size, field))[0]

    def i16(self, field: str) -> int:
        return int(self._unpack(">h", 2, field))

    def u16(self, field: str) -> int:
        return int(self._unpack(">H", 2, field))

    def i32(self, field: str) -> int:
        return int(self._unpack(">i", 4, field))

    def u32(self, field: str) -> int:
        return int(self._unpack(">I", 4, field))

    def i64(self, field: str) -> int:
        return int(self._unpack(">q", 8, field))

    def u64(self, field: str) -> int:
        return int(self._unpack(">Q", 8, field))

    def f32(self, field: str) -> float:
        return float(self._unpack(">f", 4, field))

    def text(self, width: int, field: str) -> str:
        return text_value(self.take(width, field))

    def time(self, field: str) -> int:
        at = self.pos
        return parse_time(self.take(TIME_SIZE, field), field=field, offset=at)

    def size(self, field: str) -> int:
        """A non-negative 32-bit byte count that must fit (padded) in what remains."""
        at = self.pos
        n = self.i32(field)
        if n < 0 or self.pos + pad4(n) > self.end:
            raise Cd11FormatError(
                f"size {n} does not fit in the {self.end - self.pos} bytes that remain",
                field=field,
                offset=at,
            )
        return n

    def sized(self, field: str) -> bytes:
        """A size-prefixed, NUL-padded field; returns the ``size`` declared bytes."""
        n = self.size(f"{field} size")
        value = bytes(self.take(n, field))
        at = self.pos
        require_nul_padding(self.take(pad4(n) - n, f"{field} padding"), field=f"{field} padding", offset=at)
        return value

    def nul(self, n: int, field: str) -> None:
        """``n`` reserved bytes, which must be NUL."""
        at = self.pos
        require_nul_padding(self.take(n, field), field=field, offset=at)

    def expect_end(self, field: str) -> None:
        if self.pos != self.end:
            raise Cd11FormatError(
                f"{self.end - self.pos} bytes left over after the last field", field=field, offset=self.pos
            )


class Writer:
    """Append-only builder; offsets in its errors are positions in the frame being built."""

    def __init__(self, base: int = 0) -> None:
        self.out = bytearray()
        self.base = base

    @property
    def pos(self) -> int:
        return self.base + len(self.out)

    def _pack(self, fmt: str, value: int | float, field: str) -> None:
        try:
            self.out += struct.pack(fmt, value)
        except (struct.error, TypeError) as exc:
            raise Cd11FormatError(f"cannot encode {value!r}: {exc}", field=field, offset=self.pos) from exc

    def i16(self, value: int, field: str) -> None:
        self._pack(">h", value, field)

    def u16(self, value: int, field: str) -> None:
        self._pack(">H", value, field)

    def i32(self, value: int, field: str) -> None:
        self._pack(">i", value, field)

    def u32(self, value: int, field: str) -> None:
        self._pack(">I", value, field)

    def i64(self, value: int, field: str) -> None:
        self._pack(">q", value, field)

    def u64(self, value: int, field: str) -> None:
        self._pack(">Q", value, field)

    def f32(self, value: float, field: str) -> None:
        self._pack(">f", value, field)

    def text(self, value: str, width: int, field: str) -> None:
        self.out += text_field(value, width, field=field, offset=self.pos)

    def time(self, time_ns: int, field: str) -> None:
        self.out += format_time(time_ns, field=field, offset=self.pos)

    def raw(self, data: bytes | bytearray) -> None:
        self.out += data

    def sized(self, data: bytes, field: str) -> None:
        self.i32(len(data), f"{field} size")
        self.out += data
        self.out += b"\0" * (pad4(len(data)) - len(data))
