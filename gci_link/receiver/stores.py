"""Durable IDC stores: raw frames, gap list and SDS journal per station; SDS miniSEED; IMS 2.0; quarantine.

Ordering that makes "durable before acknowledged" and "resends never duplicate samples" hold together:
1. one SQLite transaction stores the raw frame, the new gap list and a journal row that lists every SDS
   day file about to grow with its size before the append, and is made durable (barrier 1);
2. the miniSEED records are appended and made durable (barrier 2);
3. the journal row is released. Only then is the frame acknowledged.
After a crash between 1 and 3, ``recover`` truncates those day files back to their recorded sizes and the
caller re-archives the frame from its stored raw bytes, so a day file never holds the same samples twice.
Barrier 1 must come before any byte of step 2 is written: otherwise a power loss could keep the records
but lose the journal row and the gap list, and the station's resend would be archived a second time.
The receiver runs these steps once per batch of frames. Where Linux offers ``syncfs`` the stations'
transactions run with synchronous=NORMAL (written to the WAL, not yet synced) and ONE ``syncfs`` of the
raw stores' filesystem is barrier 1 for all of them; barrier 2 is one ``syncfs`` of the archive's
filesystem. Elsewhere each transaction is synchronous=FULL and each day file is fsynced. Released journal
rows are deleted in the next commit (or at close) rather than by a commit of their own: a crash before
that only redoes appends that had completed, which the truncation makes harmless.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pymseed

from gci_link.receiver.gaplist import GapList

log = logging.getLogger(__name__)

NS_PER_DAY = 86_400 * 1_000_000_000
PATH_CACHE_SIZE = 100_000  # day-file paths remembered; a network has a few thousand channels
SYNCFS_FROM_FILES = 8  # below this many day files per batch, fsync each (cheaper than a whole-fs sync)
_SIGN = 1 << 63
_HEADER_ID = slice(8, 20)  # station, location, channel, network in a miniSEED 2 fixed header


def seq_to_sql(seq: int) -> int:
    """Unsigned 64-bit sequence number as the signed integer SQLite can hold (two's complement)."""
    return seq - (1 << 64) if seq >= _SIGN else seq


def seq_from_sql(value: int) -> int:
    return value + (1 << 64) if value < 0 else value


def _connect(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # one user at a time
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    return db


def _libc_syncfs() -> Callable[[int], int] | None:
    """Linux ``syncfs(2)``: flushes a whole filesystem with one journal commit; None where absent."""
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


_SYNCFS = _libc_syncfs()


class FilesystemSync:
    """Makes everything written to the filesystem holding ``root`` durable with one ``syncfs`` call.

    The descriptor stays open, so writeback errors since it was opened are reported. ``available`` is
    False where ``syncfs`` is missing; callers then sync file by file.
    """

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self._fd: int | None = os.open(root, os.O_RDONLY) if _SYNCFS is not None else None

    @property
    def available(self) -> bool:
        return self._fd is not None

    def sync(self) -> None:
        assert _SYNCFS is not None and self._fd is not None
        if _SYNCFS(self._fd) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"syncfs failed: {os.strerror(errno)}", str(self.root))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _fsync_path(path: Path) -> None:
    """fsync a file or directory by name (directories: so a new entry in them survives a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StationStore:
    """One station's raw frames (as received, for later re-verification), gap list and SDS journal.

    ``deferred_sync=True`` commits with synchronous=NORMAL: a commit is atomic but durable only after the
    caller syncs the filesystem (``FilesystemSync``), which lets one ``syncfs`` cover many stations.
    """

    def __init__(self, path: Path, deferred_sync: bool = False) -> None:
        self.path = path
        self._db = _connect(path, "NORMAL" if deferred_sync else "FULL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS frames (seq INTEGER PRIMARY KEY, received_ns INTEGER NOT NULL,
                                               frame BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS received (first INTEGER NOT NULL, last INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY, files TEXT NOT NULL);
            """
        )
        self._released: list[int] = []  # journal rows (SQL seq values) whose appends are on disk

    def gap_list(self) -> GapList:
        rows = self._db.execute("SELECT first, last FROM received").fetchall()
        return GapList([(seq_from_sql(a), seq_from_sql(b) + 1) for a, b in rows])

    def raw_frame(self, seq: int) -> bytes | None:
        row = self._db.execute("SELECT frame FROM frames WHERE seq = ?", (seq_to_sql(seq),)).fetchone()
        return None if row is None else bytes(row[0])

    def commit(self, frames: list[tuple[int, int, bytes, list[tuple[str, int]]]], gaps: GapList) -> None:
        """Store frames ``(seq, received_ns, raw, SDS files about to grow with their sizes)`` and the gap
        list that includes them, atomically, together with the deletion of released journal rows."""
        released, self._released = self._released, []
        try:
            with self._transaction():
                self._db.executemany(
                    "INSERT INTO frames VALUES (?, ?, ?)",
                    [(seq_to_sql(seq), received_ns, raw) for seq, received_ns, raw, _ in frames],
                )
                self._db.execute("DELETE FROM received")
                self._db.executemany(
                    "INSERT INTO received VALUES (?, ?)",
                    [(seq_to_sql(a), seq_to_sql(b - 1)) for a, b in gaps.intervals()],
                )
                self._db.executemany(
                    "INSERT INTO journal VALUES (?, ?)",
                    [(seq_to_sql(seq), json.dumps(files)) for seq, _, _, files in frames if files],
                )
                self._db.executemany("DELETE FROM journal WHERE seq = ?", [(seq,) for seq in released])
        except BaseException:
            self._released = released + self._released
            raise

    def archived(self, seqs: Iterable[int]) -> None:
        """The SDS appends journalled for ``seqs`` are on disk; their rows go with the next commit."""
        self._released += [seq_to_sql(seq) for seq in seqs]

    def recover(self) -> list[int]:
        """Undo half-finished SDS appends; returns the sequence numbers whose archiving must be redone."""
        redo = []
        for seq, files in self._db.execute("SELECT seq, files FROM journal ORDER BY seq").fetchall():
            for name, size in json.loads(files):
                path = Path(name)
                if path.exists() and path.stat().st_size > size:
                    with path.open("r+b") as fh:
                        fh.truncate(size)
                        os.fsync(fh.fileno())
                    log.warning("truncated half-written day file", extra={"path": name, "size": size})
            redo.append(seq_from_sql(seq))
        return redo

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
            self._db.executemany("DELETE FROM journal WHERE seq = ?", [(seq,) for seq in self._released])
        self._db.close()


