"""The IDC receiver's rules as a sans-I/O core: (peer, message, now) in, actions out.

Everything the receiver decides about a message lives here: the envelope (one frame per message, the size
limit), rate limits on connection requests, sessions (Connection Request and Response, one
:class:`~idc.session.StationSession` per station), routing, duplicate and replay detection, and every
rejection, each turned into one ``Reject`` for the adapter to log, count and quarantine.

Sessions are bound to a connection (docs/link.md, "Replay protection"). A station's link-control frames
carry a stamp and its session's tag; a connection request must be stamped within ``control_window_s``
of the receiver clock and above the station's last stamp, every later control frame must carry the
session's tag and a higher stamp, and only such a fresh frame moves the session (and the acknacks) to
the connection it came on. Data must come on the session's connection. So a frame recorded on the wire
and sent again, from anywhere, opens, moves or closes nothing. Stations configured with
``fresh_control = false`` (peers that cannot stamp) keep the older, weaker rules: acknacks follow the
connection that last delivered a verified frame, and any verified alert closes the session.
The frames the receiver sends carry its own stamp and the session's tag, and are signed with the IDC
key when it has one, so a station can tell them fresh and authentic in turn.

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
    CommandRequestBody,
    CommandResponseBody,
    ConnectionBody,
    FrameType,
    OptionBody,
    decode_frame,
    encode_frame,
    encode_signed_frame,
)
from gci_link.cd11.frame import Body, Frame, FrameHeader
from gci_link.gaplist import GapList
from gci_link.keys import Reason, SignatureError, StationSigner, TrustStore
from gci_link.link_session import REJECTION_NOTICE
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
    SessionEndedByReload,
    SessionOpened,
    SessionSilent,
    StationBatch,
)
from idc.config import IdcConfig
from idc.session import SessionTimings, StationSession
from idc.verify import CheckedFrame, Rejection, signed_content
from idc.vocabulary import ANONYMOUS, RejectionKind
from timeunits import NS_PER_S

MAX_RATE_BUCKETS = 10_000  # identities remembered for connection-request rate limiting
MULTIPART_PARTS_KEPT = 16  # a refused multi-part message is quarantined as its first parts' prefixes
MULTIPART_PREFIX_BYTES = 64
_CONNECT = FrameType.CONNECTION_REQUEST.to_bytes(4, "big")
_DATA = (FrameType.DATA, FrameType.IMS2_MESSAGE)
_IMS2 = FrameType.IMS2_MESSAGE.to_bytes(4, "big")
NOTICE_BURST = 2  # rejection notices to one station: three at once (a TokenBucket runs into debt by one),
NOTICE_INTERVAL_S = 10.0  # then one per this many seconds
# rejections that get no notice: answered otherwise (no session, a refused connection request's clock),
# not the station's doing (internal), or a replayed control frame, whose sender deserves no answer
_NOT_NOTIFIED = (RejectionKind.NO_SESSION, RejectionKind.CONTROL_FRESHNESS, RejectionKind.INTERNAL)


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

    def __init__(
        self, config: IdcConfig, check: Check, stored: StoredFrames, signer: StationSigner | None = None
    ) -> None:
        self.config = config
        self._check = check
        self._stored = stored
        self._signer = signer  # the IDC's own key, for the frames it sends; None: they go unsigned
        self._window_ns = int(config.control_window_s * NS_PER_S)
        self.timings = SessionTimings(
            acknack_interval_ns=int(config.acknack_interval_s * NS_PER_S),
            silence_ns=int(config.silence_timeout_s * NS_PER_S),
            max_reported_gaps=config.max_reported_gaps,
        )
        self.sessions: dict[str, StationSession] = {}
        self._routes: dict[str, Peer] = {}  # the connection each station's session is bound to
        self._opened_with: dict[str, int] = {}  # key id that signed each open session's connection request
        self._unreachable: set[str] = set()  # stations whose connection failed a send, until heard again
        # stations heard on their session's connection since its Connection Request: only then is the
        # connection the one the station listens on (a station redirected to the data endpoint has left
        # the connection its request came on, and a command sent there would be lost)
        self._heard_on_route: set[str] = set()
        self._control_stamps: dict[str, int] = {}  # the last stamp accepted from each station
        self._stamp = 0  # of the last frame this receiver sent
        self._buckets: OrderedDict[bytes, TokenBucket] = OrderedDict()
        self._notices: dict[str, TokenBucket] = {}  # rejection notices per configured station
        self._batches: dict[str, StationBatch] = {}
        self.unsettled = 0  # frames accepted since the last take_batches
        # (IPv4 address as a number, port) that Connection Responses name; (0, 0): stay on this connection
        self.data_address = (0, 0)

    # ---- messages --------------------------------------------------------------------------------

    def frame_to_check(self, message: Sequence[bytes]) -> bytes | None:
        """The frame of ``message`` whose signatures may be verified ahead of ``receive``, or None:
        malformed envelopes are refused unread, and connection requests are rate-limited before any work
        is spent on them."""
        if len(message) != 1 or len(message[0]) > self._size_limit(message[0]) or message[0][:4] == _CONNECT:
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
            if len(raw) > (limit := self._size_limit(raw)):
                raise Rejection(RejectionKind.OVERSIZED, f"{len(raw)} bytes exceeds the {limit}-byte limit")
            if raw[:4] == _CONNECT and not self._admit(peer.identity, now_ns):
                out.append(ConnectRateLimited(peer.label))
                return out
            if verdict is None:
                verdict = self._check(raw, now_ns)
            self._on_frame(peer, raw, now_ns, verdict.result(), out)
        except Rejection as exc:
            out.append(Reject(peer.label, now_ns, raw, exc))
            self._notify_rejection(peer, raw, exc, now_ns, out)
            if exc.kind is RejectionKind.NO_SESSION:
                # An authentic frame on a connection this receiver does not know (it restarted, or closed
                # the session): say so at once, so the station reconnects now rather than after a timeout.
                # Untagged: which session of the station that connection had, if any, is not known here.
                alert = AlertBody(b"no open session: send a Connection Request")
                frame = self._encode(exc.station, FrameType.ALERT, alert, 0, now_ns)
                out.append(Send(peer, exc.station, FrameType.ALERT, frame, session=False))
        except Exception as exc:  # a bug must not stop the receiver: reject, keep the bytes, go on
            rejection = Rejection(RejectionKind.INTERNAL, f"{type(exc).__name__}: {exc}")
            out.append(Reject(peer.label, now_ns, raw, rejection, exc))
        return out

    def _notify_rejection(
        self, peer: Peer, raw: bytes, exc: Rejection, now_ns: int, out: list[Action]
    ) -> None:
        """Tell the connection a configured station's frame came on why it was refused, in an alert that
        starts with REJECTION_NOTICE (docs/link.md, "Rejection notices"), so ``ims link replay`` and the
        station's log can say more than "not acknowledged". Only the frame's type, sequence number and
        the rejection's kind are told, never its detail: the peer may be a stranger using the station's
        name, and learns nothing but the fate of what it sent itself. Nothing about input that names no
        configured station is told, and notices are rationed per station (NOTICE_BURST), so a flood of
        bad frames is not answered with a flood of alerts."""
        if exc.station == ANONYMOUS or exc.kind in _NOT_NOTIFIED:
            return
        bucket = self._notices.get(exc.station)
        if bucket is None:
            bucket = self._notices[exc.station] = TokenBucket(1 / NOTICE_INTERVAL_S, NOTICE_BURST, now_ns)
        if bucket.ready_at(now_ns) > now_ns:
            return
        bucket.charge(1, now_ns)
        kind = int.from_bytes(raw[:4], "big")
        try:
            what = FrameType(kind).name.lower()
        except ValueError:
            what = f"type {kind}"
        if kind in _DATA and exc.seq is not None:
            what += f" #{exc.seq}"
        text = f"{REJECTION_NOTICE}{exc.station} {what}: {exc.kind}"
        session = self.sessions.get(exc.station)
        tag = session.tag if session is not None and self._routes.get(exc.station) == peer else 0
        frame = self._encode(exc.station, FrameType.ALERT, AlertBody(text.encode()), tag, now_ns)
        out.append(Send(peer, exc.station, FrameType.ALERT, frame, session=False))

    def _size_limit(self, raw: bytes) -> int:
        """IMS 2.0 message frames (type 100) may be larger than the others (docs/cd11.md)."""
        return self.config.max_ims2_frame_bytes if raw[:4] == _IMS2 else self.config.max_frame_bytes

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
        if not self.config.stations[station].fresh_control:
            self._routes[station] = peer  # the older rules: acknacks follow any verified frame
        elif kind not in _DATA:
            self._check_fresh(session, frame)
            self._routes[station] = peer  # a fresh control frame: the session moves to its connection
        elif self._routes.get(station) != peer:
            raise Rejection(
                RejectionKind.NO_SESSION,
                "no open session on this connection (the station's session is on another one): "
                "send a Connection Request first",
                station,
                frame.header.sequence,
            )
        self._unreachable.discard(station)
        self._heard_on_route.add(station)
        session.frame_received(now_ns)
        if kind in _DATA:
            self._on_data(session, checked, raw, now_ns, peer, out)
        elif kind == FrameType.OPTION_REQUEST:
            assert isinstance(frame.body, OptionBody)
            self._send(out, station, FrameType.OPTION_RESPONSE, frame.body, now_ns)
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
            out.append(CommandResponseReceived(station, frame.body.request, frame.body.response))
        else:
            raise Rejection(
                RejectionKind.UNEXPECTED_TYPE,
                f"frame type {kind} is not sent to an IDC",
                station,
                frame.header.sequence,
            )

    def _check_fresh(self, session: StationSession, frame: Frame) -> None:
        """Reject a control frame that is not of the open session or not stamped above the last one."""
        station, tag, stamp = session.station, frame.header.series, frame.header.sequence
        if tag != session.tag:
            raise Rejection(
                RejectionKind.CONTROL_FRESHNESS,
                f"control frame of another session (tag {tag}; the open session's is {session.tag})",
                station,
            )
        self._advance_stamp(station, stamp)

    def _advance_stamp(self, station: str, stamp: int) -> None:
        last = self._control_stamps.get(station, 0)
        if stamp <= last:
            raise Rejection(
                RejectionKind.CONTROL_FRESHNESS,
                f"stamp {stamp} is not above {last}, the last from this station: a replay, or a frame "
                "overtaken by a newer one",
                station,
            )
        self._control_stamps[station] = stamp

    def _open_session(self, peer: Peer, frame: Frame, now_ns: int, out: list[Action]) -> None:
        assert isinstance(frame.body, ConnectionBody)
        station = frame.header.creator
        if frame.body.station and frame.body.station != station:
            raise Rejection(
                RejectionKind.CREATOR_MISMATCH,
                f"connection request names {frame.body.station!r} in its body",
                station,
            )
        tag = frame.header.series
        if self.config.stations[station].fresh_control:
            self._check_request_time(peer, frame, now_ns, out)
            self._advance_stamp(station, frame.header.sequence)
        old = self.sessions.get(station)
        pending = self._batches.get(station)
        if old is not None:
            gaps = old.gaps
        elif pending is not None:  # a closed session's frames await their commit: they are held
            gaps = pending.gaps
        else:
            gaps = self._stored.gap_list(station)
        self.sessions[station] = StationSession(
            station, gaps, now_ns, self.timings, frame.header.destination or "0", tag
        )
        self._routes[station] = peer
        self._heard_on_route.discard(station)
        self._opened_with[station] = frame.trailer.auth_key_id
        self._unreachable.discard(station)
        out.append(SessionOpened(station, peer.label, gaps.lowest, gaps.highest))
        ip, port = self.data_address
        response = ConnectionBody(
            station=self.config.responder_name, station_type="IDC", ip_address=ip, port=port
        )
        self._send(out, station, FrameType.CONNECTION_RESPONSE, response, now_ns)

    def _check_request_time(self, peer: Peer, frame: Frame, now_ns: int, out: list[Action]) -> None:
        """Reject a connection request with no session tag, or stamped outside the window around the
        receiver clock. The station hears why, in an alert tagged for the session it asked for: a station
        whose clock is wrong could not learn it otherwise."""
        station, tag, stamp = frame.header.creator, frame.header.series, frame.header.sequence
        if tag == 0:
            reason = ("carries no session tag and stamp (station software without replay protection: "
                      "update it, or configure the station with fresh_control = false)")
        elif abs(stamp - now_ns) > self._window_ns:
            reason = (f"stamped {(stamp - now_ns) / NS_PER_S:+.0f} s from the IDC clock, outside "
                      f"±{self.config.control_window_s:g} s: a replay, or the station clock is wrong")
        else:
            return
        alert = AlertBody(f"connection request refused: {reason}".encode())
        answer = self._encode(station, FrameType.ALERT, alert, tag, now_ns)
        out.append(Send(peer, station, FrameType.ALERT, answer, session=False))
        raise Rejection(RejectionKind.CONTROL_FRESHNESS, f"connection request {reason}", station)

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
                    self._send(out, station, FrameType.ACKNACK, body, now_ns)
                else:
                    out.append(SessionSilent(station, (now_ns - session.last_heard_ns) / NS_PER_S))
                    self._send(out, station, FrameType.ALERT, body, now_ns)
            if session.closed:
                del self.sessions[station]
                self._routes.pop(station, None)
        return out

    def command_request(
        self, station: str, body: CommandRequestBody, now_ns: int
    ) -> tuple[int, Send] | None:
        """(sequence number, frame to send) of a command request for the open session of ``station``, or
        None when it has none, its connection failed a send, or the station has not yet been heard on the
        connection since its Connection Request (it may be moving to the data endpoint): the request then
        waits. The sequence
        number, the request's identity at the station, is the frame's stamp; the caller records it before
        the frame leaves."""
        route, session = self._routes.get(station), self.sessions.get(station)
        if (route is None or session is None or station in self._unreachable
                or station not in self._heard_on_route):
            return None
        frame = self._encode(station, FrameType.COMMAND_REQUEST, body, session.tag, now_ns)
        return self._stamp, Send(route, station, FrameType.COMMAND_REQUEST, frame)

    def reconfigure(self, config: IdcConfig, trust: TrustStore, now_ns: int) -> list[Action]:
        """Take a reloaded configuration (its stations) and trust store (``ims idc reload``, SIGHUP).

        Frames checked from now on are checked by the adapter against the new ones; here, each open
        session the new ones no longer allow is ended with an alert saying why: its station was removed,
        or the key that signed its connection request is now revoked, expired or unknown (unless the
        station's policy archives unverified frames and the key is merely unknown). Call it with no
        accepted frame awaiting its commit (the adapter settles first)."""
        self.config = config
        out: list[Action] = []
        for station in list(self.sessions):
            reason = self._no_longer_allowed(station, trust, now_ns)
            if reason is None:
                continue
            out.append(SessionEndedByReload(station, reason))
            self._send(out, station, FrameType.ALERT, AlertBody(f"session ended: {reason}".encode()), now_ns)
            del self.sessions[station]
            self._routes.pop(station, None)
            self._opened_with.pop(station, None)
        return out

    def _no_longer_allowed(self, station: str, trust: TrustStore, now_ns: int) -> str | None:
        policy = self.config.stations.get(station)
        if policy is None:
            return "station no longer configured at this IDC"
        key_id = self._opened_with.get(station, 0)
        if key_id == 0:
            return "the station must sign" if policy.require_signatures else None
        try:
            trust.admit(key_id, now_ns)
        except SignatureError as exc:
            if exc.reason is Reason.UNKNOWN_KEY and policy.archive_unverified:
                return None
            return f"the key of its connection request: {exc}"
        return None

    def unreachable(self, station: str) -> None:
        """A frame for ``station`` could not be delivered: nothing more goes to that connection until
        the station is heard from again."""
        self._unreachable.add(station)

    def close(self, now_ns: int) -> list[Action]:
        """Alerts telling every open session that the receiver is going."""
        out: list[Action] = []
        for station, session in self.sessions.items():
            if not session.closed:
                self._send(out, station, FrameType.ALERT, AlertBody(b"IDC receiver shutting down"), now_ns)
        return out

    # ---- output ----------------------------------------------------------------------------------

    def _send(self, out: list[Action], station: str, kind: FrameType, body: Body, now_ns: int) -> None:
        """A frame for the open session of ``station``, over the connection it is bound to."""
        route, session = self._routes.get(station), self.sessions.get(station)
        if route is not None and session is not None and station not in self._unreachable:
            out.append(Send(route, station, kind, self._encode(station, kind, body, session.tag, now_ns)))

    def _encode(self, station: str, kind: FrameType, body: Body, tag: int, now_ns: int) -> bytes:
        """A frame to ``station``: stamped, tagged for its session and signed (docs/cd11.md)."""
        self._stamp = max(now_ns, self._stamp + 1)
        frame = Frame(FrameHeader(kind, self.config.responder_name, station, self._stamp, tag), body)
        if self._signer is None:
            return encode_frame(frame)
        return encode_signed_frame(frame, self._signer.key_id, self._signer.sign)


def _multipart_sample(message: Sequence[bytes]) -> bytes:
    """What the quarantine keeps of a refused multi-part message: the first bytes of its first parts
    (the adapter reads no more of them than that, so it never copies a stranger's large parts)."""
    return b"".join(part[:MULTIPART_PREFIX_BYTES] for part in message[:MULTIPART_PARTS_KEPT])
