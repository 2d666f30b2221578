"""``ims station …``: run the daemon, show its status, check a configuration."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from station.config import StationConfig

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("station", help="the station daemon")
    commands = parser.add_subparsers(dest="station_command", required=True, metavar="SUBCOMMAND")
    run = commands.add_parser("run", help="run the station daemon until SIGTERM")
    run.add_argument("--config", type=Path, required=True, help="station TOML file")
    run.set_defaults(func=_run)
    status = commands.add_parser("status", help="show the daemon's last status snapshot as tables")
    status.add_argument("--config", type=Path, required=True, help="station TOML file")
    status.set_defaults(func=_status)
    check = commands.add_parser("check-config", help="validate a configuration file and say what it holds")
    check.add_argument("config", type=Path)
    check.set_defaults(func=_check)


def _load(path: Path) -> StationConfig | None:
    from station.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return None


def _run(args: argparse.Namespace) -> int:
    from gci_link.clock import clock_from_env
    from station.service import StationService

    config = _load(args.config)
    if config is None:
        return 2
    try:
        service = StationService(config, clock=clock_from_env())
    except (OSError, ValueError) as exc:  # unusable key bundle, outbox file, …: say which and stop
        log.error("station cannot start", extra={"config": str(args.config), "error": str(exc)})
        return 2
    return service.run()


def _status(args: argparse.Namespace) -> int:
    from station.snapshot import read_snapshot, render

    config = _load(args.config)
    if config is None:
        return 2
    try:
        print(render(read_snapshot(config.daemon.state_dir)))
    except (FileNotFoundError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def _check(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if config is None:
        return 2
    print(f"{args.config}: station {config.station.network}.{config.station.name}, "
          f"{len(config.digitizers)} digitizer(s), {len(config.channels)} channel(s), "
          f"{len(config.radionuclide)} radionuclide system(s), "
          f"frames of {config.frame.length_s} s to {', '.join(config.link.endpoints)}")
    return 0
