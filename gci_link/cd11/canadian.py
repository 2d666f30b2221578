"""Canadian compression (spec §11), bit-compatible with the IDC's libcancomp, compiled with numba.

Stream: one 16-bit key per block of 20 samples, the first sample, then second differences packed
in byte-aligned groups of four. ``v0`` (the value "after" the last sample) only affects the last
stored difference; decoding recovers it so a stream can be re-encoded byte for byte.

Beyond libcancomp (which refuses it) any sample count is accepted: a partial last group is padded
with zero differences and groups past the last sample are neither written nor read (their key code
is 0), which is what readers that stop after ``nsamp`` values (GMS, XMAX) expect.

Speed: the packed values are one continuous MSB-first bit stream, so every value is read with one
unaligned big-endian 64-bit load plus two shifts and written with one 64-bit store, with no branch on
the width. Array indices are cast to unsigned so numba emits no negative-index fix-up, which is what
lets LLVM merge the eight byte accesses into a single load or store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from .errors import Cd11FormatError

BLOCK = 20
GROUP = 4
# decoder status codes (numba cannot raise rich exceptions)
_OK, _SHORT_HEADER, _SHORT_VALUES = 0, 1, 2
# a 64-bit load or store at a value's first byte may reach this many bytes past the group's end
_SLACK = 7
# group width by (key bit 15) * 8 + code: the narrow then the wide table of §11.2
_WIDTHS = np.array([4, 6, 8, 10, 12, 14, 16, 18, 4, 8, 12, 16, 20, 24, 28, 32], dtype=np.int64)


@njit(cache=True, nogil=True, inline="always")
def _width_of(key: int | np.int64, g: int) -> int:
    return _WIDTHS[np.uint64((key >> 15) * 8 + ((key >> (12 - 3 * g)) & 7))]


@njit(cache=True, nogil=True, inline="always")
def _load_be64(src: np.ndarray | bytes, i: int) -> np.uint64:
    u = np.uint64(i)
    return (
        (np.uint64(src[u]) << np.uint64(56))
        | (np.uint64(src[u + np.uint64(1)]) << np.uint64(48))
        | (np.uint64(src[u + np.uint64(2)]) << np.uint64(40))
        | (np.uint64(src[u + np.uint64(3)]) << np.uint64(32))
        | (np.uint64(src[u + np.uint64(4)]) << np.uint64(24))
        | (np.uint64(src[u + np.uint64(5)]) << np.uint64(16))
        | (np.uint64(src[u + np.uint64(6)]) << np.uint64(8))
        | np.uint64(src[u + np.uint64(7)])
    )


@njit(cache=True, nogil=True, inline="always")
def _store_be64(dst: np.ndarray, i: int, word: np.uint64) -> None:
    u = np.uint64(i)
    for j in range(8):
        dst[u + np.uint64(j)] = np.uint8((word >> np.uint64(56 - 8 * j)) & np.uint64(0xFF))


@njit(cache=True, nogil=True, inline="always")
def _unpack_block(
    src: np.ndarray | bytes, p: int, key: np.int64, nv: int, x: np.int64, d: np.int64, out: np.ndarray, k: int
) -> tuple[np.int64, np.int64]:
    """Add ``nv`` values of one block at ``src[p:]`` to the running sums; ``src`` needs _SLACK spare bytes."""
    for g in range(BLOCK // GROUP):
        w = _width_of(key, g)
        for j in range(GROUP):
            if g * GROUP + j >= nv:
                return x, d
            bit = j * w
            word = _load_be64(src, p + (bit >> 3)) << np.uint64(bit & 7)
            d += np.int64(word) >> (64 - w)  # arithmetic shift sign-extends the w-bit field
            out[np.uint64(k)] = x
            x += d
            k += 1
        p += w >> 1
    return x, d


@njit(cache=True, nogil=True)
def _decode_into(data: np.ndarray | bytes, nsamp: int, out: np.ndarray) -> tuple[int, int, int]:
    """Fill ``out`` (int32, nsamp) from ``data``; returns (status, bytes used or needed, v0)."""
    if nsamp == 0:
        return _OK, 0, 0
    nblocks = (nsamp + BLOCK - 1) // BLOCK
    n = len(data)
    pos = 2 * nblocks + 4
    if n < pos:
        return _SHORT_HEADER, pos, 0
    base = 2 * nblocks
    x = np.int64(0)
    for i in range(4):
        x = (x << 8) | np.int64(data[base + i])
    x = (x << 32) >> 32  # the first sample, sign-extended from 32 bits
    d = np.int64(0)
    tail = np.zeros(BLOCK * 4 + _SLACK + 1, dtype=np.uint8)  # a block near the end, zero-padded
    k = 0
    for b in range(nblocks):
        key = (np.int64(data[2 * b]) << 8) | np.int64(data[2 * b + 1])
        nv = min(BLOCK, nsamp - k)
        end = pos
        for g in range((nv + GROUP - 1) // GROUP):
            end += _width_of(key, g) >> 1
            if end > n:
                return _SHORT_VALUES, end, 0
        if end + _SLACK > n:
            for i in range(tail.shape[0]):
                tail[i] = data[pos + i] if pos + i < end else 0
            x, d = _unpack_block(tail, 0, key, nv, x, d, out, k)
        elif nv == BLOCK:  # constant count: LLVM unrolls the block without per-value checks
            x, d = _unpack_block(data, pos, key, BLOCK, x, d, out, k)
        else:
            x, d = _unpack_block(data, pos, key, nv, x, d, out, k)
        k += nv
        pos = end
        # keep both sums to their low 32 bits (sign-extended): int32 wrap-around without int64 overflow
        d = (d << 32) >> 32
        x = (x << 32) >> 32
    return _OK, pos, int(x)


@njit(cache=True, nogil=True, inline="always")
def _wrap32(v: int) -> int:
    return ((v + 0x80000000) & 0xFFFFFFFF) - 0x80000000


@njit(cache=True, nogil=True, inline="always")
def _group_width(mag: int) -> int:
    """Narrow-table width (4..18) or the exact need above 18, from a one's-complement magnitude OR."""
    w = max(math.frexp(mag)[1] + 1, 4)  # frexp's exponent is the bit length (mag < 2**31 is exact)
    return w + (w & 1)


