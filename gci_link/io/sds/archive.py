"""SDS miniSEED archive writer: ``ROOT/YEAR/NET/STA/CHAN.D/NET.STA.LOC.CHAN.D.YEAR.DAY``, as ObsPy's SDS
client reads it. The IDC archives received data with it and the station keeps its local copy with it.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gci_link.durable import FilesystemSync, fsync_path
from gci_link.io.mseed2 import header_id, pack_records, segment_problem, steim2_fits
from gci_link.io.mseed2.flags import NO_FLAGS, SeedFlags
from timeunits import NS_PER_DAY

PATH_CACHE_SIZE = 100_000  # day-file paths remembered; a network has a few thousand channels
MAX_OPEN_FILES = 4096  # day files kept open between appends (a network's channels, or fewer)
SYNCFS_FROM_FILES = 8  # below this many day files per batch, fsync each (cheaper than a whole-fs sync)


def _end_ns(start_ns: int, count: int, rate: float) -> int:
    """Time just after the last of ``count`` samples from ``start_ns`` at ``rate``."""
    return start_ns + round(count * 1e9 / rate)


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
    flags: SeedFlags = NO_FLAGS  # header flags and timing quality of its records

    @property
    def end_ns(self) -> int:
        """Time just after the last sample."""
        return _end_ns(self.start_ns, len(self.samples), self.rate)


@dataclass
class _Run:
    """Consecutive samples of one channel for one day file, packed as one segment."""

    path: str
    channel: tuple[str, str, str, str]  # network, station, location, channel
    header: bytes
    start_ns: int
    rate: float
    samples: list[np.ndarray]
    count: int
    flags: SeedFlags

    @property
    def end_ns(self) -> int:
        return _end_ns(self.start_ns, self.count, self.rate)


class SdsArchive:
    """Appends miniSEED 2 records (Steim-2) to SDS day files.

    Layout ROOT/YEAR/NET/STA/CHAN.D/NET.STA.LOC.CHAN.D.YEAR.DAY, as ObsPy's SDS client expects.

    A batch touches a day file per channel (thousands for a whole network), so the per-piece path is
    kept lean: paths are plain strings, day files stay open between batches (least recently used closed
    first), the records of every piece are packed in one compiled call (gci_link.io.mseed2: the same bytes
    pymseed writes, without its per-call overhead, which cost ten times the Steim-2 work), each day file
    gets one write, and where Linux offers ``syncfs`` one call makes them all durable instead of one
    fsync each (a tenth of the time).

    What the packer would refuse (gci_link.io.mseed2.limits) is refused by ``split_by_day``, before its
    codes become a path: a caller splitting each frame's segments on their own learns of bad data there,
    never from an ``append`` that carries many frames, which then fails only on I/O errors.
    """

    def __init__(self, root: Path, record_length: int = 512) -> None:
        self.root = root
        self.record_length = record_length
        self._fs = FilesystemSync(root)
        self._paths: dict[tuple[str, str, str, str, int], str] = {}  # day files seen lately
        self._dirs: set[str] = set()  # directories known to exist (made durable by us or before)
        self._sizes: dict[str, int] = {}  # day file -> size after our last append to it
        self._header_ids: dict[tuple[str, str, str, str], bytes] = {}
        self._files = _OpenFiles(open_files_limit())

    def _day_path(self, seg: Segment, day_start_ns: int) -> str:
        key = (seg.network, seg.station, seg.location, seg.channel, day_start_ns)
        path = self._paths.get(key)
        if path is None:
            if len(self._paths) >= PATH_CACHE_SIZE:
                self._paths.clear()
            t = time.gmtime(day_start_ns // 1_000_000_000)
            name = f"{seg.network}.{seg.station}.{seg.location}.{seg.channel}.D.{t.tm_year}.{t.tm_yday:03d}"
            path = self._paths[key] = os.path.join(
                self.root, str(t.tm_year), seg.network, seg.station, f"{seg.channel}.D", name
            )
        return path

    def split_by_day(self, seg: Segment) -> list[tuple[str, Segment]]:
        """Cut a segment at UTC midnights so each piece lands in its own day file; ValueError naming the
        channel and the limit if the packer could not take it."""
        problem = segment_problem(
            seg.network, seg.station, seg.location, seg.channel, seg.start_ns, seg.rate, seg.samples
        )
        if problem is not None:
            raise ValueError(f"{seg.network}.{seg.station}.{seg.location}.{seg.channel}: {problem}")
        pieces = []
        rest = seg
        while len(rest.samples):
            day_start = rest.start_ns - rest.start_ns % NS_PER_DAY
            next_day = day_start + NS_PER_DAY
            # samples whose time is before next midnight
            n = int(np.ceil((next_day - rest.start_ns) * rest.rate / 1e9 - 1e-9))
            if n >= len(rest.samples):  # the rest lies within one day (nearly every segment)
                pieces.append((self._day_path(rest, day_start), rest))
                break
            n = max(1, n)
            head = dataclasses.replace(rest, samples=rest.samples[:n])
            pieces.append((self._day_path(head, day_start), head))
            rest = dataclasses.replace(
                rest, start_ns=rest.start_ns + round(n * 1e9 / rest.rate), samples=rest.samples[n:]
            )
        return pieces

    def sizes_before(self, pieces: list[tuple[str, Segment]]) -> list[tuple[str, int]]:
        """Current size of each day file about to grow (0 if new), for the journal; remembered from our
        own appends, so a stat is needed only for a file first touched since start."""
        seen: dict[str, int] = {}
        for path, _ in pieces:
            if path not in seen:
                size = self._sizes.get(path)
                if size is None:
                    try:
                        size = os.stat(path).st_size
                    except FileNotFoundError:
                        size = 0
                seen[path] = size
        return list(seen.items())

    def append(self, pieces: list[tuple[str, Segment]]) -> list[tuple[str, str, str, str, bytes]]:
        """Append the pieces as miniSEED records: one write per day file, then one sync for them all.

        Pieces of one channel that follow each other are packed together, so records come out full.
        Returns what was written, in order, as (network, station, location, channel, records), for a
        real-time feed (the SeedLink ring) to carry exactly the records the archive holds.
        """
        runs = self._runs(pieces)
        if not runs:
            return []
        packed = pack_records(
            np.concatenate([x for run in runs for x in run.samples]),
            np.cumsum([0] + [run.count for run in runs]),
            np.array([run.start_ns for run in runs], dtype=np.int64),
            np.array([run.rate for run in runs], dtype=np.float64),
            np.frombuffer(b"".join(run.header for run in runs), dtype=np.uint8).reshape(-1, 12),
            self.record_length,
            np.frombuffer(b"".join(run.flags.header_bytes for run in runs), dtype=np.uint8).reshape(-1, 3),
            np.array([run.flags.timing_quality for run in runs], dtype=np.int16),
        )
        out: dict[str, list[bytes]] = {}
        written = []
        for run, first, stop in zip(runs, packed.first[:-1], packed.first[1:], strict=True):
            run_records = packed.records[first:stop].tobytes()
            out.setdefault(run.path, []).append(run_records)
            written.append((*run.channel, run_records))
        each = not self._fs.available or len(out) < SYNCFS_FROM_FILES
        if len(self._sizes) >= PATH_CACHE_SIZE:
            self._sizes.clear()
        try:
            for path, records in out.items():
                self._make_dirs(os.path.dirname(path))
                self._sizes[path] = self._files.append(path, b"".join(records), fsync=each)
            if not each:
                self._fs.sync()
        except OSError:
            self._sizes.clear()  # a file may hold part of its write: ask the filesystem again
            self._files.close_all()
            raise
        return written

    def _runs(self, pieces: list[tuple[str, Segment]]) -> list[_Run]:
        """The pieces as runs to pack: a piece that starts where the previous piece for its day file
        ended (within half a sample, at the same rate, with the same flags, and with a first sample that
        may follow that run's last in one Steim-2 record) extends that run."""
        runs: list[_Run] = []
        last: dict[str, _Run] = {}
        for path, seg in pieces:
            if not len(seg.samples):
                continue
            samples = np.asarray(seg.samples, dtype=np.int32)
            run = last.get(path)
            if (
                run is not None
                and run.rate == seg.rate
                and run.flags == seg.flags
                and abs(seg.start_ns - run.end_ns) * seg.rate < 5e8
                and steim2_fits(run.samples[-1][-1], samples[0])
            ):
                run.samples.append(samples)
                run.count += len(samples)
                continue
            channel = (seg.network, seg.station, seg.location, seg.channel)
            header = self._header_id(seg)
            run = _Run(path, channel, header, seg.start_ns, seg.rate, [samples], len(samples), seg.flags)
            last[path] = run
            runs.append(run)
        return runs

    def _header_id(self, seg: Segment) -> bytes:
        """How a miniSEED 2 header spells the segment's channel (remembered per channel)."""
        key = (seg.network, seg.station, seg.location, seg.channel)
        header = self._header_ids.get(key)
        if header is None:
            if len(self._header_ids) >= PATH_CACHE_SIZE:
                self._header_ids.clear()
            header = self._header_ids[key] = header_id(*key)
        return header

    def truncate(self, path: str, size: int) -> bool:
        """Cut a day file back to ``size`` bytes, durably (crash recovery: what follows is an append that
        is redone). A file no longer than that is left alone; returns whether anything was cut."""
        try:
            current = os.stat(path).st_size
        except FileNotFoundError:
            return False
        if current > size:
            with open(path, "r+b") as fh:
                fh.truncate(size)
                os.fsync(fh.fileno())
        self._sizes[path] = min(current, size)
        return current > size

    def remove(self, path: str) -> None:
        """Delete a day file (budget pruning); closes it first so no later append goes to a lost inode."""
        self._files.close(path)
        self._sizes.pop(path, None)
        os.unlink(path)

    def close(self) -> None:
        self._files.close_all()
        self._fs.close()

    def _make_dirs(self, folder: str) -> None:
        if folder in self._dirs:
            return
        if not os.path.isdir(folder):
            path = Path(folder)
            missing = [path, *(p for p in path.parents if not p.is_dir())]
            path.mkdir(parents=True, exist_ok=True)
            for created in reversed(missing):  # each new directory's entry lives in its parent
                fsync_path(created.parent)
        self._dirs.add(folder)


def open_files_limit() -> int:
    """Day files to keep open: a quarter of the process's descriptor limit, at most MAX_OPEN_FILES."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_OPEN_FILES
    return max(1, min(MAX_OPEN_FILES, soft // 4))


class _OpenFiles:
    """Append-only descriptors of recently written day files, least recently used closed first.

    Opening and closing a file costs more than writing a few records to it; a receiver appends to the
    same few thousand day files every batch. O_APPEND keeps appends at the end even after a recovery
    truncated the file through another descriptor.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._fds: OrderedDict[str, int] = OrderedDict()

    def append(self, path: str, data: bytes, fsync: bool) -> int:
        """Append ``data`` (fsync it if asked); returns the file's new size."""
        fd = self._fds.pop(path, None)
        if fd is None:
            if len(self._fds) >= self.limit:
                os.close(self._fds.popitem(last=False)[1])
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._fds[path] = fd
        _append_to(fd, data, fsync)
        return os.lseek(fd, 0, os.SEEK_CUR)

    def close(self, path: str) -> None:
        fd = self._fds.pop(path, None)
        if fd is not None:
            os.close(fd)

    def close_all(self) -> None:
        while self._fds:
            os.close(self._fds.popitem()[1])


def _append_to(fd: int, data: bytes, fsync: bool) -> None:
    """Write all of ``data`` at the end of an O_APPEND file (fsync it if asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    if fsync:
        os.fsync(fd)
