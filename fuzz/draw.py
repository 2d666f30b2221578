"""Structured values drawn from fuzzer bytes, so one input can also describe a thing to encode.

Deterministic and total: running out of bytes yields zeros, so every input describes some value and a
small mutation of the bytes is a small change of the value (what coverage-guided mutation needs).
"""

from __future__ import annotations

import random


class Draw:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def bytes(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out.ljust(n, b"\0")

    def uint(self, nbytes: int) -> int:
        return int.from_bytes(self.bytes(nbytes), "big")

    def int_in(self, low: int, high: int) -> int:
        """An integer in [low, high] (inclusive)."""
        span = high - low + 1
        return low + self.uint(max(1, (span.bit_length() + 7) // 8 + 1)) % span

    def choice(self, options: tuple | list):
        return options[self.int_in(0, len(options) - 1)]

    def flag(self) -> bool:
        return bool(self.uint(1) & 1)

    def text(self, alphabet: str, low: int, high: int) -> str:
        return "".join(self.choice(alphabet) for _ in range(self.int_in(low, high)))


def read_sizes(total: int, rng: random.Random, sizes: tuple[int, ...]) -> list[int]:
    """``total`` bytes cut into reads whose sizes ``rng`` picks from ``sizes`` (the last may be shorter):
    the ways a serial line or a socket may deliver a stream, for the checks that events do not depend on
    them."""
    reads: list[int] = []
    while total > 0:
        reads.append(min(total, rng.choice(sizes)))
        total -= reads[-1]
    return reads
