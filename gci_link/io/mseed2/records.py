"""miniSEED 2 record packing with Steim-2 compression, many segments in one compiled call.

pymseed costs ~15 us of Python overhead per segment while the Steim-2 work is ~1-2 us; a receiver
archiving a whole network's 10 s subframes pays that thousands of times per batch. ``pack_records``
packs every segment of a batch in one numba call instead.

Records are byte for byte what libmseed 3.5.4 (pymseed 1.0) writes for ``format_version=2``, so they
mix freely with records already in archives:

- Fixed header: sequence number "000000", quality 'D', BTIME start, no flags, no time correction;
  blockette 1000 (Steim-2, big-endian, record length exponent), then blockette 1001 when the start
  has a microsecond offset or the sample period is not a whole number of 100 us (later records may
  need one), then blockette 100 when factor/multiplier miss the rate by more than 0.0001 sps. Data
  start at the next 64-byte boundary (64, or 128 with all three blockettes).
- Times: rounded to the microsecond, the 0.0001 s BTIME field chosen so the 1001 offset lies in
  [-50, 49]; record k starts at start + round(samples before it / rate) as libmseed computes it.
- Steim-2: the first difference of every record is 0 (libmseed knows no earlier sample); each word
  takes the first of 7x4, 6x5, 5x6, 4x8, 3x10, 2x15, 1x30 bits that fits the next differences;
  differences are taken modulo 2**32 as libmseed does (readers add them back with the same wrap,
  so a jump from -2**31 to 2**31-1 is the difference -1); a difference that still needs more than
  30 bits cannot be encoded and is refused, naming the segment and sample.

Beyond libmseed's defaults a caller may give each segment the header's three flag bytes and a timing
quality; a known timing quality always brings blockette 1001 (what the receiver does with CD-1.1
channel status: gci_link/io/mseed2/flags.py).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from numba import njit

from gci_link.io.mseed2.limits import (
    EARLIEST_NS,
    MAX_RATE_TERM,
    STEIM2_DIFFERENCE_BITS,
    channel_problem,
    rate_problem,
)
from timeunits import NS_PER_S

STEIM2 = 11
MAX_RECORD_SAMPLES = 65535  # the fixed header's sample count is 16-bit
_FRAME = 64
_HEADER_ID_LENGTH = 12  # station 5, location 2, channel 3, network 2
_OK, _TOO_WIDE, _NO_ROOM = 0, 1, 2
# by number of differences in a word (1..7): field width, the word's 2-bit code in word 0, and the
# 2-bit "dnib" at the top of the word (4x8 has none: its four bytes fill the word)
_WIDTH = np.array([0, 30, 15, 10, 8, 6, 5, 4], dtype=np.int64)
_NIBBLE = np.array([0, 2, 2, 2, 1, 3, 3, 3], dtype=np.int64)
_DNIB = np.array([0, 1, 2, 3, 0, 0, 1, 2], dtype=np.int64)
# a one's-complement magnitude fits the width when below 2**(width - 1)
_LIMIT = np.array(
    [0, 1 << (STEIM2_DIFFERENCE_BITS - 1), 1 << 14, 1 << 9, 1 << 7, 1 << 5, 1 << 4, 1 << 3], dtype=np.int64
)


class PackedRecords(NamedTuple):
    """Records of all segments, in segment order: segment i's are ``records[first[i]:first[i + 1]]``."""

    records: np.ndarray  # uint8, (number of records, record length)
    first: np.ndarray  # int64, (segments + 1,)

    @property
    def counts(self) -> np.ndarray:
        """Records per segment."""
        return np.diff(self.first)


def header_id(network: str, station: str, location: str, channel: str) -> bytes:
    """The 12 bytes a miniSEED 2 header spells a channel with (station, location, channel, network)."""
    problem = channel_problem(network, station, location, channel)
    if problem is not None:
        raise ValueError(f"{network}.{station}.{location}.{channel}: {problem}")
    return f"{station:<5}{location:<2}{channel:<3}{network:<2}".encode("ascii")


