"""The network's state as one JSON document: ``ims idc status --json`` prints it, the console shows it.

Both call :func:`network_status` on the metrics database, so every number on the console is the number
the command gives for the same moment. Per station it rolls up its channels (mean availability, worst
timeliness and latency) and its counters (frames, rejections by reason, frames per status flag);
``connected`` is whether the receiver held a session open when it last wrote the link table. Input that
named no station the receiver could read is counted apart, under ``anonymous``: it is not a station.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

from idc.metrics import MetricsStore
from idc.vocabulary import ANONYMOUS, STATUS_FLAG_PREFIX, StationCounter
from timeunits import NS_PER_S

REJECTED_PREFIX = "rejected:"
RECENT_REJECTIONS = 50


def network_status(store: MetricsStore, now_ns: int, window_s: int) -> dict[str, Any]:
    reports = store.channel_reports(now_ns, window_s)
    counters = store.counters()
    links = {link.station: link for link in store.links()}
    stations: dict[str, dict[str, Any]] = {}

    def entry(station: str) -> dict[str, Any]:
        if station not in stations:
            link = links.get(station)
            stations[station] = {
                "station": station,
                "connected": bool(link and link.connected),
                "last_heard_ns": link.last_heard_ns if link else None,
                "link_written_ns": link.written_ns if link else None,  # when the receiver last said so
                "channels": 0,
                "availability_pct": None,
                "gaps": 0,
                "timeliness_s": None,
                "latency_s": None,
                "authenticated_pct": None,
                "frames": 0,
                "duplicates": 0,
                "rejected": {},
                "rejected_total": 0,
                "status_flags": {},  # CD-1.1 flag -> archived frames that carried it
            }
        return stations[station]

    by_station: dict[str, list[Any]] = {}
    for r in reports:
        by_station.setdefault(r.station, []).append(r)
    for station, rows in by_station.items():
        e = entry(station)
        e["channels"] = len(rows)
        e["availability_pct"] = sum(r.availability_pct for r in rows) / len(rows)
        e["gaps"] = sum(r.gap_count for r in rows)
        e["timeliness_s"] = _worst([r.timeliness_s for r in rows], max)
        e["latency_s"] = _worst([r.latency_s for r in rows], max)
        e["authenticated_pct"] = _worst([r.authenticated_pct for r in rows], min)
    anonymous: dict[str, int] = {}
    for (station, name), value in counters.items():
        if station == ANONYMOUS:
            anonymous[name] = value
            continue
        e = entry(station)
        if name.startswith(REJECTED_PREFIX):
            e["rejected"][name.removeprefix(REJECTED_PREFIX)] = value
            e["rejected_total"] += value
        elif name.startswith(STATUS_FLAG_PREFIX):
            e["status_flags"][name.removeprefix(STATUS_FLAG_PREFIX)] = value
        elif name == StationCounter.FRAMES:
            e["frames"] = value
        elif name == StationCounter.DUPLICATES:
            e["duplicates"] = value
    for station in links:
        entry(station)
    return {
        "now_ns": now_ns,
        "window_s": window_s,
        "stations": [stations[s] for s in sorted(stations)],
        "anonymous": anonymous,
        "channels": [dataclasses.asdict(r) for r in reports],
        "counters": [{"station": s, "name": n, "value": v} for (s, n), v in sorted(counters.items())],
    }


def station_status(store: MetricsStore, quarantine: Path, station: str, now_ns: int, window_s: int
                   ) -> dict[str, Any] | None:
    """One station's row of :func:`network_status`, its channels with their gaps, its counters and its
    most recent rejections; None for a station the receiver has no record of."""
    network = network_status(store, now_ns, window_s)
    row = next((s for s in network["stations"] if s["station"] == station), None)
    if row is None:
        return None
    gaps = store.channel_gaps(station, now_ns, window_s)
    channels = [
        c | {"gap_list": [{"start_ns": a, "end_ns": b, "seconds": (b - a) / NS_PER_S} for a, b in gaps.get(
            c["channel"], [])]}
        for c in network["channels"] if c["station"] == station
    ]
    return {
        "now_ns": now_ns,
        "window_s": window_s,
        "station": row,
        "channels": channels,
        "counters": [c for c in network["counters"] if c["station"] == station],
        "rejections": recent_rejections(quarantine, station),
    }


def recent_rejections(path: Path, station: str, limit: int = RECENT_REJECTIONS) -> list[dict[str, Any]]:
    """The newest rejections of ``station`` in the quarantine (read-only), newest first."""
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        rows = db.execute(
            "SELECT received_ns, peer, seq, reason, size FROM quarantine WHERE station = ? "
            "ORDER BY id DESC LIMIT ?",
            (station, limit),
        ).fetchall()
    finally:
        db.close()
    return [{"received_ns": t, "peer": p, "seq": q, "reason": r, "size": n} for t, p, q, r, n in rows]


def _worst(values: list[float | None], pick: Any) -> float | None:
    known = [v for v in values if v is not None]
    return pick(known) if known else None


def availability_csv(status: dict[str, Any]) -> str:
    """The network table as CSV; a cell that a spreadsheet would take for a formula is quoted as text."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["station", "connected", "channels", "availability_pct", "gaps", "timeliness_s",
                     "latency_s", "authenticated_pct", "frames", "duplicates", "rejected_total"])
    for s in status["stations"]:
        writer.writerow([_cell(s["station"]), int(s["connected"]), s["channels"], _num(s["availability_pct"]),
                         s["gaps"], _num(s["timeliness_s"]), _num(s["latency_s"]),
                         _num(s["authenticated_pct"]), s["frames"], s["duplicates"], s["rejected_total"]])
    return out.getvalue()


def _num(value: float | None) -> str:
    return "" if value is None else repr(value)


def _cell(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
