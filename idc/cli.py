"""``ims idc run`` (the IDC receiver daemon), ``ims idc status`` (health and the link metrics table),
``ims idc rn list|show`` (the radionuclide messages stored, with the analyses of the samples),
``ims idc command`` / ``commands`` (command requests to stations through the running receiver, and their
responses), ``ims idc stationxml`` (the archived channels' responses), ``ims idc reload``, ``plot``."""

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
    from prometheus_client import CollectorRegistry

    from consoles.config import ConsoleConfig
    from consoles.server import ConsoleServer
    from gci_link.keys import TrustStore
    from idc.reload import Reloader
    from idc.rn_store import RnIndex
    from idc.server import Receiver

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("idc", help="IDC end of the GCI link: receive, verify, archive")
    sub = parser.add_subparsers(dest="idc_command", required=True, metavar="ACTION")
    run = sub.add_parser("run", help="run the receiver until SIGTERM")
    run.add_argument("--config", default="idc.toml", help="receiver configuration (TOML)")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check-config", help="validate a configuration file and list every problem")
    check.add_argument("file", nargs="?", help="receiver configuration (TOML); or --config")
    check.add_argument("--config", default="idc.toml", help="receiver configuration (TOML)")
    check.set_defaults(func=cmd_check)
    reload = sub.add_parser("reload", help="make the running receiver reload its stations and trust store")
    reload.add_argument("--config", default="idc.toml", help="receiver configuration (TOML)")
    reload.set_defaults(func=cmd_reload)
    status = sub.add_parser("status", help="availability, gaps, timeliness, latency, authentication; exit 1 "
                                           "when unhealthy (docs/idc-receiver.md)")
    status.add_argument("--config", default="idc.toml", help="receiver configuration (TOML)")
    status.add_argument("--window", type=int, default=None, help="availability window in seconds")
    status.add_argument("--stale-after", type=float, default=None, metavar="SECONDS",
                        help="a channel whose newest sample is older is unhealthy (default 300)")
    status.add_argument("--json", action="store_true",
                        help="one JSON object: health, and per station and channel what the console shows")
    status.set_defaults(func=cmd_status)
    plot = sub.add_parser("plot", help="quick looks at the archive as PNG files")
    plots = plot.add_subparsers(dest="plot_command", required=True, metavar="WHAT")
    avail = plots.add_parser("availability", help="availability per channel and UTC day")
    avail.add_argument("--config", default="idc.toml", help="receiver configuration (TOML)")
    avail.add_argument("--days", type=int, default=7, help="the last this many UTC days, today included")
    avail.add_argument("--out", default="availability.png", help="PNG file to write")
    avail.set_defaults(func=cmd_plot_availability)
    wave = plots.add_parser("waveforms", help="every channel of one station over the last minutes")
    wave.add_argument("station", help="a station of [stations.NAME]")
    wave.add_argument("--last", default="10m", help="span before now: 90s, 10m, 2h, 1d (default 10m)")
    wave.add_argument("--config", default="idc.toml", help="receiver configuration (TOML)")
    wave.add_argument("--out", default=None, help="PNG file to write (default STATION.png)")
    wave.set_defaults(func=cmd_plot_waveforms)
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


def _load(path: str, *, listing: bool = False) -> IdcConfig | None:
    """The configuration, or None once its problems are printed: under a heading for ``check-config``
    (``listing``), else one line each."""
    try:
        return load_config(path)
    except IdcConfigError as exc:
        if listing:
            print(exc, file=sys.stderr)
        for problem in [] if listing else exc.problems:
            print(f"ims idc: {problem}", file=sys.stderr)
        return None


