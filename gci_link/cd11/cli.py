"""``ims cd11 dump FILE...``: show what a stored CD-1.1 frame contains, or why it is not one."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .bodies import FrameType
from .data import ChannelSubframe, DataBody
from .errors import Cd11FormatError
from .frame import Frame, decode_frame
from .status import ChannelStatus
from .timefmt import iso

FIRST_SAMPLES = 10


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("cd11", help="CD-1.1 frame tools")
    sub = parser.add_subparsers(dest="cd11_command", required=True, metavar="ACTION")
    dump = sub.add_parser("dump", help="print header, trailer, channels, status flags and sample statistics")
    dump.add_argument("files", nargs="+", type=Path, metavar="FILE")
    dump.add_argument("--json", action="store_true", help="one JSON object per file")
    dump.add_argument("--samples", action="store_true", help="include every sample")
    dump.set_defaults(func=run_dump)


def _type_name(code: int) -> str:
    try:
        return FrameType(code).name
    except ValueError:
        return str(code)


def _channel_summary(c: ChannelSubframe, with_samples: bool) -> dict:
    x = c.samples
    out = {
        "site": c.site,
        "channel": c.channel,
        "location": c.location,
        "data_format": c.data_format,
        "transformation": c.transformation,
        "sensor_type": c.sensor_type,
        "option_flag": c.option_flag,
        "calib": c.calib,
        "calper": c.calper,
        "time": iso(c.time_ns),
        "time_ns": c.time_ns,
        "time_length_ms": c.time_length_ms,
        "nsamp": c.nsamp,
        "sample_rate": c.sample_rate,
        "data_size": len(c.data),
        "v0": c.v0,
        "subframe_count": c.subframe_count,
        "auth_key_id": c.auth_key_id,
        "auth_size": len(c.auth_value),
        "auth_offset_convention": c.auth_offset_convention,
        "status": _status_summary(c.status),
        "min": int(x.min()) if x.size else None,
        "max": int(x.max()) if x.size else None,
        "mean": float(np.mean(x)) if x.size else None,
        "first_samples": x[:FIRST_SAMPLES].tolist(),
    }
    if with_samples:
        out["samples"] = x.tolist()
    return out


def _status_summary(status: ChannelStatus) -> dict[str, Any]:
    out: dict[str, Any] = {"format": status.format, "size": len(status.raw), "hex": status.raw.hex()}
    if status.is_format1:
        sync = status.last_gps_sync_ns
        out.update(
            flags_set=[name for name, on in status.flags().items() if on],
            undefined_bytes=status.undefined_bytes.hex(),
            last_gps_sync=iso(sync) if sync is not None else None,
            clock_differential_us=status.clock_differential_us,
        )
    return out


def summarize(frame: Frame, with_samples: bool = False) -> dict:
    """A JSON-ready description of a frame."""
    h, t = frame.header, frame.trailer
    out = {
        "header": {**dataclasses.asdict(h), "frame_type_name": _type_name(h.frame_type)},
        "trailer": {"auth_key_id": t.auth_key_id, "auth_size": len(t.auth_value), "crc": f"{t.crc:016x}"},
    }
    body = frame.body
    if isinstance(body, DataBody):
        out["data"] = {
            "nominal_time": iso(body.nominal_time_ns),
            "frame_time_length_ms": body.frame_time_length_ms,
            "channel_ids": ["/".join(i) for i in body.ids],
            "channels": [_channel_summary(c, with_samples) for c in body.channels],
        }
    else:
        out["body"] = {
            k: (v.hex() if isinstance(v, bytes) else v) for k, v in dataclasses.asdict(body).items()
        }
    return out


def _print_text(name: str, s: dict) -> None:
    h, t = s["header"], s["trailer"]
    print(
        f"{name}: {h['frame_type_name']} from {h['creator']!r} to {h['destination']!r} "
        f"sequence {h['sequence']} series {h['series']}"
    )
    print(f"  trailer: key id {t['auth_key_id']}, auth {t['auth_size']} bytes, CRC {t['crc']}")
    if "data" in s:
        d = s["data"]
        print(f"  nominal {d['nominal_time']}, {d['frame_time_length_ms']} ms, {len(d['channels'])} channels")
        for c in d["channels"]:
            st = c["status"]
            flags = ",".join(st.get("flags_set", [])) or "-"
            print(
                f"  {c['site']}/{c['channel']}/{c['location'] or '-'} "
                f"{c['data_format']} t{c['transformation']} "
                f"{c['time']} {c['nsamp']} @ {c['sample_rate']:g} sps key {c['auth_key_id']} "
                f"conv {c['auth_offset_convention']} v0 {c['v0']}"
            )
            print(
                f"      status fmt {st['format']} flags {flags} gps-sync {st.get('last_gps_sync')} "
                f"clock-diff {st.get('clock_differential_us')} us"
            )
            print(
                f"      min {c['min']} max {c['max']} mean {c['mean']:.1f} first {c['first_samples']}"
                if c["nsamp"]
                else "      no samples"
            )
            if "samples" in c:
                print(f"      samples {c['samples']}")
    else:
        print(f"  body: {s['body']}")


def run_dump(args: argparse.Namespace) -> int:
    failures = 0
    for path in args.files:
        try:
            frame = decode_frame(path.read_bytes())
        except OSError as exc:
            print(f"{path}: cannot read: {exc}", file=sys.stderr)
            failures += 1
            continue
        except Cd11FormatError as exc:
            print(
                f"{path}: not a valid CD-1.1 frame: {exc.reason} (field {exc.field}, offset {exc.offset})",
                file=sys.stderr,
            )
            failures += 1
            continue
        summary = summarize(frame, args.samples)
        if args.json:
            print(json.dumps({"file": str(path), **summary}))
        else:
            _print_text(str(path), summary)
    return 1 if failures else 0
