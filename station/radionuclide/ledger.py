"""Exactly once: what one radionuclide system has already stored in the outbox, and storing more.

Each message goes into the outbox as one signed type-100 frame whose ``kind`` names it:
``ims2 SYSTEM MSGMS EVENT``, where EVENT says which moment of the cycle it reports (``SAMPLE 1234
PREL 3``, ``SAMPLE 1234 FULL``, ``RMSSOH 2893``, ``ALERT flow_low sampler RAISED``). The label is
committed in the same transaction as the frame, so after a crash at any instant the outbox alone says
which messages exist: the restarted cycle makes every message that is missing and none twice, and its
MSG_IDs go on increasing from the last one stored.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from gci_link.keys import StationSigner
from gci_link.station_end.outbox import Outbox
from station.publisher import publish_message
from station.radionuclide.ids import msg_id_ms

KIND = "ims2"
REMEMBERED = 20_000  # events kept in memory; the cycle only ever asks about recent ones


@dataclass(frozen=True, slots=True)
class Stored:
    seq: int
    msg_ms: int
    event: str


class MessageLedger:
    def __init__(self, outbox: Outbox, system: str, *, creator: str, destination: str,
                 signer: StationSigner | None) -> None:
        self.outbox = outbox
        self.prefix = f"{KIND} {system} "
        self._creator, self._destination, self._signer = creator, destination, signer
        self.last_ms: int | None = None
        self._events: set[str] = set()
        self._order: deque[str] = deque()
        self.restored: list[Stored] = []  # what the outbox held at start, oldest first
        for seq, kind in outbox.kinds(self.prefix):
            ms_text, _, event = kind.removeprefix(self.prefix).partition(" ")
            if not ms_text.isdigit() or not event:
                continue  # not written by this module; nothing to learn from it
            self.restored.append(Stored(seq, int(ms_text), event))
            self._remember(event)
            self.last_ms = max(self.last_ms or 0, int(ms_text))

    def has(self, event: str) -> bool:
        return event in self._events

    def next_ms(self, transmit_ns: int) -> int:
        """The MSG_ID time of a message sent now: later than every one stored."""
        return msg_id_ms(transmit_ns, self.last_ms)

    def store(self, event: str, msg_ms: int, nominal_time_ns: int, message: bytes) -> int:
        """Make the message durable in the outbox (the sender takes it from there); its sequence."""
        seq = publish_message(self.outbox, f"{self.prefix}{msg_ms} {event}", nominal_time_ns, message,
                              creator=self._creator, destination=self._destination, signer=self._signer)
        self.last_ms = msg_ms
        self._remember(event)
        return seq

    def counts(self) -> tuple[int, int]:
        """(messages in the outbox, of which not yet acknowledged by the IDC)."""
        return self.outbox.kind_counts(self.prefix)

    def _remember(self, event: str) -> None:
        if event in self._events:
            return
        self._events.add(event)
        self._order.append(event)
        if len(self._order) > REMEMBERED:
            self._events.discard(self._order.popleft())
