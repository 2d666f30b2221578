"""``ims hil run``: the demo entry point (for now the CD-1.1 codec round trip, see codec_demo)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("hil", help="simulated hardware and demo runs")
    sub = parser.add_subparsers(dest="hil_command", required=True, metavar="ACTION")
    run = sub.add_parser("run", help="run the demo and write its output under --out")
    run.add_argument("--out", type=Path, default=Path("demo-out"))
    run.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from hil import codec_demo

    return codec_demo.run(args.out)
