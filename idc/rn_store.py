"""The IDC's radionuclide message store: every IMS 2.0 message byte for byte, indexed for analysts.

The committer writes each message as it arrived (``MessageStore``: one file, named by the receiver from
the authenticated station and the frame's sequence number, never from text inside the message) before
its frame is acknowledged. ``RnStore`` does that and adds a row to ``index.sqlite`` beside the files:
station, sequence, data type, MSG_ID, SRID, spectrum qualifier, transmit, acquisition and collection
times, size and SHA-256. The row is keyed by (station, sequence), so a resend after a crash replaces
it instead of doubling it. A message that does not parse is still stored and indexed, with the parser's
complaint (``problem``), since the station's bytes are the record. ``ims idc rn list`` / ``show`` read
the index (idc/cli.py).

A PHD message's row also holds its system type, detector and the three measurement ids of its #Header
(its own, and the detector and gas backgrounds it references), so the analysis finds a sample's
backgrounds by a query. The analyses themselves (idc/rn_analyser.py) go to the table ``analyses``, one
row per sample keyed like the messages. Both came after the first index files: opening an older index
adds the columns and the table (its old PHD rows get their ids from the analyser, idc/rn_analyser.py),
and the read-only view reads an index not yet migrated as if those were empty.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from gci_link import ims2
from gci_link.gaplist import seq_from_signed, seq_to_signed
from idc.stores import MessageStore, open_wal

INDEX_NAME = "index.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    station TEXT NOT NULL,
    seq INTEGER NOT NULL,
    received_ns INTEGER NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    data_type TEXT,
    msg_id TEXT,
    srid TEXT,
    qualifier TEXT,
    transmit_ns INTEGER,
    acquisition_start_ns INTEGER,
    collection_start_ns INTEGER,
    problem TEXT,
    UNIQUE (station, seq)
);
CREATE INDEX IF NOT EXISTS messages_station ON messages (station, data_type, transmit_ns);
CREATE INDEX IF NOT EXISTS messages_srid ON messages (srid);
"""
# added after the first index files: ALTER TABLE adds them to an older index
PHD_COLUMNS = ("system_type", "detector", "sample_id", "detbk_id", "gasbk_id")
_LATER_SCHEMA = """
CREATE INDEX IF NOT EXISTS messages_measurement ON messages (station, sample_id);
CREATE INDEX IF NOT EXISTS messages_type ON messages (data_type);
CREATE TABLE IF NOT EXISTS analyses (
    station TEXT NOT NULL,
    seq INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    analysed_ns INTEGER NOT NULL,
    result TEXT,
    error TEXT,
    gasbk_seq INTEGER,
    detbk_seq INTEGER,
    gasbk_missing INTEGER NOT NULL DEFAULT 0,
    detbk_missing INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (station, seq)
);
"""
COLUMNS = ("id", "station", "seq", "received_ns", "path", "size", "sha256", "data_type", "msg_id", "srid",
           "qualifier", "transmit_ns", "acquisition_start_ns", "collection_start_ns", "problem", *PHD_COLUMNS)
ANALYSIS_COLUMNS = ("analysed_ns", "sha256", "result", "error", "gasbk_seq", "detbk_seq", "gasbk_missing",
                    "detbk_missing")


@dataclass(frozen=True, slots=True)
class IndexedMessage:
    id: int
    station: str
    seq: int
    received_ns: int
    path: str  # relative to the store's root
    size: int
    sha256: str
    data_type: str | None
    msg_id: str | None
    srid: str | None
    qualifier: str | None
    transmit_ns: int | None
    acquisition_start_ns: int | None
    collection_start_ns: int | None
    problem: str | None  # why the text did not parse; None when it did
    system_type: str | None = None  # PHD messages: B, P or G
    detector: str | None = None
    sample_id: str | None = None  # the measurement id of this spectrum
    detbk_id: str | None = None  # the detector background it references
    gasbk_id: str | None = None  # the gas background it references


@dataclass(frozen=True, slots=True)
class StoredAnalysis:
    """The analysis of one SAMPLEPHD: the result (``AnalysisResult.to_json``) or why there is none."""

    analysed_ns: int
    sha256: str  # of the message analysed
    result: dict | None
    error: str | None
    gasbk_seq: int | None  # the backgrounds used, by their sequence numbers (same station)
    detbk_seq: int | None
    gasbk_missing: bool  # referenced but not received when analysed
    detbk_missing: bool


def describe(text: bytes) -> dict[str, object]:
    """What the index keeps of a message's content; parser trouble becomes ``problem``."""
    try:
        message = ims2.parse(text.decode("ascii"))
    except (UnicodeDecodeError, ims2.Ims2FormatError) as exc:
        return {"problem": str(exc)}
    fields: dict[str, object] = {"data_type": message.data_type, "msg_id": message.msg_id,
                                 "transmit_ns": message.transmit_ns, "problem": None}
    if isinstance(message, ims2.PhdMessage):
        fields |= {"srid": message.srid, "qualifier": message.spectrum_qualifier,
                   "acquisition_start_ns": message.acquisition_start_ns,
                   "collection_start_ns": message.collection_start_ns}
        fields |= {name: getattr(message, name) for name in PHD_COLUMNS}
    return fields


