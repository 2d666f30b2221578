"""``ims idc run`` (the IDC receiver daemon), ``ims idc status`` (the link metrics table) and
``ims idc rn list|show`` (the radionuclide messages stored)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from idc.config import IdcConfig, IdcConfigError, load_config

if TYPE_CHECKING:
    from idc.rn_store import RnIndex

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("idc", help="IDC end of the GCI link: receive, verify, archive")
    sub = parser.add_subparsers(dest="idc_command", required=True, metavar="ACTION")
    run = sub.add_parser("run", help="run the receiver until SIGTERM")
    run.add_argument("--config", default="idc.toml", help="receiver configuration (TOML)")
    run.set_defaults(func=cmd_run)
    reload = sub.add_parser("reload", help="make the running receiver reload its stations and trust store")
    reload.add_argument("--config", default="idc.toml", help="receiver configuration (TOML)")
    reload.set_defaults(func=cmd_reload)
    status = sub.add_parser("status", help="availability, gaps, timeliness, latency, authentication")
    status.add_argument("--config", default="idc.toml", help="receiver configuration (TOML)")
    status.add_argument("--window", type=int, default=None, help="availability window in seconds")
    status.set_defaults(func=cmd_status)
    rn = sub.add_parser("rn", help="radionuclide (IMS 2.0) messages stored: list them, show one")
    rn_sub = rn.add_subparsers(dest="rn_command", required=True, metavar="ACTION")
    listing = rn_sub.add_parser("list", help="messages in the index, oldest first")
    listing.add_argument("--config", default="idc.toml", help="receiver configuration (TOML)")
    listing.add_argument("--station", help="only this station")
    listing.add_argument("--type", dest="data_type", help="only this DATA_TYPE (SAMPLEPHD, RMSSOH, ...)")
    listing.add_argument("--srid", help="only this sample reference id")
    listing.add_argument("--limit", type=int, default=1000, help="at most this many (default 1000)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=cmd_rn_list)
    show = rn_sub.add_parser("show", help="print one message exactly as the station sent it")
    show.add_argument("id", type=int, help="ID from 'ims idc rn list'")
    show.add_argument("--config", default="idc.toml", help="receiver configuration (TOML)")
    show.set_defaults(func=cmd_rn_show)


def _load(path: str) -> IdcConfig | None:
    try:
        return load_config(path)
    except IdcConfigError as exc:
        print(f"ims idc: {exc}", file=sys.stderr)
        return None


def cmd_run(args: argparse.Namespace) -> int:
    import zmq
    from prometheus_client import CollectorRegistry, start_http_server

    from gci_link.clock import clock_from_env
    from gci_link.keys import KeyMaterialError, TrustStore
    from gci_link.process_lock import LockHeld, ProcessLock
    from idc.metrics import MetricsCollector
    from idc.reload import LOCK_NAME as ROOT_LOCK
    from idc.reload import Reloader, ask_on_sighup
    from idc.seedlink import RingError, SeedLinkServerError
    from idc.server import Receiver

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    # before anything slow (kernels, verifier workers), so a SIGTERM during start-up is a clean stop too
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    reload_requested = ask_on_sighup()
    config = _load(args.config)
    if config is None:
        return 2
    try:  # first, so a second receiver on this data root touches nothing of the running one's
        root_lock = ProcessLock.acquire(config.root / ROOT_LOCK, "IDC receiver", config=str(args.config))
    except (LockHeld, OSError) as exc:
        print(f"ims idc: cannot start: data root {config.root}: {exc}", file=sys.stderr)
        return 2
    try:
        clock = clock_from_env()
        trust = TrustStore.load(config.trust_dir, clock=clock)
    except (KeyMaterialError, ValueError) as exc:
        root_lock.release()
        print(f"ims idc: trust store: {exc}", file=sys.stderr)
        return 2
    reloader = Reloader(Path(args.config), config.root, clock, reload_requested)
    try:
        receiver = Receiver(config, trust, clock)
    except KeyMaterialError as exc:
        root_lock.release()
        print(f"ims idc: key bundle: {exc}", file=sys.stderr)
        return 2
    httpd = None
    try:  # whatever happens from here on, the receiver is closed: its workers, threads and context end
        try:
            receiver.start()
        except (zmq.ZMQError, ValueError, RingError, SeedLinkServerError) as exc:
            print(f"ims idc: cannot start: {exc}", file=sys.stderr)
            return 2
        if config.prometheus_port:
            registry = CollectorRegistry()
            registry.register(MetricsCollector(receiver.metrics.path, config.metrics_window_s, clock))
            try:
                httpd, _ = start_http_server(config.prometheus_port, registry=registry)
            except OSError as exc:
                print(
                    f"ims idc: cannot start: prometheus exporter on port {config.prometheus_port}: "
                    f"{exc.strerror or exc}",
                    file=sys.stderr,
                )
                return 2
            log.info("prometheus exporter listening", extra={"port": config.prometheus_port})
        log.info("IDC receiver ready")  # serving, with its signal handlers in place
        receiver.run(stop, between=reloader)
    finally:
        receiver.close()
        if httpd is not None:
            httpd.shutdown()
        root_lock.release()
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    from idc.reload import request_reload

    config = _load(args.config)
    if config is None:
        return 2
    try:
        outcome = request_reload(config.root)
    except (LookupError, TimeoutError, OSError) as exc:
        print(f"ims idc reload: {exc}", file=sys.stderr)
        return 1
    if not outcome.ok:
        print(f"ims idc reload: refused by receiver pid {outcome.pid}, which runs on unchanged: "
              f"{outcome.detail}", file=sys.stderr)
        return 1
    print(f"receiver pid {outcome.pid} reloaded: {outcome.detail}")
    if outcome.kept:
        print(f"not changed (they take a restart): {', '.join(outcome.kept)}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from gci_link.clock import clock_from_env
    from idc.metrics import MetricsStore, format_table

    config = _load(args.config)
    if config is None:
        return 2
    try:
        clock = clock_from_env()  # in a simulated network, "now" is the simulation's
    except ValueError as exc:
        print(f"ims idc: {exc}", file=sys.stderr)
        return 2
    path = config.root / "metrics.sqlite"
    if not path.exists():
        print(f"ims idc: no metrics yet at {path} (has the receiver run?)", file=sys.stderr)
        return 1
    store = MetricsStore(path)
    try:
        window = args.window or config.metrics_window_s
        print(format_table(store.channel_reports(clock(), window), store.counters()))
    finally:
        store.close()
    return 0


def cmd_rn_list(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from gci_link.texttable import columns

    index = _rn_index(args.config)
    if index is None:
        return 1
    try:
        found = index.find(station=args.station, data_type=args.data_type and args.data_type.upper(),
                           srid=args.srid, limit=args.limit)
    finally:
        index.close()
    if args.json:
        for message in found:
            print(json.dumps(dataclasses.asdict(message)))
        return 0
    rows = [("ID", "STATION", "SEQ", "TYPE", "QUAL", "SRID", "TRANSMIT (UTC)", "BYTES", "PROBLEM")]
    rows += [(str(m.id), m.station, str(m.seq), m.data_type or "-", m.qualifier or "-", m.srid or "-",
              _utc(m.transmit_ns), str(m.size), m.problem or "") for m in found]
    print("\n".join(columns(rows)))
    return 0


def cmd_rn_show(args: argparse.Namespace) -> int:
    index = _rn_index(args.config)
    if index is None:
        return 1
    try:
        message = index.get(args.id)
        if message is None:
            print(f"ims idc rn: no message {args.id} in the index", file=sys.stderr)
            return 1
        try:
            data = index.text(message)
        except (OSError, ValueError) as exc:
            print(f"ims idc rn: {exc}", file=sys.stderr)
            return 1
    finally:
        index.close()
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return 0


def _rn_index(config_path: str) -> RnIndex | None:
    from idc.rn_store import RnIndex

    config = _load(config_path)
    if config is None:
        return None
    try:
        return RnIndex(config.root / "ims2")
    except FileNotFoundError as exc:
        print(f"ims idc rn: {exc}", file=sys.stderr)
        return None


def _utc(time_ns: int | None) -> str:
    import time

    if time_ns is None:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time_ns // 1_000_000_000)) + "Z"
