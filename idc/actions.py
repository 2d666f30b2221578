"""What the receiver's protocol core (idc/protocol.py) hands its adapter and its committer.

Actions change the world (:class:`Send`, :class:`Reject`); events are for the adapter to log and count,
once. Accepted frames travel to the committer in :class:`StationBatch`es, and come back as durable or as
a :class:`CommitFailure`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gci_link.cd11 import FrameType
from gci_link.gaplist import GapList
from idc.verify import CheckedFrame, Rejection


@dataclass(frozen=True, slots=True)
class Peer:
    """One connection as the core sees it: the ZeroMQ routing identity, and the adapter's handle for
    the socket it came in on, which the core only hands back in :class:`Send`."""

    via: object
    identity: bytes

    @property
    def label(self) -> str:
        return self.identity.hex()


@dataclass(frozen=True, slots=True)
class Send:
    """Send an encoded frame to ``peer``. ``session``: it goes over the station's session route, which
    the adapter reports with ``unreachable`` if the peer is gone; otherwise it is a one-off reply whose
    loss does not matter (the peer reconnects on its own)."""

    peer: Peer
    station: str
    kind: FrameType
    frame: bytes
    session: bool = True


@dataclass(frozen=True, slots=True)
class Reject:
    """A refused message: log it, count ``rejected:KIND``, record the channel outcomes that decided it,
    and quarantine ``raw`` with the reason. ``error`` is the unexpected exception behind an internal
    rejection, for its traceback."""

    peer: str
    received_ns: int
    raw: bytes
    rejection: Rejection
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class SessionOpened:
    station: str
    peer: str
    lowest: int
    highest: int


@dataclass(frozen=True, slots=True)
class SessionClosedByStation:
    station: str
    alert: str


@dataclass(frozen=True, slots=True)
class SessionSilent:
    """No frame for the silence timeout: the core alerts the station and closes its session."""

    station: str
    silent_s: float


@dataclass(frozen=True, slots=True)
class SessionEndedByReload:
    """A reloaded configuration no longer lets this session go on: the station was removed, or the key
    that opened its session is no longer trusted. The core alerts the station and closes the session."""

    station: str
    reason: str


@dataclass(frozen=True, slots=True)
class DuplicateReceived:
    station: str


@dataclass(frozen=True, slots=True)
class ConnectRateLimited:
    peer: str


@dataclass(frozen=True, slots=True)
class CommandResponseReceived:
    station: str
    request: bytes  # the request it answers, echoed by the station
    response: bytes


Action = (
    Send
    | Reject
    | SessionOpened
    | SessionClosedByStation
    | SessionSilent
    | SessionEndedByReload
    | DuplicateReceived
    | ConnectRateLimited
    | CommandResponseReceived
)


# ---- accepted frames on their way to the committer ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Accepted:
    """A verified data or IMS 2.0 frame that is new: to be made durable, then acknowledged."""

    checked: CheckedFrame
    raw: bytes
    received_ns: int
    peer: str


@dataclass
class StationBatch:
    """One station's accepted frames since the last commit. ``gaps`` is the station's gap list, already
    holding every frame of the batch; while the batch is pending the station's session shares it."""

    station: str
    gaps: GapList
    frames: dict[int, Accepted] = field(default_factory=dict)


@dataclass(frozen=True)
class CommitFailure:
    """A batch the committer could not store; nothing of it is durable."""

    batch: StationBatch
    stored: GapList  # the station's gap list as its store still holds it
    reason: str
