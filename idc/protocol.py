"""The IDC receiver's rules as a sans-I/O core: (peer, message, now) in, actions out.

Everything the receiver decides about a message lives here: the envelope (one frame per message, the size
limit), rate limits on connection requests, sessions (Connection Request and Response, one
:class:`~idc.session.StationSession` per station), routing (acknacks follow the connection that last
delivered a verified frame of the station), duplicate and replay detection, and every rejection, each
turned into one ``Reject`` for the adapter to log, count and quarantine.

The core holds no socket, opens no file, reads no clock and does not log; ``now`` is passed in and what
happened comes out as actions (idc/actions.py: frames to send, rejections, events), in the order they
happened.
Three things come from outside, so tests and fuzzers drive it with plain values:

- ``check``: decodes a frame and verifies its signatures by the policy of idc/verify.py (the adapter's
  ``FrameChecker``, idc/checker.py, runs the mathematics on worker processes and passes the verdict it
  started early to ``receive``);
- ``stored``: what a station's durable store holds, read when a session opens (its gap list) and when a
  duplicate must be told from a replay (the frame's stored bytes);
- the committer: it takes the accepted frames (``take_batches``), makes them durable and reports back
  (``settled``); only then do sessions acknowledge them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from gci_link.cd11 import (
    AcknackBody,
    AlertBody,
    CommandResponseBody,
    ConnectionBody,
    FrameType,
    OptionBody,
    decode_frame,
    encode_frame,
)
from gci_link.cd11.frame import Body, Frame, FrameHeader
from gci_link.gaplist import GapList
from gci_link.pacing import TokenBucket
from idc.actions import (
    Accepted,
    Action,
    CommandResponseReceived,
    CommitFailure,
    ConnectRateLimited,
    DuplicateReceived,
    Peer,
    Reject,
    Send,
    SessionClosedByStation,
    SessionOpened,
    SessionSilent,
    StationBatch,
)
from idc.config import IdcConfig
from idc.session import SessionTimings, StationSession
from idc.verify import CheckedFrame, Rejection, signed_content
from idc.vocabulary import RejectionKind
from timeunits import NS_PER_S

MAX_RATE_BUCKETS = 10_000  # identities remembered for connection-request rate limiting
MULTIPART_PARTS_KEPT = 16  # a refused multi-part message is quarantined as its first parts' prefixes
MULTIPART_PREFIX_BYTES = 64
_CONNECT = FrameType.CONNECTION_REQUEST.to_bytes(4, "big")


class Verdict(Protocol):
    """A frame's decoding and signature check, maybe still in progress: ``result`` gives the checked
    frame or raises the :class:`~idc.verify.Rejection`."""

    def result(self) -> CheckedFrame: ...


Check = Callable[[bytes, int], Verdict]  # (raw frame, arrival ns) -> its verdict


class StoredFrames(Protocol):
    """Read access to what the stations' durable stores hold."""

    def gap_list(self, station: str) -> GapList: ...

    def raw_frame(self, station: str, seq: int) -> bytes | None: ...


