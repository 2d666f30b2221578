"""A station and the IDC receiver joined in memory, with room for an attacker on the wire.

The station is the real link session (``gci_link.link_session``) with the real frame encoding of the
station end (``gci_link.station_end.link_frames``); the IDC is the real receiver core
(``idc.protocol``) with its frame checker and an in-memory store. Frames are real, signed CD-1.1 bytes.
One simulated clock drives everything in fixed ticks, so a minute of link time under attack runs in well
under a second and every run is the same.

Each ZeroMQ connection is a :class:`~idc.actions.Peer` with its own routing identity, as a ROUTER sees a
DEALER: the station gets a fresh one on every ``Connect``, and the attacker speaks from its own.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fuzz.idc_receiver import HeldInMemory
from gci_link.cd11 import FrameType
from gci_link.keys import Role, StationSigner, TrustStore
from gci_link.link_session import (
    Acknowledge,
    Action,
    Connect,
    Disconnect,
    LinkSession,
    RunCommand,
    SendData,
    SessionConfig,
)
from gci_link.station_end.link_frames import control_frame, receive
from idc.actions import Peer, Send
from idc.checker import FrameChecker
from idc.protocol import ReceiverProtocol
from tests.idc.conftest import make_config, signed
from timeunits import NS_PER_S

TICK_NS = 10_000_000  # 10 ms of link time per step
LATENCY_NS = 20_000_000  # one way, every frame
STATION_IDENTITY = b"station-"  # routing identities of the station's connections begin so


@dataclass
class InFlight:
    due_ns: int
    peer: Peer
    raw: bytes


@dataclass
class Tap:
    """What crossed the wire from the station, as an eavesdropper on the GCI records it."""

    frames: list[tuple[int, bytes]] = field(default_factory=list)  # (frame type, bytes)

    def last(self, kind: FrameType) -> bytes:
        return next(raw for k, raw in reversed(self.frames) if k == kind)


class Station:
    """A station's outbox (frames prebuilt and signed) and its link session."""

    def __init__(
        self, keys, config: SessionConfig, now_ns: int, first_seq: int, idc_keys: TrustStore | None
    ) -> None:
        self.keys = keys
        self.idc_keys = idc_keys  # the IDC certificates the station checks the IDC's frames with; None: none
        self.session = LinkSession(config, now_ns, rng=random.Random(first_seq))
        self.outbox: dict[int, bytes] = {}
        self.acked: set[int] = set()
        self.next_seq = first_seq
        self.peer: Peer | None = None
        self._connections = 0

    def append(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        self.outbox[seq] = signed(seq, self.keys)
        self.session.offer([seq])
        return seq

    def connect(self) -> Peer:
        self._connections += 1
        self.peer = Peer("router", STATION_IDENTITY + str(self._connections).encode())
        return self.peer


class Link:
    """The station, the IDC and the wire between them; ``run`` advances the shared clock."""

    def __init__(self, keys, now_ns: int, idc_signer: StationSigner | None = None, **idc_config) -> None:
        self.keys = keys
        self.now = now_ns
        self.held = HeldInMemory()
        self.config = make_config(Path("unused"), keys.ca.trust_dir, **idc_config)
        self.checker = FrameChecker(keys.ca.trust_store(), self.config.stations, workers=0)
        self.idc = ReceiverProtocol(self.config, self.checker.submit, self.held, idc_signer)
        self.idc_keys = TrustStore.load(keys.ca.trust_dir, role=Role.IDC)  # what a station checks against
        self.tap = Tap()
        self.station: Station | None = None
        self._to_idc: list[InFlight] = []
        self._to_station: list[InFlight] = []
        self.to_attacker: list[bytes] = []  # frames the IDC sent to connections that were never the station's

    def start_station(
        self, config: SessionConfig, first_seq: int, idc_keys: TrustStore | None = None
    ) -> Station:
        self.station = Station(self.keys, config, self.now, first_seq, idc_keys)
        self.station.session.start(self.now)
        return self.station

    def inject(self, peer: Peer, raw: bytes) -> None:
        """A message from any connection, arriving at the IDC after the usual latency."""
        self._to_idc.append(InFlight(self.now + LATENCY_NS, peer, raw))

    def run(self, duration_ns: int, every_tick: Callable[[int], None] | None = None) -> None:
        """Advance ``duration_ns`` of link time; ``every_tick(now)`` runs first in each tick."""
        end = self.now + duration_ns
        while self.now < end:
            if every_tick is not None:
                every_tick(self.now)
            self._station_step()
            self._deliver_to_idc()
            self._deliver_to_station()
            self.now += TICK_NS

    # ---- internals -------------------------------------------------------------------------------

    def _station_step(self) -> None:
        station = self.station
        if station is None:
            return
        while True:
            actions = station.session.poll(self.now)
            for action in actions:
                self._carry_out(station, action)
            if not any(isinstance(a, SendData) for a in actions):
                break

    def _carry_out(self, station: Station, action: Action) -> None:
        session = station.session
        if isinstance(action, Connect):
            station.connect()
        elif isinstance(action, Disconnect):
            station.peer = None
        elif isinstance(action, Acknowledge):
            station.acked.update(action.seqs)
        elif isinstance(action, SendData):
            self._from_station(station, station.outbox[action.seq])
        elif isinstance(action, RunCommand):
            raise AssertionError("no commands in these runs")
        else:
            header = session.control_header(self.now)
            raw = control_frame(action, session.config.station, header, self.keys.sta1)
            self._from_station(station, raw)

    def _from_station(self, station: Station, raw: bytes) -> None:
        station.session.sent_bytes(len(raw), self.now)
        self.tap.frames.append((int.from_bytes(raw[:4], "big"), raw))
        if station.peer is not None:
            self._to_idc.append(InFlight(self.now + LATENCY_NS, station.peer, raw))

    def _deliver_to_idc(self) -> None:
        due = [m for m in self._to_idc if m.due_ns <= self.now]
        self._to_idc = [m for m in self._to_idc if m.due_ns > self.now]
        for message in due:
            self._from_idc(self.idc.receive(message.peer, [message.raw], self.now))
            batches = self.idc.take_batches()
            for batch in batches:
                self.held.store(batch)
            self._from_idc(self.idc.settled(batches, []))
        self._from_idc(self.idc.poll(self.now))

    def _from_idc(self, actions: list) -> None:
        for action in actions:
            if not isinstance(action, Send):
                continue
            if action.peer.identity.startswith(STATION_IDENTITY):
                self._to_station.append(InFlight(self.now + LATENCY_NS, action.peer, action.frame))
            else:
                self.to_attacker.append(action.frame)

    def _deliver_to_station(self) -> None:
        station = self.station
        due = [m for m in self._to_station if m.due_ns <= self.now]
        self._to_station = [m for m in self._to_station if m.due_ns > self.now]
        for message in due:
            if station is None or message.peer != station.peer:
                continue  # that connection is closed: the frame dies with it
            receive(station.session, message.raw, self.now, station.idc_keys)


def seconds(s: float) -> int:
    return int(s * NS_PER_S)
