"""The station daemon: digitizer packets in, signed CD-1.1 frames out to the IDC, never losing data.

Threads: one per digitizer driver (serial I/O), one for the GCI sender (ZeroMQ) and one that runs its IDC
commands, and the main loop here, which alone touches acquisition, framer, SOH and archive, so none of
those needs a lock. A frame is durable in the outbox before anything may acknowledge it, and at start-up
the station trims what the outbox already holds from the blocks its drivers refetch, so a crash neither
loses nor repeats samples.
SIGTERM: stop the drivers, frame what is held, let the sender send an alert, close cleanly.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import signal
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from digitizer.guralp import DriverConfig, GuralpDriver
from digitizer.guralp_session import StreamGap
from digitizer.packet import Packet, Status
from gci_link.cd11 import ChannelStatus, CommandRequestBody, format_time
from gci_link.cd11.timefmt import iso
from gci_link.commands import CommandName
from gci_link.kernels import warm_up
from gci_link.keys import Role, StationSigner, TrustStore
from gci_link.link_session import SessionConfig, State
from gci_link.station_end.outbox import Outbox, OutboxStats
from gci_link.station_end.sender import Sender
from opskit.sdnotify import Notifier
from station.acquisition import Acquisition
from station.alarms import Alarm, AlarmBoard, Severity
from station.availability import AvailabilityStrips
from station.calibration_state import CalibrationState
from station.config import ChannelConfig, DigitizerConfig, StationConfig
from station.digitizer_health import DigitizerWatch
from station.framer import FrameDraft, Framer
from station.link_health import LinkHealth
from station.local_archive import LocalArchive
from station.lock import StationBusy, StationLock
from station.metrics import StationCollector
from station.publisher import DATA_KIND, publish
from station.radionuclide.runner import RadionuclideSystems
from station.recovery import framed_until, note_framed, trim_framed
from station.remote_calibration import RemoteCalibration
from station.snapshot import write_snapshot
from station.soh import SohMonitor
from station.wavetap import WaveTap
from timeunits import NS_PER_S

if TYPE_CHECKING:
    from consoles.server import ConsoleServer

log = logging.getLogger(__name__)

OUTBOX_ALARM = "outbox_over_budget"
WRITE_ALARM = "outbox_write_failed"
ARCHIVE_ALARM = "archive_write_failed"  # a warning: the outbox still delivers; only the local copy is lost
MAX_PENDING_DRAFTS = 360  # frames held in memory while the outbox cannot be written (an hour of 10 s)
PUMP_BATCH = 500  # items taken from one driver before looking at the others
PUMP_SPAN_OF_BUFFER = 0.5  # a pump takes at most this fraction of buffer_s of data time from one driver
IDLE_WAIT_S = 0.1  # pause when no driver had anything (blocks come about once a second; wakes cost CPU)
ARCHIVE_PRUNE_INTERVAL_S = 600.0  # the local archive is checked against its disk budget this often
SHUTDOWN_DRAIN_S = 5.0  # time the sender gets at SIGTERM to have the last frames acknowledged
RECENT_ALARMS = 20  # cleared alarms the snapshot (and the console) shows

DriverFactory = Callable[[DigitizerConfig], GuralpDriver]


def default_driver(digitizer: DigitizerConfig) -> GuralpDriver:
    return GuralpDriver(DriverConfig(port=digitizer.port, baudrate=digitizer.baud))


class StationService:
    def __init__(
        self,
        config: StationConfig,
        *,
        driver_factory: DriverFactory = default_driver,
        clock: Callable[[], int] = time.time_ns,
        registry: CollectorRegistry | None = None,
    ) -> None:
        """``registry``: where the daemon's metrics are collected (an exporter serves it, see station.cli)."""
        self.config = config
        self.clock = clock
        self.alarms = AlarmBoard()
        self.soh = SohMonitor(config.soh, self.alarms, registry)
        self.acquisition = Acquisition(config, self.alarms)
        self._system_ids = {d.name: d.system_id for d in config.digitizers}
        self._stop = threading.Event()
        # accepted remote calibrations persist only while the operator lets them apply
        self.calibrations = CalibrationState(config.daemon.state_dir if config.calibration.apply_accepted
                                             else None)
        self.framer = Framer(
            config.channels,
            self.acquisition.buffers,
            frame_length_s=config.frame.length_s,
            lateness_budget_s=config.acquisition.lateness_budget_s,
            status_for=self._channel_status,
            calibrations=self.calibrations,
        )
        config.outbox.path.parent.mkdir(parents=True, exist_ok=True)
        self.outbox = Outbox(
            config.outbox.path, int(config.outbox.budget_mb * 1e6), on_alarm=self._outbox_alarm, clock=clock
        )
        self.link_health = LinkHealth(config.soh, self.alarms)
        self._pending: deque[FrameDraft] = deque()  # cut but not yet in the outbox (disk full, I/O error)
        self.signer = StationSigner.load(config.link.key_bundle) if config.link.key_bundle else None
        if self.signer is None:
            log.warning("no key bundle configured: frames go out unsigned", extra={"station": self.name})
        link = config.link
        idc_keys = None if link.idc_trust is None else TrustStore.load(link.idc_trust, clock, Role.IDC)
        self.sender = Sender(
            SessionConfig(
                station=link.frame_creator,
                endpoints=link.endpoints,
                window=link.window,
                bandwidth_bytes_per_s=link.bandwidth_kbps * 125 if link.bandwidth_kbps else None,
                connect_timeout_ns=round(link.connect_timeout_s * NS_PER_S),
                response_timeout_ns=round(link.response_timeout_s * NS_PER_S),
                idle_timeout_ns=round(link.idle_timeout_s * NS_PER_S),
            ),
            self.outbox,
            clock=clock,
            signer=self.signer,
            idc_keys=idc_keys,
            command_handler=self._command,
        )
        self.archive = LocalArchive(
            config.archive.path, config.station.network, int(config.archive.budget_mb * 1e6)
        )
        # particulate and noble-gas systems: each cycle runs in its own thread and writes to the outbox
        self.radionuclide = RadionuclideSystems(
            config.radionuclide, self.outbox, creator=link.frame_creator, destination=link.frame_destination,
            signer=self.signer, clock=clock, state_dir=config.daemon.state_dir,
        )
        self.drivers = {d.name: driver_factory(d) for d in config.digitizers}
        self.remote_calibration = RemoteCalibration(config, self.drivers, self.calibrations, self._stop)
        # returned calibration signals: for calibration sessions only, never framed
        self._calibration_inputs = {(config.digitizer(c.digitizer).system_id, c.calibration.input_stream_id)
                                    for c in config.channels if c.calibration is not None}
        self.digitizer_watch = DigitizerWatch(config.soh.digitizer_silent_after_s, self.alarms,
                                              {d.name: d.system_id for d in config.digitizers}, clock())
        self.wavetap = WaveTap()  # the last minutes of every channel, for the console
        self.availability = AvailabilityStrips()  # samples per channel and minute, for the console
        self.oldest_unacked_ns: int | None = None
        self.archive_used_bytes: int | None = None  # measured when the archive is pruned
        self.archive_measured_ns: int | None = None
        self.framed_until = framed_until(self.outbox, DATA_KIND)
        self._replaying = set(self.framed_until)  # channels whose refetched packets are trimmed, see _take
        self.refetched_samples_trimmed = 0
        self.frames_published = 0
        self.loop_errors = 0
        self._running = False
        # what other threads (Prometheus, IDC commands) read: built by the main loop, swapped whole
        self.latest_snapshot = self.snapshot()
        self.soh.registry.register(StationCollector(lambda: self.latest_snapshot))

    @property
    def name(self) -> str:
        return self.config.station.name

    # ------------------------------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Ask the main loop to shut down (safe from a signal handler or another thread)."""
        self._stop.set()

    def run(self, install_signals: bool = True) -> int:
        """Acquire and send until stopped; 0 after a clean stop, 3 when another process (a second
        daemon, a bench calibration) holds the station's digitizers or the lock cannot be taken."""
        try:
            lock = StationLock.acquire(self.config.daemon.state_dir, "station daemon",
                                       channels=[c.code for c in self.config.channels],
                                       ports=[d.port for d in self.config.digitizers])
        except (StationBusy, OSError) as exc:
            log.error("station not started: its digitizers are in use" if isinstance(exc, StationBusy)
                      else "station not started: cannot take its lock", extra={"station": self.name,
                                                                                 "error": str(exc)})
            self.outbox.close()
            self.archive.close()
            return 3
        with lock:
            return self._run(install_signals)

    def _run(self, install_signals: bool) -> int:
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop())
        console = self._start_console()
        log.info(
            "station starting",
            extra={
                "station": self.name,
                "channels": len(self.config.channels),
                "resume_after": len(self.framed_until),
                "next_seq": self.outbox.next_sequence,
            },
        )
        log.info("compiled kernels ready", extra={"station": self.name, "seconds": round(warm_up(), 3)})
        self._running = True
        self.digitizer_watch.start(self.clock())
        for driver in self.drivers.values():
            driver.start()
        sender_thread = threading.Thread(target=self.sender.run, name="sender", daemon=True)
        sender_thread.start()
        self.radionuclide.start()
        systemd = Notifier.from_env()  # Type=notify: ready now; watchdog pings from this loop
        systemd.ready(f"station {self.name}: acquiring")
        next_status = next_prune = 0.0
        try:
            while not self._stop.is_set():
                systemd.ping()
                try:
                    if not self.pump():
                        self._stop.wait(IDLE_WAIT_S)
                    self.frame_and_publish()
                    if time.monotonic() >= next_status:
                        self._watch_link()
                        self.write_status()
                        next_status = time.monotonic() + self.config.daemon.status_interval_s
                    if time.monotonic() >= next_prune:
                        self.archive_used_bytes = self.archive.prune()
                        self.archive_measured_ns = self.clock()
                        next_prune = time.monotonic() + ARCHIVE_PRUNE_INTERVAL_S
                except Exception:  # a bug met by some input must not stop acquisition: log, pause, go on
                    self.loop_errors += 1
                    log.exception("station main loop error", extra={"station": self.name})
                    self._stop.wait(1.0)
        finally:
            if console is not None:
                console.stop()
            systemd.stopping()
            self._shutdown(sender_thread)
            systemd.close()
        return 0

    def _start_console(self) -> ConsoleServer | None:
        """The web page for people on site ([console]), served from its own thread; it reads only the
        snapshot the main loop swaps whole, the wave tap and the availability counts. A console that
        cannot listen is logged and left off: acquisition goes on without it."""
        settings = self.config.console
        if settings is None:
            return None
        from consoles.server import ConsoleServer
        from station.console import StationConsole

        view = StationConsole(lambda: self.latest_snapshot, self.wavetap, self.calibrate_from_console,
                              self.availability)
        try:  # the credential file gone since the configuration was checked, the address taken, a bad key
            server = ConsoleServer(view.app(settings.operator_token(), settings.tls), settings, "station")
            server.start()
        except OSError as exc:
            log.error("station console cannot listen", extra={"bind": f"{settings.host}:{settings.port}",
                                                              "error": str(exc)})
            return None
        return server

    def _shutdown(self, sender_thread: threading.Thread) -> None:
        log.info("station stopping", extra={"station": self.name})
        for driver in self.drivers.values():
            driver.stop()
        self.radionuclide.stop()
        self.pump()
        self.frame_and_publish(final=True)
        deadline = time.monotonic() + SHUTDOWN_DRAIN_S
        while self.outbox.unacked_seqs(1) and sender_thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.sender.stop()
        sender_thread.join(timeout=10.0)
        self._running = False
        self.write_status()
        stats = self.outbox.stats()
        self.outbox.close()
        self.archive.close()
        log.info("station stopped", extra={"station": self.name, "unacked_frames": stats.unacked_frames})

    # ---------------------------------------------------------------------------------------- main loop

    def pump(self) -> int:
        """Move what the drivers delivered into acquisition and SOH; returns how many items.

        A digitizer playing back its flash after an outage delivers data far faster than real time; a
        pump stops taking from a driver once it took half of ``buffer_s`` of data time, so the frames are
        cut before the acquisition buffers would have to drop the oldest samples."""
        moved = 0
        span_ns = round(self.config.acquisition.buffer_s * PUMP_SPAN_OF_BUFFER * NS_PER_S)
        for name, driver in self.drivers.items():
            first_ns: int | None = None
            taken = 0
            for _ in range(PUMP_BATCH):
                item = driver.get(timeout=0)
                if item is None:
                    break
                taken += 1
                self._take(item)
                if isinstance(item, Packet):
                    first_ns = item.start_ns if first_ns is None else first_ns
                    if item.end_ns - first_ns >= span_ns:
                        break
            if taken:
                self.digitizer_watch.heard(name, self.clock())
            moved += taken
        return moved

    def _take(self, item: Packet | Status | StreamGap) -> None:
        if isinstance(item, Packet):
            self.remote_calibration.feed(item)
            if (item.system_id, item.stream_id) in self._calibration_inputs:
                return
            code = self.acquisition.channel_code(item)
            trimmed: Packet | None = item
            if code in self._replaying:  # the driver's startup rewind is still refetching this channel
                until = self.framed_until.get(code)
                trimmed = trim_framed(item, until)
                if until is None or item.start_ns >= until:  # caught up: later packets are all new,
                    self._replaying.discard(code)  # even one stamped earlier (a clock stepped back)
            if trimmed is not item:
                self.refetched_samples_trimmed += item.nsamp - (trimmed.nsamp if trimmed is not None else 0)
            if trimmed is not None:
                self.acquisition.ingest(trimmed)
                if code is not None:
                    self.wavetap.add(code, trimmed.start_ns, trimmed.sample_rate, trimmed.samples)
                    self.availability.add(code, trimmed.start_ns, trimmed.sample_rate, trimmed.nsamp)
        elif isinstance(item, Status):
            self.soh.observe_status(item)
        else:  # a StreamGap the driver could not recover: acquisition sees it too, this records the extent
            log.warning(
                "digitizer data lost",
                extra={
                    "station": self.name,
                    "stream": item.stream_id,
                    "start": format_time(item.start_ns).decode(),
                    "end": format_time(item.end_ns).decode(),
                },
            )

    def frame_and_publish(self, final: bool = False) -> int:
        """Cut what is ready and put it in the outbox; returns how many frames were stored.

        A frame the outbox cannot take (disk full, I/O error) stays in memory and is retried, with an
        alarm; while too many wait, cutting stops so the data stays in the acquisition buffers.
        """
        if len(self._pending) < MAX_PENDING_DRAFTS:
            self._pending.extend(self.framer.cut(final=final))
        stored = 0
        while self._pending:
            draft = self._pending[0]
            try:
                publish(
                    self.outbox,
                    draft,
                    creator=self.config.link.frame_creator,
                    destination=self.config.link.frame_destination,
                    signer=self.signer,
                )
            except (sqlite3.Error, OSError) as exc:
                self.alarms.raise_alarm(
                    WRITE_ALARM,
                    "station",
                    Severity.CRITICAL,
                    self.clock(),
                    value=len(self._pending),
                    message=f"outbox write failed: {exc}",
                )
                return stored
            self._pending.popleft()
            stored += 1
            self.frames_published += 1
            note_framed(self.framed_until, draft.subframes)
            self._archive(draft)
        self.alarms.clear_alarm(WRITE_ALARM, "station", self.clock())
        return stored

    def _archive(self, draft: FrameDraft) -> None:
        """Keep the operator's local copy of a frame the outbox already holds. A failed write (disk full,
        I/O error) loses only that copy: it raises a warning, logged once per episode, and the next write
        that succeeds clears it."""
        try:
            self.archive.write(draft)
        except OSError as exc:
            self.alarms.raise_alarm(
                ARCHIVE_ALARM,
                "station",
                Severity.WARNING,
                self.clock(),
                message=f"local archive write failed: {exc}",
            )
            return
        self.alarms.clear_alarm(ARCHIVE_ALARM, "station", self.clock())

    def _watch_link(self) -> None:
        oldest = self.outbox.unacked(limit=1)
        self.oldest_unacked_ns = oldest[0].enqueued_ns if oldest else None
        now = self.clock()
        self.link_health.observe(now, self.sender.session.state is State.DATA, self.oldest_unacked_ns)
        self.digitizer_watch.observe(now)

    # ------------------------------------------------------------------------------------------- helpers

    def _channel_status(self, channel: ChannelConfig) -> ChannelStatus:
        return self.soh.channel_status(self._system_ids[channel.digitizer])

    def _outbox_alarm(self, over_budget: bool, stats: OutboxStats) -> None:
        now = self.clock()
        if over_budget:
            self.alarms.raise_alarm(
                OUTBOX_ALARM,
                "station",
                Severity.CRITICAL,
                now,
                value=stats.unacked_bytes,
                threshold=stats.budget_bytes,
            )
        else:
            self.alarms.clear_alarm(OUTBOX_ALARM, "station", now)

    def _command(self, request: CommandRequestBody) -> str:
        """IDC remote control (``CommandName``): ``status``,
        ``calibrate CHANNEL random|step|sine MINUTES [FREQUENCY_HZ ...]`` (a whole calibration session,
        answered with its result), ``stopcal DIGITIZER``.

        The sender runs this on its command worker, so a console command that takes seconds, or a
        calibration that takes half an hour, holds neither the link nor the main loop."""
        words = request.command.decode("ascii", "replace").strip("\0 ").split()
        log.info("command from IDC", extra={"station": self.name, "command": " ".join(words)})
        name = next((c for c in CommandName if words[:1] == [c.value]), None)
        if name is CommandName.STATUS:
            return self.latest_snapshot["soh_table"]  # built by the main loop, swapped whole: safe to read
        if name is CommandName.CALIBRATE:
            return self.remote_calibration.run(words)
        if name is CommandName.STOPCAL and len(words) == 2 and words[1] in self.drivers:
            try:
                return self.drivers[words[1]].stop_calibration()
            except (RuntimeError, TimeoutError) as exc:
                return f"calibration not stopped: {exc}"
        return (
            f"unknown command {' '.join(words)!r}; "
            "try 'status', 'calibrate CHANNEL random|step|sine MINUTES [FREQUENCY_HZ ...]' or "
            "'stopcal DIGITIZER'"
        )

    def calibrate_from_console(self, words: list[str]) -> str:
        """A calibration session asked for on the station console: checked and answered at once, then run
        on a thread of its own for as long as the session lasts; its result goes to the report folder and
        the log, as a remote calibration's does."""
        try:
            self.remote_calibration.check(words)
        except ValueError as exc:
            return f"calibration not run: {exc}"

        def session() -> None:
            answer = self.remote_calibration.run(words, requested_by="station console calibration")
            log.info("console calibration answered", extra={"station": self.name, "answer": answer})

        threading.Thread(target=session, name="console-calibration", daemon=True).start()
        report_dir = self.config.calibration.report_dir
        return f"calibration started: {' '.join(words[1:])}; its report goes to {report_dir}"

    # -------------------------------------------------------------------------------------------- status

    def snapshot(self) -> dict[str, Any]:
        channels = {}
        for code, buffer in self.acquisition.buffers.items():
            complete = buffer.complete_until_ns
            channels[code] = buffer.stats.as_dict() | {
                "complete_until": None if complete is None else iso(complete)
            }
        counters = self.sender.counters
        return {
            "station": self.name,
            "written_ns": time.time_ns(),
            "running": self._running,
            "frames_published": self.frames_published,
            "refetched_samples_trimmed": self.refetched_samples_trimmed,
            "loop_errors": self.loop_errors,
            "link": dataclasses.asdict(counters) | {
                "state": self.sender.session.state.name.lower(),
                "idc_authenticated": self.sender.authenticates_idc,
            },
            "outbox": dataclasses.asdict(self.outbox.stats()),
            "channels": channels,
            "digitizers": {name: dataclasses.asdict(d.counters) for name, d in self.drivers.items()},
            "radionuclide": self.radionuclide.status(),
            "alarms": [_alarm(a) for a in self.alarms.active()],
            "recent_alarms": [_alarm(a) for a in list(self.alarms.history)[-RECENT_ALARMS:][::-1]],
            "readings": [
                {"name": name, "source": source, "value": r.value, "time_ns": r.time_ns}
                for (name, source), r in sorted(self.soh.readings.items())
            ],
            "calibration_channels": [c.code.rstrip(".") for c in self.config.channels
                                     if c.calibration is not None],
            "digitizer_links": {
                d.name: {"system_id": d.system_id, "silent": self.digitizer_watch.silent(d.name),
                         "last_heard_ns": self.digitizer_watch.last_heard_ns[d.name]}
                for d in self.config.digitizers
            },
            "oldest_unacked_ns": self.oldest_unacked_ns,
            "now_ns": self.clock(),
            "disk": self._disk(),
            "soh_table": self.soh.render_table(),
        }

    def _disk(self) -> dict[str, int | None]:
        """The local archive against its budget (measured when it is pruned, every ten minutes), and the
        free space of the disk it is on."""
        try:
            usage = shutil.disk_usage(self.config.archive.path)
        except OSError:  # not created yet, or the disk is gone: say unknown
            free = total = None
        else:
            free, total = usage.free, usage.total
        return {"archive_used_bytes": self.archive_used_bytes,
                "archive_budget_bytes": self.archive.budget_bytes,
                "archive_measured_ns": self.archive_measured_ns, "free_bytes": free, "total_bytes": total}

    def write_status(self) -> None:
        self.latest_snapshot = self.snapshot()
        try:
            write_snapshot(self.config.daemon.state_dir, self.latest_snapshot)
        except OSError as exc:
            log.error("cannot write status snapshot", extra={"error": str(exc)})


def _alarm(alarm: Alarm) -> dict[str, Any]:
    value = alarm.value if isinstance(alarm.value, bool | None) else float(alarm.value)
    return {"name": alarm.name, "source": alarm.source, "severity": alarm.severity.name,
            "raised_ns": alarm.raised_ns, "cleared_ns": alarm.cleared_ns, "value": value,
            "threshold": alarm.threshold, "message": alarm.message}
