"""The single console entry point ``ims``; each package contributes its subcommands.

Subcommand modules are looked up by name at run time so that this table is the only place that knows
them all, and no package imports another against the direction of dependencies (hil is reached only
through ``ims hil``).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> module exposing register(subparsers) which adds a parser that sets ``func``
COMMAND_MODULES: dict[str, str] = {
    "station": "station.cli",
    "cd11": "gci_link.cd11.cli",
    "idc": "idc.cli",
    "hil": "hil.cli",
    "gcf": "digitizer.cli",
    "keys": "gci_link.keys_cli",
    "link": "gci_link.station_end.cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ims", description="IMS station stack")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES.values():
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from station import logfmt

    args = build_parser().parse_args(argv)
    logfmt.configure(args.log_level)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
