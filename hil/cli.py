"""``ims hil run``: a simulated IMS network end to end (the main demo), with faults and ground truth."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from gci_link.texttable import columns

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("hil", help="simulated hardware and demo runs")
    sub = parser.add_subparsers(dest="hil_command", required=True, metavar="ACTION")
    run = sub.add_parser("run", help="run a simulated network scenario (the embedded default without one)")
    run.add_argument("scenario", nargs="?", type=Path, help="scenario TOML (see hil/scenarios/default.toml)")
    run.add_argument("--out", type=Path, default=Path("demo-out"), help="output folder (default demo-out)")
    run.add_argument("--speed", type=float, help="override the scenario's simulated seconds per real second")
    run.add_argument("--duration", type=float, help="override the simulated duration in seconds")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from hil import scenario as scenarios
    from hil.diskfill import DiskUnavailable
    from hil.network import Network
    from hil.screenshots import ConsoleCamera, plan

    overrides = {k: v for k, v in (("speed", args.speed), ("duration_s", args.duration)) if v is not None}
    try:
        scenario = scenarios.load(args.scenario, overrides)
    except scenarios.ScenarioError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(
        f"simulating {len(scenario.stations)} stations for {scenario.duration_s:.0f} s "
        f"at {scenario.speed:g}x ({scenario.duration_s / scenario.speed:.0f} s real) into {args.out}/",
        file=sys.stderr,
    )
    camera = ConsoleCamera(args.out / "screenshots", plan(scenario))
    try:
        summary = Network(scenario, args.out, show_progress=not args.no_progress, observe=camera).run()
    except DiskUnavailable as exc:
        print(f"ims hil run: {exc}", file=sys.stderr)
        return 2
    finally:
        camera.join()
    print(render_summary(summary, args.out))
    if camera.missing:
        print(f"console screenshots skipped: {camera.missing}")
    else:
        print(f"console screenshots ({len(camera.saved)}): {args.out}/screenshots/")
    return 0 if summary["zero_loss"] else 1


def render_summary(summary: dict, out: Path) -> str:
    rows = [
        (
            "STATION",
            "SENT",
            "ACKED",
            "ARCHIVED",
            "SAMPLES",
            "LOST",
            "DUPL",
            "CORRUPT",
            "LATENCY p50/p99 s",
            "CRASHES",
            "ALARMS RAISED",
            "STATUS BITS AT IDC",
        )
    ]
    for name, s in summary["stations"].items():
        lat = s["latency_real_s"]
        rows.append(
            (
                name,
                str(s["frames_sent"]),
                str(s["frames_acknowledged"]),
                str(s["frames_archived"]),
                str(s["samples_truth"]),
                str(s["samples_lost"]),
                str(s["samples_duplicated"]),
                str(s["samples_corrupted"]),
                f"{lat['p50']}/{lat['p99']}",
                str(s["station_crashes"]),
                ",".join(sorted(s["alarms_raised"])) or "-",
                ",".join(sorted(s["status_flags_at_idc"])) or "-",
            )
        )
    table = "\n".join(columns(rows))
    faults = (
        "; ".join(
            f"{f['fault']} {f['phase']} {f['station'] or 'IDC'} at {f['at_s']:.0f} s"
            for f in summary["faults"]
        )
        or "none"
    )
    verdict = (
        "zero loss: truth equals archive sample for sample"
        if summary["zero_loss"]
        else "DATA DIFFERS between truth and archive: see summary.json"
    )
    name, first = next(iter(summary["stations"].items()))
    site, chan, loc = first["channels"][0]["channel"].split(".")
    sds = out / "idc" / "sds"
    return (
        f"\n{table}\n\nfaults: {faults}\n{verdict}  (latency in real seconds at {summary['speed']:g}x)\n\n"
        f"IDC archive (SDS miniSEED): {sds}   ground truth: {out}/truth   summary: {out}/summary.json\n"
        "read it with ObsPy:\n"
        "  from obspy import UTCDateTime; from obspy.clients.filesystem.sds import Client\n"
        f"  st = Client('{sds}').get_waveforms('{first['network']}', '{site}', '{loc}', '{chan}', "
        f"UTCDateTime('{summary['start']}'), "
        f"UTCDateTime('{summary['start']}') + {summary['simulated_s']:.0f})\n"
    )
