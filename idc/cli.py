"""``ims idc run`` (the IDC receiver daemon), ``ims idc status`` (the link metrics table),
``ims idc rn list|show`` (the radionuclide messages stored) and ``ims idc command`` / ``commands`` (command
requests to stations through the running receiver, and their responses), ``ims idc stationxml`` (the
archived channels' responses)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import TYPE_CHECKING

from idc.config import IdcConfig, IdcConfigError, load_config

if TYPE_CHECKING:
    from consoles.config import ConsoleConfig
    from consoles.server import ConsoleServer
    from gci_link.clock import Clock
    from gci_link.keys.trust import TrustedKey
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
    status.add_argument("--json", action="store_true",
                        help="one JSON document: per station and channel (what the console shows)")
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
    command = sub.add_parser(
        "command", help="send a command request to a connected station through the running receiver, "
        "print its response")
    command.add_argument("station", help="a station configured under [stations]")
    command.add_argument("words", nargs="+", metavar="WORD",
                         help="the command: status | calibrate CHANNEL random|step|sine MINUTES [HZ ...] | "
                         "stopcal DIGITIZER")
    command.add_argument("--config", default="idc.toml", help="receiver configuration (TOML)")
    command.add_argument("--send-within", type=float, default=60.0, metavar="S",
                         help="withdraw the request if the receiver has not sent it within S seconds "
                         "(station not connected, receiver not running); default 60")
    command.add_argument("--wait", type=float, default=None, metavar="S",
                         help="stop waiting for the response after S seconds (it is still stored, see "
                         "'ims idc commands'); default: until it comes")
    command.set_defaults(func=cmd_command)
    commands = sub.add_parser("commands", help="command requests sent to stations and their responses")
    commands.add_argument("--config", default="idc.toml", help="receiver configuration (TOML)")
    commands.add_argument("--station", help="only this station")
    commands.add_argument("--limit", type=int, default=50, help="the newest N (default 50)")
    commands.add_argument("--id", type=int, help="one command, with its whole response")
    commands.add_argument("--json", action="store_true", help="one JSON object per line")
    commands.set_defaults(func=cmd_commands)
    xml = sub.add_parser("stationxml", help="StationXML of the archived channels (calib/calper epochs), "
                         "one document on stdout")
    xml.add_argument("--config", default="idc.toml", help="receiver configuration (TOML)")
    xml.add_argument("--network", help="only this network")
    xml.add_argument("--station", help="only this station (CD-1.1 site, the SDS station code)")
    xml.set_defaults(func=cmd_stationxml)


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
    console = None
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
        if config.console is not None:
            console = _start_console(config, config.console, clock, trust.keys)
            if console is None:
                return 2
        log.info("IDC receiver ready")  # serving, with its signal handlers in place
        receiver.run(stop)
    finally:
        if console is not None:
            console.stop()
        receiver.close()
        if httpd is not None:
            httpd.shutdown()
    return 0


def _start_console(config: IdcConfig, settings: ConsoleConfig, clock: Clock, keys: list[TrustedKey]
                   ) -> ConsoleServer | None:
    """The operators' web page, in its own thread; None (said on stderr) when it cannot listen."""
    from consoles.server import ConsoleServer
    from idc.console import IdcConsole

    console = IdcConsole(config.root, config.metrics_window_s, clock, keys)
    try:  # the credential file gone since the configuration was checked, the address taken, a bad key
        server = ConsoleServer(console.app(settings.operator_token(), settings.tls), settings, "idc")
        server.start()
    except OSError as exc:
        print(f"ims idc: cannot start: console on {settings.host}:{settings.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return None
    return server


def cmd_status(args: argparse.Namespace) -> int:
    import json

    from gci_link.clock import clock_from_env
    from idc.metrics import MetricsStore, format_table
    from idc.status import network_status

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
        if args.json:
            print(json.dumps(network_status(store, clock(), window), indent=1))
        else:
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


def cmd_command(args: argparse.Namespace) -> int:
    """Exit 0: answered; 1: answered with an error (``error:``, ``busy:``, ``calibration not run:``);
    2: refused here (nothing queued); 3: not sent in time (withdrawn); 4: sent, no answer yet."""
    import time

    from gci_link.clock import clock_from_env
    from idc.commands import ANSWERED, QUEUED, CommandQueue, check_command

    config = _load(args.config)
    if config is None:
        return 2
    text = " ".join(args.words)
    try:
        addressee = check_command(config, args.station, text)
        clock = clock_from_env()
    except ValueError as exc:
        print(f"ims idc command: {exc}", file=sys.stderr)
        return 2
    if not config.root.is_dir():
        print(f"ims idc command: the receiver's root {config.root} does not exist (has it ever run?)",
              file=sys.stderr)
        return 2
    queue = CommandQueue(config.root)
    command_id = queue.submit(args.station, addressee, text, clock())
    print(f"command {command_id} queued for {args.station}: {text}", file=sys.stderr)
    try:
        start = time.monotonic()
        while True:
            command = queue.get(command_id)
            assert command is not None
            waited = time.monotonic() - start
            if command.state == QUEUED and waited >= args.send_within and queue.withdraw(command_id):
                print(f"ims idc command: not sent within {args.send_within:g} s (is the receiver running, "
                      f"is {args.station} connected?); withdrawn", file=sys.stderr)
                return 3
            if command.state == ANSWERED:
                assert command.response is not None
                print(f"command {command_id} answered", file=sys.stderr)
                print(command.response)
                return 1 if command.response.startswith(_FAILED) else 0
            if args.wait is not None and command.state != QUEUED and waited >= args.wait:
                print(f"ims idc command: no response within {args.wait:g} s; 'ims idc commands --id "
                      f"{command_id}' shows it when it comes", file=sys.stderr)
                return 4
            time.sleep(0.2)
    except KeyboardInterrupt:
        if queue.withdraw(command_id):
            print(f"command {command_id} withdrawn", file=sys.stderr)
        else:
            print(f"command {command_id} was sent; 'ims idc commands --id {command_id}' shows its response",
                  file=sys.stderr)
        return 130
    finally:
        queue.close()


_FAILED = ("error: ", "busy: ", "calibration not run: ")  # the station's answers that say it did not run


def cmd_commands(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from gci_link.texttable import columns
    from idc.commands import CommandQueue

    config = _load(args.config)
    if config is None:
        return 2
    queue = CommandQueue(config.root)
    try:
        if args.id is not None:
            one = queue.get(args.id)
            if one is None:
                print(f"ims idc commands: no command {args.id}", file=sys.stderr)
                return 1
            found = [one]
        else:
            found = queue.find(args.station, args.limit)
    finally:
        queue.close()
    if args.json:
        for command in found:
            print(json.dumps(dataclasses.asdict(command)))
        return 0
    if args.id is not None:
        command = found[0]
        print(f"command {command.id} to {command.station}: {command.text}\nstate: {command.state}, queued "
              f"{_utc(command.queued_ns)}, sent {_utc(command.sent_ns)} (request {command.seq}), answered "
              f"{_utc(command.answered_ns)}")
        if command.response is not None:
            print(command.response)
        return 0
    rows = [("ID", "STATION", "STATE", "QUEUED (UTC)", "ANSWERED (UTC)", "COMMAND", "RESPONSE")]
    rows += [(str(c.id), c.station, c.state, _utc(c.queued_ns), _utc(c.answered_ns), c.text,
              _short(c.response)) for c in found]
    print("\n".join(columns(rows)))
    return 0


def cmd_stationxml(args: argparse.Namespace) -> int:
    import io

    from obspy import read_inventory
    from obspy.core.inventory import Inventory

    from idc.metadata import STATIONXML_DIR

    config = _load(args.config)
    if config is None:
        return 2
    pattern = f"{args.network or '*'}.{args.station or '*'}.xml"
    files = sorted((config.root / STATIONXML_DIR).glob(pattern))
    if not files:
        print(f"ims idc stationxml: no StationXML matches {pattern} under {config.root / STATIONXML_DIR} "
              "(has the receiver archived such a channel?)", file=sys.stderr)
        return 1
    merged = Inventory(networks=[], source="IMS IDC receiver: CD-1.1 calib/calper of the archived subframes")
    for path in files:
        merged += read_inventory(str(path), format="STATIONXML")
    out = io.BytesIO()
    merged.write(out, format="STATIONXML")
    sys.stdout.buffer.write(out.getvalue())
    sys.stdout.flush()
    return 0


def _short(response: str | None, width: int = 60) -> str:
    if response is None:
        return "-"
    return response if len(response) <= width else response[: width - 3] + "..."


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
