"""Crash safety of the whole link: station and IDC processes SIGKILLed at random moments, repeatedly.

A station process (frame producer + real Sender, tests/gci_link/link_station.py) streams signed 3-channel
40 sps frames to a real ``ims idc run`` process; both run on one simulated clock at SPEED times real
time. A seeded schedule SIGKILLs one or the other and restarts it after a short random delay. At the end
everything drains and stops cleanly, and the IDC's SDS archive, read with ObsPy, must equal the outbox
frames sample for sample: nothing lost, nothing twice, every frame acknowledged, no gap at the IDC.
"""

from __future__ import annotations

import random
import time

import numpy as np
import pytest

from gci_link.cd11 import DataBody, decode_frame
from hil.network import free_port
from tests.gci_link.link_harness import (
    NS_PER_S,
    SimTime,
    compare_archive,
    idc_daemon,
    idc_gap_list,
    outbox_frames,
    outbox_unacked,
    quarantine_reasons,
    station_daemon,
    station_keys,
    wait_for,
    write_idc_config,
)
from tests.gci_link.link_station import FRAME_S, frame_samples

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

SEED = 1729
SPEED = 40.0  # a 10 s frame every 0.25 s of real time
PRODUCTION_S = 26.0  # real seconds of data production; the kills fall inside it
KILLS_EACH = 4  # SIGKILLs of the station and of the IDC receiver


def test_repeated_sigkills_of_station_and_idc_lose_and_duplicate_nothing(tmp_path):
    rng = random.Random(SEED)
    sim = SimTime.starting_now(SPEED)
    frame_ns = FRAME_S * NS_PER_S
    end_ns = sim.start_ns + int(PRODUCTION_S * SPEED) // FRAME_S * frame_ns
    keys = station_keys(tmp_path)
    port = free_port()
    config = write_idc_config(tmp_path / "idc.toml", keys, port, data_port=free_port(), speed=SPEED)
    idc = idc_daemon(config, sim, tmp_path / "idc.log")
    station_dir = tmp_path / "station"
    station_dir.mkdir()
    station = station_daemon(station_dir, keys, f"tcp://127.0.0.1:{port}", sim, end_ns)
    outbox_path = station_dir / "outbox.db"
    victims = [station] * KILLS_EACH + [idc] * KILLS_EACH
    rng.shuffle(victims)
    pauses = [(rng.uniform(1.0, 2.4), rng.uniform(0.05, 0.8)) for _ in victims]
    try:
        idc.start()
        station.start()
        for victim, (run_s, down_s) in zip(victims, pauses, strict=True):
            time.sleep(run_s)
            victim.kill()
            time.sleep(down_s)
            victim.start()
        sim.wait_until(end_ns + frame_ns)
        expected = (end_ns - sim.start_ns) // frame_ns
        wait_for(
            lambda: outbox_path.exists()
            and len(outbox_frames(outbox_path)) == expected
            and outbox_unacked(outbox_path) == 0,
            30.0,
            lambda: f"all {expected} frames produced and acknowledged; station log:\n{station.log_tail()}"
            f"\nIDC log:\n{idc.log_tail()}",
            poll_s=0.2,
        )
        assert station.terminate() == 0, station.log_tail()
        assert idc.terminate() == 0, idc.log_tail()
    finally:
        station.stop_quietly()
        idc.stop_quietly()

    assert station.starts == idc.starts == 1 + KILLS_EACH
    frames = outbox_frames(outbox_path)
    seqs = [f.seq for f in frames]
    assert seqs == list(range(1, expected + 1)), "outbox sequence numbers must run without a hole"
    assert [f.nominal_time_ns for f in frames] == [sim.start_ns + i * frame_ns for i in range(expected)], (
        "after every restart the producer must continue the data time from the outbox's newest frame"
    )
    assert all(f.acked for f in frames)
    for stored in frames[:: max(1, expected // 10)]:  # the outbox holds what the producer framed
        body = decode_frame(stored.frame).body
        assert isinstance(body, DataBody)
        for i, sub in enumerate(body.channels):
            np.testing.assert_array_equal(sub.samples, frame_samples(i, sub.time_ns, sub.nsamp))

    idc_root = tmp_path / "idc"
    gaps = idc_gap_list(idc_root)
    assert (gaps.lowest, gaps.highest, gaps.gaps()) == (1, expected, [])
    comparisons = compare_archive(idc_root, frames)
    assert len(comparisons) == 3
    for result in comparisons:
        assert result.exact, result.as_dict()
        assert result.archived_samples == result.truth_samples == expected * FRAME_S * 40
    # frames that reached a restarted IDC before the station reconnected are refused as "no session";
    # nothing may ever be refused for its content
    assert quarantine_reasons(idc_root) <= {"no_session"}
