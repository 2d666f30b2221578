"""Per-station and per-channel link metrics in SQLite, shared by ``ims idc status`` and Prometheus.

Availability is measured from what was archived: the data-time coverage of each channel is kept as
merged intervals, so a window's availability is covered time / window and its gaps are the holes between
intervals. Counters (frames, duplicates, rejections by reason, channel authentication outcomes) and the
latest timeliness/latency inputs are plain rows. Both readers open their own connection, so the
Prometheus scrape thread never shares one with the receiver loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gci_link.clock import Clock
from gci_link.texttable import columns, duration
from idc.stores import open_wal
from idc.vocabulary import ChannelOutcome, StationCounter
from timeunits import NS_PER_S

_SCHEMA = """
CREATE TABLE IF NOT EXISTS coverage (station TEXT, channel TEXT, start_ns INTEGER, end_ns INTEGER,
                                     rate REAL);
CREATE INDEX IF NOT EXISTS coverage_by_end ON coverage (station, channel, end_ns);
CREATE TABLE IF NOT EXISTS channels (station TEXT, channel TEXT, newest_end_ns INTEGER, latency_ns INTEGER,
                                     authenticated INTEGER, failed INTEGER, unsigned INTEGER,
                                     PRIMARY KEY (station, channel));
CREATE TABLE IF NOT EXISTS counters (station TEXT, name TEXT, value INTEGER, PRIMARY KEY (station, name));
CREATE TABLE IF NOT EXISTS links (station TEXT PRIMARY KEY, connected INTEGER, last_heard_ns INTEGER,
                                  written_ns INTEGER);