class ReceiverProtocol:
    """Sessions, routes and accepted frames of every station, advanced by ``receive``, ``poll`` and
    ``settled``."""

    def __init__(self, config: IdcConfig, check: Check, stored: StoredFrames) -> None:
        self.config = config
        self._check = check
        self._stored = stored
        self.timings = SessionTimings(
            acknack_interval_ns=int(config.acknack_interval_s * NS_PER_S),
            silence_ns=int(config.silence_timeout_s * NS_PER_S),
            max_reported_gaps=config.max_reported_gaps,
        )
        self.sessions: dict[str, StationSession] = {}
        self._routes: dict[str, Peer] = {}
        self._buckets: OrderedDict[bytes, TokenBucket] = OrderedDict()
        self._batches: dict[str, StationBatch] = {}
        self.unsettled = 0  # frames accepted since the last take_batches
        # (IPv4 address as a number, port) that Connection Responses name; (0, 0): stay on this connection
        self.data_address = (0, 0)

    # ---- messages --------------------------------------------------------------------------------

    def frame_to_check(self, message: Sequence[bytes]) -> bytes | None:
        """The frame of ``message`` whose signatures may be verified ahead of ``receive``, or None:
        malformed envelopes are refused unread, and connection requests are rate-limited before any work
        is spent on them."""
        if len(message) != 1 or len(message[0]) > self.config.max_frame_bytes or message[0][:4] == _CONNECT:
            return None
        return message[0]

    def receive(
        self, peer: Peer, message: Sequence[bytes], now_ns: int, verdict: Verdict | None = None
    ) -> list[Action]:
        """Handle one ZeroMQ message (its parts after the routing identity) that arrived at ``now_ns``.

        ``verdict``: the check of its frame, started when ``frame_to_check`` named it; otherwise the
        core checks the frame itself when it gets that far. Never raises: whatever goes wrong becomes a
        ``Reject``.
        """
        raw = message[0] if len(message) == 1 else _multipart_sample(message)
        out: list[Action] = []
        try:
            if len(message) != 1:
                raise Rejection(
                    RejectionKind.MULTIPART, f"{len(message)} message parts; one CD-1.1 frame per message"
                )
            if len(raw) > self.config.max_frame_bytes:
                raise Rejection(
                    RejectionKind.OVERSIZED,
                    f"{len(raw)} bytes exceeds the {self.config.max_frame_bytes}-byte limit",
                )
            if raw[:4] == _CONNECT and not self._admit(peer.identity, now_ns):
                out.append(ConnectRateLimited(peer.label))
                return out
            if verdict is None:
                verdict = self._check(raw, now_ns)
            self._on_frame(peer, raw, now_ns, verdict.result(), out)
        except Rejection as exc:
            out.append(Reject(peer.label, now_ns, raw, exc))
            if exc.kind is RejectionKind.NO_SESSION:
                # An authentic frame on a connection this receiver does not know (it restarted, or closed
                # the session): say so at once, so the station reconnects now rather than after a timeout.
                alert = AlertBody(b"no open session: send a Connection Request")
                frame = self._encode(exc.station, FrameType.ALERT, alert)
                out.append(Send(peer, exc.station, FrameType.ALERT, frame, session=False))
        except Exception as exc:  # a bug must not stop the receiver: reject, keep the bytes, go on
            rejection = Rejection(RejectionKind.INTERNAL, f"{type(exc).__name__}: {exc}")
            out.append(Reject(peer.label, now_ns, raw, rejection, exc))
        return out

    def _admit(self, identity: bytes, now_ns: int) -> bool:
        """Token bucket per identity, so a flood of connection requests cannot crowd out stations."""
        bucket = self._buckets.pop(identity, None)
        if bucket is None:
            bucket = TokenBucket(self.config.connect_rate_per_s, self.config.connect_burst, now_ns)
        self._buckets[identity] = bucket
        if len(self._buckets) > MAX_RATE_BUCKETS:
            self._buckets.popitem(last=False)
        if bucket.ready_at(now_ns) > now_ns:
            return False
        bucket.charge(1, now_ns)
        return True

    def _on_frame(
        self, peer: Peer, raw: bytes, now_ns: int, checked: CheckedFrame, out: list[Action]
    ) -> None:
        frame, station = checked.frame, checked.station
        kind = frame.header.frame_type
        if kind == FrameType.CONNECTION_REQUEST:
            self._open_session(peer, frame, now_ns, out)
            return
        session = self.sessions.get(station)
        if session is None:
            raise Rejection(
                RejectionKind.NO_SESSION,
                "no open session: send a Connection Request first",
                station,
                frame.header.sequence,
            )
        session.frame_received(now_ns)
        self._routes[station] = peer  # the frame verified: acknacks follow this connection
        if kind in (FrameType.DATA, FrameType.IMS2_MESSAGE):
            self._on_data(session, checked, raw, now_ns, peer, out)
        elif kind == FrameType.OPTION_REQUEST:
            assert isinstance(frame.body, OptionBody)
            self._send(out, station, FrameType.OPTION_RESPONSE, frame.body)
        elif kind == FrameType.ACKNACK:
            pass  # the station's heartbeat; it has nothing we sent to report on
        elif kind == FrameType.ALERT:
            assert isinstance(frame.body, AlertBody)
            session.peer_alert()
            out.append(SessionClosedByStation(station, frame.body.text))
            del self.sessions[station]
            self._routes.pop(station, None)
        elif kind == FrameType.COMMAND_RESPONSE:
            assert isinstance(frame.body, CommandResponseBody)
            out.append(CommandResponseReceived(station, frame.body.response))
        else:
            raise Rejection(
                RejectionKind.UNEXPECTED_TYPE,
                f"frame type {kind} is not sent to an IDC",
                station,
                frame.header.sequence,
            )

    def _open_session(self, peer: Peer, frame: Frame, now_ns: int, out: list[Action]) -> None:
        assert isinstance(frame.body, ConnectionBody)
        station = frame.header.creator
        if frame.body.station and frame.body.station != station:
            raise Rejection(
                RejectionKind.CREATOR_MISMATCH,
                f"connection request names {frame.body.station!r} in its body",
                station,
            )
        old = self.sessions.get(station)
        pending = self._batches.get(station)
        if old is not None:
            gaps = old.gaps
        elif pending is not None:  # a closed session's frames await their commit: they are held
            gaps = pending.gaps
        else:
            gaps = self._stored.gap_list(station)
        self.sessions[station] = StationSession(
            station, gaps, now_ns, self.timings, frame.header.destination or "0"
        )
        self._routes[station] = peer
        out.append(SessionOpened(station, peer.label, gaps.lowest, gaps.highest))
        ip, port = self.data_address
        response = ConnectionBody(
            station=self.config.responder_name, station_type="IDC", ip_address=ip, port=port
        )
        self._send(out, station, FrameType.CONNECTION_RESPONSE, response)

    def _on_data(
        self,
        session: StationSession,
        checked: CheckedFrame,
        raw: bytes,
        now_ns: int,
        peer: Peer,
        out: list[Action],
    ) -> None:
        station, frame = checked.station, checked.frame
        seq = frame.header.sequence
        batch = self._batches.get(station)
        if batch is None:
            batch = self._batches[station] = StationBatch(station, session.gaps)
        if session.is_duplicate(seq):
            earlier = batch.frames.get(seq)
            held = earlier.raw if earlier is not None else self._stored.raw_frame(station, seq)
            if (
                held is not None
                and held != raw
                and signed_content(decode_frame(held)) != signed_content(frame)
            ):
                raise Rejection(
                    RejectionKind.REPLAY,
                    f"sequence {seq} was already received with different content",
                    station,
                    seq,
                )
            session.duplicate_seen()
            out.append(DuplicateReceived(station))
            return
        session.gaps.add(seq)
        batch.frames[seq] = Accepted(checked, raw, now_ns, peer.label)
        self.unsettled += 1

    # ---- commits, timers, shutdown ---------------------------------------------------------------

    @property
    def pending(self) -> bool:
        """Whether accepted frames (or a batch opened for them) wait for ``take_batches``."""
        return bool(self._batches)

    def take_batches(self) -> list[StationBatch]:
        """The accepted frames of every station, for the committer; the core forgets them until
        ``settled`` reports what became of them."""
        batches, self._batches = list(self._batches.values()), {}
        self.unsettled = 0
        return batches

    def settled(self, durable: Iterable[StationBatch], failed: Iterable[CommitFailure]) -> list[Action]:
        """Record the committer's outcome: durable frames may now be acknowledged; the frames of a failed
        commit are rejected and leave the gap list, so the station's resend is taken."""
        out: list[Action] = []
        for failure in failed:
            batch = failure.batch
            session = self.sessions.get(batch.station)
            if session is not None and session.gaps is batch.gaps:
                session.gaps = failure.stored
            for seq, accepted in batch.frames.items():
                rejection = Rejection(RejectionKind.INTERNAL, failure.reason, batch.station, seq)
                out.append(Reject(accepted.peer, accepted.received_ns, accepted.raw, rejection))
        for batch in durable:
            session = self.sessions.get(batch.station)
            if session is not None and session.gaps is batch.gaps:
                for seq in batch.frames:
                    session.committed(seq)
        return out

    def poll(self, now_ns: int) -> list[Action]:
        """Acknacks that are due and silence timeouts. Call it only when every accepted frame has been
        settled: an acknack covers whatever the gap lists hold."""
        out: list[Action] = []
        for station, session in list(self.sessions.items()):
            for body in session.poll(now_ns):
                if isinstance(body, AcknackBody):
                    self._send(out, station, FrameType.ACKNACK, body)
                else:
                    out.append(SessionSilent(station, (now_ns - session.last_heard_ns) / NS_PER_S))
                    self._send(out, station, FrameType.ALERT, body)
            if session.closed:
                del self.sessions[station]
                self._routes.pop(station, None)
        return out

    def unreachable(self, station: str) -> None:
        """A frame for ``station`` could not be delivered: nothing more goes to that connection until
        the station is heard from again."""
        self._routes.pop(station, None)

    def close(self) -> list[Action]:
        """Alerts telling every open session that the receiver is going."""
        out: list[Action] = []
        for station, session in self.sessions.items():
            if not session.closed:
                self._send(out, station, FrameType.ALERT, AlertBody(b"IDC receiver shutting down"))
        return out

    # ---- output ----------------------------------------------------------------------------------

    def _send(self, out: list[Action], station: str, kind: FrameType, body: Body) -> None:
        route = self._routes.get(station)
        if route is not None:
            out.append(Send(route, station, kind, self._encode(station, kind, body)))

    def _encode(self, station: str, kind: FrameType, body: Body) -> bytes:
        return encode_frame(Frame(FrameHeader(kind, self.config.responder_name, station), body))


def _multipart_sample(message: Sequence[bytes]) -> bytes:
    """What the quarantine keeps of a refused multi-part message: the first bytes of its first parts
    (the adapter reads no more of them than that, so it never copies a stranger's large parts)."""
    return b"".join(part[:MULTIPART_PREFIX_BYTES] for part in message[:MULTIPART_PARTS_KEPT])
