"""Simulated sensors and the digitizer firmware, read back with the BRP receiver and GCF decoder."""

from __future__ import annotations

import time

import numpy as np
import pytest
import serial
from scipy import signal

from digitizer import brp
from digitizer.gcf import decode_block
from digitizer.gcf_status import status_from_block
from hil import sensors
from hil.serialport import PtyLine
from hil.sim_digitizer import SimDigitizer
from hil.simclock import SimClock
from timeunits import NS_PER_S


def test_sensor_output_is_reproducible_and_continuous_across_chunks():
    a = sensors.broadband_seismometer("Z", 100.0, np.random.default_rng(3))
    b = sensors.broadband_seismometer("Z", 100.0, np.random.default_rng(3))
    whole = np.concatenate([a.generate(6000)])
    chunks = np.concatenate([b.generate(n) for n in (1, 99, 2900, 3000)])
    assert whole.dtype == np.int32 and np.array_equal(whole, chunks)
    c = sensors.broadband_seismometer("Z", 100.0, np.random.default_rng(4))
    assert not np.array_equal(whole, c.generate(6000))


def test_seismometer_noise_has_a_microseism_peak():
    s = sensors.broadband_seismometer("Z", 20.0, np.random.default_rng(1), events_per_hour=0)
    x = s.generate(20 * 1800).astype(float)
    f, p = signal.welch(x, fs=20.0, nperseg=4096)
    band = (f > 0.1) & (f < 0.3)
    assert p[band].max() > 10 * np.median(p[(f > 2) & (f < 8)])
    assert 0.1 < f[np.argmax(p)] < 0.3


def test_calibration_coil_path_is_the_velocity_response_over_s():
    s = sensors.broadband_seismometer("Z", 100.0, np.random.default_rng(1), period_s=1.0, damping=0.7)
    # well above the corner a velocity sensor's coil path (acceleration in) falls as 1/ω
    w, h_vel = signal.freqs_zpk(s.response.zeros, s.response.poles, s.response.gain, [2 * np.pi * 10])
    cal = sensors.AnalogResponse(s.response.zeros[1:], s.response.poles, s.response.gain)
    _, h_cal = signal.freqs_zpk(cal.zeros, cal.poles, cal.gain, w)
    assert abs(abs(h_cal[0]) * w[0] / abs(h_vel[0]) - 1) < 1e-9


def test_hydrophone_and_microbarometer_produce_counts():
    for make in (sensors.hydrophone, sensors.microbarometer):
        x = make("H", 100.0, np.random.default_rng(2)).generate(5000)
        assert x.dtype == np.int32 and x.std() > 10 and np.abs(x).max() < 2**23


def _host_read(rx: brp.BrpReceiver, port: serial.Serial, blocks: list) -> list:
    """One read as the station's end does it: blocks delivered go to ``blocks`` as (seq, decoded block),
    acknowledgements go back on the line; returns every event, for what a test looks at beyond that."""
    events = rx.feed(port.read(4096))
    for ev in events:
        if isinstance(ev, brp.BlockReceived):
            blocks.append((ev.seq, decode_block(ev.gcf)))
        elif isinstance(ev, brp.SendBytes):
            port.write(ev.data)
    return events


@pytest.mark.pty
@pytest.mark.timeout(30)
def test_firmware_streams_blocks_rewinds_on_nak_and_runs_console_commands():
    clock = SimClock(1_700_000_000 * NS_PER_S, speed=10.0)
    with PtyLine(115200) as line:
        sim = SimDigitizer(line, clock, seed=5, status_every_s=5)
        port = serial.Serial(line.path, 115200, timeout=0.05)
        rx = brp.BrpReceiver()
        sim.start()
        blocks, text = [], b""
        resent_seqs: list[int] = []  # blocks that came again, byte for byte the ones delivered before
        nak_from = None
        deadline = time.monotonic() + 12
        try:
            while time.monotonic() < deadline and len(blocks) < 60:
                for ev in _host_read(rx, port, blocks):
                    if isinstance(ev, brp.DuplicateIgnored):
                        resent_seqs.append(ev.seq)
                if len(blocks) >= 30 and nak_from is None:  # ask for the last ten again
                    nak_from = (blocks[-1][0] - 9) % 256
                    port.write(brp.nak_bytes(blocks[-1][1].stream_id_word, nak_from))
            port.write(b"\x13\r")
            port.write(b"Z 2 SECOND SINEWAVE\rSTATUS\rBOGUS\rGO\r")
            end = time.monotonic() + 3
            while time.monotonic() < end and b"\x1b\x11" not in text:
                text += port.read(4096)
        finally:
            sim.stop()
            port.close()
    # the same reader goes on: the rewound blocks arrive as duplicates of what it delivered (it compares
    # their bytes), and the stream continues after them without a gap, so it never NAKs on its own
    assert nak_from is not None and sim.counters.naks == 1 and sim.counters.resent >= 10
    assert {(nak_from + i) % 256 for i in range(10)} <= set(resent_seqs), (nak_from, resent_seqs)
    assert [seq for seq, _ in blocks] == [(blocks[0][0] + i) % 256 for i in range(len(blocks))]
    for block in (b for _, b in blocks if not b.is_status):
        first_ns, truth = sim.samples_of(block.stream_id)
        first = (block.start_ns - first_ns) * int(block.sample_rate) // NS_PER_S
        assert np.array_equal(block.samples, truth[first:first + block.nsamp])
    statuses = [status_from_block(b) for _, b in blocks if b.is_status]
    assert statuses and statuses[0].gps_locked and statuses[0].supply_volts > 11
    assert text.count(b" ok\r\n") >= 4 and b"undefined" in text and b"Calibration sine Z" in text
    assert sim.calibration is not None and sim.calibration.period_s == 2.0


