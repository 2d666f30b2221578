"""The station's durable outbox: every frame, with its sequence number, until the IDC acknowledges it.

One SQLite database in WAL mode, one row per frame, labelled by its producer with a ``kind`` (``data``
for waveform frames; the radionuclide cycle names each IMS 2.0 message, so the label committed with the
frame is its record of what was sent). Three promises:

* **Sequence numbers are never reused.** The next number lives in its own table and only moves forward,
  so evicting frames or deleting every row cannot bring an old number back. A new outbox starts at
  the wall clock in microseconds (unless told otherwise), so a station whose disk was replaced still
  numbers above anything it sent before and the receiver's gap list stays meaningful.
* **The number and the frame are one transaction.** The frame header carries the sequence number and
  the signature covers it, so :meth:`Outbox.append` reserves the number, calls the caller's builder
  with it, stores the frame and advances the high-water mark inside a single write transaction. A
  builder that raises, or a crash at any instant, leaves neither a frame nor a hole in the numbering.
* **Bounded disk use, loudly.** Frame bytes are kept under ``budget_bytes``: acknowledged frames go
  first, oldest first. If the unacknowledged frames alone exceed the budget the oldest of them are
  dropped (the newest data is the most useful to the IDC), the drop is counted in the database,
  logged, and the ``over_budget`` alarm is raised until an append fits again without dropping.

Durability: ``synchronous=FULL``. In WAL mode NORMAL survives a process crash but may lose the last
commits on power loss, and a lost commit here is worse than lost data: the frame may already have gone
out on the link, and after the reboot its sequence number would be handed to a different frame. FULL
syncs the WAL on every commit; at a few frames per second that costs nothing that matters.

One instance may be shared between threads (a lock serialises its connection); several instances or
processes on the same file (e.g. a sender acknowledging while the framer appends) coordinate through
SQLite's own locking.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
MAX_SEQUENCE = 2**63 - 1  # CD-1.1 carries a signed 64-bit sequence number

# version 2: frames can be found by kind without reading them (Outbox.kinds)
_KIND_INDEX = "CREATE INDEX frames_kind ON frames (kind)"
# Separate statements: executescript() would commit the surrounding transaction first.
_SCHEMA = (
    """CREATE TABLE frames (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    nominal_time_ns INTEGER NOT NULL,
    frame BLOB NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0 CHECK (acked IN (0, 1)),
    enqueued_ns INTEGER NOT NULL
)""",
    "CREATE INDEX frames_unacked ON frames (seq) WHERE acked = 0",
    "CREATE INDEX frames_acked ON frames (seq) WHERE acked = 1",
    _KIND_INDEX,
    "CREATE TABLE sequence (next_seq INTEGER NOT NULL)",
    """CREATE TABLE totals (
    frames INTEGER NOT NULL, bytes INTEGER NOT NULL,
    unacked_frames INTEGER NOT NULL, unacked_bytes INTEGER NOT NULL,
    dropped_unacked_frames INTEGER NOT NULL, dropped_unacked_bytes INTEGER NOT NULL,
    over_budget INTEGER NOT NULL
)""",
    "INSERT INTO totals VALUES (0, 0, 0, 0, 0, 0, 0)",
    """CREATE TRIGGER frames_immutable BEFORE UPDATE OF seq, kind, nominal_time_ns, frame ON frames
BEGIN SELECT RAISE(ABORT, 'outbox frames are immutable'); END""",
    """CREATE TRIGGER frames_insert AFTER INSERT ON frames BEGIN
    UPDATE totals SET frames = frames + 1, bytes = bytes + length(NEW.frame),
        unacked_frames = unacked_frames + (NEW.acked = 0),
        unacked_bytes = unacked_bytes + (NEW.acked = 0) * length(NEW.frame);
END""",
    """CREATE TRIGGER frames_delete AFTER DELETE ON frames BEGIN
    UPDATE totals SET frames = frames - 1, bytes = bytes - length(OLD.frame),
        unacked_frames = unacked_frames - (OLD.acked = 0),
        unacked_bytes = unacked_bytes - (OLD.acked = 0) * length(OLD.frame);
END""",
    """CREATE TRIGGER frames_ack AFTER UPDATE OF acked ON frames WHEN OLD.acked <> NEW.acked BEGIN
    UPDATE totals SET unacked_frames = unacked_frames - (NEW.acked - OLD.acked),
        unacked_bytes = unacked_bytes - (NEW.acked - OLD.acked) * length(NEW.frame);
