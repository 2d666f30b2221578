"""ZeroMQ adapter of the IDC receiver: ROUTER sockets in, verified frames archived, acknacks out.

One CD-1.1 frame per ZeroMQ message; stations use DEALER sockets so the ROUTER sees [identity, frame].
The connection-manager endpoint answers Connection Requests from configured stations; the data endpoint
(the same socket unless configured apart) takes options, data, acknacks and alerts. Sessions are keyed
by station; acknacks go to the connection that most recently delivered a verified frame of that station.
Every message is handled inside one try block: whatever goes wrong is logged with station and reason,
counted, quarantined, and the loop carries on with the next message.

Accepted frames are made durable together ("settled"): one SQLite transaction per station, one sync of
the raw stores, the SDS appends, one sync of the archive, then the acknacks. Nothing is acknowledged
before it is durable; settling many frames at once only shares the syncs. Frames are settled as soon as
no message is waiting; while messages keep arriving, once SETTLE_FRAMES have gathered or the oldest has
waited SETTLE_AFTER_NS, and then only once the next poll round's signatures are with the verifier
workers, so verification overlaps the commit and the archiving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import zmq

from gci_link.cd11 import (
    AcknackBody,
    AlertBody,
    CommandResponseBody,
    ConnectionBody,
    DataBody,
    Frame,
    FrameHeader,
    FrameType,
    Ims2MessageBody,
    OptionBody,
    decode_frame,
    encode_frame,
)
from gci_link.durable import FilesystemSync
from gci_link.gaplist import GapList
from gci_link.io.sds import SdsArchive, Segment
from gci_link.keys import TrustStore
from gci_link.pacing import TokenBucket
from idc.config import IdcConfig, StationPolicy
from idc.curve import ZapHandler, configure_curve_server
from idc.metrics import MetricsStore
from idc.session import SessionTimings, StationSession
from idc.stores import MessageStore, Quarantine, StationStore
from idc.verify import (
    CheckedFrame,
    FrameChecker,
    PendingCheck,
    Rejection,
    signed_content,
)
from timeunits import NS_PER_S

log = logging.getLogger(__name__)

BATCH = 64  # messages taken from one socket before the others get a turn
PIPELINE_DEPTH = 2  # batches verifying while the loop handles an older one (1: the workers idle at times)
# Under load, accepted frames are settled (synced, acknowledged) once this many wait or the oldest has
# waited this long, rather than after every batch: each settling costs two filesystem syncs.
SETTLE_FRAMES = 256
SETTLE_AFTER_NS = 50_000_000
METRICS_FLUSH_NS = NS_PER_S  # metrics tallies reach the database (status, Prometheus) about once a second
ARCHIVE_RETRY_S = 30.0  # after a failed SDS append, how often the journal replay is tried
MAX_RATE_BUCKETS = 10_000  # identities remembered for connection-request rate limiting
LINGER_MS = 1000
_CONNECT = FrameType.CONNECTION_REQUEST.to_bytes(4, "big")


_Arrival = tuple[zmq.Socket, list[bytes], int]  # socket, message parts, arrival time (ns)


@dataclass(frozen=True)
class _Accepted:
    """A verified data frame waiting for its batch to become durable."""

    checked: CheckedFrame
    raw: bytes
    received_ns: int
    peer: str
    pieces: list[tuple[str, Segment]]


@dataclass
class _StationBatch:
    gaps: GapList  # the session's gap list, already holding every frame of the batch
    frames: dict[int, _Accepted] = field(default_factory=dict)


class Receiver:
    """The IDC end of the GCI link; ``start`` binds, ``step`` runs one poll round, ``close`` flushes."""

    def __init__(
        self,
        config: IdcConfig,
        trust: TrustStore,
        clock: Callable[[], int] = time.time_ns,
        context: zmq.Context | None = None,
    ) -> None:
        self.config = config
        self.trust = trust
        self.checker = FrameChecker(trust, config.stations, config.verify_workers)
        self.clock = clock
        self._own_context = context is None
        self.ctx = context or zmq.Context()
        root = config.root
        root.mkdir(parents=True, exist_ok=True)
        self.quarantine = Quarantine(root / "quarantine.sqlite", config.quarantine_max_bytes)
        self.metrics = MetricsStore(root / "metrics.sqlite")
        self.sds = SdsArchive(config.sds_root, config.record_length)
        self._raw_sync = FilesystemSync(root / "raw")  # barrier 1 for every station's transaction
        self._unsynced = False  # a barrier-1 sync failed: no acknack until one succeeds
        self._archive_behind_since: float | None = None  # monotonic time of a failed SDS append
        self.messages = MessageStore(root / "ims2")
        self.timings = SessionTimings(
            acknack_interval_ns=int(config.acknack_interval_s * NS_PER_S),
            silence_ns=int(config.silence_timeout_s * NS_PER_S),
            max_reported_gaps=config.max_reported_gaps,
        )
        self.sessions: dict[str, StationSession] = {}
        self._stores: dict[str, StationStore] = {}
        self._routes: dict[str, tuple[zmq.Socket, bytes]] = {}
        self._buckets: OrderedDict[bytes, TokenBucket] = OrderedDict()
        self._sockets: list[zmq.Socket] = []
        self._zap: ZapHandler | None = None
        self._poller = zmq.Poller()
        self._batches: dict[str, _StationBatch] = {}
        # batches with the verifier workers, not yet handled, oldest first: each message with its check
        self._checking: deque[list[tuple[_Arrival, PendingCheck | None]]] = deque()
        self._unsettled = 0  # frames accepted since the last flush
        self._unsettled_since = 0  # monotonic ns of the first of them
        self._last_prune_ns = 0
        self._last_metrics_ns = 0
        self.connection_endpoint = ""
        self.data_endpoint = ""

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Finish half-done archiving from a previous run, then bind the endpoints."""
        try:
            self._recover()
        except OSError as exc:  # e.g. the disk is still full: serve anyway, catch up later
            log.error("archive recovery failed at start; retried while running", extra={"reason": str(exc)})
            self._archive_behind_since = time.monotonic()
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
        log.info(
            "IDC receiver listening",
            extra={"connection_endpoint": self.connection_endpoint, "data_endpoint": self.data_endpoint},
        )

    def _bind(self, endpoint: str) -> zmq.Socket:
        sock = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.setsockopt(zmq.LINGER, LINGER_MS)
        sock.setsockopt(zmq.MAXMSGSIZE, 16 * self.config.max_frame_bytes)  # hard memory bound
        if self.config.curve is not None:
            configure_curve_server(sock, self.config.curve.secret_key)
        sock.bind(endpoint)
        self._sockets.append(sock)
        self._poller.register(sock, zmq.POLLIN)
        return sock

    def run(self, stop: threading.Event, poll_ms: int = 100) -> None:
        """Serve until ``stop`` is set (the CLI sets it on SIGTERM)."""
        while not stop.is_set():
            self.step(poll_ms)

    def close(self) -> None:
        """Tell every open session we are going, close sockets and stores."""
        for station, session in list(self.sessions.items()):
            if not session.closed:
                self._send(station, FrameType.ALERT, AlertBody(b"IDC receiver shutting down"))
        for sock in self._sockets:
            sock.close(linger=LINGER_MS)
        if self._zap is not None:
            self._zap.close()
        for store in self._stores.values():
            store.close()
        self.checker.close()
        self._raw_sync.close()
        self.quarantine.close()
        self.metrics.close()
        self.sds.close()
        if self._own_context:
            self.ctx.term()
        log.info("IDC receiver stopped")

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
        for sock in self._sockets:
            if sock not in events:
                continue
            messages = []
            for _ in range(BATCH):
                try:
                    messages.append(sock.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break
            self.handle(sock, messages, settle=False)
        if not self._unfinished:
            self._service_sessions()  # heartbeats and silence; never while frames await their settling

    @property
    def _unfinished(self) -> bool:
        return bool(self._checking or self._batches)

    def handle(self, sock: zmq.Socket, messages: list[list[bytes]], settle: bool = True) -> None:
        """Check and archive a batch of messages received on ``sock``; with ``settle`` also finish it, make
        it durable and send due acknacks, otherwise leave that to the next ``handle`` or ``settle``.

        This is the whole per-frame path without the polling, so benchmarks can drive it in-process.
        Frames are decoded and their signatures handed to the verifier workers first; while they verify,
        the batch from PIPELINE_DEPTH calls ago, whose signatures were verified meanwhile, is handled in
        arrival order, and the frames accepted earlier are made durable and acknowledged if that is due. So
        the receiver's own work overlaps verification, and the workers always have a batch waiting.
        """
        arrivals = [(sock, parts, self.clock()) for parts in messages]
        self._checking.append([(arrival, self._start_check(arrival[1], arrival[2])) for arrival in arrivals])
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
        self._flush()
        self._service_sessions()

    def _finish(self, checking: list[tuple[_Arrival, PendingCheck | None]]) -> None:
        for (sock, parts, now), check in checking:
            self._on_message(sock, parts, now, check)

    def _settle_due(self) -> bool:
        return self._unsettled >= SETTLE_FRAMES or (
            self._unsettled > 0 and time.monotonic_ns() - self._unsettled_since >= SETTLE_AFTER_NS
        )

    def _service_sessions(self) -> None:
        now = self.clock()
        if self._unsynced and not self._retry_sync():
            return  # no acknack may cover frames whose durability is unknown
        for station, session in list(self.sessions.items()):
            for body in session.poll(now):
                kind = FrameType.ACKNACK if isinstance(body, AcknackBody) else FrameType.ALERT
                self._send(station, kind, body)
            if session.closed:
                del self.sessions[station]
                self._routes.pop(station, None)
        if now - self._last_metrics_ns >= METRICS_FLUSH_NS:
            self._last_metrics_ns = now
            self.metrics.flush()
        if now - self._last_prune_ns > 60 * NS_PER_S:
            self._last_prune_ns = now
            self.metrics.prune(now - self.config.metrics_window_s * NS_PER_S)

    def _start_check(self, parts: list[bytes], now: int) -> PendingCheck | None:
        """Start checking a data-path frame; None leaves the message to ``_on_message`` alone (malformed
        envelopes, and connection requests, which are rate-limited before any work is spent on them)."""
        if len(parts) != 2 or len(parts[1]) > self.config.max_frame_bytes or parts[1][:4] == _CONNECT:
            return None
        return self.checker.submit(parts[1], now)

    def _on_message(self, sock: zmq.Socket, parts: list[bytes], now: int, check: PendingCheck | None) -> None:
        identity = parts[0]
        peer = identity.hex()
        raw = parts[1] if len(parts) == 2 else b"".join(parts[1:])
        try:
            if len(parts) != 2:
                raise Rejection("multipart", f"{len(parts) - 1} message parts; one CD-1.1 frame per message")
            if len(raw) > self.config.max_frame_bytes:
                raise Rejection(
                    "oversized", f"{len(raw)} bytes exceeds the {self.config.max_frame_bytes}-byte limit"
                )
            if raw[:4] == _CONNECT and not self._admit(identity, now):
                self.metrics.count("?", "connect_rate_limited")
                return
            if check is None:
                check = self.checker.submit(raw, now)
            self._on_frame(sock, identity, raw, now, check)
        except Rejection as exc:
            self._reject(peer, raw, now, exc)
            if exc.kind == "no_session":
                # An authentic frame on a connection this receiver does not know (it restarted, or closed
                # the session): say so at once, so the station reconnects now rather than after a timeout.
                self._alert_peer(sock, identity, exc.station, b"no open session: send a Connection Request")
        except Exception as exc:  # never die on bad input: log, count, keep the bytes, go on
            log.exception("frame handling failed", extra={"peer": peer, "reason": str(exc)})
            self._reject(peer, raw, now, Rejection("internal", f"{type(exc).__name__}: {exc}"))

    def _reject(self, peer: str, raw: bytes, now: int, exc: Rejection) -> None:
        log.warning(
            "frame rejected",
            extra={
                "station": exc.station,
                "peer": peer,
                "seq": exc.seq,
                "kind": exc.kind,
                "reason": exc.detail,
            },
        )
        self.metrics.count(exc.station, f"rejected:{exc.kind}")
        for check in exc.channels:
            self.metrics.channel_seen(exc.station, check.channel, check.outcome)
        self.quarantine.put(now, peer, exc.station, exc.seq, str(exc), raw)

    def _admit(self, identity: bytes, now: int) -> bool:
        """Token bucket per identity, so a flood of connection requests cannot crowd out stations."""
        bucket = self._buckets.pop(identity, None)
        if bucket is None:
            bucket = TokenBucket(self.config.connect_rate_per_s, self.config.connect_burst, now)
        self._buckets[identity] = bucket
        if len(self._buckets) > MAX_RATE_BUCKETS:
            self._buckets.popitem(last=False)
        if bucket.ready_at(now) > now:
            return False
        bucket.charge(1, now)
        return True

    # ---- frames ----------------------------------------------------------------------------------

    def _on_frame(self, sock: zmq.Socket, identity: bytes, raw: bytes, now: int, check: PendingCheck) -> None:
        checked = check.result()
        frame, station = checked.frame, checked.station
        kind = frame.header.frame_type
        if kind == FrameType.CONNECTION_REQUEST:
            self._on_connection_request(sock, identity, frame, now)
            return
        session = self.sessions.get(station)
        if session is None:
            raise Rejection(
                "no_session",
                "no open session: send a Connection Request first",
                station,
                frame.header.sequence,
            )
        session.frame_received(now)
        self._routes[station] = (sock, identity)  # the frame verified: acknacks follow this connection
        if kind in (FrameType.DATA, FrameType.IMS2_MESSAGE):
            self._on_data(session, checked, raw, now, identity.hex())
        elif kind == FrameType.OPTION_REQUEST:
            assert isinstance(frame.body, OptionBody)
            self._send(station, FrameType.OPTION_RESPONSE, frame.body)
        elif kind == FrameType.ACKNACK:
            pass  # the station's heartbeat; it has nothing we sent to report on
        elif kind == FrameType.ALERT:
            assert isinstance(frame.body, AlertBody)
            session.peer_alert(frame.body)
            del self.sessions[station]
            self._routes.pop(station, None)
        elif kind == FrameType.COMMAND_RESPONSE:
            assert isinstance(frame.body, CommandResponseBody)
            log.info("command response", extra={"station": station, "response": frame.body.response[:200]})
            self.metrics.count(station, "command_responses")
        else:
            raise Rejection(
                "unexpected_type", f"frame type {kind} is not sent to an IDC", station, frame.header.sequence
            )

    def _on_connection_request(self, sock: zmq.Socket, identity: bytes, frame: Frame, now: int) -> None:
        assert isinstance(frame.body, ConnectionBody)
        station = frame.header.creator
        if frame.body.station and frame.body.station != station:
            raise Rejection(
                "creator_mismatch", f"connection request names {frame.body.station!r} in its body", station
            )
        old = self.sessions.get(station)
        if old is None:
            self._flush()  # the stored gap list must include what this batch already accepted
        gaps = old.gaps if old is not None else self._store(station).gap_list()
        self.sessions[station] = StationSession(
            station, gaps, now, self.timings, frame.header.destination or "0"
        )
        self._routes[station] = (sock, identity)
        self.metrics.count(station, "connections")
        log.info(
            "session opened",
            extra={
                "station": station,
                "peer": identity.hex(),
                "lowest": gaps.lowest,
                "highest": gaps.highest,
            },
        )
        self._send(station, FrameType.CONNECTION_RESPONSE, self._connection_response())

    def _connection_response(self) -> ConnectionBody:
        """Stay on this socket (address and port 0) or name the data ROUTER's host and port."""
        ip = port = 0
        if self.data_endpoint != self.connection_endpoint:
            host, _, port_text = self.data_endpoint.removeprefix("tcp://").rpartition(":")
            port = int(port_text)
            advertised = self.config.advertise_address
            ip = int.from_bytes(bytes(int(x) for x in advertised.split(".")), "big") if advertised else 0
        return ConnectionBody(
            station=self.config.responder_name, station_type="IDC", ip_address=ip, port=port
        )

    def _on_data(
        self, session: StationSession, checked: CheckedFrame, raw: bytes, now: int, peer: str
    ) -> None:
        station, frame = checked.station, checked.frame
        seq = frame.header.sequence
        batch = self._batches.get(station)
        if batch is not None and batch.gaps is not session.gaps:
            self._flush()  # the session was replaced mid-batch: settle what the old one accepted first
            batch = None
        if batch is None:
            batch = self._batches[station] = _StationBatch(session.gaps)
        if session.is_duplicate(seq):
            earlier = batch.frames.get(seq)
            stored = earlier.raw if earlier is not None else self._store(station).raw_frame(seq)
            if (
                stored is not None
                and stored != raw
                and signed_content(decode_frame(stored)) != signed_content(frame)
            ):
                raise Rejection(
                    "replay", f"sequence {seq} was already received with different content", station, seq
                )
            self.metrics.count(station, "duplicates")
            session.duplicate_seen()
            return
        pieces = []
        if isinstance(frame.body, DataBody):
            for seg in self._segments(self.config.stations[station], frame.body):
                pieces += self.sds.split_by_day(seg)
        elif isinstance(frame.body, Ims2MessageBody):
            self.messages.write(station, seq, now, frame.body.message)
        session.gaps.add(seq)
        batch.frames[seq] = _Accepted(checked, raw, now, peer, pieces)
        if not self._unsettled:
            self._unsettled_since = time.monotonic_ns()
        self._unsettled += 1

    def _flush(self) -> None:
        """Make every frame accepted since the last flush durable; only then may acknacks cover them.

        Per station one transaction stores the frames, the gap list and the SDS journal; one syncfs makes
        them all durable (unless each was committed with synchronous=FULL) BEFORE any day file grows, so
        a crash can never leave records whose journal row is lost; then all day files grow and are
        synced together; then the journal rows are released and sessions told.
        """
        batches, self._batches = self._batches, {}
        self._unsettled = 0
        durable: list[tuple[str, _StationBatch]] = []
        for station, batch in batches.items():
            if not batch.frames:
                continue
            store = self._store(station)
            try:
                store.commit(
                    [
                        (seq, a.received_ns, a.raw, self.sds.sizes_before(a.pieces))
                        for seq, a in batch.frames.items()
                    ],
                    batch.gaps,
                )
            except Exception as exc:  # nothing of the batch is stored: forget it, the station will resend
                log.exception("commit failed", extra={"station": station, "frames": len(batch.frames)})
                self._forget(station, batch, store.gap_list())
                for seq, a in batch.frames.items():
                    self._reject(
                        a.peer,
                        a.raw,
                        a.received_ns,
                        Rejection("internal", f"commit failed: {exc}", station, seq),
                    )
                continue
            durable.append((station, batch))
        if durable and self._raw_sync.available:
            try:
                self._raw_sync.sync()
            except OSError as exc:  # durability unknown: archive nothing of the batch now (its journal rows
                # stay, so the next start redoes the appends, see _recover) and acknowledge nothing at all
                # until a sync succeeds
                log.error("sync of the raw stores failed", extra={"reason": str(exc)})
                for station, batch in durable:
                    self.metrics.count(station, "sync_failed", len(batch.frames))
                self._unsynced = True
                return
        pieces = [p for _, batch in durable for a in batch.frames.values() for p in a.pieces]
        if self._archive_behind_since is not None:
            self._catch_up_archive()
        if self._archive_behind_since is None:
            try:
                self.sds.append(pieces)
            except Exception as exc:  # disk full, or data pymseed cannot pack: the raw frames are durable
                # and journalled; append nothing more (a later append would sit past the point recovery
                # truncates to) until the journal has been replayed, see _catch_up_archive
                log.error(
                    "SDS append failed; archive catches up from the journal", extra={"reason": str(exc)}
                )
                self._archive_behind_since = time.monotonic()
            else:
                for station, batch in durable:
                    self._store(station).archived([seq for seq, a in batch.frames.items() if a.pieces])
        for station, batch in durable:
            self.metrics.count(station, "frames", len(batch.frames))
            for a in batch.frames.values():
                if isinstance(a.checked.frame.body, DataBody):
                    self._channel_metrics(station, a.checked, a.received_ns)
        for station, batch in durable:
            session = self.sessions.get(station)
            if session is not None and session.gaps is batch.gaps:
                for seq in batch.frames:
                    session.committed(seq)

    def _catch_up_archive(self) -> None:
        """After a failed SDS append, replay the journal (truncate, re-append in order) every so often."""
        if time.monotonic() - self._archive_behind_since < ARCHIVE_RETRY_S:
            return
        try:
            self._recover()
        except Exception as exc:  # still failing (disk still full): keep journalling, try again later
            log.error("SDS archive still behind", extra={"reason": str(exc)})
            self._archive_behind_since = time.monotonic()
            return
        self._archive_behind_since = None
        log.info("SDS archive caught up from the journal")

    def _retry_sync(self) -> bool:
        try:
            self._raw_sync.sync()
        except OSError as exc:
            log.error("sync of the raw stores still failing; acknacks held", extra={"reason": str(exc)})
            return False
        self._unsynced = False
        log.info("raw stores synced again; acknacks resume")
        return True

    def _forget(self, station: str, batch: _StationBatch, stored: GapList) -> None:
        """Undo the in-memory gap list additions of a batch that could not be committed."""
        session = self.sessions.get(station)
        if session is not None and session.gaps is batch.gaps:
            session.gaps = stored

    def _segments(self, station: StationPolicy, body: DataBody) -> list[Segment]:
        return [
            Segment(
                station.network,
                sub.site,
                sub.location,
                sub.channel,
                sub.time_ns,
                sub.sample_rate,
                sub.samples,
            )
            for sub in body.channels
            if sub.nsamp and sub.sample_rate > 0
        ]

    def _channel_metrics(self, station: str, checked: CheckedFrame, now: int) -> None:
        for sub, check in zip(checked.frame.body.channels, checked.channels, strict=True):
            self.metrics.channel_seen(
                station,
                check.channel,  # the label verification already gave this channel
                check.outcome,
                latency_ns=now - sub.end_ns,
                start_ns=sub.time_ns,
                end_ns=sub.end_ns,
                rate=sub.sample_rate,
            )

    # ---- output and state ----------------------------------------------------------------------

    def _alert_peer(self, sock: zmq.Socket, identity: bytes, station: str, message: bytes) -> None:
        frame = Frame(FrameHeader(FrameType.ALERT, self.config.responder_name, station), AlertBody(message))
        try:
            sock.send_multipart([identity, encode_frame(frame)], zmq.NOBLOCK)
        except zmq.ZMQError:  # the peer is already gone; it will reconnect on its own
            pass

    def _send(self, station: str, kind: FrameType, body: object) -> None:
        route = self._routes.get(station)
        if route is None:
            return
        sock, identity = route
        frame = Frame(FrameHeader(kind, self.config.responder_name, station), body)  # type: ignore[arg-type]
        try:
            sock.send_multipart([identity, encode_frame(frame)], zmq.NOBLOCK)
        except zmq.ZMQError as exc:  # peer gone (ROUTER_MANDATORY) or its queue full: it will reconnect
            log.warning(
                "cannot reach station",
                extra={"station": station, "frame_type": kind.name, "reason": exc.strerror},
            )
            self.metrics.count(station, "send_failed")
            self._routes.pop(station, None)

    def _store(self, station: str) -> StationStore:
        store = self._stores.get(station)
        if store is None:
            store = self._stores[station] = StationStore(
                self.config.root / "raw" / f"{station}.sqlite", deferred_sync=self._raw_sync.available
            )
        return store

    def _recover(self) -> None:
        """Redo SDS appends that a crash interrupted (their day files were truncated back first)."""
        for path in sorted((self.config.root / "raw").glob("*.sqlite")):
            station = path.stem
            store = self._store(station)
            for seq in store.recover():
                config = self.config.stations.get(station)
                raw = store.raw_frame(seq)
                if config is None or raw is None:
                    log.error("cannot redo archiving", extra={"station": station, "seq": seq})
                    continue
                try:
                    body = decode_frame(raw).body
                    if isinstance(body, DataBody):
                        self.sds.append(
                            [p for seg in self._segments(config, body) for p in self.sds.split_by_day(seg)]
                        )
                except OSError:  # disk trouble: the journal row stays; the caller retries later
                    raise
                except Exception as exc:  # one frame that cannot be archived must not stop every start
                    log.error(
                        "cannot redo archiving", extra={"station": station, "seq": seq, "reason": str(exc)}
                    )
                    self.quarantine.put(
                        self.clock(), "recovery", station, seq, f"archiving failed: {exc}", raw
                    )
                store.archived([seq])
                log.info("archiving redone after restart", extra={"station": station, "seq": seq})
