"""Station end of the GCI link over ZeroMQ: a thin adapter around ``link_session.LinkSession``.

It owns the DEALER socket (one CD-1.1 frame per message), the outbox reads and acknowledgements, the
codec calls, optional CurveZMQ, the command worker and the log (the session reports events, logged here
once); every protocol decision is the session's. A fresh socket is made for every connection and the old
one closed with linger 0, so frames queued for a dead peer die with it instead of piling up behind the
reconnect (the session resends whatever was not acknowledged).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.utils.monitor import recv_monitor_message

from gci_link.commands import CommandHandler
from gci_link.gaplist import consecutive_runs
from gci_link.keys import StationSigner, TrustStore
from gci_link.link_session import (
    Acknowledge,
    Action,
    Connect,
    Disconnect,
    LinkCounters,
    LinkSession,
    RunCommand,
    SendData,
    SessionConfig,
    State,
)
from gci_link.station_end.command_worker import CommandWorker
from gci_link.station_end.link_frames import control_frame, receive
from gci_link.station_end.outbox import Outbox

log = logging.getLogger(__name__)

_OUTBOX_PAGE = 500
_OUTBOX_REFRESH_S = 0.05  # how often new frames are looked for while the loop is busy sending
_GRACEFUL_LINGER_MS = 2000  # time an alert gets to leave before the socket is torn down
# what the IDC sends a station (responses, acknacks, alerts, command requests) is a few kB; a peer posing
# as the IDC that sends more is cut off by ZeroMQ before the station holds it (each part; see
# docs/idc-receiver.md, "Limits", for the parts of one message, which only CurveZMQ bounds)
_IDC_FRAME_LIMIT_BYTES = 1 << 20
_RECEIVE_QUEUE_MESSAGES = 64
_HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)
_MONITORED = _HANDSHAKE_FAILED | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED


@dataclass(frozen=True)
class CurveKeys:
    """CurveZMQ for the hop: this station's certificate (with secret) and the IDC's public certificate,
    both in the format ``zmq.auth.create_certificates`` writes."""

    client_secret_file: Path
    server_public_file: Path

    def load(self) -> tuple[bytes, bytes, bytes]:
        public, secret = zmq.auth.load_certificate(self.client_secret_file)
        if secret is None:
            raise ValueError(f"{self.client_secret_file}: no secret key in this certificate file")
        server_public, _ = zmq.auth.load_certificate(self.server_public_file)
        return public, secret, server_public


class Sender:
    """Sends the outbox to the IDC until stopped; call ``run`` in its own thread, ``stop`` from any."""

    def __init__(
        self,
        config: SessionConfig,
        outbox: Outbox,
        *,
        clock: Callable[[], int] = time.time_ns,
        command_handler: CommandHandler | None = None,
        signer: StationSigner | None = None,
        idc_keys: TrustStore | None = None,
        curve: CurveKeys | None = None,
        context: zmq.Context | None = None,
        poll_interval_s: float = 0.2,
    ) -> None:
        if signer is not None and signer.station != config.station:
            raise ValueError(f"certificate is for station {signer.station!r}, link is for {config.station!r}")
        self.config = config
        self._outbox = outbox
        self._clock = clock
        self._signer = signer
        self._idc_keys = idc_keys  # the IDC certificates its frames must be signed with; None: believe any
        self._curve = curve.load() if curve else None
        self._context = context or zmq.Context.instance()
        self._poll_interval_s = poll_interval_s
        self._stop = threading.Event()
        self._ack_failing = False  # the outbox refused the last acknowledgement (said once per episode)
        self._acks_to_record: list[int] = []  # acknowledged by the IDC, not yet recorded in the outbox
        self._socket: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None
        self._handshake_failures = 0
        self._last_offered: int | None = None
        self._last_refresh = 0.0
        self.session = LinkSession(config, clock(), accepts_commands=command_handler is not None)
        self._commands = (
            None if command_handler is None
            else CommandWorker(command_handler, config.command_queue, self.wake, config.station)
        )
        self._ctx = self.session.log_context  # logging extras: station, endpoint
        # a pipe the poll also waits on: a byte in it means "look at the outbox now" (or "stop")
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
            weakref.finalize(self, os.close, fd)
        outbox.on_append(lambda _seq: self.wake())
        self._poller = zmq.Poller()  # the wake pipe always; the socket and its monitor while connected
        self._poller.register(self._wake_r, zmq.POLLIN)

    @property
    def counters(self) -> LinkCounters:
        return self.session.counters

    @property
    def authenticates_idc(self) -> bool:
        """Whether frames from the IDC must be signed with an IDC key to be believed."""
        return self._idc_keys is not None

    def stop(self) -> None:
        """Ask ``run`` to send an alert, close the connection and return (safe from a signal handler)."""
        self._stop.set()
        self.wake()

    def wake(self) -> None:
        """End the current wait at once (from any thread): new frames in the outbox leave without waiting
        for the next poll. The outbox calls this after every append."""
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass  # the pipe is full, so a wake-up is pending anyway

    def run(self) -> None:
        """Until ``stop``: connect, send, resend, acknowledge, reconnect."""
        self._start()
        try:
            while self.session.state is not State.STOPPED:
                self._guarded_step()
        finally:
            self._finish()

    def _guarded_step(self) -> None:
        """One step; a bug met by some input is logged and the link goes on after a pause, as the
        station's main loop does: the sender thread ending would end the link while the daemon runs."""
        try:
            self._step()
        except Exception:
            self.counters.loop_errors += 1
            log.exception("sender step failed; going on", extra=self._ctx())
            self._stop.wait(1.0)

    def run_until_drained(self, timeout_ns: int) -> bool:
        """Send until the IDC has acknowledged every frame in the outbox (True) or ``timeout_ns`` of clock
        time passed (False); then shut down as ``stop`` does."""
        self._start()
        deadline = self._clock() + timeout_ns
        try:
            while self.session.state is not State.STOPPED:
                if self._stop.is_set() or self._clock() >= deadline or self._drained():
                    self._stop.set()
                self._guarded_step()
        finally:
            self._finish()
        return self._drained()

    # ---- loop ------------------------------------------------------------------------------------

    def _start(self) -> None:
        self._offer_new()
        log.info("sender starting", extra={"station": self.config.station, "seq": self.session.pending})
        if self._idc_keys is None:
            log.warning("frames from the IDC are not authenticated: a forged or replayed acknack could mark "
                        "frames delivered that the IDC never received; set [link] idc_trust",
                        extra={"station": self.config.station})
        if self._commands is not None:
            self._commands.start()
        self.session.start(self._clock())

    def _finish(self) -> None:
        if self._commands is not None:
            self._commands.stop()
        self._close_socket(linger_ms=0)
        self._log_events()

    def _drained(self) -> bool:
        return self.session.pending == 0 and not self._outbox.unacked_seqs(1)

    def _step(self) -> None:
        now = self._clock()
        if self._stop.is_set():
            self.session.shutdown(now)
        if time.monotonic() - self._last_refresh >= _OUTBOX_REFRESH_S:
            self._offer_new()
        if self._commands is not None:
            for done in self._commands.finished():
                self.session.on_command_finished(done.seq, done.outcome, done.text, now)
        self._record_acks()
        busy = self._execute(self.session.poll(now))
        if self.session.state is State.STOPPED:
            return
        wake = self.session.next_wakeup_ns(now)
        wait_s = 0.0 if busy else self._poll_interval_s
        if wake is not None and not busy:
            wait_s = min(wait_s, max(0.0, (wake - now) / 1e9))
        self._wait_and_receive(wait_s)

    def _offer_new(self) -> None:
        self._last_refresh = time.monotonic()
        while True:
            page = self._outbox.unacked_seqs(_OUTBOX_PAGE, after=self._last_offered)
            if not page:
                return
            self.session.offer(page)
            self._last_offered = page[-1]
            if len(page) < _OUTBOX_PAGE:
                return

    def _wait_and_receive(self, wait_s: float) -> None:
        ready = dict(self._poller.poll(int(wait_s * 1000)))
        if self._wake_r in ready:
            self._drain_wake()
            self._offer_new()
        if self._monitor is not None and self._monitor in ready:
            self._drain_monitor()
        if self._socket in ready:
            while self._socket is not None:
                try:
                    parts = self._socket.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._receive(parts[-1])  # the frame is the last part (tolerates an empty delimiter)
        self._log_events()

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _drain_monitor(self) -> None:
        assert self._monitor is not None
        while True:
            try:
                event = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            if event["event"] & _HANDSHAKE_FAILED:
                self._handshake_failures += 1
                if self._handshake_failures == 1:
                    log.warning("ZeroMQ handshake with the IDC failed", extra=self._ctx(reason=self._why()))

    def _receive(self, raw: bytes) -> None:
        try:
            receive(self.session, raw, self._clock(), self._idc_keys)
        except Exception as exc:  # noqa: BLE001 - a codec bug: the IDC's bytes must never stop the link
            log.exception("CD-1.1 decoder bug on a frame from the IDC; frame ignored",
                          extra=self._ctx(reason=f"{type(exc).__name__}: {exc}"))

    # ---- actions ---------------------------------------------------------------------------------

    def _acknowledge(self, seqs: tuple[int, ...]) -> None:
        """Mark the IDC's acknowledgement in the outbox. A write that fails (the station's disk full) is
        kept and tried again at every step until it is recorded: the IDC has those frames, so they must
        not stay unacknowledged, and the link goes on meanwhile (an exception here used to end the sender
        thread, and with it the link, while the daemon ran on). Said once per episode."""
        self._acks_to_record.extend(seqs)
        self._record_acks()

    def _record_acks(self) -> None:
        if not self._acks_to_record:
            return
        seqs = sorted(set(self._acks_to_record))
        try:
            self._outbox.ack(consecutive_runs(seqs))
        except sqlite3.Error as exc:
            if not self._ack_failing:
                log.error("acknowledgement not recorded in the outbox; trying again",
                          extra=self._ctx(seq=f"{seqs[0]}..{seqs[-1]}", error=str(exc)))
            self._ack_failing = True
            self._acks_to_record = seqs
            return
        if self._ack_failing:
            log.info("acknowledgements recorded in the outbox again", extra=self._ctx(frames=len(seqs)))
        self._ack_failing = False
        self._acks_to_record = []
        log.debug("acknowledged", extra=self._ctx(seq=f"{seqs[0]}..{seqs[-1]}"))

    def _execute(self, actions: Iterable[Action]) -> bool:
        """Carry out the session's actions; True if a data frame went out (so poll again at once)."""
        sent_data = False
        for action in actions:
            if isinstance(action, Connect):
                self._open_socket(action.endpoint)
            elif isinstance(action, Disconnect):
                self._disconnect(action)
            elif isinstance(action, SendData):
                sent_data |= self._send_data(action)
            elif isinstance(action, Acknowledge):
                self._acknowledge(action.seqs)
            elif isinstance(action, RunCommand):
                assert self._commands is not None  # the session runs commands only if told there is a worker
                self._commands.submit(action.seq, action.request)
            else:
                self._send_control(action)
        self._log_events()
        return sent_data

    def _log_events(self) -> None:
        for event in self.session.take_events():
            log.log(event.kind.level, event.kind.message, extra=dict(event.fields))

    def _open_socket(self, endpoint: str) -> None:
        self._close_socket(linger_ms=0)
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, self.config.window + 64)  # data window plus control frames
        sock.setsockopt(zmq.MAXMSGSIZE, _IDC_FRAME_LIMIT_BYTES)
        sock.setsockopt(zmq.RCVHWM, _RECEIVE_QUEUE_MESSAGES)
        if self._curve is not None:
            public, secret, server_public = self._curve
            sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = public, secret, server_public
        self._monitor = sock.get_monitor_socket(_MONITORED)
        self._handshake_failures = 0
        sock.connect(endpoint)
        self._socket = sock
        self._poller.register(sock, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)

    def _close_socket(self, linger_ms: int) -> None:
        if self._socket is None:
            return
        self._poller.unregister(self._socket)
        if self._monitor is not None:
            self._poller.unregister(self._monitor)
            self._socket.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None
        self._socket.close(linger=linger_ms)
        self._socket = None

    def _disconnect(self, action: Disconnect) -> None:
        if self._monitor is not None:
            self._drain_monitor()
        if self._handshake_failures:
            log.error("connection failed: ZeroMQ handshake never completed",
                      extra=self._ctx(reason=self._why()))
        self._close_socket(linger_ms=_GRACEFUL_LINGER_MS if action.graceful else 0)

    def _why(self) -> str:
        if self._curve is not None:
            return (f"CurveZMQ handshake failed {self._handshake_failures} times: the IDC server key in the "
                    "configuration is wrong, or the IDC does not accept this station's key")
        return (f"ZeroMQ handshake failed {self._handshake_failures} times: the connection closed during the "
                "greeting (IDC restarting or unreachable through the link, or an IDC that expects CurveZMQ)")

    def _send_data(self, action: SendData) -> bool:
        now = self._clock()
        stored = self._outbox.get(action.seq)
        if stored is None:
            log.error("frame no longer in the outbox (evicted over budget?), skipped",
                      extra=self._ctx(seq=action.seq))
            self.session.forget(action.seq)
            return True
        wire_seq = int.from_bytes(stored.frame[24:32], "big")
        if wire_seq != action.seq:
            log.error("outbox frame carries another sequence number in its header, skipped",
                      extra=self._ctx(seq=action.seq, reason=f"header says {wire_seq}"))
            self.session.forget(action.seq)
            return True
        if self._send(stored.frame, now, seq=action.seq):
            if action.resend:
                log.info("resent", extra=self._ctx(seq=action.seq))
        return True

    def _send_control(self, action: Action) -> None:
        now = self._clock()
        header = self.session.control_header(now)
        self._send(control_frame(action, self.config.station, header, self._signer), now)

    def _send(self, data: bytes, now: int, seq: int | None = None) -> bool:
        """Hand one frame to the socket; ``seq`` for a data frame (the session times it from there)."""
        if self._socket is None:
            return False
        try:
            self._socket.send(data, zmq.NOBLOCK)
        except zmq.Again:
            self.session.on_transport_lost("send queue full: the IDC is not reading", now)
            return False
        if seq is None:
            self.session.sent_bytes(len(data), now)
        else:
            self.session.data_sent(seq, len(data), now)
        return True
