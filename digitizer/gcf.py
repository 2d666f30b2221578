"""Güralp Compressed Format (GCF) blocks: decode and encode one block (spec gcf-brp.md §§1-5).

A block is a 16-byte header followed either by first-difference-compressed int32 samples framed by a
forward (FIC) and reverse (RIC) integration constant, or by status content. Files hold 1024-byte blocks
with undefined padding; a serial link sends only the used bytes and may cut every 32-bit difference to
3 bytes (24-bit truncation, §4), which ``decode_block`` recognises from the length it is given.

Everything is checked: a malformed block raises ``GcfFormatError`` naming the field and byte offset,
and no other exception leaves ``decode_block``, so one bad block never stops a receiver.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np

from digitizer.base36 import from_base36, to_base36
from digitizer.packet import Packet
from timeunits import NS_PER_S, S_PER_DAY

FILE_BLOCK_SIZE = 1024
HEADER_SIZE = 16
MAX_RECORDS = 250  # (1024 - 16 header - 4 FIC - 4 RIC) / 4
GCF_EPOCH_UNIX_S = 627_264_000  # 1989-11-17T00:00:00Z, day 0 of the date code
MAX_DAY = (1 << 15) - 1

# Sample-rate codes that do not mean "this many samples per second": code -> (rate, time denominator).
SPECIAL_RATE_CODES: dict[int, tuple[float, int]] = {
    157: (0.1, 1), 161: (0.125, 1), 162: (0.2, 1), 164: (0.25, 1), 167: (0.5, 1),
    171: (400.0, 8), 174: (500.0, 2), 175: (800.0, 16), 176: (1000.0, 4), 179: (2000.0, 8),
    181: (4000.0, 16), 182: (625.0, 5), 191: (1250.0, 5), 193: (2500.0, 10), 194: (5000.0, 20),
}
_CODE_OF_SPECIAL_RATE = {rate: code for code, (rate, _den) in SPECIAL_RATE_CODES.items()}
MAX_PLAIN_RATE = 250

COMPRESSIONS = (1, 2, 4)  # samples per 4-byte record: 32-, 16-, 8-bit differences
_DIFF_DTYPES: dict[int, np.dtype[Any]] = {1: np.dtype(">i4"), 2: np.dtype(">i2"), 4: np.dtype("i1")}
_DIFF_LIMITS = {4: (-(1 << 7), (1 << 7) - 1), 2: (-(1 << 15), (1 << 15) - 1), 1: (-(1 << 31), (1 << 31) - 1)}
_INT24_MIN, _INT24_MAX = -(1 << 23), (1 << 23) - 1

SYS_PLAIN, SYS_EXTENDED, SYS_DOUBLE_EXTENDED = 0, 1, 2  # system-ID layouts, numbered as ObsPy does
_SYS_ID_BITS = {SYS_PLAIN: 31, SYS_EXTENDED: 26, SYS_DOUBLE_EXTENDED: 21}

TEXT_STATUS_SUFFIX = "00"
_HEADER = struct.Struct(">IIIBBBB")
_INT32 = struct.Struct(">i")


class GcfFormatError(ValueError):
    """A GCF block is malformed; ``field`` and ``offset`` (bytes from the block start) say where."""

    def __init__(self, message: str, *, field: str, offset: int) -> None:
        super().__init__(f"{message} (field {field}, offset {offset})")
        self.field = field
        self.offset = offset


@dataclass(frozen=True, slots=True, eq=False)
class GcfBlock:
    """One decoded GCF block; data blocks carry ``samples``, status blocks (rate 0) ``status_bytes``.

    ``start_ns`` includes the fractional start of >250 sps streams. A leap-second block (seconds field
    86400) is stamped 23:59:59 with ``leap_second`` set, as ObsPy does, so times stay POSIX.
    """

    system_id: str
    stream_id: str
    start_ns: int
    sample_rate: float  # 0.0 for status blocks
    compression: int = 0  # 1, 2 or 4; 0 on input to encode_block means "narrowest that fits"
    samples: np.ndarray | None = None  # int32
    status_text: str | None = None  # text status (stream suffix "00"), trailing padding removed
    ttl: int = 0
    status_bytes: bytes | None = None  # raw body of any status block (text or binary)
    sys_type: int = SYS_PLAIN  # layout of the system-ID word
    gain_code: int = 0  # extended layouts only: 0 none, 1 -> x1, n -> x2**(n-1)
    digitizer_type: int = 0  # extended layouts only: bit 26
    leap_second: bool = False
    serial24: bool = False  # differences were (or are to be) sent cut to 3 bytes
    fic: int | None = None  # as found in the block (decode only)
    ric: int | None = None

    @property
    def is_status(self) -> bool:
        return self.sample_rate == 0

    @property
    def nsamp(self) -> int:
        return 0 if self.samples is None else int(self.samples.shape[0])

    @property
    def gain(self) -> int | None:
        """Variable gain from the system-ID word; None when the layout or code carries none."""
        if self.sys_type == SYS_PLAIN or self.gain_code == 0:
            return None
        return 1 << (self.gain_code - 1)

    @property
    def stream_id_word(self) -> int:
        """The stream ID as the 32-bit word of header offset 4 (what BRP ACK/NAK bytes echo)."""
        return from_base36(self.stream_id)

    @property
    def end_ns(self) -> int:
        """Time just after the last sample."""
        if not self.sample_rate:
            return self.start_ns
        return self.start_ns + round(self.nsamp * NS_PER_S / self.sample_rate)


# --------------------------------------------------------------------------------------------------
# header fields


def sample_rate_of_code(code: int) -> tuple[float, int]:
    """(samples per second, fractional-start denominator) of a rate code; (0.0, 1) for status."""
    special = SPECIAL_RATE_CODES.get(code)
    if special is not None:
        return special
    if code > MAX_PLAIN_RATE:
        raise GcfFormatError(f"sample-rate code {code} is not defined", field="sample_rate", offset=13)
    return float(code), 1


def rate_code_of(sample_rate: float) -> tuple[int, int]:
    """(rate code, fractional-start denominator) for a rate GCF can express; GcfFormatError otherwise."""
    code = _CODE_OF_SPECIAL_RATE.get(sample_rate)
    if code is not None:
        return code, SPECIAL_RATE_CODES[code][1]
    if 1 <= sample_rate <= MAX_PLAIN_RATE and sample_rate == int(sample_rate) \
            and int(sample_rate) not in SPECIAL_RATE_CODES:
        return int(sample_rate), 1
    raise GcfFormatError(f"sample rate {sample_rate} sps cannot be expressed in GCF", field="sample_rate",
                         offset=13)


@lru_cache(maxsize=1024)
def split_system_word(word: int) -> tuple[str, int, int, int]:
    """(label, layout, gain code, digitizer type) of the system-ID word at offset 0 (§2.1)."""
    if not word & 0x8000_0000:
        return to_base36(word), SYS_PLAIN, 0, 0
    layout = SYS_DOUBLE_EXTENDED if word & 0x4000_0000 else SYS_EXTENDED
    value = word & ((1 << _SYS_ID_BITS[layout]) - 1)
    return to_base36(value), layout, (word >> 27) & 0x7, (word >> 26) & 0x1


@lru_cache(maxsize=1024)
def _stream_label(word: int) -> str:
    return to_base36(word)


def join_system_word(label: str, layout: int, gain_code: int, digitizer_type: int) -> int:
    """Inverse of ``split_system_word``; GcfFormatError when the label does not fit the layout."""
    bits = _SYS_ID_BITS.get(layout)
    if bits is None:
        raise GcfFormatError(f"unknown system-ID layout {layout}", field="system_id", offset=0)
    try:
        value = from_base36(label)
    except ValueError as exc:
        raise GcfFormatError(str(exc), field="system_id", offset=0) from None
    if value >= 1 << bits:
        raise GcfFormatError(f"system ID {label!r} needs more than {bits} bits", field="system_id", offset=0)
    if layout == SYS_PLAIN:
        return value
    if not 0 <= gain_code <= 7 or digitizer_type not in (0, 1):
        raise GcfFormatError("gain code must be 0-7 and digitizer type 0-1", field="system_id", offset=0)
    top = 0xC000_0000 if layout == SYS_DOUBLE_EXTENDED else 0x8000_0000
    return top | gain_code << 27 | digitizer_type << 26 | value


def time_of_date_code(code: int) -> tuple[int, bool]:
    """(whole-second POSIX time, leap second?) of the date code at offset 8 (§2.3)."""
    day, seconds = code >> 17, code & 0x1FFFF
    if seconds > S_PER_DAY:
        raise GcfFormatError(f"seconds of day {seconds} exceeds 86400", field="date_code", offset=8)
    leap = seconds == S_PER_DAY
    return GCF_EPOCH_UNIX_S + day * S_PER_DAY + seconds - leap, leap


def date_code_of(unix_s: int, leap_second: bool = False) -> int:
    """Date code of a whole-second POSIX time; with ``leap_second`` the time must be 23:59:59."""
    day, seconds = divmod(unix_s - GCF_EPOCH_UNIX_S, S_PER_DAY)
    if leap_second:
        if seconds != S_PER_DAY - 1:
            raise GcfFormatError("a leap-second block must be stamped 23:59:59", field="date_code", offset=8)
        seconds = S_PER_DAY
    if not 0 <= day <= MAX_DAY:
        raise GcfFormatError(f"time {unix_s} is outside 1989-11-17..2079-08-04", field="date_code", offset=8)
    return day << 17 | seconds


def _fraction_numerator(byte14: int) -> int:
    return ((byte14 & 0xF0) >> 4) + ((byte14 & 0x08) << 1)


def _fraction_bits(numerator: int) -> int:
    return (numerator & 0x0F) << 4 | (numerator & 0x10) >> 1


class _Where:
    """Block description for error messages, formatted only if an error is raised (decoding is hot)."""

    __slots__ = ("stream_id", "unix_s")

    def __init__(self, stream_id: str, unix_s: int) -> None:
        self.stream_id, self.unix_s = stream_id, unix_s

    def __str__(self) -> str:
        return _describe(self.stream_id, self.unix_s)


def _describe(stream_id: str, unix_s: int) -> str:
    stamp = datetime.fromtimestamp(unix_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"stream {stream_id} block {stamp}"


# --------------------------------------------------------------------------------------------------
# decoding


def decode_block(buf: bytes | bytearray | memoryview) -> GcfBlock:
    """Decode one block from ``buf`` (a 1024-byte file block, or exactly the bytes a BRP frame carried).

    A compression-1 block whose length is exactly ``24 + 3 * samples`` is taken as 24-bit serially
    truncated and re-expanded (§4). Raises GcfFormatError, and only that, for any malformed input.
    """
    buf = bytes(buf)
    if len(buf) < HEADER_SIZE:
        raise GcfFormatError(f"block of {len(buf)} bytes is shorter than the 16-byte header",
                             field="header", offset=len(buf))
    sys_word, stream_word, date_code, ttl, rate_code, byte14, records = _HEADER.unpack_from(buf)
    system_id, sys_type, gain_code, digi = split_system_word(sys_word)
    if stream_word & 0x8000_0000:
        raise GcfFormatError(f"stream-ID word 0x{stream_word:08x} has bit 31 set",
                             field="stream_id", offset=4)
    stream_id = _stream_label(stream_word)
    unix_s, leap = time_of_date_code(date_code)
    if records > MAX_RECORDS:
        raise GcfFormatError(f"{_describe(stream_id, unix_s)}: {records} records exceed {MAX_RECORDS}",
                             field="records", offset=15)
    common = dict(system_id=system_id, stream_id=stream_id, ttl=ttl, sys_type=sys_type, gain_code=gain_code,
                  digitizer_type=digi, leap_second=leap)
    if rate_code == 0:
        return _decode_status(buf, records, unix_s, common)
    return _decode_data(buf, rate_code, byte14, records, unix_s, common)


def _decode_status(buf: bytes, records: int, unix_s: int, common: dict) -> GcfBlock:
    end = HEADER_SIZE + 4 * records
    if len(buf) < end:
        raise GcfFormatError(f"{_describe(common['stream_id'], unix_s)}: status body of {4 * records} bytes "
                             f"truncated to {len(buf) - HEADER_SIZE}", field="status", offset=len(buf))
    body = buf[HEADER_SIZE:end]
    text = None
    if common["stream_id"].endswith(TEXT_STATUS_SUFFIX):
        text = body.decode("ascii", errors="replace").rstrip(" \x00")
    return GcfBlock(start_ns=unix_s * NS_PER_S, sample_rate=0.0, compression=buf[14] & 0x07,
                    status_text=text, status_bytes=body, **common)


def _decode_data(buf: bytes, rate_code: int, byte14: int, records: int, unix_s: int,
                 common: dict) -> GcfBlock:
    where = _Where(common["stream_id"], unix_s)
    rate, denominator = sample_rate_of_code(rate_code)
    compression = byte14 & 0x07
    if compression not in COMPRESSIONS:
        raise GcfFormatError(f"{where}: compression code {compression} is not 1, 2 or 4",
                             field="compression", offset=14)
    numerator = 0
    if rate > MAX_PLAIN_RATE:
        numerator = _fraction_numerator(byte14)
        if numerator >= denominator:
            raise GcfFormatError(f"{where}: fractional start {numerator}/{denominator} is not below 1",
                                 field="fractional_start", offset=14)
    n = records * compression
    if 1 <= rate <= MAX_PLAIN_RATE and n % int(rate):
        raise GcfFormatError(f"{where}: {n} samples do not fill whole seconds at {rate:g} sps",
                             field="records", offset=15)
    serial24 = compression == 1 and n > 0 and len(buf) == 24 + 3 * n
    diff_bytes = 3 * n if serial24 else 4 * records
    ric_offset = 20 + diff_bytes
    if len(buf) < ric_offset + 4:
        raise GcfFormatError(f"{where}: {len(buf)} bytes cannot hold {n} samples and the RIC",
                             field="data", offset=len(buf))
    fic = _INT32.unpack_from(buf, 16)[0]
    ric = _INT32.unpack_from(buf, ric_offset)[0]
    if serial24:
        samples = _integrate24(buf, n, fic, ric, where)
    else:
        diffs = np.frombuffer(buf, dtype=_DIFF_DTYPES[compression], count=n, offset=20)
        if n and diffs[0] != 0:
            raise GcfFormatError(f"{where}: first difference is {int(diffs[0])}, not 0",
                                 field="first_difference", offset=20)
        samples = np.cumsum(diffs, dtype=np.int32)  # int32 wrap-around, as the digitizer computes
        samples += np.int32(fic)
    if n and int(samples[-1]) != ric:
        raise GcfFormatError(f"{where}: last sample {int(samples[-1])} differs from RIC {ric}",
                             field="RIC", offset=ric_offset)
    start_ns = unix_s * NS_PER_S + numerator * (NS_PER_S // denominator)
    return GcfBlock(start_ns=start_ns, sample_rate=rate, compression=compression, samples=samples,
                    serial24=serial24, fic=fic, ric=ric, **common)


def _integrate24(buf: bytes, n: int, fic: int, ric: int, where: _Where) -> np.ndarray:
    """Samples of a 24-bit truncated body: unsigned 3-byte steps folded back into [-2**23, 2**23)."""
    for name, value, offset in (("FIC", fic, 16), ("RIC", ric, 20 + 3 * n)):
        if not _INT24_MIN <= value <= _INT24_MAX:
            raise GcfFormatError(f"{where}: {name} {value} is outside the 24-bit range of a truncated block",
                                 field=name, offset=offset)
    raw = np.frombuffer(buf, dtype=np.uint8, count=3 * n, offset=20).reshape(n, 3).astype(np.int64)
    steps = raw[:, 0] << 16 | raw[:, 1] << 8 | raw[:, 2]
    if steps[0] != 0:
        raise GcfFormatError(f"{where}: first 24-bit difference is {int(steps[0])}, not 0",
                             field="first_difference", offset=20)
    folded = (np.cumsum(steps) + fic) & 0xFFFFFF
    folded[folded > _INT24_MAX] -= 1 << 24
    return folded.astype(np.int32)


def iter_file_blocks(data: bytes) -> list[GcfBlock]:
    """Decode every 1024-byte block of a GCF file image; raises GcfFormatError naming the block offset."""
    if len(data) % FILE_BLOCK_SIZE:
        raise GcfFormatError(f"file of {len(data)} bytes is not a whole number of 1024-byte blocks",
                             field="file", offset=len(data) - len(data) % FILE_BLOCK_SIZE)
    blocks = []
    for start in range(0, len(data), FILE_BLOCK_SIZE):
        try:
            blocks.append(decode_block(data[start:start + FILE_BLOCK_SIZE]))
        except GcfFormatError as exc:
            raise GcfFormatError(f"block at file offset {start}: {exc}", field=exc.field,
                                 offset=start + exc.offset) from None
    return blocks


# --------------------------------------------------------------------------------------------------
# encoding


def _narrowest(diffs: np.ndarray) -> int:
    """Largest samples-per-record code (4, 2, 1) whose width holds every difference and divides n."""
    low, high = (int(diffs.min()), int(diffs.max())) if diffs.size else (0, 0)
    for code in (4, 2):
        lo, hi = _DIFF_LIMITS[code]
        if diffs.size % code == 0 and lo <= low and high <= hi:
            return code
    return 1


def _differences(samples: np.ndarray) -> np.ndarray:
    s = np.asarray(samples, dtype=np.int32)
    return np.diff(s, prepend=s[:1])  # int32 arithmetic wraps exactly like the decoder's sum


def encode_block(block: GcfBlock, *, pad: bool = False) -> bytes:
    """Bytes of ``block``: just the used part (what BRP sends), or a 1024-byte file block with ``pad``.

    Data blocks take compression from ``block.compression`` (0 picks the narrowest); ``serial24`` writes
    3-byte differences (compression 1, samples within 24 bits). FIC/RIC are computed from the samples.
    """
    sys_word = join_system_word(block.system_id, block.sys_type, block.gain_code, block.digitizer_type)
    try:
        stream_word = from_base36(block.stream_id)
    except ValueError as exc:
        raise GcfFormatError(str(exc), field="stream_id", offset=4) from None
    if stream_word >= 1 << 31:
        raise GcfFormatError(f"stream ID {block.stream_id!r} needs more than 31 bits",
                             field="stream_id", offset=4)
    if not 0 <= block.ttl <= 255:
        raise GcfFormatError(f"TTL {block.ttl} is not a byte", field="ttl", offset=12)
    unix_s, fraction_ns = divmod(block.start_ns, NS_PER_S)
    date_code = date_code_of(unix_s, block.leap_second)
    if block.samples is None:
        body, byte14, rate_code = _status_body(block), 4, 0
        records = len(body) // 4
    else:
        rate_code, denominator = rate_code_of(block.sample_rate)
        numerator, remainder = divmod(fraction_ns * denominator, NS_PER_S)
        if remainder:
            raise GcfFormatError(f"start {block.start_ns} ns is not on a 1/{denominator} s boundary",
                                 field="fractional_start", offset=14)
        compression, body = _data_body(block)
        records = len(block.samples) // compression
        byte14 = compression | _fraction_bits(numerator)
    if records > MAX_RECORDS:
        raise GcfFormatError(f"{records} records exceed {MAX_RECORDS}", field="records", offset=15)
    out = _HEADER.pack(sys_word, stream_word, date_code, block.ttl, rate_code, byte14, records) + body
    if pad:
        if len(out) > FILE_BLOCK_SIZE:
            raise GcfFormatError("a 24-bit truncated block cannot be padded into a file",
                                 field="data", offset=20)
        out += bytes(FILE_BLOCK_SIZE - len(out))
    return out


def _status_body(block: GcfBlock) -> bytes:
    if block.status_bytes is not None:
        body = bytes(block.status_bytes)
        return body + bytes(-len(body) % 4)
    if block.status_text is None:
        raise GcfFormatError("block has neither samples nor status content", field="data", offset=16)
    body = block.status_text.encode("ascii", errors="replace")
    return body + b" " * (-len(body) % 4)


def _data_body(block: GcfBlock) -> tuple[int, bytes]:
    samples = np.asarray(block.samples)
    if samples.ndim != 1 or samples.dtype.kind not in "iu" or (
            samples.size and (samples.min() < -(1 << 31) or samples.max() >= 1 << 31)):
        raise GcfFormatError("samples must be a 1-D array of int32 values", field="data", offset=16)
    samples = samples.astype(np.int32)
    n = samples.size
    rate = block.sample_rate
    if 1 <= rate <= MAX_PLAIN_RATE and n % int(rate):
        raise GcfFormatError(f"{n} samples do not fill whole seconds at {rate:g} sps", field="records",
                             offset=15)
    diffs = _differences(samples)
    compression = block.compression or (1 if block.serial24 else _narrowest(diffs))
    if compression not in COMPRESSIONS:
        raise GcfFormatError(f"compression {compression} is not 1, 2 or 4", field="compression", offset=14)
    if n % compression:
        raise GcfFormatError(f"{n} samples are not a multiple of compression {compression}",
                             field="records", offset=15)
    lo, hi = _DIFF_LIMITS[compression]
    if diffs.size and (diffs.min() < lo or diffs.max() > hi):
        raise GcfFormatError(f"differences do not fit {32 // compression} bits", field="compression",
                             offset=14)
    fic = int(samples[0]) if n else 0
    ric = int(samples[-1]) if n else 0
    if block.serial24:
        if compression != 1:
            raise GcfFormatError("24-bit truncation applies to compression 1 only", field="compression",
                                 offset=14)
        if n and (samples.min() < _INT24_MIN or samples.max() > _INT24_MAX):
            raise GcfFormatError("samples exceed 24 bits; cannot truncate", field="data", offset=20)
        steps = diffs.astype(np.int64) & 0xFFFFFF
        packed = np.stack([steps >> 16, steps >> 8, steps], axis=1).astype(np.uint8).tobytes()
    else:
        packed = diffs.astype(_DIFF_DTYPES[compression]).tobytes()
    return compression, _INT32.pack(fic) + packed + _INT32.pack(ric)


# --------------------------------------------------------------------------------------------------


def block_to_packet(block: GcfBlock, sequence: int | None = None,
                    clock_locked: bool | None = None) -> Packet:
    """The station's view of a data block; status blocks have no samples and are refused."""
    if block.samples is None:
        raise ValueError(f"stream {block.stream_id}: a status block carries no samples")
    return Packet(system_id=block.system_id, stream_id=block.stream_id, start_ns=block.start_ns,
                  sample_rate=block.sample_rate, samples=block.samples, clock_locked=clock_locked,
                  sequence=sequence)
