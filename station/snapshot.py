"""The daemon's status snapshot: written atomically every few seconds, read by ``ims station status``.

A file, not a socket, so the operator can see the last known state even when the daemon is down.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from gci_link.cd11.timefmt import iso
from gci_link.texttable import columns, duration

SNAPSHOT_NAME = "status.json"


def write_snapshot(state_dir: Path, snapshot: dict[str, Any]) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_dir / (SNAPSHOT_NAME + ".tmp")
    tmp.write_text(json.dumps(snapshot, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, state_dir / SNAPSHOT_NAME)


def read_snapshot(state_dir: Path) -> dict[str, Any]:
    path = state_dir / SNAPSHOT_NAME
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{path}: no status snapshot (has the station daemon run yet?)") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: unreadable status snapshot: {exc}") from exc


def health(snapshot: dict[str, Any], running: bool, now_ns: int, stale_after_s: float) -> list[str]:
    """Why the station is unhealthy (empty: healthy), for ``ims station status`` and monitoring checks:
    its daemon does not run, its snapshot is older than ``stale_after_s`` (a daemon that hangs), or an
    alarm is active (link down, delivery backlog, GPS unlocked, SOH out of band, outbox over budget...)."""
    problems = []
    if not running:
        problems.append("the station daemon is not running")
    age_s = (now_ns - snapshot["written_ns"]) / 1e9
    if age_s > stale_after_s:
        problems.append(f"status snapshot is {duration(age_s)} old (daemon hung?)")
    problems += [f"alarm {a['name']} ({a['source']}) since {iso(a['raised_ns'])}" if a.get("raised_ns")
                 else f"alarm {a['name']} ({a['source']})" for a in snapshot.get("alarms", [])]
    return problems


def render(snapshot: dict[str, Any], problems: list[str] | None = None, running: bool | None = None) -> str:
    """Operator's view: health, link and outbox, channels, digitizers, then the SOH table."""
    written = snapshot["written_ns"]
    age_s = (time.time_ns() - written) / 1e9
    state = "running" if (snapshot.get("running") if running is None else running) else "stopped"
    lines = [f"station {snapshot['station']}  ({state}; snapshot of {iso(written)}, {duration(age_s)} old)"]
    if problems is not None:
        lines.append("health  " + ("OK" if not problems else "UNHEALTHY: " + "; ".join(problems)))
    lines.append("")
    link, outbox = snapshot["link"], snapshot["outbox"]
    lines.append(
        f"link    state={link['state']} sent={link['frames_sent']} acked={link['frames_acked']} "
        f"resent={link['frames_resent']} reconnects={link['reconnects']} "
        f"refused_from_idc={link.get('idc_frames_refused', 0)} "
        f"rejected_by_idc={link.get('frames_rejected_by_idc', 0)}"
        + ("" if link.get("idc_authenticated", True) else " IDC-FRAMES-UNCHECKED")
    )
    lines.append(
        f"outbox  frames={outbox['frames']} unacked={outbox['unacked_frames']} "
        f"bytes={outbox['bytes']} budget={outbox['budget_bytes']} "
        f"over_budget={outbox['over_budget']}"
    )
    lines.append("")
    rows = [("CHANNEL", "SAMPLES", "GAPS", "OVERLAPS", "LATE", "TEARS", "COMPLETE UNTIL (UTC)")]
    for code, ch in sorted(snapshot["channels"].items()):
        rows.append(
            (
                code,
                str(ch["samples"]),
                str(ch["gaps"]),
                str(ch["duplicate_samples"]),
                str(ch["late_packets"]),
                str(ch["time_tears"]),
                ch["complete_until"] or "-",
            )
        )
    lines += columns(rows) + [""]
    rows = [("DIGITIZER", "BLOCKS", "CHECKSUM", "RIC", "RESYNCS", "GAPS", "REOPENS")]
    for name, d in sorted(snapshot["digitizers"].items()):
        rows.append(
            (
                name,
                str(d["blocks"]),
                str(d["checksum_failures"]),
                str(d["ric_mismatches"]),
                str(d["resyncs"]),
                str(d["gaps"]),
                str(d["watchdog_reopens"] + d["port_errors"]),
            )
        )
    lines += columns(rows) + [""]
    if snapshot.get("radionuclide"):
        lines += columns(_radionuclide_rows(snapshot["radionuclide"])) + [""]
    lines.append(snapshot["soh_table"])
    return "\n".join(lines)


def _radionuclide_rows(systems: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per radionuclide system: its count, its messages (stored in the outbox, still waiting
    for the IDC's acknowledgement, acknowledged) and its alarms."""
    rows: list[tuple[str, ...]] = [
        ("RADIONUCLIDE", "KIND", "COUNT", "MESSAGES", "PENDING", "ACKED", "QUARANTINED", "ALARMS")]
    for name, rn in sorted(systems.items()):
        messages = rn.get("messages", {})
        count = rn.get("count") or {}
        rows.append((name, rn.get("kind", "-"), count.get("key", "-"), str(messages.get("stored", "-")),
                     str(messages.get("pending", "-")), str(messages.get("acked", "-")),
                     str(rn.get("quarantined", "-")),
                     " ".join(a["name"] for a in rn.get("alarms", [])) or "none"))
    return rows
