"""CPU cost of the Güralp driver per 100 sps channel, extrapolated to a 30-channel station.

The simulated digitizer runs in this process; the driver runs alone in a child process (spawned, so it
shares no threads with the simulator) and reports its own ``time.process_time()`` over the measured
interval: the driver's port thread, BRP, GCF decoding and the consumer draining its queue, nothing of
the simulator. Data time runs ``SPEED`` times faster than real time, so 3 channels at speed 10 put the
load of 30 real-time channels on the driver over a paced 115200 Bd pty.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

from hil.serialport import PtyLine
from hil.sim_digitizer import SimDigitizer, StreamSpec
from hil.simclock import SimClock

SPEED = 10.0
SECONDS = 10.0
WARMUP_S = 2.0
CHANNELS = (StreamSpec("Z0", 100, 1), StreamSpec("N0", 100, 1), StreamSpec("E0", 100, 1))
STATION_CHANNELS = 30
TARGET_FRACTION = 0.05


def _driver_process(path: str, warmup_s: float, seconds: float, out: Connection) -> None:
    from digitizer.guralp import DriverConfig, GuralpDriver
    from digitizer.packet import Packet

    driver = GuralpDriver(DriverConfig(path, watchdog_s=5.0))
    driver.start()
    end_warmup = time.monotonic() + warmup_s
    while time.monotonic() < end_warmup:
        driver.get(timeout=0.05)
    cpu0, wall0, samples = time.process_time(), time.monotonic(), 0
    while time.monotonic() - wall0 < seconds:
        item = driver.get(timeout=0.05)
        if isinstance(item, Packet):
            samples += item.nsamp
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    driver.stop()
    out.send({"cpu_s": cpu, "wall_s": wall, "samples": samples, "blocks": driver.counters.blocks,
              "gaps": driver.counters.gaps})


def run(progress: Callable[[str], None]) -> dict[str, object]:
    ctx = mp.get_context("spawn")
    clock = SimClock(1_700_000_000 * 10**9, speed=SPEED)
    with PtyLine(115200) as line:
        sim = SimDigitizer(line, clock, streams=CHANNELS, seed=11)
        receive, send = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_driver_process, args=(line.path, WARMUP_S, SECONDS, send))
        child.start()
        time.sleep(1.0)  # let the child import and open the port
        sim.start()
        progress(f"driver on a 115200 Bd pty, {len(CHANNELS)} x 100 sps at {SPEED:g}x for {SECONDS:g} s")
        result = receive.recv() if receive.poll(SECONDS + WARMUP_S + 30) else None
        child.join(10)
        sim.stop()
    if result is None:
        raise RuntimeError("driver process reported nothing")
    channel_seconds = result["samples"] / 100.0
    cpu_per_channel = result["cpu_s"] / channel_seconds  # CPU seconds per second of one 100 sps channel
    station = cpu_per_channel * STATION_CHANNELS
    return {
        "channel_seconds_processed": round(channel_seconds, 1),
        "driver_cpu_s": round(result["cpu_s"], 3),
        "cpu_fraction_per_channel": cpu_per_channel,
        "cpu_fraction_30_channels": station,
        "target_fraction": TARGET_FRACTION,
        "ratio_to_target": station / TARGET_FRACTION,
        "verdict": "within target" if station <= TARGET_FRACTION else "over target",
        "gaps": result["gaps"],
    }