@pytest.mark.pty
@pytest.mark.timeout(30)
def test_after_sampling_stops_a_status_block_follows_the_last_data_block():
    """So a station that lost the last data block on the line still sees a gap, and NAKs it."""
    clock = SimClock(1_700_000_000 * NS_PER_S, speed=10.0)
    with PtyLine(115200) as line:
        sim = SimDigitizer(line, clock, seed=3, status_every_s=3600)  # hourly: none due while it samples
        port = serial.Serial(line.path, 115200, timeout=0.05)
        rx = brp.BrpReceiver()
        sim.start()
        blocks: list = []
        try:
            deadline = time.monotonic() + 20
            stopped_at = None
            while time.monotonic() < deadline:
                events = _host_read(rx, port, blocks)
                if len(blocks) >= 5 and stopped_at is None:
                    sim.stop_sampling()
                    stopped_at = time.monotonic()
                if stopped_at is not None and sim.drained and not events \
                        and time.monotonic() - stopped_at > 1.0:
                    break
        finally:
            sim.stop()
            port.close()
    data = [(seq, b) for seq, b in blocks if not b.is_status]
    assert data and blocks[-1][1].is_status, [b.stream_id for _, b in blocks[-3:]]
    assert blocks[-1][0] == (data[-1][0] + 1) % 256
    assert [seq for seq, _ in blocks] == [(blocks[0][0] + i) % 256 for i in range(len(blocks))]


@pytest.mark.pty
@pytest.mark.timeout(20)
def test_gps_loss_shows_in_status_blocks():
    clock = SimClock(1_700_000_000 * NS_PER_S, speed=20.0)
    with PtyLine(115200) as line:
        sim = SimDigitizer(line, clock, seed=2, status_every_s=5)
        sim.set_gps_lock(False)
        texts = [sim.status_text(clock.now_ns()) for _ in range(2)]
        sim.set_gps_lock(True)
        texts.append(sim.status_text(clock.now_ns()))
    unlocked = status_from_block_text(sim, texts[0])
    assert unlocked.gps_locked is False and status_from_block_text(sim, texts[-1]).gps_locked is True


def status_from_block_text(sim: SimDigitizer, text: str):
    from digitizer.gcf_status import parse_status_text

    return parse_status_text(sim.system_id, 0, text)


@pytest.mark.pty
@pytest.mark.timeout(20)
def test_fifo_with_nobody_listening_stops_advancing_probes_and_counts_flash_overflow():
    clock = SimClock(1_700_000_000 * NS_PER_S, speed=50.0)
    with PtyLine(115200) as line:
        line.unplug()  # no host at all
        sim = SimDigitizer(line, clock, seed=1, flash_blocks=20, probe_interval_s=0.1)
        sim.start()
        try:
            time.sleep(1.5)
        finally:
            sim.stop()
    fw = sim.counters
    assert sim.link_down and fw.link_downs == 1 and fw.probes >= 5
    new_frames = fw.frames_sent - fw.probes  # the blocks sent before the silence was noticed
    assert new_frames == sim.silent_blocks
    assert sim.flash_waiting == 20 and fw.flash_peak == 20
    assert fw.flash_dropped == fw.blocks_made - 20 - new_frames > 0  # every block accounted for
    with pytest.raises(ValueError, match="mode"):
        SimDigitizer(line, clock, mode="bogus")
