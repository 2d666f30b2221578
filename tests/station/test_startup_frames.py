"""A station started against a digitizer already running (or restarted after a crash) frames each window
once, one subframe per channel: the driver's startup rewind, the firmware's store-and-forward backlog,
the channels leaving their start-up hold one by one and the lock state unknown until the first status
block must not fragment frames ("cut again" is for real late data only)."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from digitizer.guralp import DriverConfig, GuralpDriver
from gci_link.cd11 import decode_frame
from hil.serialport import PtyLine
from hil.sim_digitizer import SimDigitizer, StreamSpec
from hil.simclock import SimClock
from station import service as service_module
from station.config import parse_config
from station.service import StationService
from timeunits import NS_PER_S

T0_NS = 1_700_000_000 * NS_PER_S  # on the 10-s grid
SPEED = 20.0
STREAMS = tuple(StreamSpec(f"{letter}0", 50, 1) for letter in "ZNEABC")
WINDOWS = 6


def _config(port: str) -> str:
    channels = "".join(
        f'[[channels]]\ndigitizer = "d"\nstream_id = "SIMD{s.suffix}"\nsite = "SIM"\n'
        f'channel = "BH{s.suffix[0]}"\n'
        f'sensor_type = "seismic"\ncalib = 1.0\ncalper = 1.0\nsample_rate = {float(s.sample_rate)}\n'
        for s in STREAMS
    )
    return (
        '[station]\nname = "SIM"\nnetwork = "XX"\n[acquisition]\nlateness_budget_s = 10.0\n'
        f'[[digitizers]]\nname = "d"\nsystem_id = "SIM1"\nport = "{port}"\nbaud = 460800\n{channels}'
        '[link]\nendpoints = ["tcp://127.0.0.1:9"]\n[archive]\npath = "archive"\n'
        '[outbox]\npath = "outbox/outbox.sqlite"\n'
    )


@pytest.mark.pty
@pytest.mark.timeout(40)
def test_start_against_a_backlog_and_the_startup_rewind_gives_one_frame_per_window(tmp_path, monkeypatch):
    monkeypatch.setattr(service_module, "PUMP_BATCH", 1)  # blocks reach the framer one by one, as at 1x
    clock = SimClock(T0_NS, speed=SPEED)
    line = PtyLine(int(460800 * SPEED), seed=3)
    sim = SimDigitizer(line, clock, seed=3, streams=STREAMS, probe_interval_s=0.2)  # store and forward
    config = parse_config(_config(line.path), "test", tmp_path)
    service = StationService(config, driver_factory=lambda d: GuralpDriver(
        DriverConfig(d.port, d.baud, backoff_initial_s=0.05, rewind_timeout_s=0.3)))
    sim.start()
    try:
        time.sleep(25.0 / SPEED)  # the station starts 25 s of data late: the digitizer holds a backlog
        for driver in service.drivers.values():
            driver.start()
        deadline = time.monotonic() + 25.0
        while service.frames_published < WINDOWS and time.monotonic() < deadline:
            if not service.pump():
                time.sleep(0.02)
            service.frame_and_publish()
    finally:
        for driver in service.drivers.values():
            driver.stop()
        sim.stop()
        line.close()
    frames = [decode_frame(f.frame).body for f in service.outbox.unacked(limit=1000)]
    service.outbox.close()
    assert service.drivers["d"].counters.rewinds >= 1 and sim.counters.link_downs >= 1
    assert len(frames) >= WINDOWS
    assert service.framer.refills == 0
    windows = Counter(body.nominal_time_ns for body in frames)
    assert set(windows.values()) == {1}, f"windows cut more than once: {windows}"
    for body in frames[1:]:  # the first window may start mid-way, but with one subframe per channel too
        assert sorted(sub.channel for sub in body.channels) == sorted(f"BH{s.suffix[0]}" for s in STREAMS)
        assert all(sub.nsamp == 10 * 50 for sub in body.channels)
    assert sorted(sub.channel for sub in frames[0].channels) == sorted(f"BH{s.suffix[0]}" for s in STREAMS)