END""",
)


class OutboxError(Exception):
    """The outbox file cannot be used (not a database, unknown schema, inconsistent)."""


@dataclass(frozen=True)
class OutboxFrame:
    seq: int
    kind: str
    nominal_time_ns: int
    frame: bytes
    acked: bool
    enqueued_ns: int


@dataclass(frozen=True)
class OutboxStats:
    frames: int
    bytes: int
    unacked_frames: int
    unacked_bytes: int
    dropped_unacked_frames: int
    dropped_unacked_bytes: int
    over_budget: bool
    budget_bytes: int
    next_sequence: int


AlarmCallback = Callable[[bool, OutboxStats], None]
FrameSource = bytes | Callable[[int], bytes]
AckSpec = int | range | Iterable[int | range]


class Outbox:
    def __init__(
        self,
        path: Path | str,
        budget_bytes: int,
        *,
        first_sequence: int | None = None,
        on_alarm: AlarmCallback | None = None,
        clock: Callable[[], int] = time.time_ns,
        busy_timeout_s: float = 30.0,
    ) -> None:
        """Open (or create) the outbox at ``path``.

        ``first_sequence`` only matters when the file is created (default: wall clock in µs).
        ``on_alarm(over_budget, stats)`` is called when the over-budget alarm is raised or cleared.
        """
        if budget_bytes <= 0:
            raise ValueError(f"outbox budget must be positive, got {budget_bytes} bytes")
        self.path = Path(path)
        self.budget_bytes = budget_bytes
        self._on_alarm = on_alarm
        self._clock = clock
        self._lock = threading.Lock()
        self._append_listeners: list[Callable[[int], None]] = []
        try:
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._initialise(first_sequence)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise OutboxError(f"{self.path}: cannot open outbox database: {exc}") from None
        except BaseException:
            self._db.close()
            raise

    def _initialise(self, first_sequence: int | None) -> None:
        with self._transaction():
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                tables = self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if tables:
                    raise OutboxError(f"{self.path}: a database without the outbox schema")
                start = self._clock() // 1000 if first_sequence is None else first_sequence
                if not 0 < start <= MAX_SEQUENCE:
                    raise ValueError(f"first sequence {start} outside 1..{MAX_SEQUENCE}")
                for statement in _SCHEMA:
                    self._db.execute(statement)
                self._db.execute("INSERT INTO sequence VALUES (?)", (start,))
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif version == 1:  # version 2 only adds the index on kind: build it in place
                self._db.execute(_KIND_INDEX)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif version != SCHEMA_VERSION:
                raise OutboxError(f"{self.path}: outbox schema version {version}, expected {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------------

    def append(self, kind: str, nominal_time_ns: int, frame: FrameSource) -> int:
        """Store a frame under the next sequence number and return that number.

        ``frame`` is the frame's bytes, or a builder called with the sequence number (inside the write
        transaction) that returns them; if the builder raises, nothing is stored and no number is used.
        """
        alarm: tuple[bool, OutboxStats] | None = None
        with self._transaction():
            seq = self._db.execute("SELECT next_seq FROM sequence").fetchone()[0]
            if seq > MAX_SEQUENCE:
                raise OutboxError(f"{self.path}: sequence numbers exhausted")
            data = frame(seq) if callable(frame) else frame
            if not isinstance(data, bytes | bytearray | memoryview):
                raise TypeError(f"frame for sequence {seq} must be bytes, got {type(data).__name__}")
            self._db.execute(
                f"INSERT INTO frames ({_COLUMNS}) VALUES (?, ?, ?, ?, 0, ?)",
                (seq, kind, nominal_time_ns, bytes(data), self._clock()),
            )
            self._db.execute("UPDATE sequence SET next_seq = ?", (seq + 1,))
            over = self._enforce_budget(seq)
            was_over = bool(self._db.execute("SELECT over_budget FROM totals").fetchone()[0])
            if was_over != over:
                self._db.execute("UPDATE totals SET over_budget = ?", (int(over),))
                alarm = (over, self._stats())
        if alarm is not None:
            self._announce(*alarm)
        for listener in self._append_listeners:
            listener(seq)
        return seq

    def on_append(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(seq)`` after every committed append, in the appending thread (the sender
        uses it to send a new frame at once instead of finding it at its next poll)."""
        self._append_listeners.append(listener)

    def _enforce_budget(self, newest: int) -> bool:
        """Evict acked, then unacked frames (never the newest); True if unacked data exceeds the budget."""
        excess = self._db.execute("SELECT bytes FROM totals").fetchone()[0] - self.budget_bytes
        if excess <= 0:
            return False
        excess -= self._evict("acked = 1", (), excess)[1]
        if excess <= 0:
            return False
        first = self._db.execute("SELECT min(seq) FROM frames WHERE acked = 0").fetchone()[0]
        count, freed, last = self._evict("acked = 0 AND seq < ?", (newest,), excess)
        if count:
            self._db.execute(
                "UPDATE totals SET dropped_unacked_frames = dropped_unacked_frames + ?, "
                "dropped_unacked_bytes = dropped_unacked_bytes + ?",
                (count, freed),
            )
            totals = self._db.execute("SELECT dropped_unacked_frames FROM totals").fetchone()[0]
            log.warning(
                "outbox over budget: dropped unacknowledged frames to keep the newest",
                extra={
                    "path": str(self.path),
                    "dropped": count,
                    "first_seq": first,
                    "last_seq": last,
                    "dropped_bytes": freed,
                    "dropped_total": totals,
                    "budget_bytes": self.budget_bytes,
                },
            )
        return True

    def _evict(self, where: str, params: tuple, needed: int) -> tuple[int, int, int | None]:
        """Delete the oldest rows matching ``where`` until ``needed`` bytes are free; (count, bytes, last)."""
        count = freed = 0
        last = None
        cursor = self._db.execute(f"SELECT seq, length(frame) FROM frames WHERE {where} ORDER BY seq", params)
        for seq, size in cursor:
            count, freed, last = count + 1, freed + size, seq
            if freed >= needed:
                break
        cursor.close()
        if last is not None:
            self._db.execute(f"DELETE FROM frames WHERE {where} AND seq <= ?", (*params, last))
        return count, freed, last

    def ack(self, acked: AckSpec) -> int:
        """Mark frames acknowledged: a sequence number, a ``range``, or an iterable of either.

        Unknown or already acknowledged numbers are ignored; returns how many frames changed.
        """
        items = [acked] if isinstance(acked, int | range) else list(acked)
        changed = 0
        with self._transaction():
            for item in items:
                if isinstance(item, range):
                    if item.step != 1:
                        raise ValueError(f"acknowledged ranges must have step 1, got {item!r}")
                    cursor = self._db.execute(
                        "UPDATE frames SET acked = 1 WHERE acked = 0 AND seq >= ? AND seq < ?",
                        (item.start, item.stop),
                    )
                else:
                    cursor = self._db.execute(
                        "UPDATE frames SET acked = 1 WHERE acked = 0 AND seq = ?", (item,)
                    )
                changed += cursor.rowcount
        return changed

    # -- reading ---------------------------------------------------------------------------------

    def get(self, seq: int) -> OutboxFrame | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM frames WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else _frame(row)

    def unacked(
        self,
        limit: int = 100,
        *,
        newest_first: bool = False,
        after: int | None = None,
        before: int | None = None,
    ) -> list[OutboxFrame]:
        """Up to ``limit`` unacknowledged frames, oldest first unless ``newest_first``.

        ``after`` / ``before`` are exclusive sequence bounds, for paging through a large backlog.
        """
        order = "DESC" if newest_first else "ASC"
        low = -1 if after is None else after
        high = MAX_SEQUENCE if before is None else before
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM frames WHERE acked = 0 AND seq > ? AND seq < ? "
                f"ORDER BY seq {order} LIMIT ?",
                (low, high, limit),
            ).fetchall()
        return [_frame(row) for row in rows]

    def unacked_seqs(self, limit: int, *, after: int | None = None) -> list[int]:
        """Sequence numbers of up to ``limit`` unacknowledged frames after ``after``, oldest first,
        without reading the frames themselves (the sender learns what to send from these)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq FROM frames WHERE acked = 0 AND seq > ? ORDER BY seq LIMIT ?",
                (-1 if after is None else after, limit),
            ).fetchall()
        return [seq for (seq,) in rows]

    def newest(self, limit: int, kind: str) -> list[OutboxFrame]:
        """The ``limit`` most recent frames of one kind, acknowledged or not, newest first (the station
        reads them at start-up to learn how far each channel was already framed)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM frames WHERE kind = ? ORDER BY seq DESC LIMIT ?", (kind, limit)
            ).fetchall()
        return [_frame(row) for row in rows]

    def kinds(self, prefix: str) -> list[tuple[int, str]]:
        """(seq, kind) of every frame whose kind starts with ``prefix``, oldest first, read from the
        kind index alone (a producer that names each frame by what it holds finds what it already stored
        without reading the frames)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, kind FROM frames WHERE kind >= ? AND kind < ? ORDER BY seq",
                _prefix_range(prefix),
            ).fetchall()
        return [(seq, kind) for seq, kind in rows]

    def kind_counts(self, prefix: str) -> tuple[int, int]:
        """(frames, unacknowledged frames) whose kind starts with ``prefix``."""
        with self._lock:
            total, unacked = self._db.execute(
                "SELECT count(*), coalesce(sum(acked = 0), 0) FROM frames WHERE kind >= ? AND kind < ?",
                _prefix_range(prefix),
            ).fetchone()
        return total, unacked

    def stats(self) -> OutboxStats:
        with self._lock:
            return self._stats()

    @property
    def over_budget(self) -> bool:
        return self.stats().over_budget

    @property
    def next_sequence(self) -> int:
        return self.stats().next_sequence

    def check(self) -> list[str]:
        """Problems found by a full consistency check (empty when all is well); slow on a large file."""
        problems: list[str] = []
        with self._lock:
            integrity = [row[0] for row in self._db.execute("PRAGMA integrity_check")]
            if integrity != ["ok"]:
                problems.extend(f"sqlite integrity: {line}" for line in integrity)
            actual = self._db.execute(
                "SELECT count(*), coalesce(sum(length(frame)), 0), coalesce(sum(acked = 0), 0), "
                "coalesce(sum((acked = 0) * length(frame)), 0), max(seq) FROM frames"
            ).fetchone()
            stats = self._stats()
        kept = (stats.frames, stats.bytes, stats.unacked_frames, stats.unacked_bytes)
        if kept != actual[:4]:
            problems.append(f"totals {kept} disagree with the frames table {actual[:4]}")
        if actual[4] is not None and actual[4] >= stats.next_sequence:
            problems.append(
                f"highest stored sequence {actual[4]} is not below next sequence {stats.next_sequence}"
            )
        return problems

    # -- internals -------------------------------------------------------------------------------

    def _stats(self) -> OutboxStats:
        row = self._db.execute(
            "SELECT frames, bytes, unacked_frames, unacked_bytes, dropped_unacked_frames, "
            "dropped_unacked_bytes, over_budget, next_seq FROM totals, sequence"
        ).fetchone()
        frames, size, unacked_frames, unacked_bytes, dropped_frames, dropped_bytes, over, next_seq = row
        return OutboxStats(
            frames, size, unacked_frames, unacked_bytes, dropped_frames, dropped_bytes,
            over_budget=bool(over), budget_bytes=self.budget_bytes, next_sequence=next_seq,
        )

    def _announce(self, over: bool, stats: OutboxStats) -> None:
        if over:
            log.error(
                "outbox alarm raised: unacknowledged frames exceed the disk budget",
                extra={
                    "path": str(self.path),
                    "unacked_bytes": stats.unacked_bytes,
                    "budget_bytes": stats.budget_bytes,
                    "dropped_total": stats.dropped_unacked_frames,
                },
            )
        else:
            log.info("outbox alarm cleared: frames fit the disk budget again", extra={"path": str(self.path)})
        if self._on_alarm is not None:
            self._on_alarm(over, stats)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self._lock)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT under the instance lock; rolls back on any exception."""

    def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
        self._db = db
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is not None:
                self._db.execute("ROLLBACK")
                return
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error:  # a full disk can refuse the commit: end the transaction, then say so
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        finally:
            self._lock.release()


_COLUMNS = "seq, kind, nominal_time_ns, frame, acked, enqueued_ns"


def _prefix_range(prefix: str) -> tuple[str, str]:
    """[low, high) bounds of the texts starting with ``prefix`` (SQLite compares text bytewise)."""
    if not prefix:
        raise ValueError("a kind prefix must not be empty")
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _frame(row: tuple) -> OutboxFrame:
    return OutboxFrame(row[0], row[1], row[2], bytes(row[3]), bool(row[4]), row[5])
