"""Station end of a CD-1.1 link as a pure state machine: protocol events in, actions out, no sockets.

The ZeroMQ adapter (``sender.py``) decodes frames into the ``on_*`` calls below and carries out the
actions ``poll`` returns; this module decides everything else (which endpoint, which frame next, when a
frame counts as delivered, when the link is dead). Time is always passed in as integer nanoseconds so
tests can drive hours of link time without waiting.

The core does not log: what an operator should hear about comes out as ``Event``s (``take_events``),
which the adapter logs once. Command requests are not run here: the session asks for one with a
``RunCommand`` action and answers the IDC when ``on_command_finished`` reports the result, so a command
that takes seconds never stops data or acknacks (the command flow is described in docs/link.md).

Delivery rule: a data frame stays in the session (and unacknowledged in the outbox) until an IDC acknack
covers it — inside lowest..highest and in no gap. Frames sent but still uncovered when an acknack
arrives are resent once they have been in flight ``resend_after_ns``; everything not acknowledged is
sent again after a reconnect, and duplicates are harmless at the receiver.

Replay protection (docs/link.md): every link-control frame the station sends carries a stamp and the
connection's session tag (``control_header``), so the IDC can tell it fresh and bound to its session;
an IDC frame the station authenticated is believed only if ``admit`` finds it fresh and bound the same
way. Only frames the session accepted count as signs of a live link.
"""

from __future__ import annotations

import bisect
import enum
import heapq
import random
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gci_link.cd11.bodies import FrameType
from gci_link.commands import CommandOutcome
from gci_link.gaplist import GapList
from gci_link.pacing import Backoff, TokenBucket
from timeunits import NS_PER_S

if TYPE_CHECKING:
    from gci_link.cd11 import CommandRequestBody


