"""The commit protocol's order (idc/committer.py), checked by recording every durable operation.

First with recording fakes of the stores, so each failure path can be forced; then on the real stores
and archive with spies, through the receiver's own settling path up to the acknacks it sends.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gci_link.cd11 import FrameType, Ims2MessageBody, decode_frame, encode_frame, sign_frame
from gci_link.cd11.frame import Frame, FrameHeader
from gci_link.durable import FilesystemSync
from gci_link.gaplist import GapList
from gci_link.io.sds import archive
from idc import stores
from idc.actions import Peer, Reject, Send
from idc.checker import FrameChecker
from idc.committer import ARCHIVE_RETRY_NS, BatchCommitter
from idc.protocol import ReceiverProtocol
from idc.server import Receiver
from idc.stores import JournalRow
from idc.vocabulary import RejectionKind
from tests.idc.conftest import connection_request, data_frame, make_config, signed
from timeunits import NS_PER_S

PEER = Peer("socket", b"peer")


class FakeStore:
    """One station's raw store: records commits and journal releases."""

    def __init__(self, station: str, log: list, fail: bool) -> None:
        self.station, self.log, self.fail = station, log, fail
        self.rows: dict[int, JournalRow] = {}
        self.frames: dict[int, bytes] = {}

    def commit(self, frames, gaps: GapList, epoch: int) -> None:
        if self.fail:
            raise OSError(5, "I/O error")
        self.log.append(("commit", self.station, [seq for seq, *_ in frames]))
        self.frames.update({seq: raw for seq, _, raw, _ in frames})
        self.rows.update({seq: JournalRow(seq, epoch, files) for seq, _, _, files in frames if files})

    def archived(self, seqs, through_epoch: int) -> None:
        seqs = list(seqs)
        if seqs:
            self.log.append(("release", self.station, seqs))
        for seq in seqs:
            self.rows.pop(seq)

    def gap_list(self) -> GapList:
        return GapList()

    def journal(self) -> list[JournalRow]:
        return [self.rows[seq] for seq in sorted(self.rows)]

    def archived_through(self) -> int:
        return -1

    def raw_frame(self, seq: int) -> bytes | None:
        return self.frames.get(seq)


class FakeRaw:
    def __init__(self, log: list) -> None:
        self.log = log
        self.stores: dict[str, FakeStore] = {}
        self.failing_stations: set[str] = set()
        self.sync_fails = False

    def store(self, station: str) -> FakeStore:
        if station not in self.stores:
            self.stores[station] = FakeStore(station, self.log, station in self.failing_stations)
        return self.stores[station]

    def stations(self) -> list[str]:
        return sorted(self.stores)

    def sync(self) -> None:
        if self.sync_fails:
            raise OSError(5, "I/O error")
        self.log.append(("barrier 1",))


class FakeSds:
    def __init__(self, log: list) -> None:
        self.log = log
        self.append_fails = False

    def split_by_day(self, seg):
        return [(f"{seg.station}.{seg.channel}", seg)]

    def sizes_before(self, pieces):
        return [(path, 0) for path, _ in pieces]

    def truncate(self, path: str, size: int) -> bool:
        return False

    def append(self, pieces) -> None:
        if self.append_fails:
            raise OSError(28, "No space left on device")
        if pieces:  # as SdsArchive.append: no pieces, no write and no sync
            self.log.append(("append and barrier 2", sorted(path for path, _ in pieces)))


class FakeMessages:
    def __init__(self, log: list) -> None:
        self.log = log

    def write(self, station: str, seq: int, received_ns: int, text: bytes) -> None:
        self.log.append(("message", station, seq))


class FakeQuarantine:
    def put(self, *entry) -> None:
        raise AssertionError(f"nothing should be quarantined: {entry}")