def cmd_check(args: argparse.Namespace) -> int:
    """Every problem of the file, then of the key material it names (what ``run`` would refuse)."""
    from gci_link.keys import KeyMaterialError, TrustStore
    from idc.server import idc_signer
    from opskit.tomlcheck import Problem

    path = args.file or args.config
    config = _load(path, listing=True)
    if config is None:
        return 2
    problems = []
    for key, load in (("idc.trust_dir", lambda: TrustStore.load(config.trust_dir)),
                      ("idc.key_bundle", lambda: idc_signer(config))):
        try:
            load()
        except (KeyMaterialError, ValueError) as exc:
            problems.append(Problem(path, key, str(exc)))
    if problems:
        print(IdcConfigError(problems), file=sys.stderr)
        return 2
    print(f"{path}: IDC receiver at {config.connection_endpoint}"
          f"{f' (data at {config.data_endpoint})' if config.data_endpoint else ''}, "
          f"{len(config.stations)} station(s), data root {config.root}"
          f"{f', SeedLink on {config.seedlink.listen}' if config.seedlink else ''}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from gci_link.clock import clock_from_env
    from gci_link.keys import KeyMaterialError, TrustStore
    from idc.health import ROOT_LOCK
    from idc.reload import Reloader, ask_on_sighup
    from idc.server import Receiver, idc_signer
    from opskit.exporter import daemon_registry, start_exporter
    from opskit.listen import ListenError
    from opskit.lock import LockBusy, ProcessLock

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
    # every check that can refuse the start comes before anything is created under the data root
    try:
        clock = clock_from_env()
        trust = TrustStore.load(config.trust_dir, clock=clock)
    except (KeyMaterialError, ValueError) as exc:
        print(f"ims idc: trust store: {exc}", file=sys.stderr)
        return 2
    reloader = Reloader(Path(args.config), config.root, clock, reload_requested)
    try:
        idc_signer(config)
    except (KeyMaterialError, ValueError) as exc:
        print(f"ims idc: key bundle: {exc}", file=sys.stderr)
        return 2
    registry = daemon_registry("idc")
    httpd = None
    try:
        _check_ports_free(config)
        if config.prometheus_port:
            httpd, _ = start_exporter(registry, config.prometheus_address, config.prometheus_port)
    except ListenError as exc:
        print(f"ims idc: cannot start: {exc}", file=sys.stderr)
        return 2
    try:
        try:
            lock = ProcessLock.acquire(config.root / ROOT_LOCK, "IDC receiver", config=str(args.config))
        except LockBusy as exc:
            print(f"ims idc: cannot start: data root {config.root} is in use: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"ims idc: cannot start: data root {config.root}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        with lock:
            try:
                receiver = Receiver(config, trust, clock)
            except KeyMaterialError as exc:
                print(f"ims idc: key bundle: {exc}", file=sys.stderr)
                return 2
            return _serve(receiver, trust, reloader, registry, stop, exporting=httpd is not None)
    finally:
        if httpd is not None:
            httpd.shutdown()


def _serve(receiver: Receiver, trust: TrustStore, reloader: Reloader, registry: CollectorRegistry,
           stop: threading.Event, *, exporting: bool) -> int:
    """Start the receiver (and its console) and run it until ``stop``, reloading between poll rounds
    when asked (SIGHUP); whatever happens, it is closed (workers, threads, context)."""
    import zmq

    from idc.metrics import MetricsCollector
    from idc.seedlink import RingError, SeedLinkServerError
    from opskit.sdnotify import Notifier

    config = receiver.config
    systemd = Notifier.from_env()
    console = None
    try:
        try:
            receiver.start()
        except (zmq.ZMQError, ValueError, RingError, SeedLinkServerError) as exc:
            print(f"ims idc: cannot start: {exc}", file=sys.stderr)
            return 2
        registry.register(MetricsCollector(receiver.metrics.path, config.metrics_window_s, receiver.clock))
        if exporting:
            log.info("prometheus exporter listening",
                     extra={"address": config.prometheus_address, "port": config.prometheus_port})
        if config.console is not None:
            console = _start_console(config, config.console, receiver)
            if console is None:
                return 2
        log.info("IDC receiver ready")  # serving, with its signal handlers in place
        systemd.ready(f"IDC receiver at {receiver.connection_endpoint}")  # Type=notify

        def between_rounds(served: Receiver) -> None:
            systemd.ping()
            reloader(served)

        receiver.run(stop, between=between_rounds)
        systemd.stopping()
    finally:
        if console is not None:
            console.stop()
        receiver.close()
        systemd.close()
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


def _start_console(config: IdcConfig, settings: ConsoleConfig, receiver: Receiver) -> ConsoleServer | None:
    """The operators' web page, in its own thread; None (said on stderr) when it cannot listen."""
    from consoles.server import ConsoleServer
    from idc.console import IdcConsole

    console = IdcConsole(config.root, config.metrics_window_s, receiver.clock, lambda: receiver.trust.keys)
    try:  # the credential file gone since the configuration was checked, the address taken, a bad key
        server = ConsoleServer(console.app(settings.operator_token(), settings.tls), settings, "idc")
        server.start()
    except OSError as exc:
        print(f"ims idc: cannot start: console on {settings.host}:{settings.port}: {exc.strerror or exc}",
              file=sys.stderr)
        return None
    return server


def _check_ports_free(config: IdcConfig) -> None:
    """ListenError naming the first endpoint another process already listens on."""
    from idc.seedlink.server import parse_listen
    from opskit.listen import check_endpoint_free, check_free

    check_endpoint_free("connection_endpoint", config.connection_endpoint)
    if config.data_endpoint is not None:
        check_endpoint_free("data_endpoint", config.data_endpoint)
    if config.seedlink is not None:
        check_free("seedlink listen", *parse_listen(config.seedlink.listen))
    if config.console is not None:
        check_free("console", config.console.host, config.console.port)


def cmd_status(args: argparse.Namespace) -> int:
    """0 healthy, 1 unhealthy or never run (for monitoring checks), 2 an unusable configuration."""
    import json

    from gci_link.cd11.timefmt import iso
    from gci_link.clock import clock_from_env
    from idc import health
    from idc.metrics import MetricsStore, format_table
    from idc.status import network_status
    from opskit.lock import live_holder

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
        now = clock()
        reports, counters = store.channel_reports(now, window), store.counters()
        network = network_status(store, now, window) if args.json else None
    finally:
        store.close()
    running = (live_holder(config.root / health.ROOT_LOCK) or {}).get("role") == "IDC receiver"
    stale_after = health.DEFAULT_STALE_AFTER_S if args.stale_after is None else args.stale_after
    problems = health.problems(config, reports, running, window, stale_after)
    if network is not None:  # the console's numbers (idc/status.py), with the health verdict
        print(json.dumps({"healthy": not problems, "problems": problems, "running": running, "time": iso(now),
                          **network}, indent=1))
    else:
        print(f"IDC receiver at {iso(now)}, window {window} s: "
              + ("OK" if not problems else "UNHEALTHY\n" + "\n".join(f"  {p}" for p in problems)) + "\n")
        print(format_table(reports, counters))
    return 1 if problems else 0


def cmd_plot_availability(args: argparse.Namespace) -> int:
    import datetime as dt
    from pathlib import Path

    from gci_link.clock import clock_from_env
    from idc.plots import availability, plot_availability

    config = _load(args.config)
    if config is None:
        return 2
    if args.days < 1:
        print("ims idc plot: --days must be at least 1", file=sys.stderr)
        return 2
    today = dt.datetime.fromtimestamp(clock_from_env()() / 1e9, dt.UTC).date()
    days = [today - dt.timedelta(days=n) for n in range(args.days - 1, -1, -1)]
    table = availability(config.sds_root, days)
    if not table:
        print(f"ims idc plot: no day files in {config.sds_root} from {days[0]} to {days[-1]}",
              file=sys.stderr)
        return 1
    plot_availability(table, days, Path(args.out))
    print(f"{args.out}: {len(table)} channel(s), {len(days)} day(s)")
    return 0


def cmd_plot_waveforms(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gci_link.cd11.timefmt import iso
    from gci_link.clock import clock_from_env
    from idc.plots import parse_span, plot_waveforms, waveforms

    config = _load(args.config)
    if config is None:
        return 2
    policy = config.stations.get(args.station)
    if policy is None:
        print(f"ims idc plot: no station {args.station!r} in [stations] of {args.config}", file=sys.stderr)
        return 2
    try:
        span_ns = int(parse_span(args.last) * 1e9)
    except ValueError as exc:
        print(f"ims idc plot: --last: {exc}", file=sys.stderr)
        return 2
    if not config.sds_root.is_dir():
        print(f"ims idc plot: no archive at {config.sds_root} (has the receiver run?)", file=sys.stderr)
        return 1
    end = clock_from_env()()
    start = end - span_ns
    stream = waveforms(config.sds_root, policy.network, policy.allowed_sites, start, end)
    if not len(stream):
        print(f"ims idc plot: no data of {args.station} from {iso(start)} to {iso(end)}", file=sys.stderr)
        return 1
    out = Path(args.out or f"{args.station}.png")
    plot_waveforms(stream, f"{args.station}: {iso(start)} to {iso(end)}", out)
    print(f"{out}: {len(stream)} trace(s)")
    return 0


def cmd_rn_list(args: argparse.Namespace) -> int:
    import json

    from gci_link.cd11.timefmt import iso_or_dash
    from gci_link.texttable import columns
    from idc.rn_report import as_json, status

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
              iso_or_dash(m.transmit_ns), str(m.size), m.problem or status(m, a)) for m, a in found]
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

    from gci_link.cd11.timefmt import iso_or_dash
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
              f"{iso_or_dash(command.queued_ns)}, sent {iso_or_dash(command.sent_ns)} "
              f"(request {command.seq}), answered {iso_or_dash(command.answered_ns)}")
        if command.response is not None:
            print(command.response)
        return 0
    rows = [("ID", "STATION", "STATE", "QUEUED (UTC)", "ANSWERED (UTC)", "COMMAND", "RESPONSE")]
    rows += [(str(c.id), c.station, c.state, iso_or_dash(c.queued_ns), iso_or_dash(c.answered_ns), c.text,
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