def migrate(db: sqlite3.Connection) -> None:
    """Bring an index of any earlier version up to this one; each step is safe to repeat."""
    db.executescript(_SCHEMA)
    present = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
    for name in PHD_COLUMNS:
        if name not in present:
            db.execute(f"ALTER TABLE messages ADD COLUMN {name} TEXT")
    db.executescript(_LATER_SCHEMA)


class RnStore(MessageStore):
    """Message files (as ``MessageStore``) plus their index; the receiver's committer writes through it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        root.mkdir(parents=True, exist_ok=True)
        self._db = open_wal(root / INDEX_NAME, "FULL")
        migrate(self._db)

    def write(self, station: str, seq: int, received_ns: int, text: bytes) -> Path:
        path = super().write(station, seq, received_ns, text)
        row = {"station": station, "seq": seq_to_signed(seq), "received_ns": received_ns,
               "path": str(path.relative_to(self.root)), "size": len(text),
               "sha256": hashlib.sha256(text).hexdigest(), **describe(text)}
        names = ", ".join(row)
        self._db.execute(f"INSERT OR REPLACE INTO messages ({names}) VALUES ({', '.join('?' * len(row))})",
                         tuple(row.values()))
        return path

    def close(self) -> None:
        self._db.close()


class RnIndex:
    """Read-only view of a store's index, for ``ims idc rn`` beside a running receiver."""

    def __init__(self, root: Path) -> None:
        self.root = root
        path = root / INDEX_NAME
        if not path.exists():
            raise FileNotFoundError(f"{path}: no radionuclide message index (has the receiver stored any?)")
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        present = {row[1] for row in self._db.execute("PRAGMA table_info(messages)")}
        # an index the receiver has not migrated yet: the newer columns read as NULL
        self._select = ", ".join(name if name in present else f"NULL AS {name}" for name in COLUMNS)
        self._has_analyses = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'analyses'").fetchone() is not None

    def find(self, *, station: str | None = None, data_type: str | None = None, srid: str | None = None,
             since_ns: int | None = None, until_ns: int | None = None,
             limit: int = 1000) -> list[IndexedMessage]:
        """Messages matching every given filter (times on the transmit time), oldest first."""
        where: list[str] = []
        args: list[str | int] = []
        for column, value in (("station", station), ("data_type", data_type), ("srid", srid)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if since_ns is not None:
            where.append("transmit_ns >= ?")
            args.append(since_ns)
        if until_ns is not None:
            where.append("transmit_ns < ?")
            args.append(until_ns)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._db.execute(
            f"SELECT {self._select} FROM messages {clause} ORDER BY id LIMIT ?", (*args, limit)
        ).fetchall()
        return [_message(row) for row in rows]

    def get(self, message_id: int) -> IndexedMessage | None:
        row = self._db.execute(f"SELECT {self._select} FROM messages WHERE id = ?", (message_id,)).fetchone()
        return None if row is None else _message(row)

    def analysis(self, message: IndexedMessage) -> StoredAnalysis | None:
        """The analysis recorded for this message, if any; one of an earlier text of the same station and
        sequence (replaced by a resend) does not count."""
        if not self._has_analyses:
            return None
        row = self._db.execute(f"SELECT {', '.join(ANALYSIS_COLUMNS)} FROM analyses WHERE station = ? AND "
                               "seq = ? AND sha256 = ?",
                               (message.station, seq_to_signed(message.seq), message.sha256)).fetchone()
        if row is None:
            return None
        values = dict(zip(ANALYSIS_COLUMNS, row, strict=True))
        values["result"] = None if values["result"] is None else json.loads(values["result"])
        for key in ("gasbk_seq", "detbk_seq"):
            values[key] = None if values[key] is None else seq_from_signed(values[key])
        for key in ("gasbk_missing", "detbk_missing"):
            values[key] = bool(values[key])
        return StoredAnalysis(**values)

    def text(self, message: IndexedMessage) -> bytes:
        """The stored bytes, checked against the index's SHA-256."""
        data = (self.root / message.path).read_bytes()
        if hashlib.sha256(data).hexdigest() != message.sha256:
            raise ValueError(f"{message.path}: content differs from what was stored (SHA-256 mismatch)")
        return data

    def close(self) -> None:
        self._db.close()


def _message(row: tuple) -> IndexedMessage:
    values = dict(zip(COLUMNS, row, strict=True))
    values["seq"] = seq_from_signed(values["seq"])  # stored signed, as the raw stores do
    return IndexedMessage(**values)