class State(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"  # connection request sent to a well-known endpoint
    NEGOTIATING = "negotiating"  # on the data endpoint, option request sent
    DATA = "data"
    BACKOFF = "backoff"
    STOPPED = "stopped"


@dataclass(frozen=True)
class SessionConfig:
    station: str
    endpoints: tuple[str, ...]  # well-known connection-manager endpoints, tried in turn
    window: int = 64  # frames sent but not yet covered by an acknack
    # bytes of data frames sent and not yet covered, beyond which no more is released (one frame always
    # may go): with IMS 2.0 messages of up to 16 MiB a window of frames alone would let a gigabyte queue
    window_bytes: int = 64 * 1024 * 1024
    option_exchange: bool = True
    option_value: str = ""  # option 1 value (1-8 chars); defaults to the station name
    connect_timeout_ns: int = 10 * NS_PER_S  # for the connection and option responses
    response_timeout_ns: int = 60 * NS_PER_S  # data sent and no acknack since -> link is dead
    idle_timeout_ns: int = 130 * NS_PER_S  # nothing at all from the IDC (it acknacks every minute)
    heartbeat_ns: int = 55 * NS_PER_S  # our acknack at least this often
    resend_after_ns: int = 20 * NS_PER_S  # in flight this long and still not covered -> resend
    backlog_hold_ns: int = 2 * NS_PER_S  # after connecting, wait this long for the IDC's first acknack
    backoff_base_ns: int = 1 * NS_PER_S
    backoff_cap_ns: int = 300 * NS_PER_S
    bandwidth_bytes_per_s: float | None = None  # None = uncapped
    burst_bytes: int = 16_384
    command_queue: int = 1  # commands accepted and not yet answered; one more is answered "busy"
    control_window_ns: int = 300 * NS_PER_S  # an IDC alert bound to no session must be stamped this close

    def __post_init__(self) -> None:
        if not self.station or len(self.station) > 8:
            raise ValueError(f"station name must be 1-8 characters, got {self.station!r}")
        if not self.endpoints:
            raise ValueError("at least one well-known IDC endpoint is needed")
        if self.window < 1:
            raise ValueError(f"window must be at least 1 frame, got {self.window}")
        if self.window_bytes < 1:
            raise ValueError(f"byte window must be positive, got {self.window_bytes}")
        if len(self.option_value) > 8:
            raise ValueError(f"option value must be at most 8 characters, got {self.option_value!r}")
        if self.command_queue < 1:
            raise ValueError(f"command queue must hold at least 1 command, got {self.command_queue}")
        if self.control_window_ns <= 0:
            raise ValueError(f"control window must be positive, got {self.control_window_ns} ns")


@dataclass
class LinkCounters:
    frames_sent: int = 0  # data frames handed to the socket, resends included
    frames_resent: int = 0
    frames_acked: int = 0
    reconnects: int = 0
    bytes_sent: int = 0  # every byte handed to the socket, control frames included
    bytes_received: int = 0
    idc_frames_refused: int = 0  # undecodable, unauthenticated, replayed or of another session
    # handed to the socket until acknowledged, for the newest frame the latest acknack covered (if it was
    # in flight on this connection): the round trip an operator sees when the link is healthy
    last_ack_latency_ns: int | None = None
    frames_rejected_by_idc: int = 0  # rejection notices from the IDC (REJECTION_NOTICE alerts)
    loop_errors: int = 0  # sender steps that failed unexpectedly (logged with their traceback)


# The text an IDC's rejection notice starts with: an Alert saying why it refused one of the station's
# frames, "frame rejected: STA1 #503: frame_unknown_key" (docs/link.md, "Rejection notices"). Unlike every
# other alert it does not end the connection, here; a station that ends it anyway loses nothing.
REJECTION_NOTICE = "frame rejected: "
MAX_REJECTIONS_KEPT = 16


# ---- events the adapter logs --------------------------------------------------------------------


class Level(enum.IntEnum):
    """How loudly an event is reported; the numbers are Python's log levels, so an adapter passes them on."""

    INFO = 20
    WARNING = 30


class EventKind(enum.Enum):
    """What happened, with its level and the message operators read (docs/link.md lists them)."""

    level: Level
    message: str

    def __init__(self, level: Level, message: str) -> None:
        self.level = level
        self.message = message

    CONNECTING = (Level.INFO, "connecting")
    REDIRECTED = (Level.INFO, "redirected to data endpoint")
    LINK_UP = (Level.INFO, "link up")
    LINK_LOST = (Level.WARNING, "link lost, reconnecting after back-off")
    LINK_STOPPED = (Level.INFO, "link stopped")
    RESENDING = (Level.INFO, "frames not covered by acknack, resending")
    FOREIGN_ACKNACK = (Level.WARNING, "acknack for another frame set ignored")
    UNEXPECTED_CONNECTION_RESPONSE = (Level.WARNING, "unexpected connection response ignored")
    UNEXPECTED_OPTION_RESPONSE = (Level.WARNING, "unexpected option response ignored")
    ACKNACK_OUTSIDE_DATA = (Level.INFO, "acknack outside the data phase ignored")
    COMMAND_OUTSIDE_DATA = (Level.WARNING, "command request outside the data phase ignored")
    COMMAND_ACCEPTED = (Level.INFO, "command request accepted, running")
    COMMAND_REPEATED = (Level.INFO, "repeated command request, not run again")
    COMMAND_BUSY = (Level.WARNING, "command request answered busy: earlier commands not answered yet")
    COMMAND_REFUSED = (Level.WARNING, "command request refused: this station accepts no commands")
    COMMAND_ANSWERED = (Level.INFO, "command answered")
    COMMAND_UNANSWERED = (Level.WARNING, "command finished after the link stopped, not answered")
    IDC_FRAME_REFUSED = (Level.WARNING, "frame from the IDC refused")
    REJECTED_BY_IDC = (Level.WARNING, "the IDC rejected a frame")


@dataclass(frozen=True)
class Event:
    kind: EventKind
    fields: Mapping[str, object]  # extras for the log line: station, endpoint while connected, seq, reason


@dataclass(frozen=True)
class ControlHeader:
    """What makes a link-control frame fresh and binds it to one session; on the wire the frame header's
    sequence number carries ``stamp`` and its series ``tag`` (docs/cd11.md, "Fresh control frames")."""

    stamp: int  # the sender's clock (ns UTC) when it made the frame, strictly increasing per sender
    tag: int  # the session: chosen at random by the station for each connection request; 0 = none


# ---- actions the adapter carries out -------------------------------------------------------------


@dataclass(frozen=True)
class Connect:
    """Close any socket (linger 0, so stale queued frames die with it) and connect a fresh one."""

    endpoint: str


@dataclass(frozen=True)
class Disconnect:
    reason: str
    graceful: bool = False  # True: let already-queued frames (the alert) drain before closing


@dataclass(frozen=True)
class SendConnectionRequest:
    pass


@dataclass(frozen=True)
class SendOptionRequest:
    value: str


@dataclass(frozen=True)
class SendAcknack:
    frame_set: str
    lowest: int
    highest: int
    gaps: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class SendAlert:
    text: str


@dataclass(frozen=True)
class RunCommand:
    """Run this IDC command request away from the link's thread, then report it with
    ``on_command_finished(seq, ...)``; data and acknacks go on meanwhile."""

    seq: int  # the request frame's sequence number: the command's identity until it is answered
    request: CommandRequestBody


@dataclass(frozen=True)
class SendCommandResponse:
    request: CommandRequestBody  # echoed back in the response
    text: str  # with the outcome's prefix (``CommandOutcome``)


@dataclass(frozen=True)
class SendData:
    seq: int
    resend: bool


@dataclass(frozen=True)
class Acknowledge:
    """These frames are durable at the IDC: mark them acknowledged in the outbox."""

    seqs: tuple[int, ...]


Action = (
    Connect | Disconnect | SendConnectionRequest | SendOptionRequest | SendAcknack | SendAlert
    | RunCommand | SendCommandResponse | SendData | Acknowledge
)


def data_endpoint(well_known: str, ip: int, port: int) -> str | None:
    """Endpoint a Connection Response redirects to.

    Address 0.0.0.0 means "the host you already reached" (useful behind NAT and for ipc:// tests);
    address and port both 0 mean "stay on this connection" (returns None).
    """
    if ip == 0 and port == 0:
        return None
    if not 0 < port < 65536:
        raise ValueError(f"connection response port {port} is not a usable TCP port")
    if ip:
        host = ".".join(str((ip >> shift) & 0xFF) for shift in (24, 16, 8, 0))
    else:
        scheme, _, rest = well_known.partition("://")
        if scheme != "tcp" or not rest:
            raise ValueError(f"connection response gives no address and {well_known!r} is not tcp://host:port")
        host = rest.rsplit(":", 1)[0]
    return f"tcp://{host}:{port}"


def covered(
    seq: int, lowest: int, highest: int, gap_starts: Sequence[int], gaps: Sequence[tuple[int, int]]
) -> bool:
    """Whether an acknack (lowest..highest inclusive, gaps [start, end)) reports ``seq`` as received."""
    if not lowest <= seq <= highest:
        return False
    i = bisect.bisect_right(gap_starts, seq) - 1
    return not (i >= 0 and seq < gaps[i][1])


@dataclass
class _Connection:
    endpoint: str
    heard_ns: int  # last frame of any kind from the IDC
    heartbeat_due_ns: int = 0
    unanswered_since_ns: int | None = None  # first data frame sent after the last acknack
    acknacks: int = 0
    backlog_from_ns: int = 0  # backlog waits until then unless an acknack from the IDC came first
    in_flight: dict[int, int] = field(default_factory=dict)  # seq -> time handed to the socket
    sizes: dict[int, int] = field(default_factory=dict)  # seq -> bytes, of the frames in flight

    def forget(self, seq: int) -> None:
        self.in_flight.pop(seq, None)
        self.sizes.pop(seq, None)

    def room(self, config: SessionConfig) -> bool:
        """May another data frame go out (frame and byte windows)?"""
        return len(self.in_flight) < config.window and sum(self.sizes.values()) < config.window_bytes


class LinkSession:
    """One station's conversation with the IDC, across any number of reconnects."""

    _RESPONSE_CACHE = 32  # command responses kept to answer a repeated request without re-running it

    def __init__(
        self,
        config: SessionConfig,
        now_ns: int,
        *,
        accepts_commands: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.counters = LinkCounters()
        self.state = State.IDLE
        self._accepts_commands = accepts_commands
        self._rng = rng or random.SystemRandom()
        self._backoff = Backoff(config.backoff_base_ns, config.backoff_cap_ns, self._rng)
        self._bucket = TokenBucket(config.bandwidth_bytes_per_s, config.burst_bytes, now_ns)
        self._deadline_ns: int | None = None  # connect/option timeout or end of back-off
        self._endpoint_index = 0
        self._conn: _Connection | None = None
        self._out: list[Action] = []
        self._events: list[Event] = []
        self._peer_frame_set = "IDC:0"
        self._from_idc = GapList()  # sequence numbers of IDC frames received (command requests)
        self._ack_due = False
        self._responses: OrderedDict[int, SendCommandResponse] = OrderedDict()
        self._running: dict[int, CommandRequestBody] = {}  # commands accepted, not yet finished
        self._answers_due: deque[SendCommandResponse] = deque()  # sent once the data phase is on
        # every frame not yet acknowledged, and where it waits: live queue, backlog heap or in flight
        self._unacked: set[int] = set()
        self._queued: set[int] = set()
        self._live: deque[int] = deque()
        self._backlog: list[int] = []
        self._ever_sent: set[int] = set()
        self._tag = 0  # this connection's session tag, new for every connection request
        self._stamp = 0  # of the last control frame this station made
        self._idc_stamp = 0  # of the last IDC frame admitted in this session
        self._idc_stamp_seen = 0  # of the last IDC frame admitted in any session
        # what went wrong last, for a tool that must say why frames stay unacknowledged (ims link replay)
        self.rejections_by_idc: deque[str] = deque(maxlen=MAX_REJECTIONS_KEPT)  # newest last
        self.last_link_problem: str | None = None

    # ---- inputs ----------------------------------------------------------------------------------

    def start(self, now_ns: int) -> None:
        if self.state is not State.IDLE:
            raise RuntimeError(f"session already started (state {self.state.value})")
        self._connect(now_ns)

    def offer(self, seqs: Iterable[int]) -> None:
        """Frames that are in the outbox and not acknowledged. While the link is up they are live and
        go out ahead of the backlog; otherwise (including at start-up) they go to the backlog heap."""
        live = self.state is State.DATA
        for seq in seqs:
            if seq in self._unacked:
                continue
            self._unacked.add(seq)
            self._queued.add(seq)
            if live:
                self._live.append(seq)
            else:
                heapq.heappush(self._backlog, seq)

    def forget(self, seq: int) -> None:
        """The frame cannot be sent (gone from the outbox): stop tracking it."""
        self._unacked.discard(seq)
        self._queued.discard(seq)
        self._ever_sent.discard(seq)
        if self._conn is not None:
            self._conn.forget(seq)

    def sent_bytes(self, nbytes: int, now_ns: int) -> None:
        """The adapter handed ``nbytes`` to the socket (any frame): charge the bandwidth cap."""
        self.counters.bytes_sent += nbytes
        self._bucket.charge(nbytes, now_ns)

    def data_sent(self, seq: int, nbytes: int, now_ns: int) -> None:
        """The adapter handed data frame ``seq`` (``nbytes``) to the socket. Under a bandwidth cap its
        last byte leaves only when the cap has let it through, which for a large IMS 2.0 message on a
        thin link is minutes later: the frame's resend and response timers start then, not now, so a
        message still on its way is neither sent again nor taken for a sign of a dead link."""
        self.sent_bytes(nbytes, now_ns)
        conn = self._conn
        if conn is None or seq not in conn.in_flight:
            return
        conn.sizes[seq] = nbytes
        drained = self._bucket.ready_at(now_ns)
        conn.in_flight[seq] = max(conn.in_flight[seq], drained)
        if conn.unanswered_since_ns is not None:
            conn.unanswered_since_ns = max(conn.unanswered_since_ns, drained)

    def received_bytes(self, nbytes: int, now_ns: int) -> None:
        """Bytes arrived from the IDC, whatever they were (only frames handed to ``on_*`` keep the link
        alive: garbage or a refused frame proves nothing)."""
        self.counters.bytes_received += nbytes

    def control_header(self, now_ns: int) -> ControlHeader:
        """Stamp and tag of the next link-control frame; call it as each one is encoded, in sending order.

        The tag is this connection's: it changes only where a connection request is asked for, which is
        the last action of its ``poll``, so every frame ``poll`` asks for gets the tag meant for it.
        """
        self._stamp = max(now_ns, self._stamp + 1)
        return ControlHeader(self._stamp, self._tag)

    def admit(self, frame_type: int, header: ControlHeader, now_ns: int) -> bool:
        """Whether an authenticated IDC frame is fresh and belongs to this connection's session; if not,
        it is refused (counted and reported) and must change nothing.

        A frame tagged with this session's tag must be stamped above every earlier frame of the session
        (a command request's sequence number is its identity instead: ``on_command_request`` never runs
        one twice). The one frame an IDC sends untagged, the alert telling a connection it has no
        session (after an IDC restart), must be stamped within ``control_window_ns`` of our clock and
        above every IDC frame admitted so far.
        """
        problem = self._stale(frame_type, header, now_ns)
        if problem is not None:
            self.refuse_idc_frame(problem)
            return False
        if frame_type != FrameType.COMMAND_REQUEST:
            if header.tag:
                self._idc_stamp = header.stamp
            self._idc_stamp_seen = max(self._idc_stamp_seen, header.stamp)
        return True

    def refuse_idc_frame(self, reason: str) -> None:
        """A frame from the IDC that must change nothing (undecodable, unauthenticated, not fresh...)."""
        self.counters.idc_frames_refused += 1
        self._note(EventKind.IDC_FRAME_REFUSED, reason=reason)

    def on_connection_response(self, ip: int, port: int, peer_frame_set: str, now_ns: int) -> None:
        self._hear(now_ns)
        if self.state is not State.CONNECTING or self._conn is None:
            self._note(EventKind.UNEXPECTED_CONNECTION_RESPONSE, reason=self.state.value)
            return
        self._peer_frame_set = peer_frame_set
        try:
            target = data_endpoint(self._conn.endpoint, ip, port)
        except ValueError as exc:
            self._reconnect(f"bad connection response: {exc}", now_ns)
            return
        if target is not None:
            self._note(EventKind.REDIRECTED, endpoint=target)
            self._out.append(Connect(target))
            self._conn = _Connection(endpoint=target, heard_ns=now_ns)
        if self.config.option_exchange:
            self.state = State.NEGOTIATING
            self._deadline_ns = now_ns + self.config.connect_timeout_ns
            self._out.append(SendOptionRequest(self.config.option_value or self.config.station))
        else:
            self._enter_data(now_ns)

    def on_option_response(self, now_ns: int) -> None:
        self._hear(now_ns)
        if self.state is not State.NEGOTIATING:
            self._note(EventKind.UNEXPECTED_OPTION_RESPONSE, reason=self.state.value)
            return
        self._enter_data(now_ns)

    def on_acknack(
        self, frame_set: str, lowest: int, highest: int, gaps: Sequence[tuple[int, int]], now_ns: int
    ) -> None:
        self._hear(now_ns)
        conn = self._conn
        if self.state is not State.DATA or conn is None:
            self._note(EventKind.ACKNACK_OUTSIDE_DATA, reason=self.state.value)
            return
        if frame_set.split(":", 1)[0].strip() != self.config.station:
            self._note(EventKind.FOREIGN_ACKNACK, reason=frame_set)
            return
        conn.acknacks += 1
        if conn.acknacks == 1:
            self._backoff.reset()
        starts = [g[0] for g in gaps]
        acked = sorted(s for s in self._unacked if covered(s, lowest, highest, starts, gaps))
        sent_ns = conn.in_flight.get(acked[-1]) if acked else None
        for seq in acked:
            self.forget(seq)
        if sent_ns is not None:
            self.counters.last_ack_latency_ns = now_ns - sent_ns
        if acked:
            self.counters.frames_acked += len(acked)
            self._out.append(Acknowledge(tuple(acked)))
        stale = [s for s, t in conn.in_flight.items() if now_ns - t >= self.config.resend_after_ns]
        for seq in stale:
            conn.forget(seq)
            self._queued.add(seq)
            heapq.heappush(self._backlog, seq)
        if stale:
            self._note(EventKind.RESENDING, seq=f"{stale[0]}..{stale[-1]}", reason=f"{len(stale)} frames")
        # frames still in flight expect a later acknack within the response timeout
        conn.unanswered_since_ns = now_ns if conn.in_flight else None

    def on_command_request(self, seq: int, request: CommandRequestBody, now_ns: int) -> None:
        """A command from the IDC: acknowledged at once, run through ``RunCommand`` if there is room,
        otherwise answered ``busy`` at once. Each request is run at most once, whatever the IDC repeats."""
        self._hear(now_ns)
        if self.state is not State.DATA:
            self._note(EventKind.COMMAND_OUTSIDE_DATA, seq=seq)
            return
        self._ack_due = True
        if not self._from_idc.add(seq):
            running = seq in self._running
            self._note(EventKind.COMMAND_REPEATED, seq=seq, reason="still running" if running else "answered")
            cached = self._responses.get(seq)
            if cached is not None:
                self._answers_due.append(cached)
            return
        if not self._accepts_commands:
            self._note(EventKind.COMMAND_REFUSED, seq=seq)
            self._answer(request, seq, CommandOutcome.FAILED, "this station accepts no commands")
            return
        if len(self._running) >= self.config.command_queue:
            earlier = ", ".join(str(s) for s in self._running)
            self._note(EventKind.COMMAND_BUSY, seq=seq, reason=f"requests {earlier} not answered yet")
            self._answer(request, seq, CommandOutcome.BUSY,
                         f"requests {earlier} not answered yet; this one was not run, "
                         "send it again after their responses")
            return
        self._running[seq] = request
        self._note(EventKind.COMMAND_ACCEPTED, seq=seq)
        self._out.append(RunCommand(seq, request))

    def on_command_finished(self, seq: int, outcome: CommandOutcome, text: str, now_ns: int) -> None:
        """The command ``RunCommand(seq)`` asked for ended (``DONE`` with its answer or ``FAILED`` with
        why): its response goes to the IDC in the data phase, now or after a reconnect."""
        if outcome is CommandOutcome.BUSY:
            raise ValueError("a command that ran cannot have been busy; only the session answers busy")
        request = self._running.pop(seq, None)
        if request is None:
            raise ValueError(f"no command from request {seq} is running")
        if self.state is State.STOPPED:
            self._note(EventKind.COMMAND_UNANSWERED, seq=seq, outcome=outcome.name.lower())
            return
        self._note(EventKind.COMMAND_ANSWERED, seq=seq, outcome=outcome.name.lower())
        self._answer(request, seq, outcome, text)

    def on_alert(self, text: str, now_ns: int) -> None:
        """The IDC is closing the connection deliberately: reconnect (with back-off). A rejection notice
        (REJECTION_NOTICE) only says why the IDC refused one of our frames: noted, the link stays."""
        if text.startswith(REJECTION_NOTICE):
            reason = text.removeprefix(REJECTION_NOTICE)
            self.counters.frames_rejected_by_idc += 1
            self.rejections_by_idc.append(reason)
            self._note(EventKind.REJECTED_BY_IDC, reason=reason)
            return
        if self.state in (State.IDLE, State.BACKOFF, State.STOPPED):
            return
        self._reconnect(f"IDC sent alert: {text}", now_ns)

    def on_transport_lost(self, reason: str, now_ns: int) -> None:
        """The adapter knows the connection is unusable (e.g. a send failed)."""
        if self.state in (State.CONNECTING, State.NEGOTIATING, State.DATA):
            self._reconnect(reason, now_ns)

    def shutdown(self, now_ns: int, reason: str = "station shutting down") -> None:
        """Deliberate close: an Alert to the IDC if a connection is open, then stop for good."""
        if self.state is State.STOPPED:
            return
        if self.state in (State.CONNECTING, State.NEGOTIATING, State.DATA):
            self._out.append(SendAlert(reason))
            self._out.append(Disconnect(reason, graceful=True))
        self._note(EventKind.LINK_STOPPED, reason=reason)
        self.state = State.STOPPED
        self._conn = None
        self._deadline_ns = None

    # ---- outputs ---------------------------------------------------------------------------------

    def poll(self, now_ns: int) -> list[Action]:
        """Fire due timers and release at most one data frame; returns the actions to carry out in order.

        Call again at once after it returned a ``SendData`` (and the adapter reported the bytes), or at
        ``next_wakeup_ns`` otherwise.
        """
        self._fire_timers(now_ns)
        conn = self._conn
        if self.state is State.DATA and conn is not None:
            if self._ack_due or now_ns >= conn.heartbeat_due_ns:
                self._send_acknack(now_ns)
            self._out.extend(self._answers_due)
            self._answers_due.clear()
            if conn.room(self.config) and self._bucket.ready_at(now_ns) <= now_ns:
                seq = self._next_frame(backlog=self._backlog_open(now_ns))
                if seq is not None:
                    self._transmit(seq, now_ns)
        out, self._out = self._out, []
        return out

    def next_wakeup_ns(self, now_ns: int) -> int | None:
        """When ``poll`` next has something to do on its own (None: only an input can change things)."""
        times = [t for t in (self._deadline_ns,) if t is not None]
        conn = self._conn
        if self.state is State.DATA and conn is not None:
            times.append(conn.heartbeat_due_ns)
            times.append(conn.heard_ns + self.config.idle_timeout_ns)
            if conn.unanswered_since_ns is not None:
                times.append(conn.unanswered_since_ns + self.config.response_timeout_ns)
            if self._queued and conn.room(self.config):
                ready = self._bucket.ready_at(now_ns)
                times.append(ready if self._live or self._backlog_open(ready) else conn.backlog_from_ns)
        return min(times) if times else None

    def take_events(self) -> list[Event]:
        """What happened since the last call, oldest first; the adapter writes each to its log once."""
        events, self._events = self._events, []
        return events

    @property
    def pending(self) -> int:
        """Frames not yet acknowledged by the IDC (queued or in flight)."""
        return len(self._unacked)

    @property
    def endpoint(self) -> str | None:
        return self._conn.endpoint if self._conn else None

    def log_context(self, **extra: object) -> dict[str, object]:
        """Logging extras naming this station and, while connected, the endpoint; plus ``extra``."""
        ctx: dict[str, object] = {"station": self.config.station}
        if self._conn is not None:
            ctx["endpoint"] = self._conn.endpoint
        ctx.update(extra)
        return ctx

    # ---- internals -------------------------------------------------------------------------------

    def _hear(self, now_ns: int) -> None:
        if self._conn is not None:
            self._conn.heard_ns = now_ns

    def _note(self, kind: EventKind, **extra: object) -> None:
        self._events.append(Event(kind, self.log_context(**extra)))

    def _stale(self, frame_type: int, header: ControlHeader, now_ns: int) -> str | None:
        """Why ``admit`` must refuse a frame, or None."""
        if header.tag == 0 and frame_type == FrameType.ALERT:
            window = self.config.control_window_ns
            if abs(header.stamp - now_ns) > window:
                return (f"alert stamped {(header.stamp - now_ns) / NS_PER_S:+.0f} s from this station's "
                        f"clock, outside the {window / NS_PER_S:g} s window")
            if header.stamp <= self._idc_stamp_seen:
                return f"replayed: alert stamp {header.stamp} is not above {self._idc_stamp_seen}"
            return None
        if header.tag == 0 or header.tag != self._tag:
            return f"belongs to another session (tag {header.tag}; this connection's is {self._tag})"
        if frame_type != FrameType.COMMAND_REQUEST and header.stamp <= self._idc_stamp:
            return f"replayed: stamp {header.stamp} is not above {self._idc_stamp}, the last of this session"
        return None

    def _answer(self, request: CommandRequestBody, seq: int, outcome: CommandOutcome, text: str) -> None:
        """Queue the response for the data phase and keep it to answer a repeat of the request."""
        response = SendCommandResponse(request, outcome.response_text(text))
        self._responses[seq] = response
        while len(self._responses) > self._RESPONSE_CACHE:
            self._responses.popitem(last=False)
        self._answers_due.append(response)

    def _connect(self, now_ns: int) -> None:
        endpoint = self.config.endpoints[self._endpoint_index % len(self.config.endpoints)]
        self._conn = _Connection(endpoint=endpoint, heard_ns=now_ns)
        self._tag = self._rng.randrange(1, 1 << 31)  # series is a signed 32-bit field: keep it positive
        self._idc_stamp = 0
        self.state = State.CONNECTING
        self._deadline_ns = now_ns + self.config.connect_timeout_ns
        self._note(EventKind.CONNECTING)
        self._out.append(Connect(endpoint))
        self._out.append(SendConnectionRequest())

    def _enter_data(self, now_ns: int) -> None:
        assert self._conn is not None
        self.state = State.DATA
        self._deadline_ns = None
        self._conn.backlog_from_ns = now_ns + self.config.backlog_hold_ns
        self._note(EventKind.LINK_UP, reason=f"{len(self._unacked)} frames waiting")
        self._ack_due = True  # tell the IDC at once what we hold of its frames

    def _reconnect(self, reason: str, now_ns: int) -> None:
        self.last_link_problem = reason
        delay = self._backoff.next_delay_ns()
        self._note(EventKind.LINK_LOST, reason=reason, delay_s=round(delay / NS_PER_S, 3))
        self._out.append(Disconnect(reason))
        self.counters.reconnects += 1
        self._conn = None
        self._endpoint_index += 1
        self.state = State.BACKOFF
        self._deadline_ns = now_ns + delay
        # everything unacknowledged is backlog for the next connection, oldest first
        self._live.clear()
        self._backlog = sorted(self._unacked)
        self._queued = set(self._unacked)

    def _fire_timers(self, now_ns: int) -> None:
        conn = self._conn
        if self.state is State.BACKOFF and self._deadline_ns is not None and now_ns >= self._deadline_ns:
            self._connect(now_ns)
        elif self.state in (State.CONNECTING, State.NEGOTIATING) and now_ns >= (self._deadline_ns or 0):
            what = "connection" if self.state is State.CONNECTING else "option"
            secs = self.config.connect_timeout_ns / NS_PER_S
            self._reconnect(f"no {what} response within {secs:g} s", now_ns)
        elif self.state is State.DATA and conn is not None:
            if now_ns - conn.heard_ns >= self.config.idle_timeout_ns:
                secs = self.config.idle_timeout_ns / NS_PER_S
                self._reconnect(f"nothing received from the IDC for {secs:g} s", now_ns)
            elif (conn.unanswered_since_ns is not None
                  and now_ns - conn.unanswered_since_ns >= self.config.response_timeout_ns):
                secs = self.config.response_timeout_ns / NS_PER_S
                self._reconnect(f"no acknack within {secs:g} s of sending data", now_ns)

    def _send_acknack(self, now_ns: int) -> None:
        assert self._conn is not None
        gl = self._from_idc
        self._out.append(SendAcknack(self._peer_frame_set, gl.lowest, gl.highest, tuple(gl.gaps())))
        self._conn.heartbeat_due_ns = now_ns + self.config.heartbeat_ns
        self._ack_due = False

    def _backlog_open(self, now_ns: int) -> bool:
        """Backlog may flow once the IDC said what it already holds (its first acknack on a new
        connection usually acknowledges frames whose acks were lost) or the hold expired."""
        conn = self._conn
        return conn is not None and (conn.acknacks > 0 or now_ns >= conn.backlog_from_ns)

    def _next_frame(self, backlog: bool) -> int | None:
        """Live frames first (oldest live first), then the backlog (lowest sequence first)."""
        while self._live:
            seq = self._live.popleft()
            if seq in self._queued:
                self._queued.discard(seq)
                return seq
        while backlog and self._backlog:
            seq = heapq.heappop(self._backlog)
            if seq in self._queued:
                self._queued.discard(seq)
                return seq
        return None

    def _transmit(self, seq: int, now_ns: int) -> None:
        assert self._conn is not None
        resend = seq in self._ever_sent
        self._ever_sent.add(seq)
        self._conn.in_flight[seq] = now_ns
        if self._conn.unanswered_since_ns is None:
            self._conn.unanswered_since_ns = now_ns
        self.counters.frames_sent += 1
        if resend:
            self.counters.frames_resent += 1
        self._out.append(SendData(seq, resend))
