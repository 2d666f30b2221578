"""Canadian compression (spec §11), bit-compatible with the IDC's libcancomp, compiled with numba.

Stream: one 16-bit key per block of 20 samples, the first sample, then second differences packed
in byte-aligned groups of four. ``v0`` (the value "after" the last sample) only affects the last
stored difference; decoding recovers it so a stream can be re-encoded byte for byte.

Beyond libcancomp (which refuses it) any sample count is accepted: a partial last group is padded
with zero differences and groups past the last sample are neither written nor read (their key code
is 0), which is what readers that stop after ``nsamp`` values (GMS, XMAX) expect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .errors import Cd11FormatError

BLOCK = 20
GROUP = 4
# decoder status codes (numba cannot raise rich exceptions)
_OK, _SHORT_HEADER, _SHORT_VALUES = 0, 1, 2


@njit(cache=True, nogil=True)
def _decode_into(data: np.ndarray, nsamp: int, out: np.ndarray) -> tuple[int, int, np.uint32]:
    """Fill ``out`` (uint32, nsamp) from ``data``; returns (status, bytes used, v0 bits)."""
    if nsamp == 0:
        return _OK, 0, np.uint32(0)
    nblocks = (nsamp + BLOCK - 1) // BLOCK
    n = data.shape[0]
    pos = 2 * nblocks + 4
    if n < pos:
        return _SHORT_HEADER, pos, np.uint32(0)
    base = 2 * nblocks
    x = (
        (np.uint64(data[base]) << np.uint64(24))
        | (np.uint64(data[base + 1]) << np.uint64(16))
        | (np.uint64(data[base + 2]) << np.uint64(8))
        | np.uint64(data[base + 3])
    )
    d = np.uint64(0)
    out[0] = np.uint32(x & np.uint64(0xFFFFFFFF))
    k = 0
    acc = np.uint64(0)
    nbits = 0
    for b in range(nblocks):
        key = (int(data[2 * b]) << 8) | int(data[2 * b + 1])
        wide = key >> 15
        for g in range(5):
            if k >= nsamp:
                break
            code = (key >> (12 - 3 * g)) & 7
            w = 4 * code + 4 if wide else 2 * code + 4
            if pos + w // 2 > n:
                return _SHORT_VALUES, pos + w // 2, np.uint32(0)
            mask = (np.uint64(1) << np.uint64(w)) - np.uint64(1)
            sign = np.uint64(1) << np.uint64(w - 1)
            if w <= 16 and k + GROUP < nsamp:
                # fast path: the whole group fits one 64-bit word; fixed shifts, no per-value refill
                word = np.uint64(0)
                for j in range(w // 2):
                    word = (word << np.uint64(8)) | np.uint64(data[pos + j])
                pos += w // 2
                for j in range(GROUP):
                    v = (word >> np.uint64((GROUP - 1 - j) * w)) & mask
                    if v & sign:
                        v |= ~mask
                    d += v
                    x += d
                    out[k + 1] = np.uint32(x & np.uint64(0xFFFFFFFF))
                    k += 1
                continue
            for _ in range(GROUP):
                while nbits < w:
                    acc = (acc << np.uint64(8)) | np.uint64(data[pos])
                    pos += 1
                    nbits += 8
                nbits -= w
                v = (acc >> np.uint64(nbits)) & mask
                if v & sign:
                    v |= ~mask
                if k < nsamp:
                    d += v
                    if k + 1 < nsamp:
                        x += d
                        out[k + 1] = np.uint32(x & np.uint64(0xFFFFFFFF))
                    k += 1
    v0 = np.uint32((x + d) & np.uint64(0xFFFFFFFF))
    return _OK, pos, v0


@njit(cache=True, nogil=True)
def _width(mag: int) -> int:
    """Narrow-table width (4..18) or the exact need above 18, from a one's-complement magnitude OR."""
    bits = 0
    while mag >> bits:
        bits += 1
    w = bits + 1
    if w < 4:
        w = 4
    return w + (w & 1)


@njit(cache=True, nogil=True)
def _wrap32(v: int) -> int:
    return ((v + 0x80000000) & 0xFFFFFFFF) - 0x80000000