@njit(cache=True, nogil=True)
def _encode_into(x: np.ndarray, v0: int, out: np.ndarray) -> int:
    """Write the stream of ``x`` (int32) into ``out`` (_SLACK + 1 spare bytes); returns its length."""
    m = x.shape[0]
    if m == 0:
        return 0
    nblocks = (m + BLOCK - 1) // BLOCK
    first = int(x[0]) & 0xFFFFFFFF
    base = 2 * nblocks
    out[base] = (first >> 24) & 0xFF
    out[base + 1] = (first >> 16) & 0xFF
    out[base + 2] = (first >> 8) & 0xFF
    out[base + 3] = first & 0xFF
    pos = base + 4
    y = np.zeros(BLOCK, dtype=np.int64)  # one block's second differences, zero past the last sample
    widths = np.zeros(BLOCK // GROUP, dtype=np.int64)
    prev = 0
    acc = np.uint64(0)  # bit writer: the low ``nbits`` bits are not yet in whole bytes
    nbits = 0
    for b in range(nblocks):
        start = b * BLOCK
        nv = min(BLOCK, m - start)
        for i in range(nv):
            k = start + i
            nxt = int(x[k + 1]) if k + 1 < m else v0
            dk = _wrap32(nxt - int(x[k]))
            y[i] = dk if k == 0 else _wrap32(dk - prev)
            prev = dk
        y[nv:] = 0
        ngroups = (nv + GROUP - 1) // GROUP
        wide = False
        for g in range(ngroups):
            mag = 0
            for j in range(GROUP):
                v = y[g * GROUP + j]
                mag |= v if v >= 0 else ~v
            widths[g] = _group_width(mag)
            wide |= widths[g] > 18
        key = 0x8000 if wide else 0
        for g in range(ngroups):
            w = widths[g]
            if wide:
                w = (w + 3) & ~3
                widths[g] = w
                key |= ((w - 4) // 4) << (12 - 3 * g)
            else:
                key |= ((w - 4) // 2) << (12 - 3 * g)
        out[2 * b] = (key >> 8) & 0xFF
        out[2 * b + 1] = key & 0xFF
        for g in range(ngroups):
            w = widths[g]
            mask = (np.uint64(1) << np.uint64(w)) - np.uint64(1)
            for j in range(GROUP):
                acc = (acc << np.uint64(w)) | (np.uint64(y[g * GROUP + j]) & mask)
                nbits += w  # 4..39 bits pending, never 0
                _store_be64(out, pos, acc << np.uint64(64 - nbits))
                pos += nbits >> 3
                nbits &= 7
    return pos


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded stream: the samples, the v0 it was encoded with, and how many bytes it used."""

    samples: np.ndarray
    v0: int
    bytes_used: int


def _as_buffer(data: bytes | bytearray | memoryview | np.ndarray) -> bytes | np.ndarray:
    """``bytes`` go to numba as they are (no wrapper to build); anything else as a uint8 array."""
    if type(data) is bytes:
        return data
    if isinstance(data, np.ndarray):
        return data.view(np.uint8)
    return np.frombuffer(data, dtype=np.uint8)


def _decode_checked(
    data: bytes | bytearray | memoryview | np.ndarray, nsamp: int, offset: int
) -> tuple[np.ndarray, int, int]:
    """(samples, v0, bytes used) of one stream, or Cd11FormatError naming ``offset`` (data start)."""
    buf = _as_buffer(data)
    n = len(buf)
    if nsamp < 0:
        raise Cd11FormatError(f"negative sample count {nsamp}", field="samples", offset=offset)
    # every group of 4 values takes at least 2 bytes: refuse counts the data cannot hold before allocating
    if nsamp > 2 * n + BLOCK:
        raise Cd11FormatError(
            f"{nsamp} samples cannot fit in {n} bytes of Canadian data", field="samples", offset=offset
        )
    out = np.empty(nsamp, dtype=np.int32)
    status, used, v0 = _decode_into(buf, nsamp, out)
    if status != _OK:
        what = "keys and first sample" if status == _SHORT_HEADER else "packed differences"
        raise Cd11FormatError(
            f"Canadian stream for {nsamp} samples needs at least {used} bytes for its {what}, data has {n}",
            field="channel data",
            offset=offset,
        )
    return out, v0, used


def decode_stream(
    data: bytes | bytearray | memoryview | np.ndarray, nsamp: int, *, offset: int = 0
) -> Decoded:
    """Decode ``nsamp`` samples; bytes after the stream are padding. Errors name ``offset`` (data start)."""
    return Decoded(*_decode_checked(data, nsamp, offset))


def decode(data: bytes | bytearray | memoryview | np.ndarray, nsamp: int) -> np.ndarray:
    """``nsamp`` int32 samples from a Canadian stream (padding after the stream is ignored)."""
    return _decode_checked(data, nsamp, 0)[0]


def extrapolated_v0(samples: np.ndarray) -> int:
    """v0 = 2·x[m−1] − x[m−2] (wrapped to int32): the majority convention, last difference 0."""
    if len(samples) == 0:
        return 0
    last = int(samples[-1])
    before = int(samples[-2]) if len(samples) > 1 else last
    return ((2 * last - before + 2**31) % 2**32) - 2**31


def encode(samples: np.ndarray | list[int], v0: int | None = None) -> bytes:
    """Canadian stream of int32 ``samples``; ``v0=None`` extrapolates, a decoded v0 reproduces a stream."""
    x = np.ascontiguousarray(samples)
    if x.dtype != np.int32:
        x = np.ascontiguousarray(samples, dtype=np.int64)
        if x.size and (x.min() < -(2**31) or x.max() >= 2**31):
            raise ValueError("Canadian compression takes int32 samples")
        x = x.astype(np.int32)
    if v0 is None:
        v0 = extrapolated_v0(x)
    if not -(2**31) <= v0 < 2**31:
        raise ValueError(f"v0 {v0} is not an int32")
    nblocks = (len(x) + BLOCK - 1) // BLOCK
    out = np.empty(2 * nblocks + 4 + nblocks * 5 * 16 + _SLACK + 1, dtype=np.uint8)
    used = _encode_into(x, int(v0), out)
    return out[:used].tobytes()
