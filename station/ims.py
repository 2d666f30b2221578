"""The single console entry point ``ims``; each package contributes its subcommands.

Subcommand modules are looked up by name at run time so that this table is the only place that knows
them all, and no package imports another against the direction of dependencies (hil is reached only
through ``ims hil``).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from opskit.build import build_version

# subcommand -> module exposing register(subparsers) which adds a parser that sets ``func``
COMMAND_MODULES: dict[str, str] = {
    "station": "station.cli",
    "cd11": "gci_link.cd11.cli",
    "idc": "idc.cli",
    "hil": "hil.cli",
    "gcf": "digitizer.cli",
    "keys": "gci_link.keys_cli",
    "link": "gci_link.station_end.cli",
    "cal": "station.cal_cli",
    "rn": "rn_analysis.cli",
}


LOG_LEVELS = ("debug", "info", "warning", "error")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ims", description="IMS station stack")
    parser.add_argument("--version", action="version", version=f"%(prog)s {build_version()}")
    parser.add_argument(
        "--log-level", default="info", choices=LOG_LEVELS, help="also accepted after the subcommand"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES.values():
        importlib.import_module(module_name).register(sub)
    return parser


def hoist_log_level(argv: list[str]) -> list[str]:
    """``--log-level`` moved in front of the subcommand, wherever the operator wrote it (before ``--``)."""
    end = argv.index("--") if "--" in argv else len(argv)
    head, rest, hoisted = argv[:end], argv[end:], []
    i = 0
    while i < len(head):
        if head[i] == "--log-level" and i + 1 < len(head):
            hoisted += head[i : i + 2]
            del head[i : i + 2]
        elif head[i].startswith("--log-level="):
            hoisted.append(head.pop(i))
        else:
            i += 1
    return hoisted + head + rest


def main(argv: list[str] | None = None) -> int:
    from station import logfmt

    args = build_parser().parse_args(hoist_log_level(list(sys.argv[1:] if argv is None else argv)))
    logfmt.configure(args.log_level)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