@njit(cache=True, nogil=True)
def _encode_into(x: np.ndarray, v0: int, out: np.ndarray) -> int:
    """Write the stream of ``x`` (int32) into ``out``; returns its length in bytes."""
    m = x.shape[0]
    if m == 0:
        return 0
    nblocks = (m + BLOCK - 1) // BLOCK
    y = np.zeros(nblocks * BLOCK, dtype=np.int64)
    prev = 0
    for k in range(m):
        nxt = int(x[k + 1]) if k + 1 < m else v0
        dk = _wrap32(nxt - int(x[k]))
        y[k] = dk if k == 0 else _wrap32(dk - prev)
        prev = dk
    first = int(x[0]) & 0xFFFFFFFF
    base = 2 * nblocks
    out[base] = (first >> 24) & 0xFF
    out[base + 1] = (first >> 16) & 0xFF
    out[base + 2] = (first >> 8) & 0xFF
    out[base + 3] = first & 0xFF
    pos = base + 4
    widths = np.zeros(5, dtype=np.int64)
    for b in range(nblocks):
        ngroups = min(5, (m - b * BLOCK + GROUP - 1) // GROUP)
        wide = False
        for g in range(ngroups):
            mag = 0
            for j in range(GROUP):
                v = y[b * BLOCK + g * GROUP + j]
                mag |= v if v >= 0 else ~v
            widths[g] = _width(mag)
            if widths[g] > 18:
                wide = True
        key = 0x8000 if wide else 0
        for g in range(ngroups):
            w = widths[g]
            if wide:
                w = (w + 3) & ~3
                widths[g] = w
                code = (w - 4) // 4
            else:
                code = (w - 4) // 2
            key |= code << (12 - 3 * g)
        out[2 * b] = (key >> 8) & 0xFF
        out[2 * b + 1] = key & 0xFF
        for g in range(ngroups):
            w = widths[g]
            mask = (1 << w) - 1
            acc = 0
            nbits = 0
            for j in range(GROUP):
                acc = ((acc << w) | (y[b * BLOCK + g * GROUP + j] & mask)) & 0xFFFFFFFFFFFF
                nbits += w
                while nbits >= 8:
                    nbits -= 8
                    out[pos] = (acc >> nbits) & 0xFF
                    pos += 1
    return pos


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded stream: the samples, the v0 it was encoded with, and how many bytes it used."""

    samples: np.ndarray
    v0: int
    bytes_used: int


def _as_uint8(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return data.view(np.uint8)
    return np.frombuffer(data, dtype=np.uint8)


def decode_stream(
    data: bytes | bytearray | memoryview | np.ndarray, nsamp: int, *, offset: int = 0
) -> Decoded:
    """Decode ``nsamp`` samples; bytes after the stream are padding. Errors name ``offset`` (data start)."""
    buf = _as_uint8(data)
    if nsamp < 0:
        raise Cd11FormatError(f"negative sample count {nsamp}", field="samples", offset=offset)
    # every group of 4 values takes at least 2 bytes: refuse counts the data cannot hold before allocating
    if nsamp > 2 * buf.shape[0] + BLOCK:
        raise Cd11FormatError(
            f"{nsamp} samples cannot fit in {buf.shape[0]} bytes of Canadian data",
            field="samples",
            offset=offset,
        )
    out = np.empty(nsamp, dtype=np.uint32)
    status, used, v0 = _decode_into(buf, nsamp, out)
    if status != _OK:
        what = "keys and first sample" if status == _SHORT_HEADER else "packed differences"
        raise Cd11FormatError(
            f"Canadian stream for {nsamp} samples needs at least {used} bytes for its {what}, "
            f"data has {buf.shape[0]}",
            field="channel data",
            offset=offset,
        )
    return Decoded(out.view(np.int32), int(np.uint32(v0).view(np.int32)), int(used))


def decode(data: bytes | bytearray | memoryview | np.ndarray, nsamp: int) -> np.ndarray:
    """``nsamp`` int32 samples from a Canadian stream (padding after the stream is ignored)."""
    return decode_stream(data, nsamp).samples


def extrapolated_v0(samples: np.ndarray) -> int:
    """v0 = 2·x[m−1] − x[m−2] (wrapped to int32): the majority convention, last difference 0."""
    if len(samples) == 0:
        return 0
    last = int(samples[-1])
    before = int(samples[-2]) if len(samples) > 1 else last
    return ((2 * last - before + 2**31) % 2**32) - 2**31


def encode(samples: np.ndarray | list[int], v0: int | None = None) -> bytes:
    """Canadian stream of int32 ``samples``; ``v0=None`` extrapolates, a decoded v0 reproduces a stream."""
    x = np.ascontiguousarray(samples, dtype=np.int64)
    if x.size and (x.min() < -(2**31) or x.max() >= 2**31):
        raise ValueError("Canadian compression takes int32 samples")
    x = x.astype(np.int32)
    if v0 is None:
        v0 = extrapolated_v0(x)
    if not -(2**31) <= v0 < 2**31:
        raise ValueError(f"v0 {v0} is not an int32")
    nblocks = (len(x) + BLOCK - 1) // BLOCK
    out = np.zeros(2 * nblocks + 4 + nblocks * 5 * 16, dtype=np.uint8)
    used = _encode_into(x, int(v0), out)
    return out[:used].tobytes()
