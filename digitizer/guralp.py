"""Güralp digitizer driver: a serial port and a thread around ``GuralpSession``.

The thread opens any pyserial URL, hands what it reads to the session (``digitizer.guralp_session``,
which holds every protocol rule: BRP, the rewind after a reconnect, re-sent blocks, gaps, and through
``digitizer.guralp_console`` the console), writes the bytes the session returns, queues its
``Packet``/``Status``/``StreamGap`` items for the station and logs its events, each once. It reopens the
port when reads fail (cable pulled) or the session finds the line silent, with exponential back-off
while the port is missing. Console commands are queued from any thread and answered through futures.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from typing import assert_never

import serial

from digitizer import brp
from digitizer.guralp_console import (
    ConsoleFailed,
    ConsoleOpened,
    ConsoleReply,
    ConsoleRequest,
    StrayText,
    calibration_lines,
)
from digitizer.guralp_session import (
    BadBlock,
    Event,
    GuralpSession,
    LineSilent,
    Output,
    ResentBlockDropped,
    RewindAbandoned,
    RewindNarrowed,
    RewindRequested,
    SessionConfig,
    SessionCounters,
    StreamGap,
    TimeSteppedBack,
)
from digitizer.packet import Packet, Status
from timeunits import NS_PER_S

log = logging.getLogger(__name__)

Item = Packet | Status | StreamGap


@dataclass
class DriverCounters(SessionCounters):
    """The session's counters and the port's; each unusual increment is also logged."""

    opens: int = 0
    open_failures: int = 0
    port_errors: int = 0


@dataclass
class DriverConfig:
    port: str  # device path or pyserial URL
    baudrate: int = 115200
    watchdog_s: float = 10.0  # reopen when nothing arrives for this long
    read_timeout_s: float = 0.05
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 10.0
    nak_timeout_s: float = 0.5
    max_naks: int = 13
    rewind_margin: int = 24  # blocks the digitizer may send between its newest block and our NAK
    rewind_timeout_s: float = 1.0
    startup_rewind: bool = True  # refetch the buffer on this instance's first block (process restarts)
    queue_size: int = 100_000
    command_timeout_s: float = 20.0

    def session_config(self) -> SessionConfig:
        return SessionConfig(watchdog_ns=round(self.watchdog_s * NS_PER_S),
                             nak_timeout_ns=round(self.nak_timeout_s * NS_PER_S), max_naks=self.max_naks,
                             rewind_margin=self.rewind_margin,
                             rewind_timeout_ns=round(self.rewind_timeout_s * NS_PER_S),
                             startup_rewind=self.startup_rewind)


class GuralpDriver:
    """Run with ``start()``; iterate (or ``get()``) for items; ``stop()`` or the stop event ends it."""

    def __init__(self, config: DriverConfig, stop_event: threading.Event | None = None,
                 monotonic_ns: Callable[[], int] = time.monotonic_ns):
        self.config = config
        self.stop_event = stop_event or threading.Event()
        self.counters = DriverCounters()
        self._now_ns = monotonic_ns
        self._session = GuralpSession(config.session_config(), self.counters)
        self._items: queue.Queue[Item] = queue.Queue(config.queue_size)
        self._requests: queue.SimpleQueue[tuple[ConsoleRequest, Future[str]]] = queue.SimpleQueue()
        self._waiting: dict[ConsoleRequest, Future[str]] = {}  # handed to the session (port thread only)
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"guralp:{self.config.port}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def get(self, timeout: float | None = None) -> Item | None:
        try:
            return self._items.get(timeout=timeout)
        except queue.Empty:
            return None

    def __iter__(self) -> Iterator[Item]:
        while not (self.stop_event.is_set() and self._items.empty()):
            item = self.get(timeout=0.1)
            if item is not None:
                yield item

    # -- console -------------------------------------------------------------------------------------
    def command(self, *lines: str, timeout: float | None = None) -> str:
        """Run console lines (e.g. ``"3 MINUTE"``, ``"Z 1 HZ SINEWAVE"``) and return their output."""
        timeout_s = timeout or self.config.command_timeout_s
        request = ConsoleRequest(lines, self._now_ns() + round(timeout_s * NS_PER_S))
        future: Future[str] = Future()
        self._requests.put((request, future))
        return future.result(timeout=timeout_s + 2.0)

    def status(self, timeout: float | None = None) -> str:
        return self.command("STATUS", timeout=timeout)

    def start_calibration(self, kind: str, component: str = "Z", minutes: int = 2, *,
                          frequency_hz: int | None = None, period_s: int | None = None,
                          timeout: float | None = None) -> str:
        """Start a ``sine`` (give ``frequency_hz`` or ``period_s``, 1-10), ``square`` or ``random`` cal."""
        lines = calibration_lines(kind, component, minutes, frequency_hz=frequency_hz, period_s=period_s)
        return self.command(*lines, timeout=timeout)

    def stop_calibration(self, timeout: float | None = None) -> str:
        return self.command("STOPCAL", timeout=timeout)

    # -- port loop -----------------------------------------------------------------------------------
    def _open(self, retry_s: float) -> serial.SerialBase | None:
        """The port, or None after logging why it cannot be opened now (the caller retries)."""
        try:
            return serial.serial_for_url(self.config.port, baudrate=self.config.baudrate,
                                         timeout=self.config.read_timeout_s)
        except (serial.SerialException, OSError) as exc:
            self.counters.open_failures += 1
            log.warning("cannot open digitizer port; retrying", extra={
                "port": self.config.port, "error": str(exc), "retry_s": round(retry_s, 3)})
            return None

    def run(self) -> None:
        """Open, read, reopen until stopped."""
        backoff = self.config.backoff_initial_s
        try:
            while not self.stop_event.is_set():
                port = self._open(backoff)
                if port is None:
                    self.stop_event.wait(backoff)
                    backoff = min(2 * backoff, self.config.backoff_max_s)
                    continue
                backoff = self.config.backoff_initial_s
                self.counters.opens += 1
                log.info("digitizer port open", extra={"port": self.config.port})
                try:
                    self._serve(port)
                except Exception:  # a bug met by some input must not end the driver thread: log, reopen
                    self.counters.port_errors += 1
                    log.exception("digitizer session failed; reopening", extra={"port": self.config.port})
                    self.stop_event.wait(backoff)
                finally:
                    try:
                        port.close()
                    except (serial.SerialException, OSError):
                        pass
        finally:
            self._take_requests()
            for future in self._waiting.values():
                future.set_exception(RuntimeError("driver stopped"))
            self._waiting.clear()

    def _serve(self, port: serial.SerialBase) -> None:
        """One connection: read, let the session act, until the port fails, goes silent or we stop."""
        session = self._session
        session.connection_made(self._now_ns())
        while not self.stop_event.is_set():
            self._take_requests()
            try:
                data = port.read(1)
                if data and port.in_waiting:
                    data += port.read(port.in_waiting)
            except (serial.SerialException, OSError) as exc:
                self.counters.port_errors += 1
                log.warning("digitizer port failed; reopening", extra={"port": self.config.port,
                                                                         "error": str(exc)})
                return
            now_ns = self._now_ns()
            if data and not self._act(port, session.receive(data, now_ns)):
                return
            if not self._act(port, session.poll(now_ns)):
                return

    def _take_requests(self) -> None:
        while True:
            try:
                request, future = self._requests.get_nowait()
            except queue.Empty:
                return
            self._waiting[request] = future
            self._session.submit(request)

    def _act(self, port: serial.SerialBase, outputs: list[Output]) -> bool:
        """Carry out the session's outputs in order; False when the port should be reopened."""
        keep = True
        for out in outputs:
            if isinstance(out, Packet | Status):
                self._put(out)
            elif isinstance(out, brp.SendBytes):
                self._write(port, out.data)
            elif isinstance(out, StreamGap):
                log.error("gap in stream", extra={"stream": out.stream_id, "start_ns": out.start_ns,
                                                  "end_ns": out.end_ns,
                                                  "seconds": (out.end_ns - out.start_ns) / NS_PER_S})
                self._put(out)
            elif isinstance(out, ConsoleReply):
                self._waiting.pop(out.request).set_result(out.text)
            elif isinstance(out, ConsoleFailed):
                state = out.state.value
                log.error("console command failed", extra={"state": state, "reason": out.reason,
                                                           "lines": " | ".join(out.request.lines)})
                self._waiting.pop(out.request).set_exception(  # no usable answer came in time
                    TimeoutError(f"console did not answer in state {state}: {out.reason}"))
            elif isinstance(out, LineSilent):
                log.warning("digitizer line silent; reopening", extra={
                    "port": self.config.port, "silent_s": round(out.silent_ns / NS_PER_S, 2)})
                keep = False
            else:
                _log_event(out)
        return keep

    def _write(self, port: serial.SerialBase, data: bytes) -> None:
        try:
            port.write(data)
        except (serial.SerialException, OSError) as exc:  # the read side notices and reopens
            log.warning("write to digitizer failed", extra={"port": self.config.port, "error": str(exc)})

    def _put(self, item: Item) -> None:
        while not self.stop_event.is_set():  # a full queue holds the ACKs back: the digitizer buffers
            try:
                self._items.put(item, timeout=0.1)
                return
            except queue.Full:
                continue