@lru_cache(maxsize=256)
def _rate_fields(rate: float) -> tuple[int, int, int, bool]:
    """(factor, multiplier, blockette 100's float32 bits or 0 if not needed, blockette 1001 needed
    whatever the start) of a sample rate, as libmseed chooses them.

    Rates of 1 sps and more are written as samples per second, slower ones as seconds per sample; a
    non-integer is approximated by continued fractions with terms up to 32767, and blockette 100
    carries the rate when that is off by more than 0.0001 sps. A period that is not a whole number
    of 100 us puts later records off the 0.0001 s grid, so their headers need blockette 1001.
    """
    problem = rate_problem(rate)
    if problem is not None:
        raise ValueError(f"sample rate {problem}")
    if rate >= 1.0:
        factor, multiplier = _reduce_rate(rate)
    else:
        period_factor, period_multiplier = _reduce_rate(1.0 / rate)
        factor, multiplier = -period_factor, -period_multiplier
    nominal = _nominal_rate(factor, multiplier)
    units = 10_000.0 / rate  # 100 us steps per sample
    fraction = units - math.trunc(units) if units < 9.0e15 else 0.0
    rate100 = int(np.float32(rate).view(np.uint32)) if abs(rate - nominal) > 0.0001 else 0
    return factor, multiplier, rate100, 1.0e-6 < fraction < 1.0 - 1.0e-6


def _reduce_rate(value: float) -> tuple[int, int]:
    """Factor and multiplier (negative multiplier: a divisor) of ``value`` >= 1."""
    whole = int(value + 0.5)
    if abs(value - whole) < 1e-7:
        if whole > MAX_RATE_TERM:
            raise ValueError(f"sample rate or period {value} above {MAX_RATE_TERM} is not supported")
        return whole, 1
    if value > MAX_RATE_TERM:
        raise ValueError(f"sample rate or period {value} above {MAX_RATE_TERM} is not supported")
    num, den = _continued_fraction(value, MAX_RATE_TERM, 1e-8)
    return num, -den


def _continued_fraction(real: float, limit: int, precision: float) -> tuple[int, int]:
    """Last convergent of ``real`` with both terms below ``limit`` (libmseed's ms_ratapprox)."""
    term = int(real + precision)
    rest = real - term
    a, b, a_prev, b_prev = term, 1, 1, 0
    best = (a, b)
    while abs(real - a / b) > precision and a < limit and b < limit:
        if rest == 0.0:  # a/b is exact: where libmseed would divide by zero, the loop test ends it
            break
        best = (a, b)
        inverse = 1.0 / rest
        term = int(inverse + precision)
        rest = inverse - term
        a, a_prev = term * a + a_prev, a
        b, b_prev = term * b + b_prev, b
    return (a, b) if a < limit and b < limit else best


def _nominal_rate(factor: int, multiplier: int) -> float:
    """The rate a reader computes from factor and multiplier (SEED 2.4 fixed header, field 10/11)."""
    rate = float(factor) if factor > 0 else -1.0 / factor
    return rate * multiplier if multiplier > 0 else -(rate / multiplier)


