"""Bounded on-disk ring of 512-byte miniSEED records numbered by a 64-bit sequence, for SeedLink.

One file of fixed size, so untrusted channel codes never become paths and the depth is known up
front: a 4096-byte header, then ``capacity`` slots of 576 bytes (64 bytes of metadata, the record).
Record ``seq`` lives in slot ``seq % capacity``; appending the ``capacity``-th next record overwrites
the oldest. Sequence numbers start at 1 and only grow, across restarts too: they are what SeedLink
clients resume from (SeedLink 3 shows their low 24 bits, SeedLink 4 all 64).

Durability: each slot carries its own sequence number and a CRC-32 of its metadata and record, and the
header holds the next sequence number. With ``sync`` (the default) every append batch is msync'ed
(the slots, then the header) before ``append`` returns, so what was appended survives a power loss;
without it, it survives a process restart (the page cache keeps it) but maybe not a power loss. On
open, the ring rolls forward over valid slots written after the header's last update; a slot that
did not reach the disk whole fails its CRC and is skipped by readers (a hole, never a wrong record).

The file is locked (flock) for one process. Readers and the appending thread share one object; a lock
keeps a reader from seeing a slot half overwritten. Listeners are called after every append batch.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from gci_link.durable import fsync_path
from idc.seedlink.record import RECORD_LENGTH, check_code, read_header

log = logging.getLogger(__name__)

MAGIC = b"IMSSLRG1"
VERSION = 1
HEADER_BYTES = 4096
META_BYTES = 64
SLOT_BYTES = META_BYTES + RECORD_LENGTH
MIN_RECORDS = 16
FIRST_SEQ = 1
_HEAD = struct.Struct("<8sIIIQQQ")  # magic, version, slot bytes, record length, capacity, next, first
_HEAD_CRC = struct.Struct("<I")
_META = struct.Struct("<Qqq12s")  # seq, start ns, end ns, codes (net 2, sta 5, loc 2, cha 3, space-padded)
_CRC = struct.Struct("<I")
_SLOTS = np.dtype(
    [("seq", "<u8"), ("start", "<i8"), ("end", "<i8"), ("codes", "S12"), ("crc", "<u4"), ("pad", "V24")]
    + [("record", "V512")]
)
_SCAN_CHUNK = 1 << 20  # slots per vectorised step of a whole-ring search


class RingError(Exception):
    """A ring file that cannot be used as it is; the message says which file and why."""


class RingRecord(NamedTuple):
    seq: int
    network: str
    station: str
    location: str
    channel: str
    start_ns: int
    end_ns: int
    record: bytes


class RingBatch(NamedTuple):
    """Records read from ``first_seq`` (the oldest still held if the one asked for was overwritten)
    up to, not including, ``next_seq``: where the next read continues."""

    records: list[RingRecord]
    first_seq: int
    next_seq: int


class StreamSummary(NamedTuple):
    """One channel's records in the ring: first and last sequence numbers and the time they span."""

    network: str
    station: str
    location: str
    channel: str
    first_seq: int
    last_seq: int
    start_ns: int
    end_ns: int


Accept = Callable[[str, str, str, str], bool]  # network, station, location, channel -> wanted


def capacity_for(ring_bytes: int) -> int:
    """Slots that fit ``ring_bytes`` of file (header included)."""
    return (ring_bytes - HEADER_BYTES) // SLOT_BYTES


def _codes(network: str, station: str, location: str, channel: str) -> bytes:
    check_code(network, 2, "network")
    check_code(station, 5, "station")
    check_code(location, 2, "location", empty_ok=True)
    check_code(channel, 3, "channel")
    return f"{network:<2}{station:<5}{location:<2}{channel:<3}".encode("ascii")


def _split_codes(codes: bytes) -> tuple[str, str, str, str]:
    text = codes.decode("ascii")
    return text[0:2].rstrip(), text[2:7].rstrip(), text[7:9].rstrip(), text[9:12].rstrip()


