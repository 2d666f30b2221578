"""A 12-hour link outage (simulated), then recovery: dead link seen, backlog drained live-first, no loss.

The station process (producer + real Sender) reaches the ``ims idc run`` process through
hil.linkproxy.LinkProxy, which black-holes every byte for 12 h of simulated time: TCP stays up, nothing
arrives, so the sender must notice the silence itself. Both processes share one simulated clock at SPEED
times real time, and frames are produced as data time passes, during the outage too (not in bulk): one
1-channel 40 sps frame per 10 s of data time, 240 frames per real second. At this speed the link
timeouts are stretched by TIMEOUT_SCALE in data time (to between half a real second and a few), or the
processes' own scheduling delays would look like a dead link.

Asserted: no frame appended during the outage reached the IDC before the restore; the sender reconnected
during the outage; after the restore live frames are acknowledged while the backlog is still draining,
and reach the IDC before the last backlog frame; every frame is acknowledged and archived exactly once.
"""

from __future__ import annotations

import sqlite3
import time

import pytest

from hil.linkproxy import LinkProxy
from hil.network import free_port
from tests.gci_link.link_harness import (
    NS_PER_S,
    SimTime,
    compare_archive,
    idc_arrivals,
    idc_daemon,
    idc_gap_list,
    outbox_frames,
    outbox_unacked,
    read_status,
    station_daemon,
    station_keys,
    wait_for,
    write_idc_config,
)
from tests.gci_link.link_station import FRAME_S

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SPEED = 2400.0  # one real second carries 40 minutes of data
TIMEOUT_SCALE = 120.0  # link timeouts x120 in data time: no acknack for 2 h (3 s real) = dead link
HOUR_NS = 3600 * NS_PER_S
OUTAGE_NS = 12 * HOUR_NS
RUN_NS = 17 * HOUR_NS  # data time produced in all: start-up, 12 h outage, then live data during the drain


def drain_progress(outbox_path, restored_ns: int) -> tuple[int, int]:
    """(frames appended before the restore still unacknowledged, highest acknowledged sequence)."""
    with sqlite3.connect(f"file:{outbox_path}?mode=ro", uri=True, timeout=10) as db:
        return db.execute(
            "SELECT coalesce(sum(acked = 0 AND enqueued_ns < ?), 0), coalesce(max(seq * acked), 0) "
            "FROM frames",
            (restored_ns,),
        ).fetchone()


def test_twelve_hour_outage_is_detected_and_drained_live_first_without_loss(tmp_path):
    sim = SimTime.starting_now(SPEED)
    end_ns = sim.start_ns + RUN_NS
    expected = RUN_NS // (FRAME_S * NS_PER_S)
    keys = station_keys(tmp_path)
    port = free_port()
    silence_s = 120.0 * TIMEOUT_SCALE
    config = write_idc_config(tmp_path / "idc.toml", keys, port, silence_timeout_s=silence_s, speed=SPEED)
    idc = idc_daemon(config, sim, tmp_path / "idc.log")
    proxy = LinkProxy(("127.0.0.1", port), "STA1")
    station_dir = tmp_path / "station"
    station_dir.mkdir()
    station = station_daemon(station_dir, keys, proxy.endpoint, sim, end_ns, TIMEOUT_SCALE, channels=1)
    outbox_path = station_dir / "outbox.db"
    snapshots: list[tuple[int, int]] = []
    try:
        proxy.start()
        idc.start()
        station.start()
        status_file = station_dir / "status.json"
        wait_for(lambda: status_file.exists() and read_status(station_dir)["counters"]["frames_acked"] > 0,
                 20.0, lambda: f"first ack; station:\n{station.log_tail()}\nIDC:\n{idc.log_tail()}")
        before = read_status(station_dir)["counters"]

        proxy.blackhole(True)
        outage_ns = sim.now_ns()
        sim.wait_until(outage_ns + OUTAGE_NS)
        restored_ns = sim.now_ns()
        during = read_status(station_dir)["counters"]
        proxy.blackhole(False)

        deadline = time.monotonic() + 40
        while True:  # watch the drain: which frames are acknowledged while the backlog is not done
            backlog_left, highest_acked = drain_progress(outbox_path, restored_ns)
            snapshots.append((backlog_left, highest_acked))
            if backlog_left == 0:
                break
            assert time.monotonic() < deadline, f"backlog not drained; station log:\n{station.log_tail()}"
            time.sleep(0.01)
        wait_for(lambda: len(outbox_frames(outbox_path)) == expected and outbox_unacked(outbox_path) == 0,
                 30.0, lambda: f"all {expected} frames acknowledged; station log:\n{station.log_tail()}")
        assert station.terminate() == 0, station.log_tail()
        assert idc.terminate() == 0, idc.log_tail()
    finally:
        station.stop_quietly()
        idc.stop_quietly()
        proxy.close()

    final = read_status(station_dir)["counters"]
    frames = outbox_frames(outbox_path)
    arrivals = idc_arrivals(tmp_path / "idc")
    enqueued = {f.seq: f.enqueued_ns for f in frames}

    # the black hole held: nothing appended during the outage reached the IDC before the restore
    # (a window is framed once data time passed its end, so these were all appended after the outage began)
    frame_ns = FRAME_S * NS_PER_S
    held = [f.seq for f in frames if outage_ns <= f.nominal_time_ns <= restored_ns - frame_ns]
    assert len(held) >= OUTAGE_NS // frame_ns - 1
    assert all(arrivals[seq] >= restored_ns for seq in held)
    assert proxy.bytes_swallowed > 0

    # the sender noticed the dead link by itself and kept trying; the station never restarted
    assert during["reconnects"] >= before["reconnects"] + 2, (before, during)
    log_text = (station_dir / "station.log").read_text()
    assert "no acknack within" in log_text or "nothing received from the IDC" in log_text
    assert station.starts == 1
    assert final["frames_acked"] == expected

    # live first. The link is up again (after the sender's back-off and reconnect) no later than the first
    # arrival after the restore; frames appended from then on are live, older unacknowledged ones backlog.
    up_ns = min(t for t in arrivals.values() if t >= restored_ns)
    live = sorted(seq for seq, t in enqueued.items() if t > up_ns)
    backlog = [seq for seq, t in enqueued.items() if t < up_ns and arrivals[seq] >= restored_ns]
    assert live
    # live frames were acknowledged while backlog frames still waited ...
    assert any(left > 0 and highest >= live[0] for left, highest in snapshots), snapshots
    # ... and those appended in the first half of the drain reached the IDC before the backlog's last frame
    drained_ns = max(arrivals[seq] for seq in backlog)
    halfway_ns = up_ns + (drained_ns - up_ns) // 2
    early_live = [seq for seq in live if enqueued[seq] <= halfway_ns]
    assert early_live, "no live frame was appended while the backlog drained"
    late = [seq for seq in early_live if arrivals[seq] > drained_ns]
    assert not late, f"live frames {late[:5]}... waited for the whole backlog"

    # complete: every frame acknowledged, archived exactly once, no gap at the IDC
    assert [f.seq for f in frames] == list(range(1, expected + 1))
    assert all(f.acked for f in frames)
    gaps = idc_gap_list(tmp_path / "idc")
    assert (gaps.lowest, gaps.highest, gaps.gaps()) == (1, expected, [])
    for result in compare_archive(tmp_path / "idc", frames):
        assert result.exact, result.as_dict()
        assert result.archived_samples == result.truth_samples == expected * FRAME_S * 40