def _log_event(ev: Event) -> None:
    """Log one session event (the session itself never logs)."""
    if isinstance(ev, brp.ChecksumFailed):
        log.warning("BRP checksum failure", extra={"seq": ev.seq, "offset": ev.offset, "nak": ev.nak_sent})
    elif isinstance(ev, brp.Resync):
        log.warning("BRP resync after unframed bytes", extra={"skipped": ev.skipped, "offset": ev.offset})
    elif isinstance(ev, brp.GapGivenUp):
        log.error("BRP blocks unrecoverable", extra={"sequences": len(ev.sequences), "reason": ev.reason})
    elif isinstance(ev, brp.HeldBlockReplaced):
        log.warning("BRP block replaced a different held block of the same sequence", extra={"seq": ev.seq})
    elif isinstance(ev, BadBlock):
        log.error("bad GCF block dropped", extra={"seq": ev.seq, "field": ev.field, "offset": ev.offset,
                                                  "error": ev.error})
    elif isinstance(ev, TimeSteppedBack):
        log.warning("stream time stepped back; new block delivered", extra={
            "stream": ev.stream_id, "seq": ev.seq, "start_ns": ev.start_ns, "expected_ns": ev.expected_ns,
            "step_s": (ev.start_ns - ev.expected_ns) / NS_PER_S})
    elif isinstance(ev, ResentBlockDropped):
        log.info("re-sent block dropped", extra={"seq": ev.seq, "stream": ev.stream_id})
    elif isinstance(ev, RewindRequested):
        log.info("asking the digitizer to resend from its buffer", extra={"seq": ev.seq,
                                                                          "blocks_back": ev.blocks_back})
    elif isinstance(ev, RewindNarrowed):
        log.info("digitizer did not rewind; asking for fewer blocks", extra={"seq": ev.seq,
                                                                             "blocks_back": ev.blocks_back})
    elif isinstance(ev, RewindAbandoned):
        log.warning("digitizer did not rewind; resuming without its buffer", extra={"seq": ev.seq})
    elif isinstance(ev, ConsoleOpened):
        log.info("digitizer console open", extra={"lines": " | ".join(ev.request.lines)})
    elif isinstance(ev, StrayText):
        log.info("terminal text outside a session", extra={"text": ev.text[:80].decode("ascii", "replace")})
    else:
        assert_never(ev)
