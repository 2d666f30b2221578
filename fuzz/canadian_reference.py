"""A second, deliberately plain decoder of Canadian compression (cd11 spec §11.5), for differential checks.

Written from the spec, not from gci_link/cd11/canadian.py: no numba, no 64-bit loads, one group read as
one big integer. Like the project's codec it decodes any sample count (a partial last group still
occupies its whole group of four values). Slow; only the fuzz checks and tests use it.
"""

from __future__ import annotations

NARROW = (4, 6, 8, 10, 12, 14, 16, 18)
WIDE = (4, 8, 12, 16, 20, 24, 28, 32)


class ShortStream(Exception):
    """The data ends before the values that ``nsamp`` samples need."""


def _int32(value: int) -> int:
    return (value + 2**31) % 2**32 - 2**31


def decode(data: bytes, nsamp: int) -> tuple[list[int], int, int]:
    """(samples, v0, bytes used) of ``nsamp`` samples; ShortStream if ``data`` is too short."""
    if nsamp == 0:
        return [], 0, 0
    blocks = -(-nsamp // 20)
    pos = 2 * blocks
    if len(data) < pos + 4:
        raise ShortStream
    keys = [int.from_bytes(data[2 * b : 2 * b + 2], "big") for b in range(blocks)]
    first = int.from_bytes(data[pos : pos + 4], "big", signed=True)
    pos += 4
    values: list[int] = []
    for key in keys:
        table = WIDE if key & 0x8000 else NARROW
        for group in range(5):
            if len(values) >= nsamp:
                break
            width = table[(key >> (12 - 3 * group)) & 7]
            size = width // 2  # four values of ``width`` bits
            if pos + size > len(data):
                raise ShortStream
            packed = int.from_bytes(data[pos : pos + size], "big")
            pos += size
            for j in range(4):
                field = (packed >> (width * (3 - j))) & ((1 << width) - 1)
                if field >> (width - 1):
                    field -= 1 << width
                values.append(field)
    samples, x, d = [], first, 0
    for y in values[:nsamp]:
        samples.append(x)
        d = _int32(d + y)
        x = _int32(x + d)
    return samples, x, pos
