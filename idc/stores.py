"""Durable IDC stores: raw frames, gap list and SDS journal per station; IMS 2.0 messages; quarantine.

In what order the receiver writes and syncs them, and why that order makes "durable before acknowledged"
and "resends never duplicate samples" hold together: idc/committer.py.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from gci_link.durable import FilesystemSync, write_atomically
from gci_link.gaplist import GapList, seq_from_signed, seq_to_signed

log = logging.getLogger(__name__)


def open_wal(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    """A receiver database in WAL mode, in autocommit (transactions are explicit), one user at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # one user at a time
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    return db


def read_arrivals(path: Path) -> list[tuple[int, int, bytes]]:
    """(seq, received_ns, raw frame) of one station's raw store, read-only, for reports and tools that
    run beside or after the receiver; empty while the store does not exist yet."""
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT seq, received_ns, frame FROM frames ORDER BY seq").fetchall()
    except sqlite3.OperationalError:  # the receiver has not created the table yet
        return []
    finally:
        db.close()
    return [(seq_from_signed(seq), received_ns, bytes(raw)) for seq, received_ns, raw in rows]


@dataclass(frozen=True)
class JournalRow:
    """One frame's SDS appends: the commit ``epoch`` (one per batch, across all stations) and each day file
    about to grow with its size before the append."""

    seq: int
    epoch: int
    files: list[tuple[str, int]]


