"""ZeroMQ adapter of the IDC receiver: sockets, the poll loop and the verifier pool around the protocol core.

One CD-1.1 frame per ZeroMQ message; stations use DEALER sockets, so a ROUTER sees [identity, frame]. The
connection-manager endpoint and the data endpoint (the same socket unless configured apart) feed one
:class:`~idc.protocol.ReceiverProtocol`, which decides everything about a message; this module carries
out what it returns (frames sent, rejections logged, counted and quarantined, events logged and counted),
each once. :class:`~idc.committer.BatchCommitter` makes accepted frames durable before any acknack covers
them. When frames are settled, and how the loop overlaps verification with handling and committing:
docs/idc-receiver.md, "Overlap".
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol, cast

import zmq

from gci_link.cd11 import ChannelSubframe, DataBody, Ims2MessageBody
from gci_link.clock import Clock
from gci_link.io.sds import SdsArchive
from gci_link.kernels import warm_up
from gci_link.keys import KeyMaterialError, Role, StationSigner, TrustStore
from gci_link.pacing import TokenBucket
from idc.actions import (
    Action,
    CommandResponseReceived,
    ConnectRateLimited,
    DuplicateReceived,
    Peer,
    Reject,
    Send,
    SessionClosedByStation,
    SessionEndedByReload,
    SessionOpened,
    SessionSilent,
    StationBatch,
)
from idc.checker import FrameChecker, PendingCheck
from idc.commands import CommandQueue
from idc.committer import Archived, BatchCommitter
from idc.config import IdcConfig, SeedLinkConfig
from idc.curve import ZapHandler, configure_curve_server
from idc.handshakes import HandshakeMonitor
from idc.metadata import ChannelMetadata
from idc.metrics import MetricsStore
from idc.protocol import MULTIPART_PARTS_KEPT, MULTIPART_PREFIX_BYTES, ReceiverProtocol
from idc.rn_analyser import RnAnalyser
from idc.rn_store import RnStore
from idc.seedlink import Limits, Ring, RunningServer, ServerConfig, start_server
from idc.session import StationSession
from idc.stores import Quarantine, RawStores
from idc.vocabulary import ANONYMOUS, StationCounter, handshake_failed, rejected, status_flag
from opskit.heap import HeapTrimmer
from timeunits import NS_PER_S

log = logging.getLogger(__name__)

BATCH = 64  # messages taken from one socket before the others get a turn
PIPELINE_DEPTH = 2  # batches verifying while the loop handles an older one (1: the workers idle at times)
# Under load, accepted frames are settled (synced, acknowledged) once this many wait or the oldest has
# waited this long, rather than after every batch: each settling costs two filesystem syncs.
SETTLE_FRAMES = 256
SETTLE_AFTER_NS = 50_000_000
METRICS_FLUSH_NS = NS_PER_S  # metrics tallies reach the database (status, Prometheus) about once a second
METRICS_PRUNE_NS = 60 * NS_PER_S
COMMANDS_POLL_NS = NS_PER_S  # how often the operator's queued command requests are looked for
LINGER_MS = 1000
STRANGER_LOG_BURST = 20  # log lines for rejected input that names no configured station: at once,
STRANGER_LOG_PER_S = 1.0  # then per second
# what a reload (SIGHUP, ``ims idc reload``) changes; every other setting takes a restart
RELOADABLE = ("stations", "trust_dir")


def receive_message(sock: zmq.Socket) -> list[bytes]:
    """One message from a ROUTER socket: the routing identity, then its parts.

    One part is the rule (one CD-1.1 frame per message). Anything more is refused by the core, so its
    parts are read without copying and only the first bytes of the first few are kept, for the
    quarantine: a stranger's message of many large parts is never copied into or joined in Python."""
    identity = sock.recv(zmq.NOBLOCK)
    first = sock.recv(copy=False)
    if not sock.getsockopt(zmq.RCVMORE):
        return [identity, first.bytes]
    parts = [first.buffer[:MULTIPART_PREFIX_BYTES].tobytes()]
    while sock.getsockopt(zmq.RCVMORE):
        part = sock.recv(copy=False)
        kept = len(parts) < MULTIPART_PARTS_KEPT
        parts.append(part.buffer[:MULTIPART_PREFIX_BYTES].tobytes() if kept else b"")
    return [identity, *parts]