class Ring:
    """The ring file of ``path``; use :meth:`open`."""

    def __init__(self, path: Path, fd: int, capacity: int, next_seq: int, first_seq: int, sync: bool) -> None:
        self.path = path
        self.capacity = capacity
        self.sync = sync
        self._fd = fd
        self._map: mmap.mmap | None = mmap.mmap(fd, HEADER_BYTES + capacity * SLOT_BYTES)
        self._slots = np.ndarray((capacity,), dtype=_SLOTS, buffer=self._map, offset=HEADER_BYTES)
        self._next = next_seq
        self._first = first_seq
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self._names: dict[bytes, tuple[str, str, str, str]] = {}
        self._roll_forward()

    # ---- opening and closing

    @classmethod
    def open(
        cls, path: Path, *, ring_bytes: int | None = None, records: int | None = None, sync: bool = True
    ) -> Ring:
        """Open (or create) the ring file; its depth is ``records`` slots, or as many as ``ring_bytes``
        of file hold. A ring made with another depth keeps its newest records and sequence numbers."""
        if (ring_bytes is None) == (records is None):
            raise ValueError("give the ring depth as ring_bytes or as records, not both or neither")
        capacity = records if records is not None else capacity_for(ring_bytes or 0)
        if capacity < MIN_RECORDS:
            raise ValueError(f"a ring of {capacity} records is too small (at least {MIN_RECORDS})")
        path = Path(path)
        if not path.exists():
            _create(path, capacity, FIRST_SEQ, FIRST_SEQ)
        fd = _open_locked(path)
        try:
            old_capacity, next_seq, first_seq = _read_head(path, fd)
            if old_capacity != capacity:
                os.close(fd)
                _resize(path, capacity)
                fd = _open_locked(path)
                old_capacity, next_seq, first_seq = _read_head(path, fd)
            return cls(path, fd, capacity, next_seq, first_seq, sync)
        except BaseException:
            os.close(fd)
            raise

    def close(self) -> None:
        """Unmap and unlock; the ring is closed for readers too."""
        with self._lock:
            if self._map is None:
                return
            self._slots = np.empty(0, dtype=_SLOTS)  # drop the view: an exported buffer keeps mmap open
            self._map.close()
            self._map = None
            os.close(self._fd)

    def __enter__(self) -> Ring:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- positions

    @property
    def next_seq(self) -> int:
        """Sequence number the next appended record will get."""
        return self._next

    @property
    def oldest_seq(self) -> int:
        """Oldest sequence number the ring may still hold (== next_seq when empty)."""
        return max(self._first, self._next - self.capacity)

    @property
    def newest_seq(self) -> int | None:
        """Sequence number of the newest record, None when the ring is empty."""
        return self._next - 1 if self._next > self.oldest_seq else None

    # ---- writing

    def append(self, network: str, station: str, location: str, channel: str, record: bytes) -> int:
        """Append one record of the channel; returns its sequence number."""
        return self.append_batch([(network, station, location, channel, record)]).start

    def append_batch(self, entries: Iterable[tuple[str, str, str, str, bytes]]) -> range:
        """Append every record of every (network, station, location, channel, records) entry, where
        ``records`` is one or more whole 512-byte records of that channel; returns their sequence numbers.

        All records are checked first: a record whose header does not name the channel, or that is not a
        512-byte miniSEED 2 record, raises ValueError naming it, and nothing of the batch is appended.
        """
        slots: list[tuple[bytes, int, int, bytes]] = []
        for i, (network, station, location, channel, records) in enumerate(entries):
            codes = _codes(network, station, location, channel)
            if not records or len(records) % RECORD_LENGTH:
                raise ValueError(
                    f"entry {i} ({network}.{station}.{location}.{channel}): {len(records)} bytes is not "
                    f"a whole number of {RECORD_LENGTH}-byte records"
                )
            for at in range(0, len(records), RECORD_LENGTH):
                record = bytes(records[at : at + RECORD_LENGTH])
                try:
                    head = read_header(record)
                except ValueError as exc:
                    raise ValueError(f"entry {i} ({network}.{station}.{location}.{channel}): {exc}") from None
                named = (head.network, head.station, head.location, head.channel)
                if named != (network, station, location, channel):
                    raise ValueError(
                        f"entry {i}: record header names {'.'.join(named)}, "
                        f"not {network}.{station}.{location}.{channel}"
                    )
                slots.append((codes, head.start_ns, head.end_ns, record))
        if not slots:
            return range(self._next, self._next)
        with self._lock:
            mapped = self._mapped()
            first = self._next
            for codes, start, end, record in slots:
                self._put(self._next, codes, start, end, record)
                self._next += 1
            if self.sync:
                self._flush_slots(first, self._next)
            self._write_head()
            if self.sync:
                mapped.flush(0, mmap.PAGESIZE)
            listeners = list(self._listeners)
        for listener in listeners:
            listener()
        return range(first, self._next)

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` (in the appending thread) after every append batch."""
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    # ---- reading

    def read(self, seq: int, max_records: int, accept: Accept | None = None) -> RingBatch:
        """Up to ``max_records`` slots from ``seq`` on (from the oldest held if ``seq`` was overwritten),
        keeping the records ``accept`` wants; slots that fail their check are skipped."""
        with self._lock:
            mapped = self._mapped()
            start = min(max(seq, self.oldest_seq), self._next)
            stop = min(self._next, start + max(0, max_records))
            out: list[RingRecord] = []
            for s in range(start, stop):
                at = HEADER_BYTES + (s % self.capacity) * SLOT_BYTES
                got, start_ns, end_ns, codes = _META.unpack_from(mapped, at)
                if got != s:
                    continue
                names = self._names.get(codes)
                if names is None:
                    if len(self._names) > 100_000:
                        self._names.clear()
                    names = self._names[codes] = _split_codes(codes)
                if accept is not None and not accept(*names):
                    continue
                record = mapped[at + META_BYTES : at + SLOT_BYTES]
                crc = zlib.crc32(record, zlib.crc32(mapped[at : at + _META.size]))
                if crc != _CRC.unpack_from(mapped, at + _META.size)[0]:
                    continue
                out.append(RingRecord(s, *names, start_ns, end_ns, record))
            return RingBatch(out, start, stop)

    def read_from(self, seq: int, accept: Accept | None = None, chunk: int = 1024) -> Iterator[RingRecord]:
        """Every record from ``seq`` (or the oldest held) up to the newest at the time of the call."""
        stop = self._next
        while seq < stop:
            batch = self.read(seq, min(chunk, stop - seq), accept)
            yield from batch.records
            if batch.next_seq <= seq:
                return
            seq = batch.next_seq

    def first_seq_ending_after(self, time_ns: int) -> int:
        """Sequence number of the oldest record held whose data end after ``time_ns`` (next_seq if none):
        where a time window starting at ``time_ns`` begins its scan."""
        with self._lock:
            self._mapped()
            seq = self.oldest_seq
            while seq < self._next:
                seqs = np.arange(seq, min(self._next, seq + _SCAN_CHUNK), dtype=np.uint64)
                index = seqs % np.uint64(self.capacity)
                held = self._slots["seq"][index] == seqs
                hit = np.flatnonzero(held & (self._slots["end"][index] > time_ns))
                if len(hit):
                    return int(seqs[hit[0]])
                seq += len(seqs)
            return self._next

    def start_of(self, seq: int) -> int | None:
        """Start time of record ``seq``, None if the ring does not hold it."""
        with self._lock:
            if not self.oldest_seq <= seq < self._next or not self._slot_valid(seq):
                return None
            return int(
                _META.unpack_from(self._mapped(), HEADER_BYTES + (seq % self.capacity) * SLOT_BYTES)[1]
            )

    def streams(self) -> list[StreamSummary]:
        """Every channel the ring holds, with its first and last sequence numbers and time span."""
        with self._lock:
            self._mapped()
            seqs = np.arange(self.oldest_seq, self._next, dtype=np.uint64)
            index = seqs % np.uint64(self.capacity)
            valid = self._slots["seq"][index] == seqs
            seqs, index = seqs[valid], index[valid]
            held_codes = self._slots["codes"][index]
            held_start = self._slots["start"][index]
            held_end = self._slots["end"][index]
        if not len(seqs):
            return []
        codes, first, which = np.unique(held_codes, return_index=True, return_inverse=True)
        last = np.zeros(len(codes), dtype=np.int64)
        np.maximum.at(last, which, np.arange(len(seqs)))
        start = np.full(len(codes), np.iinfo(np.int64).max, dtype=np.int64)
        end = np.full(len(codes), np.iinfo(np.int64).min, dtype=np.int64)
        np.minimum.at(start, which, held_start)
        np.maximum.at(end, which, held_end)
        return [
            StreamSummary(*_split_codes(bytes(c)), int(seqs[f]), int(seqs[la]), int(s), int(e))
            for c, f, la, s, e in zip(codes, first, last, start, end, strict=True)
        ]

    # ---- internals

    def _mapped(self) -> mmap.mmap:
        if self._map is None:
            raise RingError(f"ring {self.path} is closed")
        return self._map

    def _put(self, seq: int, codes: bytes, start_ns: int, end_ns: int, record: bytes) -> None:
        meta = _META.pack(seq, start_ns, end_ns, codes)
        crc = zlib.crc32(record, zlib.crc32(meta))
        at = HEADER_BYTES + (seq % self.capacity) * SLOT_BYTES
        mapped = self._mapped()
        mapped[at : at + META_BYTES] = (meta + _CRC.pack(crc)).ljust(META_BYTES, b"\0")
        mapped[at + META_BYTES : at + SLOT_BYTES] = record

    def _write_head(self) -> None:
        head = _HEAD.pack(MAGIC, VERSION, SLOT_BYTES, RECORD_LENGTH, self.capacity, self._next, self._first)
        self._mapped()[0 : _HEAD.size + _HEAD_CRC.size] = head + _HEAD_CRC.pack(zlib.crc32(head))

    def _flush_slots(self, first: int, stop: int) -> None:
        """msync the slots of sequence numbers [first, stop) (one range, or two where they wrap)."""
        mapped = self._mapped()
        if stop - first >= self.capacity:
            ranges = [(0, self.capacity)]
        else:
            lo, hi = first % self.capacity, stop % self.capacity
            ranges = [(lo, hi)] if lo < hi else [(lo, self.capacity), (0, hi)]
        for lo, hi in ranges:
            if hi <= lo:
                continue
            begin = HEADER_BYTES + lo * SLOT_BYTES
            end = HEADER_BYTES + hi * SLOT_BYTES
            aligned = begin - begin % mmap.PAGESIZE
            mapped.flush(aligned, end - aligned)

    def _slot_valid(self, seq: int) -> bool:
        mapped = self._mapped()
        at = HEADER_BYTES + (seq % self.capacity) * SLOT_BYTES
        if _META.unpack_from(mapped, at)[0] != seq:
            return False
        crc = zlib.crc32(mapped[at + META_BYTES : at + SLOT_BYTES], zlib.crc32(mapped[at : at + _META.size]))
        return crc == _CRC.unpack_from(mapped, at + _META.size)[0]

    def _roll_forward(self) -> None:
        """Take in records that reached their slots after the header's last update (a crash between)."""
        found = 0
        while found < self.capacity and self._slot_valid(self._next):
            self._next += 1
            found += 1
        if found:
            self._write_head()
            log.info("ring rolled forward past its header", extra={"ring": str(self.path), "records": found})


def _open_locked(path: Path) -> int:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RingError(f"ring {path} is open in another process") from None
    return fd


def _read_head(path: Path, fd: int) -> tuple[int, int, int]:
    """(capacity, next seq, first seq) from the header, checked against the file's size."""
    raw = os.pread(fd, _HEAD.size + _HEAD_CRC.size, 0)
    if len(raw) < _HEAD.size + _HEAD_CRC.size or raw[:8] != MAGIC:
        raise RingError(f"{path} is not a SeedLink ring file (no {MAGIC.decode()} header)")
    magic, version, slot, record, capacity, next_seq, first_seq = _HEAD.unpack_from(raw)
    if zlib.crc32(raw[: _HEAD.size]) != _HEAD_CRC.unpack_from(raw, _HEAD.size)[0]:
        raise RingError(f"ring {path}: header checksum is wrong; move the file away to start a new ring")
    if (version, slot, record) != (VERSION, SLOT_BYTES, RECORD_LENGTH):
        raise RingError(
            f"ring {path}: version {version} with {slot}-byte slots of {record}-byte records; this "
            f"software reads version {VERSION}, {SLOT_BYTES}-byte slots, {RECORD_LENGTH}-byte records"
        )
    size = os.fstat(fd).st_size
    if size != HEADER_BYTES + capacity * SLOT_BYTES or not FIRST_SEQ <= first_seq <= next_seq:
        raise RingError(f"ring {path}: header (capacity {capacity}) does not match the file ({size} bytes)")
    return capacity, next_seq, first_seq


def _create(path: Path, capacity: int, next_seq: int, first_seq: int) -> None:
    """A zero-filled ring file with a header, made whole under a temporary name and renamed in place."""
    tmp = path.with_name(f".{path.name}.new")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, HEADER_BYTES + capacity * SLOT_BYTES)
        head = _HEAD.pack(MAGIC, VERSION, SLOT_BYTES, RECORD_LENGTH, capacity, next_seq, first_seq)
        os.pwrite(fd, head + _HEAD_CRC.pack(zlib.crc32(head)), 0)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_path(path.parent)


def _resize(path: Path, capacity: int) -> None:
    """Copy the newest records (as many as both depths hold) into a ring of the new depth, keeping their
    sequence numbers, and replace the file: a depth change loses the oldest records only."""
    fd = _open_locked(path)
    try:
        old_capacity, next_seq, first_seq = _read_head(path, fd)
    except BaseException:
        os.close(fd)
        raise
    old = Ring(path, fd, old_capacity, next_seq, first_seq, sync=False)
    tmp = path.with_name(f".{path.name}.resize")
    try:
        keep_from = max(old.oldest_seq, old.next_seq - capacity)
        _create(tmp, capacity, keep_from, keep_from)
        new = Ring(tmp, _open_locked(tmp), capacity, keep_from, keep_from, sync=False)
        try:
            with new._lock:
                for rec in old.read_from(keep_from):
                    new._put(rec.seq, _codes(*rec[1:5]), rec.start_ns, rec.end_ns, rec.record)
                new._next = old.next_seq
                new._write_head()
                new._mapped().flush()
        finally:
            new.close()
    finally:
        old.close()
    os.replace(tmp, path)
    fsync_path(path.parent)
    log.info(
        "ring depth changed",
        extra={"ring": str(path), "old_records": old_capacity, "records": capacity, "kept_from": keep_from},
    )