"""


@dataclass(frozen=True)
class LinkState:
    """A station's session as the receiver last wrote it (``written_ns``: when, by the receiver's clock)."""

    station: str
    connected: bool
    last_heard_ns: int | None
    written_ns: int


@dataclass(frozen=True)
class ChannelReport:
    station: str
    channel: str  # SITE.CHAN.LOC
    availability_pct: float
    gap_count: int
    longest_gap_s: float
    timeliness_s: float | None
    latency_s: float | None
    authenticated_pct: float | None


_OUTCOMES = {
    ChannelOutcome.AUTHENTICATED: 0,
    ChannelOutcome.FAILED: 1,
    ChannelOutcome.UNSIGNED: 2,
    ChannelOutcome.UNVERIFIED: 2,  # not authenticated either; frames counted apart (unverified_archived)
}


class MetricsStore:
    """Writes link metrics as frames are archived or rejected; computes reports over a window.

    Updates are tallied in memory and written by ``flush`` (the receiver flushes about once a second,
    readers flush before they read): a receiver sees thousands of channel subframes a second, and one
    SQL statement each would cost more than archiving them. Metrics are not part of what is durable
    before an acknack; a crash loses at most the last unflushed tallies.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = open_wal(path, "NORMAL")
        self._db.executescript(_SCHEMA)
        # (station, channel) -> (rowid, end_ns) of its newest coverage interval, so in-order data
        # (nearly all of it) extends that row with one UPDATE instead of a merge query
        self._newest: dict[tuple[str, str], tuple[int, int]] = {}
        self._counters: dict[tuple[str, str], int] = {}  # unflushed increments
        # (station, channel) -> [authenticated, failed, unsigned, newest end_ns, latest latency_ns]
        self._tallies: dict[tuple[str, str], list] = {}
        self._runs: dict[tuple[str, str], list] = {}  # unflushed contiguous coverage [start, end, rate]

    def close(self) -> None:
        self.flush()
        self._db.close()

    def count(self, station: str, name: str, n: int = 1) -> None:
        """Add ``n`` to a per-station counter such as ``frames`` or ``rejected:crc``."""
        key = (station, name)
        self._counters[key] = self._counters.get(key, 0) + n

    def counters(self) -> dict[tuple[str, str], int]:
        self.flush()
        return {(s, n): v for s, n, v in self._db.execute("SELECT station, name, value FROM counters")}

    def channel_seen(
        self,
        station: str,
        channel: str,
        outcome: ChannelOutcome,
        latency_ns: int | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        rate: float = 0.0,
    ) -> None:
        """One subframe: its authentication outcome and, if archived, its data-time span and latency."""
        index = _OUTCOMES.get(outcome)
        if index is None:
            raise ValueError(f"unknown channel authentication outcome {outcome!r}")
        key = (station, channel)
        tally = self._tallies.get(key)
        if tally is None:
            tally = self._tallies[key] = [0, 0, 0, None, None]
        tally[index] += 1
        if start_ns is None or end_ns is None:
            return
        tally[3] = end_ns if tally[3] is None else max(tally[3], end_ns)
        if latency_ns is not None:
            tally[4] = latency_ns
        run = self._runs.get(key)
        if run is not None:
            if abs(start_ns - run[1]) <= _slack(rate) and end_ns >= run[1]:
                run[1] = end_ns  # continues the run (touching within half a sample)
                return
            self._add_coverage(station, channel, *run)
        self._runs[key] = [start_ns, end_ns, rate]

    def flush(self) -> None:
        """Write the tallies gathered since the last flush, in one transaction."""
        if not (self._counters or self._tallies or self._runs):
            return
        counters, self._counters = self._counters, {}
        tallies, self._tallies = self._tallies, {}
        runs, self._runs = self._runs, {}
        self._db.execute("BEGIN")
        try:
            self._db.executemany(
                "INSERT INTO counters VALUES (?, ?, ?) "
                "ON CONFLICT (station, name) DO UPDATE SET value = value + excluded.value",
                [(*key, n) for key, n in counters.items()],
            )
            self._db.executemany(
                "INSERT INTO channels VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
                "authenticated = authenticated + excluded.authenticated, "
                "failed = failed + excluded.failed, unsigned = unsigned + excluded.unsigned, "
                "newest_end_ns = MAX(COALESCE(newest_end_ns, excluded.newest_end_ns), "
                "COALESCE(excluded.newest_end_ns, newest_end_ns)), "
                "latency_ns = COALESCE(excluded.latency_ns, latency_ns)",
                [
                    (*key, newest, latency, ok, failed, unsigned)
                    for key, (ok, failed, unsigned, newest, latency) in tallies.items()
                ],
            )
            for (station, channel), run in runs.items():
                self._add_coverage(station, channel, *run)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _add_coverage(self, station: str, channel: str, start_ns: int, end_ns: int, rate: float) -> None:
        """Merge [start, end) into the channel's intervals (touching within half a sample counts)."""
        slack = _slack(rate)
        key = (station, channel)
        newest = self._newest.get(key)
        if newest is not None and abs(start_ns - newest[1]) <= slack and end_ns >= newest[1]:
            # continues the newest interval: nothing later can touch it, so extending it is the merge
            updated = self._db.execute(
                "UPDATE coverage SET end_ns = ? WHERE rowid = ? AND end_ns = ?", (end_ns, *newest)
            ).rowcount
            if updated:
                self._newest[key] = (newest[0], end_ns)
                return
        rows = self._db.execute(
            "SELECT rowid, start_ns, end_ns FROM coverage WHERE station = ? AND channel = ? "
            "AND end_ns >= ? AND start_ns <= ?",
            (station, channel, start_ns - slack, end_ns + slack),
        ).fetchall()
        for rowid, s, e in rows:
            start_ns, end_ns = min(start_ns, s), max(end_ns, e)
            self._db.execute("DELETE FROM coverage WHERE rowid = ?", (rowid,))
        self._db.execute(
            "INSERT INTO coverage VALUES (?, ?, ?, ?, ?)", (station, channel, start_ns, end_ns, rate)
        )
        self._newest[key] = self._db.execute(
            "SELECT rowid, end_ns FROM coverage WHERE station = ? AND channel = ? "
            "ORDER BY end_ns DESC LIMIT 1",
            key,
        ).fetchone()

    def record_links(self, now_ns: int, heard: dict[str, int | None], connected: set[str]) -> None:
        """Each station's session state: whether one is open now, and when a frame last came."""
        self._db.execute("BEGIN")
        self._db.executemany(
            "INSERT INTO links VALUES (?, ?, ?, ?) ON CONFLICT (station) DO UPDATE SET "
            "connected = excluded.connected, "
            "last_heard_ns = COALESCE(excluded.last_heard_ns, last_heard_ns), "
            "written_ns = excluded.written_ns",
            [(station, station in connected, last, now_ns) for station, last in heard.items()],
        )
        self._db.execute("COMMIT")

    def links(self) -> list[LinkState]:
        return [
            LinkState(station, bool(connected), last, written)
            for station, connected, last, written in self._db.execute(
                "SELECT station, connected, last_heard_ns, written_ns FROM links ORDER BY station"
            )
        ]

    def channel_gaps(self, station: str, now_ns: int, window_s: int) -> dict[str, list[tuple[int, int]]]:
        """Per channel of ``station``, the holes [start, end) between archived data within the window,
        the same holes ``channel_reports`` counts."""
        self.flush()
        start = now_ns - window_s * NS_PER_S
        spans: dict[str, list[tuple[int, int]]] = {}
        for channel, s, e in self._db.execute(
            "SELECT channel, MAX(start_ns, ?), MIN(end_ns, ?) FROM coverage WHERE station = ? "
            "AND end_ns > ? AND start_ns < ? ORDER BY channel, start_ns",
            (start, now_ns, station, start, now_ns),
        ):
            spans.setdefault(channel, []).append((s, e))
        return {
            channel: [(a[1], b[0]) for a, b in zip(found, found[1:], strict=False) if b[0] > a[1]]
            for channel, found in spans.items()
        }

    def prune(self, before_ns: int) -> None:
        """Forget coverage that ended before ``before_ns`` (keeps the table bounded)."""
        self._db.execute("DELETE FROM coverage WHERE end_ns < ?", (before_ns,))

    def channel_reports(self, now_ns: int, window_s: int) -> list[ChannelReport]:
        self.flush()
        start = now_ns - window_s * NS_PER_S
        reports = []
        channels = self._db.execute(
            "SELECT station, channel, newest_end_ns, latency_ns, authenticated, failed, unsigned "
            "FROM channels ORDER BY station, channel"
        ).fetchall()
        for station, channel, newest, latency, ok, failed, unsigned in channels:
            spans = self._db.execute(
                "SELECT MAX(start_ns, ?), MIN(end_ns, ?) FROM coverage WHERE station = ? AND channel = ? "
                "AND end_ns > ? AND start_ns < ? ORDER BY start_ns",
                (start, now_ns, station, channel, start, now_ns),
            ).fetchall()
            covered = sum(e - s for s, e in spans)
            holes = [b[0] - a[1] for a, b in zip(spans, spans[1:], strict=False) if b[0] > a[1]]
            total = ok + failed + unsigned
            reports.append(
                ChannelReport(
                    station,
                    channel,
                    availability_pct=100.0 * covered / (window_s * NS_PER_S) if window_s else 0.0,
                    gap_count=len(holes),
                    longest_gap_s=max(holes, default=0) / NS_PER_S,
                    timeliness_s=None if newest is None else (now_ns - newest) / NS_PER_S,
                    latency_s=None if latency is None else latency / NS_PER_S,
                    authenticated_pct=100.0 * ok / total if total else None,
                )
            )
        return reports


