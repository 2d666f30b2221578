"""``ims idc run`` (the IDC receiver daemon), ``ims idc status`` (the link metrics table) and
``ims idc rn list|show`` (the radionuclide messages stored, with the analyses of the samples)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
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
    show = rn_sub.add_parser("show", help="print one message as the station sent it, then its analysis")
    show.add_argument("id", type=int, help="ID from 'ims idc rn list'")
    show.add_argument("--config", default="idc.toml", help="receiver configuration (TOML)")
    form = show.add_mutually_exclusive_group()
    form.add_argument("--raw", action="store_true", help="only the message, byte for byte")
    form.add_argument("--json", action="store_true", help="the index row and the analysis as one JSON object")
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


def cmd_rn_list(args: argparse.Namespace) -> int:
    import json

    from gci_link.texttable import columns
    from idc.rn_report import as_json, status, utc

    index = _rn_index(args.config)
    if index is None:
        return 1
    try:
        found = [(m, index.analysis(m)) for m in index.find(
            station=args.station, data_type=args.data_type and args.data_type.upper(), srid=args.srid,
            limit=args.limit)]
    finally:
        index.close()
    if args.json:
        for message, analysis in found:
            print(json.dumps(as_json(message, analysis)))
        return 0
    rows = [("ID", "STATION", "SEQ", "TYPE", "QUAL", "SRID", "TRANSMIT (UTC)", "BYTES", "ANALYSIS / PROBLEM")]
    rows += [(str(m.id), m.station, str(m.seq), m.data_type or "-", m.qualifier or "-", m.srid or "-",
              utc(m.transmit_ns), str(m.size), m.problem or status(m, a)) for m, a in found]
    print("\n".join(columns(rows)))
    return 0


def cmd_rn_show(args: argparse.Namespace) -> int:
    import json

    from idc.rn_report import as_json, report

    index = _rn_index(args.config)
    if index is None:
        return 1
    try:
        message = index.get(args.id)
        if message is None:
            print(f"ims idc rn: no message {args.id} in the index", file=sys.stderr)
            return 1
        analysis = index.analysis(message)
        if args.json:
            print(json.dumps(as_json(message, analysis)))
            return 0
        try:
            data = index.text(message)
        except (OSError, ValueError) as exc:
            print(f"ims idc rn: {exc}", file=sys.stderr)
            return 1
    finally:
        index.close()
    sys.stdout.buffer.write(data)
    if not args.raw and message.data_type == "SAMPLEPHD" and message.problem is None:
        sys.stdout.buffer.write(b"\n" + report(message, analysis).encode())
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
