"""Metrics tallied in memory and flushed in one transaction: what readers see is the same as if every
subframe had been written at once, including data that arrives out of order (resent gaps)."""

from __future__ import annotations

import pytest

from idc.metrics import MetricsStore
from timeunits import NS_PER_S

NOW = 1_704_067_200 * NS_PER_S
CHANNEL = "STA1A.BHZ.00"


def _seen(store: MetricsStore, block: int, outcome: str = "authenticated") -> None:
    """The 10 s block ``block`` of the last 60 s (0 = oldest), archived."""
    start = NOW - 60 * NS_PER_S + block * 10 * NS_PER_S
    store.channel_seen(
        "STA1", CHANNEL, outcome,
        latency_ns=block * NS_PER_S, start_ns=start, end_ns=start + 10 * NS_PER_S, rate=40.0,
    )


def test_backfilled_blocks_close_the_gap_across_flushes(tmp_path):
    store = MetricsStore(tmp_path / "m.sqlite")
    for block in (0, 1, 4, 5):  # blocks 2 and 3 are late (resent after an outage)
        _seen(store, block)
    store.flush()
    report = store.channel_reports(NOW, 60)[0]
    assert report.availability_pct == pytest.approx(100 * 4 / 6)
    assert (report.gap_count, report.longest_gap_s) == (1, 20.0)
    _seen(store, 3)
    _seen(store, 2)
    report = store.channel_reports(NOW, 60)[0]  # readers flush first
    assert report.availability_pct == pytest.approx(100.0)
    assert report.gap_count == 0
    assert report.latency_s == pytest.approx(2.0)  # the latest subframe's latency
    assert report.timeliness_s == pytest.approx(0.0)  # newest end is block 5's, not the backfill's
    store.close()


def test_tallies_reach_other_readers_on_flush_and_close(tmp_path):
    path = tmp_path / "m.sqlite"
    writer = MetricsStore(path)
    _seen(writer, 0)
    _seen(writer, 1, "failed")
    writer.count("STA1", "frames", 2)
    writer.count("STA1", "frames")
    reader = MetricsStore(path)
    assert reader.counters() == {}  # nothing flushed yet
    writer.flush()
    assert reader.counters() == {("STA1", "frames"): 3}
    assert reader.channel_reports(NOW, 60)[0].authenticated_pct == pytest.approx(50.0)
    writer.count("STA1", "frames")
    writer.close()  # closing flushes
    assert reader.counters() == {("STA1", "frames"): 4}
    reader.close()


def test_unknown_outcome_is_refused(tmp_path):
    store = MetricsStore(tmp_path / "m.sqlite")
    with pytest.raises(ValueError, match="unknown channel authentication outcome"):
        store.channel_seen("STA1", CHANNEL, "maybe")
    store.close()


def test_gaps_are_the_holes_the_report_counts(tmp_path):
    store = MetricsStore(tmp_path / "m.sqlite")
    for block in (0, 1, 3, 5):
        _seen(store, block)
    gaps = store.channel_gaps("STA1", NOW, 60)
    report = store.channel_reports(NOW, 60)[0]
    s = NS_PER_S
    assert gaps == {CHANNEL: [(NOW - 40 * s, NOW - 30 * s), (NOW - 20 * s, NOW - 10 * s)]}
    assert report.gap_count == len(gaps[CHANNEL]) and report.longest_gap_s == 10.0
    assert store.channel_gaps("OTHER", NOW, 60) == {}
    store.close()


def test_links_keep_the_last_frame_time_when_a_session_closes(tmp_path):
    store = MetricsStore(tmp_path / "m.sqlite")
    store.record_links(NOW, {"STA1": NOW - NS_PER_S, "STA2": None}, {"STA1"})
    store.record_links(NOW + NS_PER_S, {"STA1": None, "STA2": None}, set())  # STA1's session closed
    links = {link.station: link for link in store.links()}
    assert not links["STA1"].connected and links["STA1"].last_heard_ns == NOW - NS_PER_S
    assert links["STA1"].written_ns == NOW + NS_PER_S
    assert not links["STA2"].connected and links["STA2"].last_heard_ns is None
    store.close()
