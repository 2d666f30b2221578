"""Where "now" comes from: the wall clock, or in simulation a clock shared through the environment.

The simulated network runs data time faster than real time; every process of it (stations, receiver)
must agree on "now" for timeouts, heartbeats and latency, so the harness exports one mapping and each
daemon builds the same clock from it. Outside simulation the variable is absent and this is time.time_ns.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

Clock = Callable[[], int]  # "now" as integer nanoseconds UTC since 1970
SIM_CLOCK_ENV = "IMS_SIM_CLOCK"  # "START_NS,WALL0_NS,SPEED": now = START + (wall - WALL0) * SPEED


def sim_clock_spec(start_ns: int, wall0_ns: int, speed: float) -> str:
    return f"{start_ns},{wall0_ns},{speed!r}"


def clock_from_env(environ: Mapping[str, str] = os.environ) -> Clock:
    spec = environ.get(SIM_CLOCK_ENV)
    if not spec:
        return time.time_ns
    try:
        start, wall0, speed_text = spec.split(",")
        start_ns, wall0_ns, speed = int(start), int(wall0), float(speed_text)
    except ValueError as exc:
        raise ValueError(f"{SIM_CLOCK_ENV}={spec!r}: expected START_NS,WALL0_NS,SPEED") from exc
    if speed <= 0:
        raise ValueError(f"{SIM_CLOCK_ENV}={spec!r}: speed must be positive")
    return lambda: start_ns + int((time.time_ns() - wall0_ns) * speed)