def _server_config(seedlink: SeedLinkConfig) -> ServerConfig:
    return ServerConfig(
        organization=seedlink.organization,
        max_clients=seedlink.max_clients,
        handshake_timeout_s=seedlink.handshake_timeout_s,
        stall_timeout_s=seedlink.stall_timeout_s,
        limits=Limits(max_stations=seedlink.max_stations, max_selectors=seedlink.max_selectors),
    )


class Sender(Protocol):
    """What the receiver needs of a socket to answer on it (a ROUTER, or a benchmark's stub)."""

    def send_multipart(self, msg_parts: list[bytes], flags: int = ...) -> object: ...


_Arrival = tuple[Peer, list[bytes], int, PendingCheck | None]  # peer, message parts, arrival ns, its check


def idc_signer(config: IdcConfig) -> StationSigner | None:
    """The key the receiver signs its frames with (``idc.key_bundle``), checked to be an IDC's key issued
    for ``responder_name``, the creator its frames carry; KeyMaterialError names what is wrong."""
    if config.key_bundle is None:
        return None
    signer = StationSigner.load(config.key_bundle)
    if signer.role is not Role.IDC:
        raise KeyMaterialError(config.key_bundle, "a station's key, not an IDC's ('ims keys issue-idc')")
    if signer.station != config.responder_name:
        raise KeyMaterialError(
            config.key_bundle,
            f"certificate is for IDC {signer.station!r} but responder_name is {config.responder_name!r}",
        )
    return signer


