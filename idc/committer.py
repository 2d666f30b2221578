"""Makes accepted frames durable before anything acknowledges them: the batch commit and its recovery.

This is the one description of the receiver's commit protocol; the stores, the adapter and
docs/idc-receiver.md point here.

**Invariant: nothing is acknowledged before the frame, its gap-list entry and its SDS appends are
durable on disk; after a crash (SIGKILL or power loss) at any instant a restart loses no acknowledged
frame and the SDS archive holds no sample twice.**

``commit`` takes the frames the protocol core accepted since the last commit, of any number of stations,
and settles them together in this order:

1. per station one SQLite transaction (``StationStore.commit``) stores the raw frames (as received, so
   their signatures can be checked again later), the station's new gap list and a journal row per frame
   listing each SDS day file about to grow with its size before the append (sizes are remembered from
   the archive's own appends, so no stat per file) and the commit's **epoch**, a number that grows by
   one per commit, whatever the stations. The batch's IMS 2.0 messages are written just before, each
   file atomically and synced;
2. **barrier 1**: where Linux offers ``syncfs`` the transactions run with synchronous=NORMAL (atomic,
   written to each station's WAL but not synced) and ONE ``syncfs`` of the raw stores' filesystem makes
   all of them durable (``RawStores.sync``); elsewhere each transaction is synchronous=FULL;
3. the miniSEED records of every frame are packed in one call and each day file gets one append
   (``SdsArchive.append``);
4. **barrier 2**: one ``syncfs`` of the archive's filesystem, or one fsync per day file for batches of
   fewer than 8 files or without ``syncfs`` (inside ``SdsArchive.append``);
5. the journal rows are released (``StationStore.archived``), and every commit up to this epoch is now
   known to be archived. The rows are deleted in the station's next transaction, or at close, rather
   than by a transaction of their own, and always together with that station's ``archived_through``
   mark, which is at least the epoch of every row deleted. A station that sends nothing more keeps its
   released rows until the receiver closes, while other stations go on appending to the same files;
6. only now does the core hear that the frames are durable (``ReceiverProtocol.settled``), and only
   then do its sessions acknowledge them.

Barrier 1 must come before any byte of step 3 is written: otherwise a power loss could keep the records
but lose the journal row and the gap list, and the station's resend (never acknowledged) would be
archived a second time. A crash before barrier 1 completes loses whole transactions at most; nothing of
them was archived or acknowledged, so the station resends them.

Recovery (``start``), correct for any number of stations appending to the same day files: the highest
``archived_through`` mark of all stations, M, splits the journal rows. A row at or below M belongs to an
append known to be on disk: it is only released. The rows above M may belong to unfinished appends, and
nothing after them in a day file can belong to a deleted row (its mark would be above M), so each day
file is cut back to the smallest size that these rows recorded for it, and their frames are archived
again from the stored raw bytes in commit order: a torn or a completed append is never duplicated, and
nothing appended by another station and acknowledged is cut off. (Replaying one station after the other,
each to its own recorded sizes, cut off what the others had appended.) Appends reach a day file in epoch
order, which the failure handling below keeps. A frame that cannot be archived is quarantined (peer
``recovery``) instead of stopping every start.

When a step fails:

- a station's transaction (or writing its IMS 2.0 messages): nothing of its batch is stored; the core
  rejects its frames (``internal``) and takes them out of the gap list, so the station's resends are
  taken;
- barrier 1 (an I/O error): durability is unknown, so nothing of the batch is archived now and no
  acknack at all goes out until a ``syncfs`` succeeds (``acknacks_allowed`` retries it); the batch's
  journal rows stay, and the archive counts as behind, as after a failed append (next point), so no
  later batch is appended before the journal replay has archived this one;
- an SDS append (disk full, or data the packer refuses): the raw frames are durable and journalled, so
  they are acknowledged; nothing more is appended, since a later append would sit past the point that
  recovery truncates to, until the journal has been replayed. That replay is tried at the start of a
  commit once ``ARCHIVE_RETRY_NS`` have passed, before step 1, so it never includes the rows of the
  batch being committed (their frames would be appended twice), and never while barrier 1 is failing
  (the rows' durability is unknown).

``tests/idc/test_committer.py`` checks this order with a recording fake; ``tests/idc/test_crash.py``
SIGKILLs a receiver after the commits, in the middle of an append and after the archive sync, with one
station and with several stations writing to the same day files.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gci_link.cd11 import DataBody, Ims2MessageBody, decode_frame
from gci_link.cd11.frame import Body
from gci_link.clock import Clock
from gci_link.io.mseed2.flags import seed_flags
from gci_link.io.sds import SdsArchive, Segment
from idc.actions import CommitFailure, StationBatch
from idc.config import StationPolicy
from idc.stores import MessageStore, Quarantine, RawStores
from timeunits import NS_PER_S

log = logging.getLogger(__name__)

ARCHIVE_RETRY_NS = 30 * NS_PER_S  # after a failed SDS append, how often the journal replay is tried

Piece = tuple[str, Segment]  # (day file, the part of a channel's samples that goes into it)


@dataclass(frozen=True)
class CommitOutcome:
    durable: list[StationBatch]  # stored; durable unless ``synced`` is False
    failed: list[CommitFailure]  # not stored at all
    synced: bool  # False: barrier 1 failed, so nothing may be acknowledged (see acknacks_allowed)


# what the SDS archive wrote, per channel: (network, station, location, channel, miniSEED records)
Archived = list[tuple[str, str, str, str, bytes]]
Publish = Callable[[Archived], object]


class BatchCommitter:
    """Carries out the commit protocol above over the raw stores, the SDS archive and the IMS 2.0 store."""

    def __init__(
        self,
        stations: Mapping[str, StationPolicy],
        raw: RawStores,
        sds: SdsArchive,
        messages: MessageStore,
        quarantine: Quarantine,
        clock: Clock,
        publish: Publish | None = None,
    ) -> None:
        self._stations = stations
        self._raw = raw
        self._sds = sds
        self._messages = messages
        self._quarantine = quarantine
        self._clock = clock
        self._publish = publish
        self._unsynced = False  # barrier 1 failed: no acknack until a sync succeeds
        self._archive_behind_since: int | None = None  # clock ns of the failed SDS append
        self._epoch = 0  # of the last commit; above every epoch in the journals (set by recovery)
        self._archived_through = -1  # every commit up to this epoch has its SDS appends on disk

    def set_stations(self, stations: Mapping[str, StationPolicy]) -> None:
        """Archive under a reloaded station list (network codes) from the next commit on."""
        self._stations = stations

    def start(self) -> None:
        """Finish the archiving a previous run left half done."""
        try:
            self._recover()
        except OSError as exc:  # e.g. the disk is still full: serve anyway, catch up later
            log.error("archive recovery failed at start; retried while running", extra={"reason": str(exc)})
            self._archive_behind_since = self._clock()

    def commit(self, batches: list[StationBatch]) -> CommitOutcome:
        """Steps 1 to 5 for every batch; the caller then tells the core (step 6)."""
        if self._archive_behind_since is not None and not self._unsynced:
            self._catch_up_archive()  # before step 1: the replay must not include these batches' rows
        self._epoch += 1
        epoch = self._epoch
        stored: list[tuple[StationBatch, dict[int, list[Piece]]]] = []
        failed: list[CommitFailure] = []
        for batch in batches:
            if not batch.frames:
                continue
            store = self._raw.store(batch.station)
            try:
                pieces = self._write_messages_and_journal(batch, epoch)
            except Exception as exc:  # nothing of the batch is stored: forget it, the station will resend
                log.exception("commit failed", extra={"station": batch.station, "frames": len(batch.frames)})
                failed.append(CommitFailure(batch, store.gap_list(), f"commit failed: {exc}"))
                continue
            stored.append((batch, pieces))
        durable = [batch for batch, _ in stored]
        if stored:
            try:
                self._raw.sync()
            except OSError as exc:
                log.error("sync of the raw stores failed", extra={"reason": str(exc)})
                self._unsynced = True
                if self._archive_behind_since is None:  # this batch is archived by the journal replay,
                    self._archive_behind_since = self._clock()  # and nothing later may be appended before it
                return CommitOutcome(durable, failed, synced=False)
        if self._archive_behind_since is None:
            try:
                self._archived(
                    self._sds.append([p for _, pieces in stored for frame in pieces.values() for p in frame])
                )
            except Exception as exc:
                log.error(
                    "SDS append failed; archive catches up from the journal", extra={"reason": str(exc)}
                )
                self._archive_behind_since = self._clock()
            else:
                self._archived_through = epoch
                for batch, pieces in stored:
                    self._raw.store(batch.station).archived(
                        [seq for seq, frame in pieces.items() if frame], epoch
                    )
        return CommitOutcome(durable, failed, synced=True)

    def _write_messages_and_journal(self, batch: StationBatch, epoch: int) -> dict[int, list[Piece]]:
        """Step 1 for one station; returns each frame's SDS pieces."""
        pieces = {}
        for seq, accepted in batch.frames.items():
            body = accepted.checked.frame.body
            pieces[seq] = self._pieces(batch.station, body)
            if isinstance(body, Ims2MessageBody):
                self._messages.write(batch.station, seq, accepted.received_ns, body.message)
        self._raw.store(batch.station).commit(
            [
                (seq, a.received_ns, a.raw, self._sds.sizes_before(pieces[seq]))
                for seq, a in batch.frames.items()
            ],
            batch.gaps,
            epoch,
        )
        return pieces

    def acknacks_allowed(self) -> bool:
        """False while a failed barrier 1 leaves committed frames of unknown durability; retries it."""
        if not self._unsynced:
            return True
        try:
            self._raw.sync()
        except OSError as exc:
            log.error("sync of the raw stores still failing; acknacks held", extra={"reason": str(exc)})
            return False
        self._unsynced = False
        log.info("raw stores synced again; acknacks resume")
        return True

    def _catch_up_archive(self) -> None:
        """After a failed SDS append, replay the journal (truncate, re-append in order) every so often."""
        assert self._archive_behind_since is not None
        if self._clock() - self._archive_behind_since < ARCHIVE_RETRY_NS:
            return
        try:
            self._recover()
        except Exception as exc:  # still failing (disk still full): keep journalling, try again later
            log.error("SDS archive still behind", extra={"reason": str(exc)})
            self._archive_behind_since = self._clock()
            return
        self._archive_behind_since = None
        log.info("SDS archive caught up from the journal")

    def _archived(self, written: Archived) -> None:
        """Hand what the archive now holds to the real-time feed (SeedLink). Best effort: the archive is
        the record, so a feed that refuses is logged and never fails the commit."""
        if self._publish is None or not written:
            return
        try:
            self._publish(written)
        except Exception:
            log.exception("real-time feed refused archived records", extra={"channels": len(written)})

    def _recover(self) -> None:
        """Replay the journal of every station: cut each day file back to where the oldest append that
        may be unfinished began, then archive again, in commit order, every frame whose append may be
        unfinished (rows above the highest ``archived_through`` mark)."""
        stores = {station: self._raw.store(station) for station in self._raw.stations()}
        journals = {station: store.journal() for station, store in stores.items()}
        through = max([self._archived_through, *(store.archived_through() for store in stores.values())])
        self._epoch = max([self._epoch, through, *(row.epoch for rows in journals.values() for row in rows)])
        redo = sorted(
            (row.epoch, station, row.seq, row.files)
            for station, rows in journals.items()
            for row in rows
            if row.epoch > through
        )
        for station, rows in journals.items():  # finished appends whose rows were never deleted
            stores[station].archived([row.seq for row in rows if row.epoch <= through], through)
        cut: dict[str, int] = {}
        for *_, files in redo:
            for path, size in files:
                cut[path] = min(size, cut.get(path, size))
        for path, size in cut.items():
            if self._sds.truncate(path, size):
                log.warning("truncated half-written day file", extra={"path": path, "size": size})
        for _, station, seq, _ in redo:
            self._redo(station, seq, stores[station].raw_frame(seq))
        for station in stores:  # every row is finished now, and so is every commit so far
            stores[station].archived([seq for _, s, seq, _ in redo if s == station], self._epoch)
        self._archived_through = self._epoch

    def _redo(self, station: str, seq: int, raw: bytes | None) -> None:
        """Archive one frame again from its stored bytes; one that cannot be is quarantined (peer
        ``recovery``) rather than stopping every start. An OSError (disk trouble) is the caller's."""
        try:
            if raw is None:
                raise ValueError("raw frame missing from the store")
            if station not in self._stations:
                raise ValueError("station no longer configured")
            self._archived(self._sds.append(self._pieces(station, decode_frame(raw).body)))
        except OSError:
            raise
        except Exception as exc:
            log.error("cannot redo archiving", extra={"station": station, "seq": seq, "reason": str(exc)})
            reason = f"archiving failed: {exc}"
            self._quarantine.put(self._clock(), "recovery", station, seq, reason, raw or b"")
            return
        log.info("archiving redone from the journal", extra={"station": station, "seq": seq})

    def _pieces(self, station: str, body: Body) -> list[Piece]:
        """A data frame's channels as day-file pieces (nothing for other frames)."""
        if not isinstance(body, DataBody):
            return []
        network = self._stations[station].network
        return [
            piece
            for sub in body.channels
            if sub.nsamp and sub.sample_rate > 0
            for piece in self._sds.split_by_day(
                Segment(
                    network,
                    sub.site,
                    sub.location,
                    sub.channel,
                    sub.time_ns,
                    sub.sample_rate,
                    sub.samples,
                    seed_flags(sub.status),
                )
            )
        ]