def pack_records(
    samples: np.ndarray,
    bounds: np.ndarray,
    start_ns: np.ndarray,
    rates: np.ndarray,
    ids: np.ndarray,
    record_length: int = 512,
    flags: np.ndarray | None = None,
    timing_quality: np.ndarray | None = None,
) -> PackedRecords:
    """Pack segment i = ``samples[bounds[i]:bounds[i + 1]]`` (int32) into Steim-2 miniSEED 2 records.

    ``start_ns``: first sample times (ns since 1970 UTC, not before 1970); ``rates``: sps;
    ``ids``: uint8 (segments, 12), see ``header_id``; ``flags``: uint8 (segments, 3), the fixed
    header's activity, I/O and clock, and data quality flags of every record of the segment (default
    0); ``timing_quality``: (segments,) 0-100 for blockette 1001, or -1 for none known (default).
    An empty segment gets no record; the last record of a segment may be partly filled. Raises
    ValueError naming the segment for bad input.
    """
    x = np.ascontiguousarray(samples)
    if x.dtype != np.int32 or x.ndim != 1:
        raise ValueError(f"samples must be a 1-D int32 array, not {x.ndim}-D {x.dtype}")
    bounds = np.ascontiguousarray(bounds, dtype=np.int64)
    nseg = len(bounds) - 1
    if nseg < 0:
        raise ValueError("bounds needs at least one entry")
    starts = np.ascontiguousarray(start_ns, dtype=np.int64)
    rates = np.ascontiguousarray(rates, dtype=np.float64)
    ids = np.ascontiguousarray(ids)
    if starts.shape != (nseg,) or rates.shape != (nseg,) or ids.shape != (nseg, _HEADER_ID_LENGTH):
        raise ValueError(
            f"{nseg} segments need start_ns ({nseg},), rates ({nseg},) and ids ({nseg}, 12); "
            f"got {starts.shape}, {rates.shape}, {ids.shape}"
        )
    if ids.dtype != np.uint8:
        raise ValueError(f"ids must be uint8, not {ids.dtype}")
    if record_length < 128 or record_length > 65536 or record_length & (record_length - 1):
        raise ValueError(f"record length {record_length} is not a power of 2 from 128 to 65536")
    _check_segments(bounds, starts, len(x))
    flags = np.zeros((nseg, 3), dtype=np.uint8) if flags is None else np.ascontiguousarray(flags)
    if flags.shape != (nseg, 3) or flags.dtype != np.uint8:
        raise ValueError(f"{nseg} segments need uint8 flags ({nseg}, 3), not {flags.dtype} {flags.shape}")
    quality = (
        np.full(nseg, -1, dtype=np.int16)
        if timing_quality is None
        else np.ascontiguousarray(timing_quality, dtype=np.int16)
    )
    if quality.shape != (nseg,) or ((quality < -1) | (quality > 100)).any():
        raise ValueError(f"timing_quality must be ({nseg},) values from 0 to 100 or -1")
    unique, which = np.unique(rates, return_inverse=True)
    fields = np.array([_rate_fields(float(r)) for r in unique], dtype=np.int64).reshape(-1, 4)
    out, first, status, bad_segment, bad_sample = _pack(
        x,
        bounds,
        starts,
        rates,
        ids,
        fields[which, 0].astype(np.int16),
        fields[which, 1].astype(np.int16),
        fields[which, 2],
        fields[which, 3].astype(np.bool_),
        record_length,
        flags,
        quality,
    )
    if status == _TOO_WIDE:
        i = bad_sample - bounds[bad_segment]
        diff = ((int(x[bad_sample]) - int(x[bad_sample - 1]) + 2**31) % 2**32) - 2**31
        raise ValueError(
            f"segment {bad_segment}: difference {diff} between samples {i - 1} and {i} needs more "
            "than the 30 bits Steim-2 allows"
        )
    if status == _NO_ROOM:
        raise ValueError(f"segment {bad_segment}: record length {record_length} leaves no room for data")
    return PackedRecords(out.reshape(-1, record_length), first)


def _check_segments(bounds: np.ndarray, starts: np.ndarray, nsamples: int) -> None:
    if len(bounds) and (bounds[0] < 0 or bounds[-1] > nsamples):
        raise ValueError(f"bounds run from {bounds[0]} to {bounds[-1]}, samples has {nsamples}")
    shrinking = np.flatnonzero(np.diff(bounds) < 0)
    if len(shrinking):
        raise ValueError(f"segment {shrinking[0]}: bounds decrease")
    early = np.flatnonzero(starts < EARLIEST_NS)
    if len(early):
        raise ValueError(f"segment {early[0]}: start {starts[early[0]]} ns is before 1970")


@njit(cache=True, nogil=True, inline="always")
def _put16(out: np.ndarray, i: int, v: int) -> None:
    out[i] = (v >> 8) & 0xFF
    out[i + 1] = v & 0xFF


@njit(cache=True, nogil=True, inline="always")
def _put32(out: np.ndarray, i: int, v: int | np.int64) -> None:
    out[i] = (v >> 24) & 0xFF
    out[i + 1] = (v >> 16) & 0xFF
    out[i + 2] = (v >> 8) & 0xFF
    out[i + 3] = v & 0xFF


