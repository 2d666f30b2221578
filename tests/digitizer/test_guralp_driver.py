"""The Güralp driver (port, thread, queue, futures, logging) against the simulated digitizer over a paced
pty: the adapter's integration. The protocol rules themselves are tested without a port in
``test_guralp_session.py``.

Ground truth is the exact int32 samples the simulated firmware produced. Each test bounds its real time;
data time runs faster (SimClock speed) so long outages stay cheap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import pytest

from digitizer import brp
from digitizer.gcf import GcfBlock, encode_block
from digitizer.guralp import DriverConfig, GuralpDriver, StreamGap
from digitizer.packet import Packet, Status
from hil.faults import LineFaults
from hil.serialport import CLEAN, PtyLine
from hil.sim_digitizer import SimDigitizer, StreamSpec
from hil.simclock import SimClock
from timeunits import NS_PER_S

pytestmark = pytest.mark.pty
T0_NS = 1_700_000_000 * NS_PER_S


class Rig:
    """Simulated digitizer + line + driver, with everything the driver yielded collected per stream."""

    def __init__(self, *, speed: float = 10.0, faults: LineFaults = CLEAN, seed: int = 1,
                 watchdog_s: float = 3.0, baudrate: int = 115200, startup_rewind: bool = True, **sim_kwargs):
        self.clock = SimClock(T0_NS, speed=speed)
        self.line = PtyLine(baudrate, to_host=faults, to_device=faults, seed=seed)
        sim_kwargs.setdefault("probe_interval_s", 0.2)
        self.sim = SimDigitizer(self.line, self.clock, seed=seed, **sim_kwargs)
        self.driver = self.new_driver(watchdog_s=watchdog_s, startup_rewind=startup_rewind)
        self.packets: dict[str, list[Packet]] = {}
        self.gaps: dict[str, list[StreamGap]] = {}
        self.statuses: list[Status] = []

    def new_driver(self, **config) -> GuralpDriver:
        """A driver instance (a fresh process, as far as the digitizer can tell)."""
        config = {"watchdog_s": 3.0, "backoff_initial_s": 0.05, "backoff_max_s": 0.4,
                  "rewind_timeout_s": 0.3} | config
        return GuralpDriver(DriverConfig(self.line.path, **config))

    def __enter__(self) -> Rig:
        self.driver.start()
        self.sim.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sim.stop()
        self.driver.stop()
        self.line.close()

    def pump(self, seconds: float, until: Callable[[], bool] | None = None) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            item = self.driver.get(timeout=0.05)
            if isinstance(item, Packet):
                self.packets.setdefault(item.stream_id, []).append(item)
            elif isinstance(item, StreamGap):
                self.gaps.setdefault(item.stream_id, []).append(item)
            elif isinstance(item, Status):
                self.statuses.append(item)
            if until is not None and until():
                return

    def caught_up(self) -> bool:
        """Every stream's last produced block (bar the newest) was delivered."""
        for stream_id, parts in list(self.sim.truth.items()):
            if len(parts) < 3 or stream_id.endswith("C0"):
                continue
            got = self.packets.get(stream_id)
            if not got or got[-1].start_ns < parts[-2][0]:
                return False
        return True


def undetectable(stream_id: str, truth: np.ndarray, got: Packet, rate: float) -> bool:
    """Whether a corrupted block is one BRP cannot see: same frame byte sum and same RIC as the truth.

    BRP's checksum is a 16-bit byte sum and GCF adds only FIC/RIC, so two bit flips of the same weight in
    opposite directions inside one frame's differences pass both (about 5e-4 per frame at BER 1e-4).
    """
    a = encode_block(GcfBlock("SIM1", stream_id, got.start_ns, rate, samples=truth))
    b = encode_block(GcfBlock("SIM1", stream_id, got.start_ns, rate, samples=got.samples))
    same_sum = brp.checksum(brp.frame_block(0, a)) == brp.checksum(brp.frame_block(0, b))
    flipped = int(np.unpackbits(np.frombuffer(a, np.uint8) ^ np.frombuffer(b, np.uint8)).sum()) \
        if len(a) == len(b) else 99
    return same_sum and truth[-1] == got.samples[-1] and flipped <= 4


def check_stream(rig: Rig, stream_id: str, *, allow_undetectable: int = 0) -> tuple[int, int]:
    """Packets and gaps tile the stream exactly, in order; samples equal the truth.

    Returns (samples delivered, samples reported missing).
    """
    start_ns, truth = rig.sim.samples_of(stream_id)
    rate = rig.packets[stream_id][0].sample_rate
    items = sorted(rig.packets[stream_id] + rig.gaps.get(stream_id, []),
                   key=lambda x: x.start_ns)
    assert [p.start_ns for p in rig.packets[stream_id]] == sorted(p.start_ns for p in rig.packets[stream_id])
    cursor, delivered, missing, oddities = items[0].start_ns, 0, 0, 0
    for item in items:
        assert item.start_ns == cursor, f"{stream_id}: hole or overlap at {cursor} (next item {item})"
        if isinstance(item, StreamGap):
            assert item.end_ns > item.start_ns
            missing += round((item.end_ns - item.start_ns) * rate / NS_PER_S)
            cursor = item.end_ns
            continue
        first = round((item.start_ns - start_ns) * rate / NS_PER_S)
        expected = truth[first:first + item.nsamp]
        if not np.array_equal(expected, item.samples):
            assert undetectable(stream_id, expected, item, rate), f"{stream_id}: wrong samples at {first}"
            oddities += 1
        delivered += item.nsamp
        cursor = item.end_ns
    assert oddities <= allow_undetectable
    return delivered, missing


