"""CRC-64 of CD-1.1 frames: polynomial 0x1B, MSB first, init 0, no final xor (spec §3).

Slicing-by-8 in numba because the receiver checks every byte of every frame it gets.
"""

from __future__ import annotations

import numpy as np
from numba import njit

POLY = 0x1B
CRC_SIZE = 8


def _tables() -> np.ndarray:
    tables = np.zeros((8, 256), dtype=np.uint64)
    mask = (1 << 64) - 1
    for i in range(256):
        reg = i << 56
        for _ in range(8):
            reg = ((reg << 1) ^ POLY) & mask if reg >> 63 else (reg << 1) & mask
        tables[0, i] = reg
    for k in range(1, 8):
        for i in range(256):
            prev = int(tables[k - 1, i])
            tables[k, i] = ((prev << 8) & mask) ^ int(tables[0, prev >> 56])
    return tables


_TABLES = _tables()


@njit(cache=True, nogil=True)
def _crc64(data: np.ndarray, tables: np.ndarray) -> np.uint64:
    t0, t1, t2, t3 = tables[0], tables[1], tables[2], tables[3]
    t4, t5, t6, t7 = tables[4], tables[5], tables[6], tables[7]
    crc = np.uint64(0)
    n = data.shape[0]
    i = 0
    while i + 8 <= n:
        word = np.uint64(0)
        for j in range(8):
            word = (word << np.uint64(8)) | np.uint64(data[i + j])
        x = crc ^ word
        crc = (
            t7[x >> np.uint64(56)]
            ^ t6[(x >> np.uint64(48)) & np.uint64(0xFF)]
            ^ t5[(x >> np.uint64(40)) & np.uint64(0xFF)]
            ^ t4[(x >> np.uint64(32)) & np.uint64(0xFF)]
            ^ t3[(x >> np.uint64(24)) & np.uint64(0xFF)]
            ^ t2[(x >> np.uint64(16)) & np.uint64(0xFF)]
            ^ t1[(x >> np.uint64(8)) & np.uint64(0xFF)]
            ^ t0[x & np.uint64(0xFF)]
        )
        i += 8
    while i < n:
        crc = t0[(crc >> np.uint64(56)) ^ np.uint64(data[i])] ^ (crc << np.uint64(8))
        i += 1
    return crc


def crc64(data: bytes | bytearray | memoryview | np.ndarray) -> int:
    """CD-1.1 CRC-64 of ``data`` (for a frame: every byte but the last 8)."""
    arr = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
    return int(_crc64(arr, _TABLES))