@njit(cache=True, nogil=True)
def _btime(t: int) -> tuple[int, int, int, int, int, int, int]:
    """(year, day of year, hour, minute, second, 0.0001 s, us offset) of ``t`` ns (>= 0), as libmseed.

    Rounded to the microsecond; the 0.0001 s count is the nearest one leaving an offset in [-50, 49].
    """
    us = (t + 500) // 1000
    tenths = us // 100
    offset = us - tenths * 100
    if offset > 49:
        tenths += 1
        offset -= 100
    seconds = tenths // 10_000
    days = seconds // 86_400
    rest = seconds - days * 86_400
    # civil year from days since 1970-01-01 (proleptic Gregorian, 400-year eras of 146097 days)
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy_from_march = doe - (365 * yoe + yoe // 4 - yoe // 100)
    month_index = (5 * doy_from_march + 2) // 153  # 0 = March
    year = yoe + era * 400 + (1 if month_index >= 10 else 0)
    y = year - 1  # days from 1970-01-01 to January 1st of ``year``
    jan1 = 365 * (year - 1970) + (y // 4 - y // 100 + y // 400) - (1969 // 4 - 1969 // 100 + 1969 // 400)
    return (
        year,
        days - jan1 + 1,
        rest // 3600,
        (rest // 60) % 60,
        rest % 60,
        tenths - seconds * 10_000,
        offset,
    )


@njit(cache=True, nogil=True)
def _header_length(with_1001: bool, rate100: int) -> int:
    return 56 + (8 if with_1001 else 0) + (12 if rate100 else 0)


@njit(cache=True, nogil=True)
def _write_header(
    out: np.ndarray,
    at: int,
    ident: np.ndarray,
    t: int,
    nsamp: int,
    factor: int,
    multiplier: int,
    with_1001: bool,
    rate100: int,
    data_offset: int,
    length_exponent: int,
    flags: np.ndarray,
    timing_quality: int,
) -> None:
    """Fixed section of data header and blockettes 1000 (1001, 100) at ``out[at:]``, zeros to the data."""
    year, day, hour, minute, second, tenths, offset = _btime(t)
    for i in range(6):
        out[at + i] = 48  # "000000"
    out[at + 6] = 68  # 'D'
    out[at + 7] = 32
    for i in range(_HEADER_ID_LENGTH):
        out[at + 8 + i] = ident[i]
    _put16(out, at + 20, year)
    _put16(out, at + 22, day)
    out[at + 24] = hour
    out[at + 25] = minute
    out[at + 26] = second
    out[at + 27] = 0
    _put16(out, at + 28, tenths)
    _put16(out, at + 30, nsamp)
    _put16(out, at + 32, factor & 0xFFFF)
    _put16(out, at + 34, multiplier & 0xFFFF)
    for i in range(3):  # activity, I/O and clock, data quality flags
        out[at + 36 + i] = flags[i]
    for i in range(39, 44):  # blockette count set below; time correction
        out[at + i] = 0
    out[at + 39] = 1 + (1 if with_1001 else 0) + (1 if rate100 else 0)
    _put16(out, at + 44, data_offset)
    _put16(out, at + 46, 48)
    end = _header_length(with_1001, rate100)
    _put16(out, at + 48, 1000)
    _put16(out, at + 50, 56 if end > 56 else 0)
    out[at + 52] = STEIM2
    out[at + 53] = 1  # big-endian
    out[at + 54] = length_exponent
    out[at + 55] = 0
    b = at + 56
    if with_1001:
        _put16(out, b, 1001)
        _put16(out, b + 2, 64 if rate100 else 0)
        out[b + 4] = max(timing_quality, 0)  # percent; 0 where none is known (as libmseed writes)
        out[b + 5] = offset & 0xFF
        out[b + 6] = 0
        out[b + 7] = 0  # frame count, left 0 as libmseed does
        b += 8
    if rate100:
        _put16(out, b, 100)
        _put16(out, b + 2, 0)
        _put32(out, b + 4, rate100)  # float32 sample rate
        for i in range(8, 12):
            out[b + i] = 0
        b += 12
    for i in range(b, at + data_offset):
        out[i] = 0


@njit(cache=True, nogil=True)
def _encode_record(
    x: np.ndarray, d: np.ndarray, mag: np.ndarray, k: int, lim: int, out: np.ndarray, at: int, nframes: int
) -> int:
    """Steim-2 frames of ``x[k:]`` (up to ``lim``) at ``out[at:]``; returns the next unpacked sample.

    ``d``/``mag``: each sample's difference to the one before and its one's-complement magnitude;
    sample ``k`` counts as difference 0. Returns -1 - j when difference j needs more than 30 bits.
    """
    first = k
    d[k] = 0
    mag[k] = 0
    frame = 0
    while frame < nframes and k < lim:
        base = at + frame * _FRAME
        nibbles = 0
        word = 3 if frame == 0 else 1  # frame 0 keeps words 1 and 2 for the integration constants
        while word < 16 and k < lim:
            if mag[k] >= _LIMIT[1]:
                return -1 - k
            # the most differences (7x4 ... 2x15) that all fit the width; the limits shrink as the
            # count grows and the OR only gains bits, so the first failure ends the search
            avail = min(7, lim - k)
            acc = mag[k]
            n = 1
            for m in range(2, avail + 1):
                acc |= mag[k + m - 1]
                if acc >= _LIMIT[m]:
                    break
                n = m
            width = _WIDTH[n]
            mask = (np.int64(1) << width) - 1
            value = _DNIB[n] << 30
            for j in range(n):
                value |= (d[k + j] & mask) << (width * (n - 1 - j))
            _put32(out, base + 4 * word, value)
            nibbles |= _NIBBLE[n] << (30 - 2 * word)
            k += n
            word += 1
        for w in range(word, 16):
            _put32(out, base + 4 * w, 0)
        _put32(out, base, nibbles)
        frame += 1
    _put32(out, at + 4, np.int64(x[first]) & 0xFFFFFFFF)
    _put32(out, at + 8, np.int64(x[k - 1]) & 0xFFFFFFFF)
    for i in range(at + frame * _FRAME, at + nframes * _FRAME):
        out[i] = 0
    return k


@njit(cache=True, nogil=True)
def _pack(
    x: np.ndarray,
    bounds: np.ndarray,
    starts: np.ndarray,
    rates: np.ndarray,
    ids: np.ndarray,
    factors: np.ndarray,
    multipliers: np.ndarray,
    rate100: np.ndarray,
    offgrid: np.ndarray,
    record_length: int,
    flags: np.ndarray,
    quality: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, int, int, int]:
    """All records in one buffer; (buffer, first record of each segment, status, segment, sample)."""
    nseg = len(bounds) - 1
    length_exponent = 0
    while (1 << length_exponent) < record_length:
        length_exponent += 1
    # pass 1: header layout per segment and an upper bound on the number of records
    data_offsets = np.empty(nseg, dtype=np.int64)
    bound = 0
    longest = 0
    for s in range(nseg):
        n = bounds[s + 1] - bounds[s]
        longest = max(longest, n)
        offset_us = _btime(starts[s])[6]
        length = _header_length(offgrid[s] or offset_us != 0 or quality[s] >= 0, rate100[s])
        data_offsets[s] = (length + _FRAME - 1) // _FRAME * _FRAME
        nframes = (record_length - data_offsets[s]) // _FRAME
        if n == 0:
            continue
        if nframes < 1:
            return np.empty(0, dtype=np.uint8), np.zeros(nseg + 1, dtype=np.int64), _NO_ROOM, s, 0
        fewest = min(MAX_RECORD_SAMPLES, 13 + 15 * (nframes - 1))  # one difference per word
        bound += (n + fewest - 1) // fewest
    out = np.empty(bound * record_length, dtype=np.uint8)
    first = np.zeros(nseg + 1, dtype=np.int64)
    d = np.empty(longest, dtype=np.int64)
    mag = np.empty(longest, dtype=np.int64)
    # pass 2: encode
    nrec = 0
    for s in range(nseg):
        first[s] = nrec
        lo = bounds[s]
        hi = bounds[s + 1]
        if hi == lo:
            continue
        xs = x[lo:hi]
        for j in range(1, hi - lo):
            diff = np.int64(xs[j]) - np.int64(xs[j - 1])
            diff = ((diff + 0x80000000) & 0xFFFFFFFF) - 0x80000000  # modulo 2**32, as libmseed
            d[j] = diff
            mag[j] = diff ^ (diff >> 63)
        nframes = (record_length - data_offsets[s]) // _FRAME
        offset_us = _btime(starts[s])[6]
        with_1001 = offgrid[s] or offset_us != 0 or quality[s] >= 0
        k = 0
        while k < hi - lo:
            at = nrec * record_length
            lim = min(hi - lo, k + MAX_RECORD_SAMPLES)
            nxt = _encode_record(xs, d, mag, k, lim, out, at + data_offsets[s], nframes)
            if nxt < 0:
                return out, first, _TOO_WIDE, s, lo - 1 - nxt
            t = starts[s]
            if k > 0:
                t += np.int64(k / rates[s] * NS_PER_S + 0.5)
            _write_header(
                out,
                at,
                ids[s],
                t,
                nxt - k,
                factors[s],
                multipliers[s],
                with_1001,
                rate100[s],
                data_offsets[s],
                length_exponent,
                flags[s],
                quality[s],
            )
            k = nxt
            nrec += 1
    first[nseg] = nrec
    return out[: nrec * record_length], first, _OK, 0, 0
