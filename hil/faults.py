"""Seeded line noise for one direction of a serial cable: bit errors and lost bytes.

Each fault's position is drawn as a geometric distance from the previous one, so the outcome depends
only on the position of a byte in the stream and the seed, never on how the bytes were chunked by
threads and timers: a failing run can be replayed exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class LineFaults:
    """Fault rates of one direction: ``bit_error_rate`` per bit, ``drop_rate`` per byte."""

    bit_error_rate: float = 0.0
    drop_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("bit_error_rate", "drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")


class FaultInjector:
    """Applies ``LineFaults`` to a byte stream; counts what it did."""

    def __init__(self, faults: LineFaults, seed: int | np.random.SeedSequence):
        self.faults = faults
        # one generator per fault kind, so the draws of one kind never shift the other's
        errors, drops = np.random.SeedSequence(seed).spawn(2) if isinstance(seed, int) else seed.spawn(2)
        self._error_rng = np.random.default_rng(errors)
        self._drop_rng = np.random.default_rng(drops)
        self._bits_seen = 0
        self._bytes_seen = 0
        self._next_error_bit = self._draw(self._error_rng, faults.bit_error_rate)
        self._next_drop_byte = self._draw(self._drop_rng, faults.drop_rate)
        self.bit_errors = 0
        self.bytes_dropped = 0

    @staticmethod
    def _draw(rng: np.random.Generator, rate: float) -> float:
        """Distance (0-based) to the next event, infinite when the rate is zero."""
        return float(rng.geometric(rate) - 1) if rate > 0 else float("inf")

    def apply(self, data: bytes) -> bytes:
        """The bytes as they arrive at the far end."""
        n = len(data)
        if n == 0:
            return b""
        end_bit = self._bits_seen + 8 * n
        buf: bytearray | None = None
        while self._next_error_bit < end_bit:
            if buf is None:
                buf = bytearray(data)
            index = int(self._next_error_bit) - self._bits_seen
            buf[index >> 3] ^= 1 << (index & 7)
            self.bit_errors += 1
            self._next_error_bit += 1 + self._draw(self._error_rng, self.faults.bit_error_rate)
        self._bits_seen = end_bit
        end_byte = self._bytes_seen + n
        dropped: list[int] = []
        while self._next_drop_byte < end_byte:
            dropped.append(int(self._next_drop_byte) - self._bytes_seen)
            self._next_drop_byte += 1 + self._draw(self._drop_rng, self.faults.drop_rate)
        self._bytes_seen = end_byte
        out = bytes(buf) if buf is not None else data
        if dropped:
            self.bytes_dropped += len(dropped)
            keep = np.ones(n, dtype=bool)
            keep[dropped] = False
            out = np.frombuffer(out, dtype=np.uint8)[keep].tobytes()
        return out