class StationStore:
    """One station's raw frames (as received, for later re-verification), gap list and SDS journal.

    The journal's ``archived_through`` mark is written in every transaction that deletes journal rows: a
    row is deleted only together with a mark at least its epoch, so after a crash every row whose epoch is
    above the highest mark of all stations may belong to an unfinished append (idc/committer.py).

    ``deferred_sync=True`` commits with synchronous=NORMAL: a commit is atomic but durable only after the
    caller syncs the filesystem (``FilesystemSync``), which lets one ``syncfs`` cover many stations.
    """

    def __init__(self, path: Path, deferred_sync: bool = False) -> None:
        self.path = path
        self._db = open_wal(path, "NORMAL" if deferred_sync else "FULL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS frames (seq INTEGER PRIMARY KEY, received_ns INTEGER NOT NULL,
                                               frame BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS received (first INTEGER NOT NULL, last INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY, files TEXT NOT NULL,
                                                epoch INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE IF NOT EXISTS archived_through (epoch INTEGER NOT NULL);
            """
        )
        if "epoch" not in {row[1] for row in self._db.execute("PRAGMA table_info(journal)")}:
            # a store written before epochs: its rows all count as unfinished (mark -1), as they then did
            self._db.execute("ALTER TABLE journal ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0")
        self._released: list[int] = []  # journal rows (SQL seq values) whose appends are on disk
        self._released_through = self.archived_through()  # the mark to store with their deletion

    def gap_list(self) -> GapList:
        rows = self._db.execute("SELECT first, last FROM received").fetchall()
        return GapList([(seq_from_signed(a), seq_from_signed(b) + 1) for a, b in rows])

    def raw_frame(self, seq: int) -> bytes | None:
        row = self._db.execute("SELECT frame FROM frames WHERE seq = ?", (seq_to_signed(seq),)).fetchone()
        return None if row is None else bytes(row[0])

    def commit(
        self, frames: list[tuple[int, int, bytes, list[tuple[str, int]]]], gaps: GapList, epoch: int
    ) -> None:
        """Store frames ``(seq, received_ns, raw, SDS files about to grow with their sizes)`` of commit
        ``epoch`` and the gap list that includes them, atomically, together with the deletion of released
        journal rows and the mark that allows it."""
        released, self._released = self._released, []
        try:
            with self._transaction():
                self._db.executemany(
                    "INSERT INTO frames VALUES (?, ?, ?)",
                    [(seq_to_signed(seq), received_ns, raw) for seq, received_ns, raw, _ in frames],
                )
                self._db.execute("DELETE FROM received")
                self._db.executemany(
                    "INSERT INTO received VALUES (?, ?)",
                    [(seq_to_signed(a), seq_to_signed(b - 1)) for a, b in gaps.intervals()],
                )
                self._db.executemany(
                    "INSERT INTO journal (seq, files, epoch) VALUES (?, ?, ?)",
                    [(seq_to_signed(seq), json.dumps(files), epoch) for seq, _, _, files in frames if files],
                )
                self._forget(released)
        except BaseException:
            self._released = released + self._released
            raise

    def archived(self, seqs: Iterable[int], through_epoch: int) -> None:
        """The SDS appends journalled for ``seqs`` are on disk, and so are those of every commit up to
        ``through_epoch``; the rows go with the next commit (or at close)."""
        self._released += [seq_to_signed(seq) for seq in seqs]
        self._released_through = max(self._released_through, through_epoch)

    def journal(self) -> list[JournalRow]:
        """Every journal row left, released or not, in sequence order."""
        rows = self._db.execute("SELECT seq, epoch, files FROM journal ORDER BY seq").fetchall()
        return [
            JournalRow(seq_from_signed(seq), epoch, [(name, size) for name, size in json.loads(files)])
            for seq, epoch, files in rows
        ]

    def archived_through(self) -> int:
        """The stored mark: every commit up to this epoch was archived (-1: none known)."""
        row = self._db.execute("SELECT MAX(epoch) FROM archived_through").fetchone()
        return -1 if row[0] is None else int(row[0])

    def _forget(self, released: list[int]) -> None:
        """Inside a transaction: delete released journal rows, and store the mark that covers them (it
        never decreases: it starts from the stored one)."""
        if not released:
            return
        self._db.executemany("DELETE FROM journal WHERE seq = ?", [(seq,) for seq in released])
        self._db.execute("DELETE FROM archived_through")
        self._db.execute("INSERT INTO archived_through VALUES (?)", (self._released_through,))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        if self._released:
            with self._transaction():
                self._forget(self._released)
            self._released = []
        self._db.close()


class RawStores:
    """Every station's StationStore under one directory, opened when first needed, and the one ``syncfs``
    that makes all their deferred commits durable (barrier 1 of the commit, see idc/committer.py).
    Where ``syncfs`` is missing each store commits with synchronous=FULL and ``sync`` has nothing to do.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._sync = FilesystemSync(root)
        self._stores: dict[str, StationStore] = {}

    def store(self, station: str) -> StationStore:
        store = self._stores.get(station)
        if store is None:
            store = self._stores[station] = StationStore(
                self.root / f"{station}.sqlite", deferred_sync=self._sync.available
            )
        return store

    def stations(self) -> list[str]:
        """Every station that has a store on disk, in name order."""
        return sorted(path.stem for path in self.root.glob("*.sqlite"))

    def gap_list(self, station: str) -> GapList:
        return self.store(station).gap_list()

    def raw_frame(self, station: str, seq: int) -> bytes | None:
        return self.store(station).raw_frame(seq)

    def sync(self) -> None:
        """Make every commit so far durable."""
        if self._sync.available:
            self._sync.sync()

    def close(self) -> None:
        for store in self._stores.values():
            store.close()
        self._sync.close()


class MessageStore:
    """IMS 2.0 messages as one file each: ROOT/STATION/YEAR/DAY/STATION-SEQ.msg, fsynced."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, station: str, seq: int, received_ns: int) -> Path:
        t = time.gmtime(received_ns // 1_000_000_000)
        return self.root / station / str(t.tm_year) / f"{t.tm_yday:03d}" / f"{station}-{seq}.msg"

    def write(self, station: str, seq: int, received_ns: int, text: bytes) -> Path:
        path = self.path_for(station, seq, received_ns)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, text)
        return path


class Quarantine:
    """Rejected input with the reason, for operators. Bounded three ways, since anyone can send it: at
    most ``max_item_bytes`` of one item is kept (``size`` records how long it was), raw bytes only
    until ``max_bytes`` are held, and only the newest ``max_rows`` rejections are remembered."""

    def __init__(self, path: Path, max_bytes: int, max_item_bytes: int, max_rows: int) -> None:
        self.max_bytes = max_bytes
        self.max_item_bytes = max_item_bytes
        self.max_rows = max_rows
        self._db = open_wal(path, "NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS quarantine (id INTEGER PRIMARY KEY, received_ns INTEGER NOT NULL, "
            "peer TEXT NOT NULL, station TEXT NOT NULL, seq INTEGER, reason TEXT NOT NULL, "
            "size INTEGER NOT NULL, frame BLOB)"
        )
        self._used = self._db.execute("SELECT COALESCE(SUM(LENGTH(frame)), 0) FROM quarantine").fetchone()[0]
        self._rows = self._db.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0]
        self._warned_full = False

    def put(
        self, received_ns: int, peer: str, station: str, seq: int | None, reason: str, frame: bytes
    ) -> None:
        kept = frame[: self.max_item_bytes]
        keep = self._used + len(kept) <= self.max_bytes
        if not keep and not self._warned_full:
            log.error(
                "quarantine byte budget reached; keeping reasons only", extra={"budget": self.max_bytes}
            )
            self._warned_full = True
        self._db.execute(
            "INSERT INTO quarantine (received_ns, peer, station, seq, reason, size, frame) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                received_ns,
                peer,
                station,
                None if seq is None else seq_to_signed(seq),
                reason,
                len(frame),
                kept if keep else None,
            ),
        )
        if keep:
            self._used += len(kept)
        self._rows += 1
        if self._rows > self.max_rows:
            self._forget_oldest()

    def _forget_oldest(self) -> None:
        """Drop the oldest tenth of the rows (not one per insert, so a flood costs one delete in many)."""
        keep = self.max_rows - self.max_rows // 10
        self._db.execute(
            "DELETE FROM quarantine WHERE id <= (SELECT MAX(id) FROM quarantine) - ?", (keep,)
        )
        self._used = self._db.execute("SELECT COALESCE(SUM(LENGTH(frame)), 0) FROM quarantine").fetchone()[0]
        self._rows = self._db.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0]

    def entries(self) -> list[tuple[str, str, int | None, str, bytes | None]]:
        """(peer, station, seq, reason, frame) of every quarantined item, oldest first."""
        rows = self._db.execute("SELECT peer, station, seq, reason, frame FROM quarantine ORDER BY id")
        return [
            (p, s, None if q is None else seq_from_signed(q), r, None if f is None else bytes(f))
            for p, s, q, r, f in rows
        ]

    def close(self) -> None:
        self._db.close()
