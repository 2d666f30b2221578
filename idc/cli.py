"""``ims idc run`` (the IDC receiver daemon) and ``ims idc status`` (the link metrics table)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from idc.config import IdcConfig, IdcConfigError, load_config

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("idc", help="IDC end of the GCI link: receive, verify, archive")
    sub = parser.add_subparsers(dest="idc_command", required=True, metavar="ACTION")
    run = sub.add_parser("run", help="run the receiver until SIGTERM")
    run.add_argument("--config", default="idc.toml", help="receiver configuration (TOML)")
    run.set_defaults(func=cmd_run)
    status = sub.add_parser("status", help="availability, gaps, timeliness, latency, authentication")
    status.add_argument("--config", default="idc.toml", help="receiver configuration (TOML)")
    status.add_argument("--window", type=int, default=None, help="availability window in seconds")
    status.set_defaults(func=cmd_status)


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
    from idc.metrics import MetricsCollector
    from idc.seedlink import RingError, SeedLinkServerError
    from idc.server import Receiver

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    # before anything slow (kernels, verifier workers), so a SIGTERM during start-up is a clean stop too
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    config = _load(args.config)
    if config is None:
        return 2
    try:
        clock = clock_from_env()
        trust = TrustStore.load(config.trust_dir, clock=clock)
    except (KeyMaterialError, ValueError) as exc:
        print(f"ims idc: trust store: {exc}", file=sys.stderr)
        return 2
    try:
        receiver = Receiver(config, trust, clock)
    except KeyMaterialError as exc:
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
        receiver.run(stop)
    finally:
        receiver.close()
        if httpd is not None:
            httpd.shutdown()
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
