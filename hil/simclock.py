"""Accelerated data time for simulations: the firmware stamps samples on this clock, not the wall clock.

A speed factor of 10 makes one real second carry ten seconds of data, so a 30 s outage costs 3 s of
test time while the bytes still travel at the (real-time) baud rate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from timeunits import NS_PER_S


class SimClock:
    """Data time = ``start_ns`` + elapsed real time × ``speed``."""

    def __init__(self, start_ns: int, speed: float = 1.0, monotonic: Callable[[], float] = time.monotonic):
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.start_ns = int(start_ns)
        self.speed = float(speed)
        self._monotonic = monotonic
        self._t0 = monotonic()

    def now_ns(self) -> int:
        return self.start_ns + int((self._monotonic() - self._t0) * self.speed * NS_PER_S)

    def real_seconds(self, data_seconds: float) -> float:
        """Real time that ``data_seconds`` of data time take."""
        return data_seconds / self.speed

    def wait_until(self, t_ns: int, stop: threading.Event) -> bool:
        """Sleep until data time reaches ``t_ns``; False if ``stop`` was set first."""
        while True:
            remaining = (t_ns - self.now_ns()) / NS_PER_S / self.speed
            if remaining <= 0:
                return True
            if stop.wait(min(remaining, 0.05)):
                return False