class Rig:
    """The core and the committer over recording fakes, settled the way the receiver settles."""

    def __init__(self, keys, clock) -> None:
        self.log: list = []
        self.clock = clock
        config = make_config(Path("unused"), keys.ca.trust_dir)
        self.raw = FakeRaw(self.log)
        self.sds = FakeSds(self.log)
        self.committer = BatchCommitter(
            config.stations, self.raw, self.sds, FakeMessages(self.log), FakeQuarantine(), clock
        )
        self.core = ReceiverProtocol(
            config, FrameChecker(keys.ca.trust_store(), config.stations, 0).submit, self
        )
        self.keys = keys

    def gap_list(self, station: str) -> GapList:  # what the core reads when a session opens
        return GapList()

    def raw_frame(self, station: str, seq: int) -> bytes | None:
        return None

    def receive(self, raw: bytes) -> list:
        return self.core.receive(PEER, [raw], self.clock())

    def settle(self):
        """As Receiver._settle_accepted: commit, tell the core, then let it send the acknacks due."""
        outcome = self.committer.commit(self.core.take_batches())
        actions = self.core.settled(outcome.durable if outcome.synced else [], outcome.failed)
        if self.committer.acknacks_allowed():
            actions += self.core.poll(self.clock())
        for action in actions:
            if isinstance(action, Send) and action.kind == FrameType.ACKNACK:
                self.log.append(("acknack", action.station, decode_frame(action.frame).body.highest))
        return outcome, actions


def sta2(keys, seq: int) -> bytes:
    return encode_frame(data_frame(seq, keys.sta2, creator="STA2"))


def ims2_frame(keys, seq: int) -> bytes:
    frame = Frame(
        FrameHeader(FrameType.IMS2_MESSAGE, "STA1", sequence=seq), Ims2MessageBody(b"BEGIN IMS2.0\n")
    )
    return encode_frame(sign_frame(frame, keys.sta1.key_id, keys.sta1.sign))


@pytest.fixture
def rig(keys, clock) -> Rig:
    rig = Rig(keys, clock)
    for station in ("STA1", "STA2"):
        rig.receive(connection_request(station))
    rig.settle()  # the new sessions' first acknacks
    rig.log.clear()
    return rig


def test_barrier_1_before_any_append_and_barrier_2_before_release_and_acknack(rig, keys):
    for raw in (signed(1, keys), signed(2, keys), ims2_frame(keys, 3), sta2(keys, 1)):
        rig.receive(raw)
    rig.settle()
    assert rig.log == [
        ("message", "STA1", 3),
        ("commit", "STA1", [1, 2, 3]),
        ("commit", "STA2", [1]),
        ("barrier 1",),
        ("append and barrier 2", ["STA1A.BHZ", "STA1A.BHZ", "STA2A.BHZ"]),
        ("release", "STA1", [1, 2]),  # the IMS 2.0 frame journals no day file
        ("release", "STA2", [1]),
        ("acknack", "STA1", 3),
        ("acknack", "STA2", 1),
    ]


def test_failed_barrier_1_holds_every_acknack_until_a_sync_succeeds_and_archives_in_commit_order(rig, keys):
    rig.raw.sync_fails = True
    rig.receive(signed(1, keys))
    outcome, _ = rig.settle()
    assert not outcome.synced
    assert rig.log == [("commit", "STA1", [1])]  # no append, no release, no acknack
    rig.receive(sta2(keys, 1))
    rig.settle()
    assert ("acknack", "STA2", 1) not in rig.log  # not even for a station whose own sync would be fine
    rig.raw.sync_fails = False
    rig.log.clear()
    rig.receive(signed(2, keys))
    rig.settle()
    assert rig.log == [  # durable now: acknacks go; but frame 2 is not appended ahead of frame 1
        ("commit", "STA1", [2]),
        ("barrier 1",),
        ("barrier 1",),  # acknacks_allowed: the sync succeeds again
        ("acknack", "STA1", 2),
    ]
    rig.log.clear()
    rig.clock.advance(ARCHIVE_RETRY_NS / NS_PER_S)
    rig.settle()  # the journal replay archives the three frames in commit order
    assert rig.log == [
        ("append and barrier 2", ["STA1A.BHZ"]),
        ("append and barrier 2", ["STA2A.BHZ"]),
        ("append and barrier 2", ["STA1A.BHZ"]),
        ("release", "STA1", [1, 2]),
        ("release", "STA2", [1]),
    ]
    rig.log.clear()
    rig.clock.advance(55)
    rig.settle()
    assert rig.log == [("acknack", "STA1", 2), ("acknack", "STA2", 1)]
    assert [rig.raw.stores[s].journal() for s in ("STA1", "STA2")] == [[], []]


