"""Per-station results of a simulated run: delivery, latency, alarms raised and status bits seen.

Read from what the real processes left behind (the station's outbox and log, the IDC's raw frame
store), not from anything the harness kept in memory, so the report checks the system, not itself.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gci_link.cd11 import Cd11FormatError, decode_frame
from gci_link.cd11.timefmt import parse_time
from gci_link.station_end.outbox import Outbox
from hil.compare import ChannelComparison
from hil.rn_station import message_report
from idc.rn_report import PENDING, status
from idc.rn_store import RnIndex
from idc.stores import read_arrivals
from timeunits import NS_PER_S

if TYPE_CHECKING:  # hil.network builds the reports, so it cannot be imported here at run time
    from hil.network import SimStation

ALARM_LINE = re.compile(r'msg="alarm raised: [^"]*" .*?alarm=(\S+)')
GAP_LINE = re.compile(r'msg="digitizer data lost" .*?stream=(\S+) start="([^"]+)" end="([^"]+)"')


def reported_gaps(log_path: Path) -> dict[str, list[tuple[int, int]]]:
    """Stream -> [start ns, end ns) spans the station logged as lost by the digitizer link, as it
    worded them (CD-1.1 times, to the millisecond)."""
    gaps: dict[str, list[tuple[int, int]]] = {}
    if not log_path.exists():
        return gaps
    for stream, start, end in GAP_LINE.findall(log_path.read_text(errors="replace")):
        span = (parse_time(start.encode(), field="start", offset=0),
                parse_time(end.encode(), field="end", offset=0))
        gaps.setdefault(stream, []).append(span)
    return gaps


def station_report(
    out: Path, station: SimStation, comparisons: list[ChannelComparison], speed: float
) -> dict:
    spec = station.spec
    stats = None
    if station.outbox_path.exists():
        with Outbox(station.outbox_path, 1 << 40) as outbox:
            stats = outbox.stats()
    latencies, flags, archived = _idc_frames(out / "idc" / "raw" / f"{spec.name}.sqlite")
    log_path = out / "run" / "logs" / f"{spec.name}.log"
    alarms = (
        Counter(m.group(1) for m in ALARM_LINE.finditer(log_path.read_text(errors="replace")))
        if log_path.exists()
        else Counter()
    )
    lat = np.array(latencies) / NS_PER_S if latencies else np.zeros(0)
    return {
        "network": spec.network,
        "frames_sent": stats.frames if stats else 0,
        "frames_acknowledged": (stats.frames - stats.unacked_frames) if stats else 0,
        "frames_archived": archived,
        "samples_truth": sum(c.truth_samples for c in comparisons),
        "samples_lost": sum(c.lost for c in comparisons),
        "samples_duplicated": sum(c.duplicated for c in comparisons),
        "samples_corrupted": sum(c.corrupted + c.outside_truth for c in comparisons),
        # as the serial line damaged them past BRP's checksum and GCF's check: the protocol's limit
        "samples_line_undetected": sum(c.line_undetected for c in comparisons),
        "exact": all(c.exact for c in comparisons),
        "latency_sim_s": _percentiles(lat),
        "latency_real_s": _percentiles(lat / speed),
        "station_crashes": station.crashes,
        "alarms_raised": dict(alarms),
        "status_flags_at_idc": dict(flags),
        "channels": [c.as_dict() for c in comparisons],
    }


def _idc_frames(path: Path) -> tuple[list[int], Counter, int]:
    """Latency (arrival minus end of the newest sample) per frame, and frames per status flag set."""
    rows = read_arrivals(path)
    latencies: list[int] = []
    flags: Counter = Counter()
    for _, received_ns, raw in rows:
        try:
            frame = decode_frame(raw)
        except Cd11FormatError:
            continue
        channels = getattr(frame.body, "channels", ())
        if not channels:
            continue
        end = max(c.end_ns for c in channels)
        latencies.append(received_ns - end)
        for name in {n for c in channels if c.status.is_format1 for n, on in c.status.flags().items() if on}:
            flags[name] += 1
    return latencies, flags, len(rows)


def _percentiles(values: np.ndarray) -> dict[str, float | None]:
    if not len(values):
        return {"p50": None, "p99": None}
    return {
        "p50": round(float(np.percentile(values, 50)), 3),
        "p99": round(float(np.percentile(values, 99)), 3),
    }


def rn_station_report(out: Path, name: str, network: str, outbox_path: Path) -> dict:
    """A radionuclide station's messages per system: made (its outbox), acknowledged, stored at the IDC and
    stored byte for byte; what is missing, different or made twice; the data types stored."""
    systems = message_report(outbox_path, out / "idc" / "ims2", name) if outbox_path.exists() else {}
    log_path = out / "run" / "logs" / f"{name}.log"
    alarms = Counter(m.group(1) for m in ALARM_LINE.finditer(log_path.read_text(errors="replace"))) \
        if log_path.exists() else Counter()
    analyses = rn_analyses(out / "idc" / "ims2", name) if (out / "idc" / "ims2").exists() else []
    return {"network": network, "systems": {system: asdict(t) for system, t in systems.items()},
            "alarms_raised": dict(alarms), "analyses": analyses}


ANALYSIS_WAIT_S = 60.0  # real seconds the IDC's analysis may still take after the last sample arrived


def rn_analyses(idc_ims2_root: Path, station: str, wait_s: float = ANALYSIS_WAIT_S) -> list[dict]:
    """What the IDC's analysis made of each full sample spectrum the station sent, in the words of
    ``ims idc rn list`` (idc/rn_report.py); waits up to ``wait_s`` for those still pending (the receiver
    analyses each sample beside its data path, after the sample was acknowledged)."""
    deadline = time.monotonic() + wait_s
    while True:
        index = RnIndex(idc_ims2_root)
        try:
            samples = [m for m in index.find(station=station, data_type="SAMPLEPHD", limit=10**6)
                       if m.qualifier == "FULL"]
            found = [{"seq": m.seq, "srid": m.srid, "analysis": status(m, index.analysis(m))}
                     for m in samples]
        finally:
            index.close()
        if time.monotonic() >= deadline or all(f["analysis"] != PENDING for f in found):
            return found
        time.sleep(0.5)


def rn_samples_analysed(rn_stations: dict[str, dict]) -> bool:
    """Every full sample spectrum stored at the IDC has an analysis result (neither an error nor pending)."""
    analyses = [a["analysis"] for report in rn_stations.values() for a in report["analyses"]]
    return bool(analyses) and not any(a == PENDING or a.startswith("error") for a in analyses)


def rn_messages_exact(rn_stations: dict[str, dict]) -> bool:
    """Every radionuclide system sent messages, and every one was acknowledged and stored once, byte for
    byte, and none was made twice."""
    systems = [t for report in rn_stations.values() for t in report["systems"].values()]
    return len(systems) >= len(rn_stations) and all(
        t["sent"] > 0 and t["sent"] == t["acked"] == t["stored"] == t["exact"]
        and not (t["missing"] or t["different"] or t["duplicated_msg_ids"] or t["repeated_events"])
        for t in systems)