def _slack(rate: float) -> int:
    """Half a sample: spans closer than this touch."""
    return int(NS_PER_S / rate / 2) if rate > 0 else 0


def format_table(reports: list[ChannelReport], counters: dict[tuple[str, str], int]) -> str:
    """The ``ims idc status`` table: one line per channel, then per-station counters."""

    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    rows = [("STATION", "CHANNEL", "AVAIL%", "GAPS", "LONGEST GAP", "NEWEST SAMPLE AGO", "LATENCY", "AUTH%")]
    rows += [(r.station, r.channel, f"{r.availability_pct:.2f}", str(r.gap_count), duration(r.longest_gap_s),
              duration(r.timeliness_s), duration(r.latency_s), num(r.authenticated_pct, ".1f"))
             for r in reports]
    lines = columns(rows)
    if counters:
        lines.append("")
        totals: list[tuple[str, ...]] = [("STATION", "COUNTER", "VALUE")]
        totals += [(station, name, str(value)) for (station, name), value in sorted(counters.items())]
        lines += columns(totals)
    return "\n".join(lines)


# StationCounter -> (family without _total, help); rejections and failed handshakes have a reason label
EVENT_FAMILIES: dict[str, tuple[str, str]] = {
    StationCounter.FRAMES: ("ims_idc_frames_archived", "Data and IMS 2.0 frames made durable"),
    StationCounter.DUPLICATES: ("ims_idc_duplicate_frames", "Frames received again and not archived twice"),
    StationCounter.CONNECTIONS: ("ims_idc_connections", "Connection requests accepted"),
    StationCounter.CONNECT_RATE_LIMITED: ("ims_idc_connections_rate_limited",
                                          "Connection requests refused for their rate"),
    StationCounter.COMMAND_RESPONSES: ("ims_idc_command_responses", "Command responses received"),
    StationCounter.SEND_FAILED: ("ims_idc_send_failures", "Frames the receiver could not send"),
    StationCounter.SYNC_FAILED: ("ims_idc_sync_failures", "Archive syncs that failed"),
    StationCounter.REJECTION_UNRECORDED: ("ims_idc_rejections_unrecorded",
                                          "Rejections the quarantine could not record"),
    StationCounter.UNVERIFIED_ARCHIVED: ("ims_idc_unverified_frames_archived",
                                         "Frames with unknown keys archived under the unverified policy"),
}
REJECTIONS = ("ims_idc_rejections", "Messages refused, by reason (docs/idc-receiver.md)")
HANDSHAKE_FAILURES = ("ims_idc_handshake_failures", "Connections refused before any message, by reason")
CHANNEL_LABELS = ["station", "site", "channel", "location"]


