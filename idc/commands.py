"""Command requests from the IDC to its stations: the operator's queue between ``ims idc command`` and
the running receiver.

The operator's command and the receiver are separate processes, so they meet in one SQLite file under
the receiver's root, ``commands.sqlite``: the command line checks a request and adds a ``queued`` row
and waits; the receiver looks for queued rows about once a second, sends each to its station as a
CD-1.1 command request once the station has an open session, and marks it ``sent`` with the frame's
sequence number before the frame leaves (so a receiver that dies between the two never sends it twice:
a calibration must not run twice because of a crash). The station's command response is matched to the
oldest sent request of that station with the same text (the response echoes it) and stored with it;
``ims idc command`` prints it, ``ims idc commands`` lists them all. A request not sent within the
operator's wait is withdrawn, so it cannot start a calibration hours later, when nobody expects it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from gci_link.cd11 import CommandRequestBody
from gci_link.commands import CommandName
from idc.config import IdcConfig

COMMANDS_NAME = "commands.sqlite"
MAX_COMMAND_BYTES = 1024  # a command is a line of words; nothing the stations take is longer
QUEUED, SENT, ANSWERED, WITHDRAWN = "queued", "sent", "answered", "withdrawn"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY,
    station TEXT NOT NULL,
    site TEXT NOT NULL,
    channel TEXT NOT NULL,
    location TEXT NOT NULL,
    text TEXT NOT NULL,
    state TEXT NOT NULL,
    queued_ns INTEGER NOT NULL,
    sent_ns INTEGER,
    seq INTEGER,
    answered_ns INTEGER,
    response TEXT
);
CREATE INDEX IF NOT EXISTS commands_state ON commands (state, station);
"""
_COLUMNS = "id, station, site, channel, location, text, state, queued_ns, sent_ns, seq, answered_ns, response"


@dataclass(frozen=True, slots=True)
class Command:
    id: int
    station: str
    site: str
    channel: str
    location: str
    text: str
    state: str  # queued, sent, answered or withdrawn
    queued_ns: int
    sent_ns: int | None
    seq: int | None  # the command request frame's sequence number: its identity at the station
    answered_ns: int | None
    response: str | None

    def request(self) -> CommandRequestBody:
        return CommandRequestBody(self.station, self.site, self.channel, self.location, self.queued_ns,
                                  self.text.encode("ascii"))


@dataclass(frozen=True, slots=True)
class Addressee:
    """Where a request points in its CD-1.1 addressee fields: the station's site, and for ``calibrate``
    the channel it names."""

    site: str
    channel: str = ""
    location: str = ""


def check_command(config: IdcConfig, station: str, text: str) -> Addressee:
    """The addressee of ``text`` for ``station``, or ValueError saying what is wrong: an unknown station,
    text that is not one line of printable ASCII, a command no station takes, a ``calibrate`` whose words
    the station would refuse (the same parser as the station's)."""
    policy = config.stations.get(station)
    if policy is None:
        known = ", ".join(sorted(config.stations)) or "none"
        raise ValueError(f"station {station!r} is not configured in this receiver (configured: {known})")
    if not text or len(text) > MAX_COMMAND_BYTES:
        raise ValueError(f"a command is 1 to {MAX_COMMAND_BYTES} characters, not {len(text)}")
    if not (text.isascii() and text.isprintable()):
        raise ValueError("a command is one line of printable ASCII")
    words = text.split()
    names = [name.value for name in CommandName]
    if not words or words[0] not in names:
        raise ValueError(f"unknown command {words[0] if words else text!r}; stations take {', '.join(names)}")
    site = policy.allowed_sites[0]
    if words[0] != CommandName.CALIBRATE.value:
        return Addressee(site)
    from calibration.session import CALIBRATE_USAGE, parse_calibrate  # numpy and scipy: only when needed

    try:
        channel, _ = parse_calibrate(words)
    except ValueError as exc:
        raise ValueError(f"{exc}; usage: {CALIBRATE_USAGE}") from None
    parts = channel.split(".")
    if len(parts) == 1:
        parts = [site, parts[0], ""]
    if len(parts) != 3:
        raise ValueError(f"CHANNEL is a channel code (BHZ) or SITE.CHA.LOC, not {channel!r}")
    site, code, location = parts
    if site not in policy.allowed_sites:
        sites = ", ".join(policy.allowed_sites)
        raise ValueError(f"site {site!r} is not one of station {station}'s: {sites}")
    if not (1 <= len(code) <= 3 and len(location) <= 2 and (code + location).isalnum()):
        raise ValueError(f"channel {code!r} location {location!r}: 1-3 and 0-2 letters or digits")
    return Addressee(site, code, location)