def test_failed_commit_of_one_station_leaves_the_others_untouched(rig, keys):
    rig.raw.failing_stations.add("STA2")
    rig.receive(signed(1, keys))
    rig.receive(sta2(keys, 7))
    outcome, actions = rig.settle()
    assert [f.batch.station for f in outcome.failed] == ["STA2"]
    assert [
        (a.rejection.kind, a.rejection.station, a.rejection.seq) for a in actions if isinstance(a, Reject)
    ] == [(RejectionKind.INTERNAL, "STA2", 7)]
    assert rig.log == [
        ("commit", "STA1", [1]),
        ("barrier 1",),
        ("append and barrier 2", ["STA1A.BHZ"]),
        ("release", "STA1", [1]),
        ("acknack", "STA1", 1),
    ]
    assert 7 not in rig.core.sessions["STA2"].gaps  # the station's resend will be taken


def test_failed_append_acknowledges_from_the_raw_store_and_replays_the_journal_on_the_clock(rig, keys):
    rig.sds.append_fails = True
    rig.receive(signed(1, keys))
    rig.settle()
    assert rig.log == [("commit", "STA1", [1]), ("barrier 1",), ("acknack", "STA1", 1)]
    rig.sds.append_fails = False
    rig.log.clear()
    rig.receive(signed(2, keys))
    rig.settle()  # the journal is not replayed before ARCHIVE_RETRY_NS: nothing is appended meanwhile
    assert rig.log == [("commit", "STA1", [2]), ("barrier 1",), ("acknack", "STA1", 2)]
    rig.clock.advance(ARCHIVE_RETRY_NS / NS_PER_S)
    rig.log.clear()
    rig.receive(signed(3, keys))
    rig.settle()
    assert rig.log == [
        ("append and barrier 2", ["STA1A.BHZ"]),  # the journal replay redoes frame 1 ...
        ("append and barrier 2", ["STA1A.BHZ"]),  # ... and frame 2, in order, before the new batch
        ("release", "STA1", [1, 2]),
        ("commit", "STA1", [3]),
        ("barrier 1",),
        ("append and barrier 2", ["STA1A.BHZ"]),  # so frame 3 is appended once
        ("release", "STA1", [3]),
        ("acknack", "STA1", 3),
    ]


def test_receiver_settles_in_this_order_on_the_real_stores(tmp_path, keys, clock, monkeypatch):
    """Spies on the real raw stores, filesystem syncs and day-file writes, and a socket that records the
    acknacks, while the receiver handles one batch of two stations."""
    log: list = []

    def spy(cls, name, record):
        real = getattr(cls, name)

        def recorded(*args, **kwargs):
            log.append(record(*args))
            return real(*args, **kwargs)

        monkeypatch.setattr(cls, name, recorded)

    spy(stores.StationStore, "commit", lambda store, frames, gaps, epoch: ("commit", store.path.stem))
    spy(stores.StationStore, "archived", lambda store, seqs, epoch: ("release", store.path.stem))
    spy(FilesystemSync, "sync", lambda fs: ("syncfs", fs.root.name))
    monkeypatch.setattr(archive, "_append_to", _recording_append(log, archive._append_to))

    class Socket:
        def send_multipart(self, parts, flags=0):
            frame = decode_frame(parts[1])
            if frame.header.frame_type == FrameType.ACKNACK:
                log.append(("acknack", frame.header.destination))

    receiver = Receiver(
        make_config(tmp_path, keys.ca.trust_dir, verify_workers=0), keys.ca.trust_store(), clock
    )
    try:
        messages = [[b"a", connection_request("STA1")], [b"b", connection_request("STA2")]]
        messages += [[b"a", signed(1, keys)], [b"b", sta2(keys, 1)]]
        receiver.handle(Socket(), messages)
    finally:
        receiver.close()
    barrier_1 = [("syncfs", "raw")] if FilesystemSync(tmp_path).available else []
    assert log == [
        ("commit", "STA1"),
        ("commit", "STA2"),
        *barrier_1,
        ("append", True),  # fewer than 8 day files: each is written and fsynced (barrier 2)
        ("append", True),
        ("release", "STA1"),
        ("release", "STA2"),
        ("acknack", "STA1"),
        ("acknack", "STA2"),
    ]


def _recording_append(log: list, real):
    def append(fd: int, data: bytes, fsync: bool) -> None:
        log.append(("append", fsync))
        real(fd, data, fsync)

    return append
