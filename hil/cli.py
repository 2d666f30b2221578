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
        f"simulating {len(scenario.stations) + len(scenario.rn_stations)} stations for "
        f"{scenario.duration_s:.0f} s "
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
    return 0 if summary["passed"] else 1


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
    table = "\n".join(columns(rows)) + _rn_table(summary)
    verdict = "\n".join(
        f"{'ok  ' if ok else 'FAIL'} {CHECKS[name]}" for name, ok in summary["checks"].items()
    )
    return (
        f"\n{table}\n\nfaults: {_faults(summary)}\n{_gaps(summary)}\n{_undetected(summary)}\n"
        f"{_calibrations(summary)}\n"
        f"{_memory(summary)}\n\n"
        f"{_alarms(summary)}\n\n"
        f"{verdict}\n(latency in real seconds at {summary['speed']:g}x)\n\n{_how_to_read(summary, out)}"
    )


CHECKS = {
    "archive_equals_truth": "archive equals truth sample for sample (0 lost, 0 duplicated, 0 corrupted) "
    "outside the hardware's own gaps and the line damage no protocol check can see",
    "memory_flat": "memory flat: every process's last-window peak RSS within the bound",
    "no_false_alarms": "no false alarms: every alarm raised is explained by a fault injected at that station",
    "no_missed_alarms": "no missed alarms: every fault long enough to need its alarm raised it",
    "remote_calibration": "remote calibration: answered through ims idc command, its channel's subframes "
    "(and no other's) flagged \"calibration underway\" at the IDC",
    "rn_messages_exact": "radionuclide messages: every one acknowledged and stored at the IDC once, byte for "
    "byte, none made twice",
    "rn_samples_analysed": "radionuclide samples: every full sample spectrum analysed at the IDC, with a "
    "result",
}


PROBLEMS = ("missing", "different", "duplicated_msg_ids", "repeated_events")  # per system, in summary.json


def _rn_table(summary: dict) -> str:
    """One row per radionuclide system: messages made, acknowledged, stored, stored exactly; what arrived."""
    rn_stations = summary.get("rn_stations") or {}
    if not rn_stations:
        return ""
    rows = [("SYSTEM", "SENT", "ACKED", "STORED", "EXACT", "CRASHES", "ALARMS RAISED", "STORED BY DATA TYPE")]
    for name, station in rn_stations.items():
        for system, t in station["systems"].items():
            wrong = [f"{len(t[k])} {k.replace('_', ' ')}" for k in PROBLEMS if t[k]]
            rows.append((f"{name} {system}", str(t["sent"]), str(t["acked"]), str(t["stored"]),
                         str(t["exact"]) + (f" ({', '.join(wrong)})" if wrong else ""),
                         str(station["station_crashes"]), ",".join(sorted(station["alarms_raised"])) or "-",
                         ", ".join(f"{n} {label}" for label, n in sorted(t["data_types"].items())) or "-"))
    analysed = [f"{name} {a['srid']}: {a['analysis']}" for name, station in rn_stations.items()
                for a in station["analyses"]]
    return "\n\n" + "\n".join(columns(rows)) + "".join(f"\nanalysed at the IDC: {line}" for line in analysed)


def _calibrations(summary: dict) -> str:
    """One paragraph per remote calibration: the command, the station's verdict and fit, the IDC's view."""
    lines = []
    for c in summary.get("calibrations", []):
        answer = c["response"] if isinstance(c["response"], dict) else {}
        fit = ", ".join(f"{name} {answer[name][0]:.6g} ± {answer[name][1]:.2g}" for name in ("T0_s", "h", "G")
                        if name in answer)
        said = c["verdict"] or (c["response"] or "no answer")
        epochs = " -> ".join(f"{e['sensitivity']:.6g}" for e in c["stationxml_epochs"] if e["sensitivity"])
        problem = f"; {answer['problem']}" if "problem" in answer else ""
        lines += [
            f"remote calibration: ims idc command {c['station']} {c['command']} at {c['sent_at_s']:.0f} s: "
            f"{said}" + (f" ({fit})" if fit else "") + problem,
            f"  at the IDC: {c['subframes_flagged_at_idc']} of {c['subframes_at_idc']} subframes of the "
            f"channel flagged calibration underway ({c['other_channels_flagged_at_idc']} of other channels), "
            f"{c['sds_records_flagged']} SDS records with the calibration activity bit; StationXML "
            f"sensitivity per epoch {epochs or '-'} counts per ground unit",
        ]
    return "\n".join(lines) + "\n" if lines else ""


