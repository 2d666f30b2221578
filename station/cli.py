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
    status = commands.add_parser(
        "status", help="the daemon's last status snapshot; exit 1 when unhealthy (docs/operator-guide.md)")
    status.add_argument("--config", type=Path, required=True, help="station TOML file")
    status.add_argument("--json", action="store_true", help="one JSON object (health, problems, snapshot)")
    status.set_defaults(func=_status)
    check = commands.add_parser("check-config", help="validate a configuration file and say what it holds")
    check.add_argument("file", type=Path, nargs="?", help="station TOML file; or --config")
    check.add_argument("--config", type=Path, help="station TOML file")
    check.set_defaults(func=_check)


def _load(path: Path, *, listing: bool = False) -> StationConfig | None:
    """The configuration, or None once its problems are printed: under a heading for ``check-config``
    (``listing``), else one line each, as a daemon's refusal to start."""
    from station.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        if listing:
            print(exc, file=sys.stderr)
        for problem in [] if listing else exc.problems:
            print(f"ims station: {problem}", file=sys.stderr)
        return None


def _run(args: argparse.Namespace) -> int:
    """Every check that can refuse the start (configuration, key bundle, metrics port) comes before the
    daemon creates its outbox, archive or state folder, so a refused start leaves nothing behind."""
    from gci_link.clock import clock_from_env
    from gci_link.keys import KeyMaterialError
    from opskit.exporter import daemon_registry, start_exporter
    from opskit.listen import ListenError, check_free
    from station.config import key_problems
    from station.service import StationService

    config = _load(args.config)
    if config is None:
        return 2
    problems = key_problems(config)
    for problem in problems:
        print(f"ims station: cannot start: {problem}", file=sys.stderr)
    if problems:
        return 2
    registry = daemon_registry("station")
    exporter = None
    try:
        if config.console is not None:
            check_free("console", config.console.host, config.console.port)
        if config.daemon.metrics_port:
            exporter, _ = start_exporter(registry, config.daemon.metrics_address, config.daemon.metrics_port)
    except ListenError as exc:
        print(f"ims station: cannot start: {exc}", file=sys.stderr)
        return 2
    try:
        try:
            service = StationService(config, clock=clock_from_env(), registry=registry)
        except (OSError, ValueError, KeyMaterialError) as exc:  # an outbox that cannot be opened, …
            print(f"ims station: cannot start: {exc}", file=sys.stderr)
            return 2
        return service.run()
    finally:
        if exporter is not None:
            exporter.shutdown()


def _status(args: argparse.Namespace) -> int:
    """0 healthy, 1 unhealthy or never run (for monitoring checks), 2 an unusable configuration."""
    import json
    import time

    from gci_link.cd11.timefmt import iso
    from opskit.lock import live_holder
    from station.lock import LOCK_NAME
    from station.snapshot import health, read_snapshot, render

    config = _load(args.config)
    if config is None:
        return 2
    try:
        snapshot = read_snapshot(config.daemon.state_dir)
    except (FileNotFoundError, ValueError) as exc:
        print(f"ims station: {exc}", file=sys.stderr)
        return 1
    holder = live_holder(config.daemon.state_dir / LOCK_NAME) or {}
    running = holder.get("role") == "station daemon"
    problems = health(snapshot, running, time.time_ns(), stale_after_s=stale_after_s(config))
    if args.json:
        report = {"healthy": not problems, "problems": problems, "running": running,
                  "snapshot_time": iso(snapshot["written_ns"]), "snapshot": snapshot}
        print(json.dumps(report, sort_keys=True))
    else:
        print(render(snapshot, problems, running))
    return 1 if problems else 0


def stale_after_s(config: StationConfig) -> float:
    """A snapshot older than this means a hung daemon: three missed writes, and never under 30 s."""
    return max(3 * config.daemon.status_interval_s, 30.0)


def _check(args: argparse.Namespace) -> int:
    from station.config import ConfigError, key_problems

    path = args.file or args.config
    if path is None:
        print("ims station check-config: name the configuration (FILE or --config FILE)", file=sys.stderr)
        return 2
    config = _load(path, listing=True)
    if config is None:
        return 2
    problems = key_problems(config)
    if problems:
        print(ConfigError(problems), file=sys.stderr)
        return 2
    print(f"{path}: station {config.station.network}.{config.station.name}, "
          f"{len(config.digitizers)} digitizer(s), {len(config.channels)} channel(s), "
          f"{len(config.radionuclide)} radionuclide system(s), "
          f"frames of {config.frame.length_s} s to {', '.join(config.link.endpoints)}")
    return 0