def _authenticated_ratio(report: ChannelReport) -> float | None:
    return None if report.authenticated_pct is None else report.authenticated_pct / 100


def _channel_labels(station: str, code: str) -> list[str]:
    site, _, rest = code.partition(".")
    channel, _, location = rest.partition(".")
    return [station, site, channel, location]


class MetricsCollector(Collector):
    """Prometheus view of a metrics database, computed at scrape time from its own connection.

    Conventions (docs/idc-receiver.md, "Metrics"): one meaning per family, base units (seconds,
    ratios), ``_total`` on counters, a channel's site, channel and location as separate labels."""

    def __init__(self, path: Path, window_s: int, clock: Clock) -> None:
        self._path = path
        self._window_s = window_s
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        store = MetricsStore(self._path)
        try:
            reports = store.channel_reports(self._clock(), self._window_s)
            counters = store.counters()
        finally:
            store.close()
        yield GaugeMetricFamily("ims_idc_metrics_window_seconds", "Window of the channel gauges",
                                value=float(self._window_s))
        gauges = {
            "availability_ratio": ("Archived share of the window", lambda r: r.availability_pct / 100),
            "gaps": ("Holes between archived data in the window", lambda r: r.gap_count),
            "longest_gap_seconds": ("Longest hole in the window", lambda r: r.longest_gap_s),
            "timeliness_seconds": ("Now minus the end of the newest sample", lambda r: r.timeliness_s),
            "latency_seconds": ("Arrival minus the end of the last frame's data", lambda r: r.latency_s),
            "authenticated_ratio": ("Share of subframes whose signature verified", _authenticated_ratio),
        }
        for name, (doc, value_of) in gauges.items():
            gauge = GaugeMetricFamily(f"ims_idc_channel_{name}", doc, labels=CHANNEL_LABELS)
            for r in reports:
                v = value_of(r)
                if v is not None:
                    gauge.add_metric(_channel_labels(r.station, r.channel), float(v))
            yield gauge
        events = {key: CounterMetricFamily(name, doc, labels=["station"])
                  for key, (name, doc) in EVENT_FAMILIES.items()}
        rejections = CounterMetricFamily(*REJECTIONS, labels=["station", "reason"])
        handshakes = CounterMetricFamily(*HANDSHAKE_FAILURES, labels=["reason"])
        for (station, event), count in sorted(counters.items()):
            kind, _, reason = event.partition(":")
            if event in events:
                events[event].add_metric([station], count)
            elif kind == "rejected":
                rejections.add_metric([station, reason], count)
            elif kind == "handshake_failed":
                handshakes.add_metric([reason], count)
        yield from events.values()
        yield rejections
        yield handshakes