class CommandQueue:
    """``commands.sqlite``: written by ``ims idc command`` (``submit``, ``withdraw``) and by the receiver
    (``queued``, ``mark_sent``, ``answer``). Every change is one short transaction, so the two processes
    never hold each other up for long."""

    def __init__(self, root: Path, timeout_s: float = 10.0) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / COMMANDS_NAME
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=timeout_s,
                                   check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    # ---- the operator's side ---------------------------------------------------------------------

    def submit(self, station: str, addressee: Addressee, text: str, now_ns: int) -> int:
        cursor = self._db.execute(
            "INSERT INTO commands (station, site, channel, location, text, state, queued_ns) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (station, addressee.site, addressee.channel, addressee.location, text, QUEUED, now_ns),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def withdraw(self, command_id: int) -> bool:
        """Take back a request not sent yet; False if the receiver has sent it meanwhile."""
        cursor = self._db.execute("UPDATE commands SET state = ? WHERE id = ? AND state = ?",
                                  (WITHDRAWN, command_id, QUEUED))
        return cursor.rowcount == 1

    def get(self, command_id: int) -> Command | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM commands WHERE id = ?", (command_id,)).fetchone()
        return None if row is None else Command(*row)

    def find(self, station: str | None = None, limit: int = 100) -> list[Command]:
        """The newest ``limit`` commands (of ``station``), oldest first."""
        where, args = ("WHERE station = ?", (station,)) if station else ("", ())
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM commands {where} ORDER BY id DESC LIMIT ?",
                                (*args, limit)).fetchall()
        return [Command(*row) for row in reversed(rows)]

    # ---- the receiver's side ---------------------------------------------------------------------

    def queued(self) -> list[Command]:
        rows = self._db.execute(f"SELECT {_COLUMNS} FROM commands WHERE state = ? ORDER BY id",
                                (QUEUED,)).fetchall()
        return [Command(*row) for row in rows]

    def mark_sent(self, command_id: int, seq: int, now_ns: int) -> bool:
        """Record the request as sent in frame ``seq``; False (send nothing) if it was withdrawn."""
        cursor = self._db.execute(
            "UPDATE commands SET state = ?, seq = ?, sent_ns = ? WHERE id = ? AND state = ?",
            (SENT, seq, now_ns, command_id, QUEUED),
        )
        return cursor.rowcount == 1

    def unsent(self, command_id: int) -> None:
        """The frame of a request marked sent could not leave (its station's connection is gone): it is
        queued again, for the station's next session."""
        self._db.execute(
            "UPDATE commands SET state = ?, seq = NULL, sent_ns = NULL WHERE id = ? AND state = ?",
            (QUEUED, command_id, SENT),
        )

    def answer(self, station: str, request: bytes, response: bytes, now_ns: int) -> int | None:
        """Store a station's response with the oldest sent request it echoes; its id, or None when no sent
        request matches (a response to a command sent by another IDC, or answered already)."""
        text = request.decode("ascii", "replace")
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute(
                "SELECT id FROM commands WHERE station = ? AND state = ? AND text = ? ORDER BY id LIMIT 1",
                (station, SENT, text),
            ).fetchone()
            if row is None:
                return None
            self._db.execute("UPDATE commands SET state = ?, answered_ns = ?, response = ? WHERE id = ?",
                             (ANSWERED, now_ns, response.decode("utf-8", "replace"), row[0]))
        return int(row[0])