@pytest.mark.timeout(40)
def test_noisy_line_delivers_every_sample_once_in_order_and_logs_each_brp_warning_once(caplog):
    caplog.set_level(logging.INFO)
    noise = LineFaults(bit_error_rate=1e-4, drop_rate=1e-4)
    with Rig(speed=10.0, faults=noise, seed=7) as rig:
        rig.pump(7.0)
        rig.pump(5.0, until=rig.caught_up)
    counters = rig.driver.counters
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("digitizer")]
    assert logged.count("BRP checksum failure") == counters.checksum_failures
    assert logged.count("BRP resync after unframed bytes") == counters.resyncs
    assert not [r for r in caplog.records if r.name in ("digitizer.brp", "digitizer.guralp_session")]
    assert rig.line.faults_to_host.bit_errors > 10 and rig.line.faults_to_host.bytes_dropped > 0
    assert counters.checksum_failures > 0
    assert counters.gaps == 0 and counters.unrecoverable_brp_gaps == 0
    for stream_id in ("SIMDZ0", "SIMDN0", "SIMDE0", "SIMDM8"):
        delivered, missing = check_stream(rig, stream_id, allow_undetectable=1)
        assert missing == 0 and delivered >= (50 if stream_id.endswith("M8") else 5000)
    assert rig.statuses and all(s.gps_locked for s in rig.statuses)


RICH_STREAMS = (
    tuple(StreamSpec(c + "0", 100, 1) for c in "ZNE")
    + tuple(StreamSpec(c + "2", 10, 1) for c in "ZNE")
    + tuple(StreamSpec(m, 1, 1, "mass") for m in ("M8", "M9", "MA"))
)


@pytest.mark.timeout(60)
def test_unplug_30s_recovers_the_buffer_and_reports_the_rest_as_exact_gaps():
    speed = 8.0
    with Rig(speed=speed, streams=RICH_STREAMS, ms_gap_s=0.003, seed=3, mode="direct") as rig:
        rig.pump(3.0)
        unplugged_ns = rig.clock.now_ns()
        rig.line.unplug()
        rig.pump(30.0 / speed)
        replugged_ns = rig.clock.now_ns()
        rig.line.replug()
        rig.pump(20.0, until=rig.caught_up)
        assert rig.caught_up()
    counters = rig.driver.counters
    assert counters.port_errors + counters.watchdog_reopens >= 1 and counters.open_failures >= 1
    assert counters.rewinds >= 1
    recovered_in_outage = 0
    for spec in RICH_STREAMS:
        stream_id = "SIMD" + spec.suffix
        delivered, missing = check_stream(rig, stream_id)
        gaps = rig.gaps.get(stream_id, [])
        assert len(gaps) == 1, f"{stream_id}: {gaps}"
        gap = gaps[0]
        assert unplugged_ns - 3 * NS_PER_S <= gap.start_ns and gap.end_ns <= replugged_ns
        recovered_in_outage += sum(p.nsamp for p in rig.packets[stream_id]
                                   if gap.end_ns <= p.start_ns < replugged_ns)
    # the 255-block buffer spans ~28 s of these 9 streams: most of the 30 s came back from it
    assert recovered_in_outage > 0.5 * 30 * (3 * 100 + 3 * 10 + 3)


@pytest.mark.timeout(30)
def test_silent_line_is_detected_and_port_reopened_within_the_watchdog():
    with Rig(speed=10.0, watchdog_s=0.5) as rig:
        rig.pump(2.0)
        assert rig.driver.counters.watchdog_reopens == 0
        rig.sim.hang(20.0)  # 2 s real of silence; sampling goes on into the firmware's flash
        rig.pump(5.0, until=lambda: rig.driver.counters.opens >= 2)
        # the reopen came from the watchdog (0.5 s), not from the data resuming after the 2 s hang
        assert rig.driver.counters.watchdog_reopens >= 1 and rig.driver.counters.opens >= 2
        rig.pump(8.0, until=rig.caught_up)
    for stream_id in ("SIMDZ0", "SIMDN0", "SIMDE0"):
        assert check_stream(rig, stream_id)[1] == 0


@pytest.mark.timeout(40)
def test_garbage_truncated_blocks_and_bad_integration_constants_are_counted_and_survived():
    with Rig(speed=10.0) as rig:
        rig.pump(1.5)
        rig.sim.inject_garbage(bytes(range(256)) + b"G\x00\x00\x10" + b"GPS noise\r\n")
        rig.sim.inject_truncated_frame()
        rig.sim.inject_bad_integration("ric")
        rig.sim.inject_bad_integration("fic")
        rig.pump(3.0)
        reply = rig.driver.start_calibration("sine", "Z", 1, frequency_hz=1)
        status = rig.driver.status()
        rig.pump(3.0)
        rig.pump(5.0, until=rig.caught_up)
    counters = rig.driver.counters
    assert counters.resyncs >= 1 and counters.checksum_failures >= 1
    assert counters.ric_mismatches == 2
    assert counters.gaps == 2  # the two blocks with bad FIC/RIC, each reported with its exact span
    gaps = [g for gs in rig.gaps.values() for g in gs]
    assert all(g.end_ns - g.start_ns == NS_PER_S for g in gaps)
    for stream_id in ("SIMDZ0", "SIMDN0", "SIMDE0"):
        check_stream(rig, stream_id)
    assert "undefined" not in reply and "Calibration sine Z" in status
    assert counters.terminal_sessions == 2
    cal = np.concatenate([p.samples for p in rig.packets["SIMDC0"]])
    spectrum = np.abs(np.fft.rfft(cal[:1000] - cal[:1000].mean()))
    assert np.argmax(spectrum) == 10  # 1 Hz in 10 s of 100 sps
