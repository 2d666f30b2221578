"""Pacing for the station end of the GCI link: a byte-rate cap and reconnect back-off.

Both take time as integer nanoseconds from the caller, never from the wall clock, so the link session
that owns them stays a pure state machine and tests can drive hours of link time in microseconds.
"""

from __future__ import annotations

import random

from timeunits import NS_PER_S


class TokenBucket:
    """Caps the average byte rate of everything the station puts on the link.

    A VSAT link may carry only tens of kbit/s, so the station must not hand ZeroMQ more than the link
    drains, or frames sit in socket buffers where neither live-first ordering nor resend bookkeeping can
    see them. The bucket runs in debt mode: a frame may go whenever the balance is not negative and its
    size is charged afterwards, so the sender never needs a frame's size before choosing it. Over any
    interval T the bytes sent are at most ``burst + rate * T`` plus one frame.
    """

    def __init__(self, rate_bytes_per_s: float | None, burst_bytes: int, now_ns: int) -> None:
        if rate_bytes_per_s is not None and rate_bytes_per_s <= 0:
            raise ValueError(f"bandwidth cap must be positive bytes/s or None, got {rate_bytes_per_s}")
        if burst_bytes < 0:
            raise ValueError(f"burst must be >= 0 bytes, got {burst_bytes}")
        self.rate = rate_bytes_per_s
        self.burst = burst_bytes
        self._balance = float(burst_bytes)
        self._updated_ns = now_ns

    def _refill(self, now_ns: int) -> None:
        if self.rate is None:
            return
        elapsed = max(0, now_ns - self._updated_ns)
        self._balance = min(float(self.burst), self._balance + elapsed * self.rate / NS_PER_S)
        self._updated_ns = max(self._updated_ns, now_ns)

    def ready_at(self, now_ns: int) -> int:
        """Earliest time (ns) at which a frame may be sent; ``now_ns`` if it may go at once."""
        if self.rate is None:
            return now_ns
        self._refill(now_ns)
        if self._balance >= 0:
            return now_ns
        return now_ns + int(-self._balance * NS_PER_S / self.rate) + 1

    def charge(self, nbytes: int, now_ns: int) -> None:
        """Account for ``nbytes`` just handed to the socket."""
        if self.rate is None:
            return
        self._refill(now_ns)
        self._balance -= nbytes


class Backoff:
    """Exponential reconnect delay with jitter, so stations cut off together do not return together.

    Attempt n waits a uniformly random time in [d/2, d] with d = min(cap, base * 2**n) ("equal jitter":
    spread out, yet never much shorter than the exponential schedule).
    """

    def __init__(self, base_ns: int, cap_ns: int, rng: random.Random | None = None) -> None:
        if not 0 < base_ns <= cap_ns:
            raise ValueError(f"back-off needs 0 < base <= cap, got base={base_ns} ns cap={cap_ns} ns")
        self.base_ns = base_ns
        self.cap_ns = cap_ns
        self._rng = rng or random.Random()
        self.attempts = 0

    def next_delay_ns(self) -> int:
        """Delay before the next connection attempt; each call counts one failed attempt."""
        ceiling = min(self.cap_ns, self.base_ns << min(self.attempts, 62))
        self.attempts += 1
        return int(self._rng.uniform(ceiling / 2, ceiling))

    def reset(self) -> None:
        """Call once a connection has proved healthy, so the next outage starts from the base delay."""
        self.attempts = 0
