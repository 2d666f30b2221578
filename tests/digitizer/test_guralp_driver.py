"""The Güralp driver against the simulated digitizer over a paced pty, with line and firmware faults.

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
from station.acquisition import ChannelBuffer
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
def test_noisy_line_delivers_every_sample_once_in_order():
    noise = LineFaults(bit_error_rate=1e-4, drop_rate=1e-4)
    with Rig(speed=10.0, faults=noise, seed=7) as rig:
        rig.pump(7.0)
        rig.pump(5.0, until=rig.caught_up)
    counters = rig.driver.counters
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


FAST_STREAMS = tuple(StreamSpec(c + "0", 20, 1) for c in "ZNE")  # light enough to catch up at speed 40


def restart_driver(rig: Rig) -> dict[str, list[Packet]]:
    """Start a new driver instance on the rig; returns the packets of the old one (the rig's are reset)."""
    first, rig.packets = rig.packets, {}
    rig.driver = rig.new_driver()
    rig.driver.start()
    return first


def check_two_instances(rig: Rig, first: dict[str, list[Packet]], stream_id: str) -> int:
    """Each instance delivers in order without repeats; together they tile the stream with the truth.

    Returns how many blocks both instances delivered (allowed only across a process restart).
    """
    start_ns, truth = rig.sim.samples_of(stream_id)
    union: dict[int, Packet] = {}
    for packets in (first.get(stream_id, []), rig.packets[stream_id]):
        starts = [p.start_ns for p in packets]
        assert starts == sorted(set(starts)), f"{stream_id}: repeated or out of order within one instance"
        for p in packets:
            rate = p.sample_rate
            first_index = round((p.start_ns - start_ns) * rate / NS_PER_S)
            assert np.array_equal(truth[first_index:first_index + p.nsamp], p.samples), stream_id
            union[p.start_ns] = p
    cursor = start_ns
    for t in sorted(union):
        assert t == cursor, f"{stream_id}: hole at {cursor}"
        cursor = union[t].end_ns
    assert cursor >= rig.sim.truth[stream_id][-2][0], f"{stream_id}: not caught up"
    old = {p.start_ns for p in first.get(stream_id, [])}
    return len(old & {p.start_ns for p in rig.packets[stream_id]})


@pytest.mark.timeout(40)
def test_fifo_firmware_keeps_a_120s_outage_of_the_station_for_the_next_driver_instance():
    speed = 40.0
    with Rig(speed=speed, streams=FAST_STREAMS, baudrate=460800, seed=11) as rig:
        rig.pump(1.5)
        rig.driver.stop()  # the station process goes away; its port closes and nobody answers
        rig.pump(0.5)  # what the stopped instance had already queued
        made_before = rig.sim.counters.blocks_made
        time.sleep(120.0 / speed)
        held = rig.sim.counters.blocks_made - made_before
        first = restart_driver(rig)
        rig.pump(15.0, until=rig.caught_up)
        assert rig.caught_up()
    fw = rig.sim.counters
    assert held > brp.DEFAULT_DEPTH  # more than the NAK window could have recovered
    assert fw.link_downs >= 1 and fw.probes >= 1 and fw.flash_peak >= held and fw.flash_dropped == 0
    assert not rig.gaps and rig.driver.counters.gaps == 0 and rig.driver.counters.unrecoverable_brp_gaps == 0
    for spec in FAST_STREAMS:
        check_two_instances(rig, first, "SIMD" + spec.suffix)


@pytest.mark.timeout(40)
def test_startup_rewind_refetches_blocks_a_killed_process_acked_but_never_passed_on():
    speed = 40.0
    with Rig(speed=speed, streams=FAST_STREAMS, baudrate=460800, seed=12, mode="direct") as rig:
        rig.pump(2.5)  # the digitizer's 255-block window fills
        time.sleep(0.5)  # the station stops consuming: the driver ACKs blocks into its queue
        killed_ns = rig.clock.now_ns()
        rig.driver.stop()  # killed: whatever sat in its queue is lost
        time.sleep(0.2)  # direct firmware streams into the void meanwhile
        first = restart_driver(rig)
        rig.pump(10.0, until=rig.caught_up)
        assert rig.caught_up()
    assert rig.driver.counters.rewinds >= 1 and rig.driver.counters.gaps == 0 and not rig.gaps
    repeated = 0
    for spec in FAST_STREAMS:
        stream_id = "SIMD" + spec.suffix
        repeated += check_two_instances(rig, first, stream_id)
        # the second instance has blocks the first ACKed (it ran until killed_ns) but never handed over
        last_handed = first[stream_id][-1].end_ns
        assert any(last_handed <= p.start_ns < killed_ns - NS_PER_S for p in rig.packets[stream_id])
    assert 0 < repeated <= brp.DEFAULT_DEPTH  # repeats only from inside the digitizer's window


def delivered_all(rig: Rig, stream_ids: tuple[str, ...]) -> Callable[[], bool]:
    """Every block made on these streams (bar the newest) was delivered; blind to time order."""
    return lambda: all(len(rig.packets.get(s, [])) >= len(rig.sim.truth.get(s, ())) - 1 > 0
                       for s in stream_ids)


@pytest.mark.timeout(40)
def test_backward_clock_step_delivers_every_new_block_in_arrival_order_for_the_acquisition_tear():
    streams = ("SIMDZ0", "SIMDN0", "SIMDE0", "SIMDM8")
    # direct firmware never repeats a block by itself; no startup rewind: these tests are about later
    with Rig(speed=10.0, seed=5, status_every_s=2, mode="direct", startup_rewind=False) as rig:
        rig.pump(1.5)
        rig.sim.step_clock(-5.0)  # GPS re-lock: the clock had run 5 s fast
        rig.pump(1.2)
        rig.pump(5.0, until=delivered_all(rig, streams))
    counters = rig.driver.counters
    assert counters.duplicates == 0 and counters.gaps == 0
    assert counters.time_steps_back == len(streams)  # each stream's first block after the step
    for stream_id in streams:
        made, got = rig.sim.truth[stream_id], rig.packets[stream_id]
        assert len(got) >= len(made) - 1
        for (start_ns, samples), packet in zip(made, got, strict=False):  # arrival order is making order
            assert packet.start_ns == start_ns and np.array_equal(packet.samples, samples), stream_id
        steps = [b.start_ns - a.end_ns for a, b in zip(got, got[1:], strict=False) if b.start_ns < a.end_ns]
        assert steps == [-5 * NS_PER_S], stream_id
    times = [s.time_ns for s in rig.statuses]
    assert any(b < a for a, b in zip(times, times[1:], strict=False))  # statuses after the step came too
    # what the acquisition makes of it: a time tear, every sample kept, nothing taken for a duplicate
    got = rig.packets["SIMDZ0"]
    channel = ChannelBuffer("SIMDZ0")
    channel.ingest(got[0])
    channel.end_start_hold()
    for packet in got[1:]:
        channel.ingest(packet)
    channel.flush()
    assert channel.stats.time_tears == 1 and channel.stats.gaps == 0
    assert channel.stats.samples == sum(p.nsamp for p in got) and channel.stats.duplicate_samples == 0


def settled(rig: Rig) -> Callable[[], bool]:
    """The driver delivers live data and has caught up."""
    return lambda: len(rig.packets.get("SIMDZ0", [])) >= 5 and rig.caught_up()


@pytest.mark.timeout(40)
def test_block_repeated_after_a_missed_ack_is_dropped_once():
    with Rig(speed=10.0, seed=6, ms_gap_s=0.2, startup_rewind=False) as rig:  # a late ACK is no silence
        rig.pump(6.0, until=settled(rig))
        fw, counters = rig.sim.counters, rig.driver.counters
        downs, probes, duplicates = fw.link_downs, fw.probes, counters.duplicates
        rig.sim.lose_acks(3)  # FIFO firmware: 3 unanswered blocks mean the host is gone
        rig.pump(8.0, until=lambda: counters.duplicates >= duplicates + 3 and rig.caught_up())
    assert fw.link_downs == downs + 1 and fw.probes == probes + 1
    # the probe and the two blocks resent after its ACK, each dropped once
    assert counters.duplicates == duplicates + 3
    assert counters.gaps == 0 and counters.opens == 1
    for stream_id in ("SIMDZ0", "SIMDN0", "SIMDE0"):
        assert check_stream(rig, stream_id)[1] == 0


@pytest.mark.timeout(40)
def test_replay_after_a_reconnect_drops_exactly_the_blocks_already_delivered(caplog):
    with Rig(speed=10.0, seed=8, ms_gap_s=0.05, startup_rewind=False) as rig:
        rig.pump(6.0, until=settled(rig))
        caplog.clear()
        caplog.set_level(logging.INFO, logger="digitizer.guralp")
        rig.sim.lose_acks(3)  # blocks delivered but never released: the firmware will send them again
        rig.pump(2.0, until=lambda: rig.sim.link_down)
        rig.line.unplug()
        rig.pump(0.3)
        rig.line.replug()
        rig.pump(8.0, until=rig.caught_up)
        assert rig.caught_up()
    counters = rig.driver.counters
    assert counters.opens >= 2 and counters.rewinds >= 1
    assert counters.gaps == 0 and counters.time_steps_back == 0
    # the replay came on a new BRP receiver: the driver, not BRP, knew these blocks
    resent = [r for r in caplog.records if r.getMessage() == "re-sent block dropped"]
    assert len(resent) >= 3
    for stream_id in ("SIMDZ0", "SIMDN0", "SIMDE0", "SIMDM8"):
        assert check_stream(rig, stream_id)[1] == 0