@dataclass(frozen=True)
class Segment:
    """Contiguous int32 samples of one channel, ready for the SDS archive."""

    network: str
    station: str
    location: str
    channel: str
    start_ns: int
    rate: float
    samples: np.ndarray

    @property
    def end_ns(self) -> int:
        """Time just after the last sample."""
        return self.start_ns + round(len(self.samples) * 1e9 / self.rate)


class SdsArchive:
    """Appends miniSEED 2 records (Steim-2) to SDS day files.

    Layout ROOT/YEAR/NET/STA/CHAN.D/NET.STA.LOC.CHAN.D.YEAR.DAY, as ObsPy's SDS client expects.

    A batch touches a day file per channel (thousands for a whole network). Its records are packed by
    one pymseed trace list per UTC day (pymseed's per-call overhead, not Steim-2 itself, is what costs),
    then each day file gets one write; where Linux offers ``syncfs`` one call makes them all durable
    instead of one fsync each (a tenth of the time).
    """

    def __init__(self, root: Path, record_length: int = 512) -> None:
        self.root = root
        self.record_length = record_length
        self._fs = FilesystemSync(root)
        self._paths: dict[tuple[str, str, str, str, int], Path] = {}  # day files seen lately
        self._dirs: set[Path] = set()  # directories known to exist (made durable by us or before)
        self._sizes: dict[str, int] = {}  # day file -> size after our last append to it
        self._source_ids: dict[tuple[str, str, str, str], tuple[str, bytes]] = {}  # (pymseed id, header id)

    def day_path(self, seg: Segment, day_start_ns: int) -> Path:
        key = (seg.network, seg.station, seg.location, seg.channel, day_start_ns)
        path = self._paths.get(key)
        if path is None:
            if len(self._paths) >= PATH_CACHE_SIZE:
                self._paths.clear()
            t = time.gmtime(day_start_ns // 1_000_000_000)
            name = f"{seg.network}.{seg.station}.{seg.location}.{seg.channel}.D.{t.tm_year}.{t.tm_yday:03d}"
            path = self._paths[key] = (
                self.root / str(t.tm_year) / seg.network / seg.station / f"{seg.channel}.D" / name
            )
        return path

    def split_by_day(self, seg: Segment) -> list[tuple[Path, Segment]]:
        """Cut a segment at UTC midnights so each piece lands in its own day file."""
        pieces = []
        rest = seg
        while len(rest.samples):
            day_start = rest.start_ns - rest.start_ns % NS_PER_DAY
            next_day = day_start + NS_PER_DAY
            # samples whose time is before next midnight
            n = int(np.ceil((next_day - rest.start_ns) * rest.rate / 1e9 - 1e-9))
            n = max(1, min(n, len(rest.samples)))
            head = Segment(
                rest.network,
                rest.station,
                rest.location,
                rest.channel,
                rest.start_ns,
                rest.rate,
                rest.samples[:n],
            )
            pieces.append((self.day_path(head, day_start), head))
            rest = Segment(
                rest.network,
                rest.station,
                rest.location,
                rest.channel,
                rest.start_ns + round(n * 1e9 / rest.rate),
                rest.rate,
                rest.samples[n:],
            )
        return pieces

    def sizes_before(self, pieces: list[tuple[Path, Segment]]) -> list[tuple[str, int]]:
        """Current size of each day file about to grow (0 if new), for the journal; remembered from our
        own appends, so a stat is needed only for a file first touched since start."""
        seen: dict[str, int] = {}
        for path, _ in pieces:
            name = str(path)
            if name not in seen:
                size = self._sizes.get(name)
                if size is None:
                    try:
                        size = os.stat(name).st_size
                    except FileNotFoundError:
                        size = 0
                seen[name] = size
        return list(seen.items())

    def append(self, pieces: list[tuple[Path, Segment]]) -> None:
        """Append the pieces as miniSEED records: one write per day file, then one sync for them all.

        Pieces of one channel that follow each other are packed together, so records come out full.
        """
        days: dict[int, tuple[pymseed.MS3TraceList, dict[bytes, Path]]] = {}
        for path, seg in pieces:
            day = seg.start_ns // NS_PER_DAY  # split_by_day cut every piece at midnight
            entry = days.get(day)
            if entry is None:
                entry = days[day] = (pymseed.MS3TraceList(), {})
            traces, files = entry
            sid, header_id = self._source_id(seg)
            files[header_id] = path
            traces.add_data(
                sid, np.ascontiguousarray(seg.samples, dtype=np.int32), "i", seg.rate, starttime=seg.start_ns
            )
        out: dict[Path, list[bytes]] = {}
        for traces, files in days.values():
            with traces:
                for record in traces.generate(
                    max_record_length=self.record_length,
                    encoding=pymseed.DataEncoding.STEIM2,
                    format_version=2,
                ):
                    out.setdefault(files[record[_HEADER_ID]], []).append(record)
        each = not self._fs.available or len(out) < SYNCFS_FROM_FILES
        if len(self._sizes) >= PATH_CACHE_SIZE:
            self._sizes.clear()
        try:
            for path, records in out.items():
                self._make_dirs(path.parent)
                self._sizes[str(path)] = _append_file(path, b"".join(records), fsync=each)
            if not each:
                self._fs.sync()
        except OSError:
            self._sizes.clear()  # a file may hold part of its write: ask the filesystem again
            raise

    def _source_id(self, seg: Segment) -> tuple[str, bytes]:
        """pymseed's source id of the segment's channel, and how a miniSEED 2 header spells it."""
        key = (seg.network, seg.station, seg.location, seg.channel)
        ids = self._source_ids.get(key)
        if ids is None:
            if len(self._source_ids) >= PATH_CACHE_SIZE:
                self._source_ids.clear()
            header = f"{seg.station:<5}{seg.location:<2}{seg.channel:<3}{seg.network:<2}".encode("ascii")
            ids = self._source_ids[key] = (pymseed.nslc2sourceid(*key), header)
        return ids

    def close(self) -> None:
        self._fs.close()

    def _make_dirs(self, folder: Path) -> None:
        if folder in self._dirs:
            return
        if not folder.is_dir():
            folder.mkdir(parents=True, exist_ok=True)
            _fsync_path(folder.parent)
        self._dirs.add(folder)


def _append_file(path: Path, data: bytes, fsync: bool) -> int:
    """Append ``data`` (fsync it if asked); returns the file's new size."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
        return os.lseek(fd, 0, os.SEEK_CUR)
    finally:
        os.close(fd)


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
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_path(path.parent)
        return path


class Quarantine:
    """Rejected input with the reason, for operators; raw bytes kept until a byte budget is reached."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._db = _connect(path)
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS quarantine (id INTEGER PRIMARY KEY, received_ns INTEGER NOT NULL, "
            "peer TEXT NOT NULL, station TEXT NOT NULL, seq INTEGER, reason TEXT NOT NULL, "
            "size INTEGER NOT NULL, frame BLOB)"
        )
        self._used = self._db.execute("SELECT COALESCE(SUM(LENGTH(frame)), 0) FROM quarantine").fetchone()[0]
        self._warned_full = False

    def put(
        self, received_ns: int, peer: str, station: str, seq: int | None, reason: str, frame: bytes
    ) -> None:
        keep = self._used + len(frame) <= self.max_bytes
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
                None if seq is None else seq_to_sql(seq),
                reason,
                len(frame),
                frame if keep else None,
            ),
        )
        if keep:
            self._used += len(frame)

    def entries(self) -> list[tuple[str, str, int | None, str, bytes | None]]:
        """(peer, station, seq, reason, frame) of every quarantined item, oldest first."""
        rows = self._db.execute("SELECT peer, station, seq, reason, frame FROM quarantine ORDER BY id")
        return [
            (p, s, None if q is None else seq_from_sql(q), r, None if f is None else bytes(f))
            for p, s, q, r, f in rows
        ]

    def close(self) -> None:
        self._db.close()