def _faults(summary: dict) -> str:
    begun = [f for f in summary["faults"] if f["phase"] == "begin"]
    if len(begun) > 12:  # a soak: counts per kind, the full list is in summary.json
        kinds: dict[str, int] = {}
        for f in begun:
            kinds[f["fault"]] = kinds.get(f["fault"], 0) + 1
        caught = sum(1 for f in begun if f.get("caught"))
        waited = sum(1 for f in begun if "when" in f)
        text = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        return f"{text} ({caught} of {waited} crashes aimed at archive writes caught in one)"
    return "; ".join(
        f"{f['fault']} {f['phase']} {f['station'] or 'IDC'} at {f['at_s']:.0f} s"
        + (f" ({f['caught'] or 'no archive write caught'})" if f.get("when") else "")
        for f in summary["faults"]
    ) or "none"


def _undetected(summary: dict) -> str:
    counts = {name: s["samples_line_undetected"] for name, s in summary["stations"].items()
              if s.get("samples_line_undetected")}
    if not counts:
        return "samples damaged by the line past BRP's checksum and GCF's check: none"
    listed = ", ".join(f"{name} {n}" for name, n in counts.items())
    return ("samples damaged by the line past BRP's checksum and GCF's check, archived as the line "
            f"delivered them: {listed}")


def _gaps(summary: dict) -> str:
    gaps = [g for s in summary["stations"].values() for g in s["gaps"]]
    if not gaps:
        return "gaps in the archive: none"
    lines = [f"gaps in the archive ({len(gaps)}):"]
    lines += [f"  {g['channel']} {g['start']} .. {g['end']} ({g['cause']})" for g in gaps[:20]]
    if len(gaps) > 20:
        lines.append(f"  ... {len(gaps) - 20} more in summary.json")
    return "\n".join(lines)


def _memory(summary: dict) -> str:
    memory = summary["memory"]
    rows = [("PROCESS", "PEAK RSS MiB PER WINDOW", "LIMIT", "CPU s", "PROCESSES")]
    for role, r in memory["roles"].items():
        peaks = r["peak_rss_mib_per_window"]
        shown = " ".join(f"{p:.0f}" for p in peaks) if len(peaks) <= 10 else (
            " ".join(f"{p:.0f}" for p in peaks[:4]) + " ... " + " ".join(f"{p:.0f}" for p in peaks[-4:]))
        rows.append((role, shown, f"{r['limit_mib']:.0f}" + ("" if r["flat"] else " EXCEEDED"),
                     f"{r['cpu_s']:.0f}", str(r["processes"])))
    window = memory["window_s"]
    return (f"memory (windows of {window / 3600:g} h simulated; {memory['bound']}):\n"
            + "\n".join(columns(rows)))


def _alarms(summary: dict) -> str:
    check = summary["alarm_check"]
    false = [a for a in check["alarms"] if a["explained_by"] is None]
    lines = [f"alarms: {len(check['alarms'])} raised, {len(false)} not explained by a fault, "
             f"{check['missed_alarms']} missed"]
    lines += [f"  FALSE {a['alarm']} at {a['station']} ({a['source']}) raised at {a['raised_s']:.0f} s"
              for a in false[:20]]
    lines += [f"  MISSED {' or '.join(f['expected_alarms'])} at {', '.join(f['missed_at'])} for {f['kind']} "
              f"{f['begin_s']:.0f}..{f['end_s']:.0f} s" for f in check["faults"] if f.get("missed_at")]
    return "\n".join(lines)


def _how_to_read(summary: dict, out: Path) -> str:
    sds = out / "idc" / "sds"
    rn = (f"radionuclide messages: ims idc rn list --config {out}/run/idc.toml, then ims idc rn show ID "
          f"--config {out}/run/idc.toml\n" if summary.get("rn_stations") else "")
    where = (f"IDC archive (SDS miniSEED): {sds}   ground truth: {out}/truth   summary: {out}/summary.json\n"
             f"{rn}")
    if not summary["stations"]:
        return where
    _, first = next(iter(summary["stations"].items()))
    site, chan, loc = first["channels"][0]["channel"].split(".")
    return (
        f"{where}"
        "read it with ObsPy:\n"
        "  from obspy import UTCDateTime; from obspy.clients.filesystem.sds import Client\n"
        f"  st = Client('{sds}').get_waveforms('{first['network']}', '{site}', '{loc}', '{chan}', "
        f"UTCDateTime('{summary['start']}'), "
        f"UTCDateTime('{summary['start']}') + {summary['simulated_s']:.0f})\n"
    )