class Receiver:
    """The IDC end of the GCI link; ``start`` binds, ``step`` runs one poll round, ``close`` flushes."""

    def __init__(
        self,
        config: IdcConfig,
        trust: TrustStore,
        clock: Clock = time.time_ns,
        context: zmq.Context | None = None,
    ) -> None:
        self.signer = idc_signer(config)  # first: a bad key bundle must stop the start before anything opens
        self.config = config
        self.trust = trust
        self.clock = clock
        self.checker = FrameChecker(trust, config.stations, config.verify_workers, config.limits)
        self._own_context = context is None
        self.ctx = context or zmq.Context()
        root = config.root
        root.mkdir(parents=True, exist_ok=True)
        self.quarantine = Quarantine(
            root / "quarantine.sqlite",
            max_bytes=config.quarantine_max_bytes,
            max_item_bytes=config.max_frame_bytes,
            max_rows=config.quarantine_max_rows,
        )
        self.metrics = MetricsStore(root / "metrics.sqlite")
        self.sds = SdsArchive(config.sds_root, config.record_length)
        self.raw = RawStores(root / "raw")
        self.messages = RnStore(root / "ims2")  # IMS 2.0 message files and their index
        self.metadata = ChannelMetadata(root, config.stations)  # StationXML of the archived channels
        self.commands = CommandQueue(root, timeout_s=0.25)  # operator's command requests (ims idc command)
        # each SAMPLEPHD analysed once durable, in a process of its own (idc/rn_analyser.py)
        self.rn_analyser = RnAnalyser(root / "ims2", clock, config.rn_analysis_timeout_s,
                                      config.rn_analysis_memory_mb << 20) if config.rn_analysis else None
        self.seedlink_ring: Ring | None = None  # opened by start() when [idc.seedlink] is configured
        self._seedlink: RunningServer | None = None
        self.committer = BatchCommitter(
            config.stations,
            self.raw,
            self.sds,
            self.messages,
            self.quarantine,
            clock,
            publish=self._publish_archived,
        )
        self.core = ReceiverProtocol(config, self.checker.submit, self.raw, self.signer)
        self._sockets: list[zmq.Socket] = []
        self._zap: ZapHandler | None = None
        self._handshakes = HandshakeMonitor(self.ctx, clock)
        self._poller = zmq.Poller()
        # batches with the verifier workers, not yet handled, oldest first
        self._checking: deque[list[_Arrival]] = deque()
        self._unsettled_since: int | None = None  # clock ns when the first unsettled frame was accepted
        self._last_prune_ns = 0
        self._last_metrics_ns = 0
        self._last_commands_ns = 0
        self._heap = HeapTrimmer()  # bursts of big frames leave freed memory resident (opskit/heap.py)
        self._unstored_answers: list[tuple[str, bytes, bytes, int]] = []  # responses to store again
        self._unrecorded = 0  # rejections whose recording failed since the last that succeeded
        self._stranger_lines = TokenBucket(STRANGER_LOG_PER_S, STRANGER_LOG_BURST, clock())
        self._strangers_unlogged = 0  # rejections of strangers' input left out of the log since its last line
        self._unverified_seen: set[tuple[str, int]] = set()  # (station, unknown key id) logged so far
        self.connection_endpoint = ""
        self.data_endpoint = ""

    @property
    def sessions(self) -> dict[str, StationSession]:
        return self.core.sessions

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Compile the kernels, finish half-done archiving from a previous run, then bind the endpoints."""
        log.info("compiled kernels ready", extra={"seconds": round(warm_up(), 3)})
        if self.signer is None:
            log.warning("no IDC key (idc.key_bundle): frames to the stations go unsigned, and a station that "
                        "checks the IDC's frames refuses them")
        seedlink = self.config.seedlink
        if seedlink is not None:  # before recovery, so what it archives reaches the ring too
            self.seedlink_ring = Ring.open(seedlink.ring, ring_bytes=seedlink.ring_bytes, sync=seedlink.sync)
        self.committer.start()
        if self.rn_analyser is not None:  # its first pass takes up what the last run left unanalysed
            self.rn_analyser.start()
        if self.config.curve is not None:
            self._zap = ZapHandler(self.ctx, self.config.curve.authorized_keys_dir)
            self._poller.register(self._zap.socket, zmq.POLLIN)
        conn = self._bind(self.config.connection_endpoint)
        self.connection_endpoint = conn.getsockopt_string(zmq.LAST_ENDPOINT)
        if self.config.data_endpoint is None:
            self.data_endpoint = self.connection_endpoint
        else:
            data = self._bind(self.config.data_endpoint)
            self.data_endpoint = data.getsockopt_string(zmq.LAST_ENDPOINT)
            self.core.data_address = self._advertised_data_address()
        if seedlink is not None and self.seedlink_ring is not None:
            self._seedlink = start_server(
                self.seedlink_ring, seedlink.listen, _server_config(seedlink), self.clock
            )
        log.info(
            "IDC receiver listening",
            extra={"connection_endpoint": self.connection_endpoint, "data_endpoint": self.data_endpoint},
        )

    def _bind(self, endpoint: str) -> zmq.Socket:
        sock = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.setsockopt(zmq.LINGER, LINGER_MS)
        # the hard bound, per part: a frame a little over its size limit still arrives to be refused
        limits = self.config.max_frame_bytes, self.config.max_ims2_frame_bytes
        sock.setsockopt(zmq.MAXMSGSIZE, max(4 * limits[0], sum(limits)))
        try:
            if self.config.curve is not None:
                configure_curve_server(sock, self.config.curve.secret_key)
            sock.bind(endpoint)
        except BaseException:
            sock.close(linger=0)  # a socket left open would hold the context's term() forever
            raise
        self._sockets.append(sock)
        self._poller.register(sock, zmq.POLLIN)
        self._poller.register(self._handshakes.watch(sock), zmq.POLLIN)
        return sock

    def _advertised_data_address(self) -> tuple[int, int]:
        """(IPv4 address as a number, port) of the data ROUTER, as Connection Responses name it."""
        _, _, port_text = self.data_endpoint.removeprefix("tcp://").rpartition(":")
        advertised = self.config.advertise_address
        ip = int.from_bytes(bytes(int(x) for x in advertised.split(".")), "big") if advertised else 0
        return ip, int(port_text)

    def run(
        self, stop: threading.Event, poll_ms: int = 100, between: Callable[[Receiver], None] | None = None
    ) -> None:
        """Serve until ``stop`` is set (the CLI sets it on SIGTERM); ``between`` runs after each poll
        round (the CLI's reloads, idc/reload.py)."""
        while not stop.is_set():
            self.step(poll_ms)
            if between is not None:
                between(self)

    def close(self) -> None:
        """Tell every open session we are going, close sockets and stores."""
        self._carry_out(self.core.close(self.clock()))
        if self._seedlink is not None:
            self._seedlink.stop()
        if self.seedlink_ring is not None:
            self.seedlink_ring.close()
        self._handshakes.close()
        for sock in self._sockets:
            sock.close(linger=LINGER_MS)
        if self._zap is not None:
            self._zap.close()
        if self.rn_analyser is not None:
            self.rn_analyser.close()
        self.raw.close()
        self.messages.close()
        self.commands.close()
        self._write_metadata()
        self.metadata.close()
        self.checker.close()
        self.quarantine.close()
        self.metrics.close()
        self.sds.close()
        if self._own_context:
            self.ctx.term()
        log.info("IDC receiver stopped")

    def reload(self, config: IdcConfig, trust: TrustStore) -> list[str]:
        """Serve from now on with the stations of ``config`` and the keys of ``trust`` (loaded and checked
        by the caller: a configuration that does not load never gets here, and the old one runs on).

        Frames already received are finished under the old configuration first. Sessions the new one no
        longer allows are ended (idc/protocol.py, ``reconfigure``). Returns the other settings that differ
        from the running ones: they take a restart, and are kept (and logged) until then.
        """
        kept = [
            name
            for name in (f.name for f in dataclasses.fields(config))
            if name not in RELOADABLE and getattr(config, name) != getattr(self.config, name)
        ]
        effective = dataclasses.replace(self.config, stations=config.stations, trust_dir=config.trust_dir)
        old = self.config.stations
        self.settle()
        self.checker.reconfigure(trust, effective.stations)
        self.committer.set_stations(effective.stations)
        self.metadata.stations = effective.stations  # declared responses and networks of the StationXML
        self.config, self.trust = effective, trust
        self._unverified_seen.clear()  # what is still archived unverified is said again
        self._carry_out(self.core.reconfigure(effective, trust, self.clock()))
        log.info(
            "configuration reloaded",
            extra={
                "stations": len(effective.stations),
                "added": ",".join(sorted(effective.stations.keys() - old.keys())) or "-",
                "removed": ",".join(sorted(old.keys() - effective.stations.keys())) or "-",
                "keys": len(trust.keys),
            },
        )
        if kept:
            log.warning("settings that take a restart were not changed", extra={"settings": ",".join(kept)})
        return kept

    def _publish_archived(self, written: Archived) -> None:
        if self.seedlink_ring is not None:
            self.seedlink_ring.append_batch(written)

    # ---- the loop ------------------------------------------------------------------------------

    def step(self, timeout_ms: int = 100) -> None:
        """Wait up to ``timeout_ms`` for messages and handle a fair batch from each socket.

        Frames still being checked or accepted are settled as soon as no message is waiting, so a link at
        nominal load sees its acknack without delay; under load ``handle`` settles them in larger groups.
        """
        events = dict(self._poller.poll(0 if self._unfinished else timeout_ms))
        if not events and self._unfinished:
            self.settle()
            events = dict(self._poller.poll(timeout_ms))
        if self._zap is not None and self._zap.socket in events:
            try:
                self._zap.handle()
            except Exception:  # a broken handshake request must not stop the receiver
                log.exception("ZAP request handling failed")
        for monitor in self._handshakes.sockets:
            if monitor in events:
                for reason in self._handshakes.read(monitor):
                    self.metrics.count(ANONYMOUS, handshake_failed(reason))
        for sock in self._sockets:
            if sock not in events:
                continue
            messages = []
            for _ in range(BATCH):
                try:
                    messages.append(receive_message(sock))
                except zmq.Again:
                    break
            self.handle(sock, messages, settle=False)
        if not self._unfinished:
            self._service_sessions()  # heartbeats and silence; never while frames await their settling

    @property
    def _unfinished(self) -> bool:
        return bool(self._checking) or self.core.pending

    def handle(self, sock: Sender, messages: list[list[bytes]], settle: bool = True) -> None:
        """Check and archive a batch of messages ([identity, frame...]) received on ``sock``; with
        ``settle`` also finish it, make it durable and send due acknacks, otherwise leave that to the next
        ``handle`` or ``settle``.

        This is the whole per-frame path without the polling, so benchmarks can drive it in-process.
        Frames are decoded and their signatures handed to the verifier workers first; while they verify,
        the batch from PIPELINE_DEPTH calls ago, whose signatures were verified meanwhile, is handled in
        arrival order, and the frames accepted earlier are made durable and acknowledged if that is due. So
        the receiver's own work overlaps verification, and the workers always have a batch waiting.
        """
        arrivals: list[_Arrival] = []
        for parts in messages:
            now = self.clock()
            message = parts[1:]
            frame = self.core.frame_to_check(message)
            check = None if frame is None else self.checker.submit(frame, now)
            arrivals.append((Peer(sock, parts[0]), message, now, check))
        self._checking.append(arrivals)
        self.checker.dispatch()
        if self._settle_due():
            self._settle_accepted()
        while len(self._checking) > PIPELINE_DEPTH:
            self._finish(self._checking.popleft())
        if settle:
            self.settle()

    def settle(self) -> None:
        """Finish every frame being checked, make every accepted frame durable, then send the acknacks
        that are due."""
        while self._checking:
            self._finish(self._checking.popleft())
        self._settle_accepted()

    def _settle_accepted(self) -> None:
        self._commit()
        self._service_sessions()

    def _finish(self, arrivals: list[_Arrival]) -> None:
        for peer, message, now, check in arrivals:
            self._carry_out(self.core.receive(peer, message, now, check))
            if self._unsettled_since is None and self.core.unsettled:
                self._unsettled_since = self.clock()

    def _settle_due(self) -> bool:
        unsettled = self.core.unsettled
        return unsettled >= SETTLE_FRAMES or (
            self._unsettled_since is not None and self.clock() - self._unsettled_since >= SETTLE_AFTER_NS
        )

    def _commit(self) -> None:
        """Make every frame accepted since the last commit durable (idc/committer.py), then tell the core."""
        self._unsettled_since = None
        outcome = self.committer.commit(self.core.take_batches())
        for batch in outcome.durable:
            if outcome.synced:
                self._count_durable(batch)
            else:
                self.metrics.count(batch.station, StationCounter.SYNC_FAILED, len(batch.frames))
        self._carry_out(self.core.settled(outcome.durable if outcome.synced else (), outcome.failed))
        if outcome.synced and self.rn_analyser is not None and any(
            isinstance(accepted.checked.frame.body, Ims2MessageBody)
            for batch in outcome.durable for accepted in batch.frames.values()
        ):
            self.rn_analyser.notify()

    def _count_durable(self, batch: StationBatch) -> None:
        self.metrics.count(batch.station, StationCounter.FRAMES, len(batch.frames))
        for accepted in batch.frames.values():
            if accepted.checked.unverified_keys:
                self._archived_unverified(batch.station, accepted.checked.unverified_keys)
            body = accepted.checked.frame.body
            if not isinstance(body, DataBody):
                continue
            flagged = {name for sub in body.channels if sub.status.raw[1:5].strip(b"\0")  # any flag byte set
                       for name, on in sub.status.flags().items() if on}
            for name in flagged:  # frames that carried each CD-1.1 status flag (ims idc status, console)
                self.metrics.count(batch.station, status_flag(name))
            for sub, check in zip(body.channels, accepted.checked.channels, strict=True):
                self._observe(batch.station, sub)
                self.metrics.channel_seen(
                    batch.station,
                    check.channel,  # the label verification already gave this channel
                    check.outcome,
                    latency_ns=accepted.received_ns - sub.end_ns,
                    start_ns=sub.time_ns,
                    end_ns=sub.end_ns,
                    rate=sub.sample_rate,
                )

    def _archived_unverified(self, station: str, key_ids: tuple[int, ...]) -> None:
        """Count a frame archived by the ``unverified = "archive"`` policy; log each (station, key id)
        the first time since start or the last reload, so a migration period is visible, not a flood."""
        self.metrics.count(station, StationCounter.UNVERIFIED_ARCHIVED)
        for key_id in key_ids:
            if (station, key_id) not in self._unverified_seen:
                self._unverified_seen.add((station, key_id))
                log.warning(
                    "archiving frames signed with a key the trust store does not know",
                    extra={"station": station, "key_id": key_id, "policy": "unverified=archive"},
                )

    def _service_sessions(self) -> None:
        now = self.clock()
        if not self.committer.acknacks_allowed():
            return  # no acknack may cover frames whose durability is unknown
        self._carry_out(self.core.poll(now))
        if now - self._last_metrics_ns >= METRICS_FLUSH_NS:
            self._last_metrics_ns = now
            self._record_links(now)
            self.metrics.flush()
            self._write_metadata()
        if now - self._last_commands_ns >= COMMANDS_POLL_NS:
            self._last_commands_ns = now
            self._send_commands(now)
        if now - self._last_prune_ns > METRICS_PRUNE_NS:
            self._last_prune_ns = now
            self.metrics.prune(now - self.config.metrics_window_s * NS_PER_S)
        self._heap.maybe()

    def _record_links(self, now: int) -> None:
        """Which stations have a session open now, for ``ims idc status`` and the console."""
        open_now = {station: s for station, s in self.sessions.items() if not s.closed}
        heard: dict[str, int | None] = dict.fromkeys(self.config.stations)
        heard.update({station: s.last_heard_ns for station, s in open_now.items()})
        self.metrics.record_links(now, heard, set(open_now))

    def _observe(self, station: str, sub: ChannelSubframe) -> None:
        try:
            self.metadata.observe(station, sub)
        except sqlite3.Error as exc:  # the frames are durable whatever becomes of their metadata
            log.error("channel epoch not recorded", extra={"station": station, "reason": str(exc)})

    def _write_metadata(self) -> None:
        """StationXML of the sites whose calibration changed; a failure is logged and tried again."""
        try:
            for path in self.metadata.flush():
                log.info("StationXML written", extra={"path": str(path)})
        except (OSError, ValueError, sqlite3.Error) as exc:
            log.error("StationXML not written", extra={"reason": f"{type(exc).__name__}: {exc}"})

    def _send_commands(self, now: int) -> None:
        """Send the operator's queued command requests to stations with an open session (idc/commands.py).
        Each is marked sent before its frame leaves: a crash in between loses the request, never runs it
        twice. A database the operator's command holds locked just delays this to the next round."""
        waiting, self._unstored_answers = self._unstored_answers, []
        for answer in waiting:
            self._store_answer(*answer)
        try:
            for command in self.commands.queued():
                made = self.core.command_request(command.station, command.request(), now)
                if made is None:
                    continue  # no session yet: it waits, until the operator's command withdraws it
                seq, send = made
                if self.commands.mark_sent(command.id, seq, now):
                    log.info("command request sent", extra={"station": command.station, "id": command.id,
                                                            "seq": seq, "command": command.text})
                    if not self._send(send):
                        self.commands.unsent(command.id)
        except sqlite3.Error as exc:
            log.warning("command queue not read", extra={"reason": str(exc)})

    def _command_answered(self, station: str, request: bytes, response: bytes) -> None:
        self.metrics.count(station, StationCounter.COMMAND_RESPONSES)
        self._store_answer(station, request, response, self.clock())

    def _store_answer(self, station: str, request: bytes, response: bytes, now: int) -> None:
        """Store a response with its request; one the database refuses now (the operator's command holds
        it locked) is kept and tried again with the next look at the queue: the station sends it once."""
        try:
            command_id = self.commands.answer(station, request, response, now)
        except sqlite3.Error as exc:
            if not self._unstored_answers:
                log.warning("command response not stored yet", extra={"station": station, "reason": str(exc)})
            self._unstored_answers.append((station, request, response, now))
            return
        log.info("command response", extra={"station": station, "id": command_id,
                                            "response": response[:200]})

    # ---- carrying out what the core decided ------------------------------------------------------

    def _carry_out(self, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case Send():
                    self._send(action)
                case Reject():
                    self._reject(action)
                case SessionOpened(station, peer, lowest, highest):
                    self.metrics.count(station, StationCounter.CONNECTIONS)
                    log.info(
                        "session opened",
                        extra={"station": station, "peer": peer, "lowest": lowest, "highest": highest},
                    )
                case SessionClosedByStation(station, alert):
                    log.info("station closed the session", extra={"station": station, "alert": alert})
                case SessionSilent(station, silent_s):
                    log.warning("closing silent session", extra={"station": station, "silent_s": silent_s})
                case SessionEndedByReload(station, reason):
                    log.warning("session ended by reload", extra={"station": station, "reason": reason})
                case DuplicateReceived(station):
                    self.metrics.count(station, StationCounter.DUPLICATES)
                case ConnectRateLimited():
                    self.metrics.count(ANONYMOUS, StationCounter.CONNECT_RATE_LIMITED)
                case CommandResponseReceived(station, request, response):
                    self._command_answered(station, request, response)

    def _send(self, send: Send) -> bool:
        """Whether the frame left (into ZeroMQ's queue for the peer)."""
        sock = cast(Sender, send.peer.via)
        try:
            sock.send_multipart([send.peer.identity, send.frame], zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # peer gone (ROUTER_MANDATORY) or its queue full: it will reconnect
            if not send.session:
                return False
            log.warning(
                "cannot reach station",
                extra={"station": send.station, "frame_type": send.kind.name, "reason": exc.strerror},
            )
            self.metrics.count(send.station, StationCounter.SEND_FAILED)
            self.core.unreachable(send.station)
            return False
        return True

    def _reject(self, reject: Reject) -> None:
        """The one place a rejection is logged, counted and quarantined; nothing in it may stop the loop.

        Recording can fail (a full disk, a database refusing the row): the rejection stands, the failure
        is counted (``rejection_unrecorded``) and logged once, with its traceback, until a rejection is
        recorded again, so a flood of input the quarantine refuses is not also a flood of tracebacks."""
        try:
            self._record_rejection(reject)
        except Exception:
            self.metrics.count(reject.rejection.station, StationCounter.REJECTION_UNRECORDED)
            self._unrecorded += 1
            if self._unrecorded == 1:
                log.exception("recording a rejection failed; failures counted, not logged, until one works",
                              extra={"peer": reject.peer})
            return
        if self._unrecorded:
            log.warning("rejections recorded again", extra={"unrecorded": self._unrecorded})
            self._unrecorded = 0

    def _stranger_may_log(self, now_ns: int) -> bool:
        """Whether a rejection of input that names no configured station gets a log line: at most
        STRANGER_LOG_BURST at once, then STRANGER_LOG_PER_S (every one is counted and quarantined all the
        same), so a flood of garbage cannot flood the log; the next line says how many were left out."""
        if self._stranger_lines.ready_at(now_ns) > now_ns:
            self._strangers_unlogged += 1
            return False
        self._stranger_lines.charge(1, now_ns)
        return True

    def _record_rejection(self, reject: Reject) -> None:
        exc = reject.rejection
        if reject.error is not None:
            log.error(
                "frame handling failed",
                exc_info=reject.error,
                extra={"peer": reject.peer, "reason": str(reject.error)},
            )
        if exc.station != ANONYMOUS or self._stranger_may_log(reject.received_ns):
            fields = {"station": exc.station, "peer": reject.peer, "seq": exc.seq, "kind": exc.kind}
            if exc.station == ANONYMOUS and self._strangers_unlogged:
                fields["not_logged_before"] = self._strangers_unlogged
                self._strangers_unlogged = 0
            log.warning("frame rejected", extra=fields | {"reason": exc.detail})
        self.metrics.count(exc.station, rejected(exc.kind))
        for check in exc.channels:
            self.metrics.channel_seen(exc.station, check.channel, check.outcome)
        self.quarantine.put(reject.received_ns, reject.peer, exc.station, exc.seq, str(exc), reject.raw)
