"""The SDS archive writer: day files cut at UTC midnight, appends read back by ObsPy's SDS client, and
the open-file cache that spares a reopen per append (bounded, closed before a file is deleted)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
from obspy import UTCDateTime, read
from obspy.clients.filesystem.sds import Client

from gci_link.io.sds import SdsArchive, Segment
from timeunits import NS_PER_DAY, NS_PER_S

DAY0 = 1_704_067_200 * NS_PER_S  # 2024-01-01T00:00:00Z


def _segment(station: str, start_ns: int, n: int, rate: float = 40.0, seed: int = 0) -> Segment:
    samples = np.cumsum(np.random.default_rng(seed).integers(-500, 501, n)).astype(np.int32)
    return Segment("XX", station, "00", "BHZ", start_ns, rate, samples)


def _read(root, station: str, start_ns: int, end_ns: int) -> np.ndarray:
    """The channel's samples as ObsPy's SDS client reads them, merged (it must be one gapless trace)."""
    st = Client(str(root)).get_waveforms(
        "XX", station, "00", "BHZ", UTCDateTime(ns=start_ns), UTCDateTime(ns=end_ns)
    )
    st.merge(method=-1)
    assert len(st) == 1, st
    return st[0].data


def test_a_segment_across_midnight_is_cut_into_two_day_files(tmp_path):
    sds = SdsArchive(tmp_path)
    seg = _segment("STA", DAY0 + NS_PER_DAY - 5 * NS_PER_S, 400)  # 5 s before midnight, 10 s long at 40 sps
    pieces = sds.split_by_day(seg)
    assert [len(p.samples) for _, p in pieces] == [200, 200]
    assert pieces[1][1].start_ns == DAY0 + NS_PER_DAY
    assert [os.path.basename(path) for path, _ in pieces] == [
        "XX.STA.00.BHZ.D.2024.001",
        "XX.STA.00.BHZ.D.2024.002",
    ]
    sds.append(pieces)
    sds.close()
    data = _read(tmp_path, "STA", seg.start_ns, seg.end_ns)
    np.testing.assert_array_equal(data, seg.samples)
    for path, piece in pieces:  # each day file holds exactly its own day's samples
        [trace] = read(path)
        assert trace.stats.starttime.ns == piece.start_ns
        np.testing.assert_array_equal(trace.data, piece.samples)


def test_a_segment_within_one_day_is_one_piece(tmp_path):
    sds = SdsArchive(tmp_path)
    seg = _segment("STA", DAY0 + 3600 * NS_PER_S, 400)
    [(path, piece)] = sds.split_by_day(seg)
    assert piece is seg and path.endswith("BHZ.D/XX.STA.00.BHZ.D.2024.001")
    sds.close()


def test_appends_beyond_the_open_file_limit_stay_complete(tmp_path):
    """Ten channels through a cache of three open files, appended to in turn: every day file holds its
    channel's samples once, in order, and no more than three descriptors were ever held."""
    sds = SdsArchive(tmp_path)
    sds._files.limit = 3
    stations = [f"S{i}" for i in range(10)]
    expected = {s: [] for s in stations}
    for k in range(4):  # four consecutive 10 s slots
        pieces = []
        for i, s in enumerate(stations):
            seg = _segment(s, DAY0 + k * 10 * NS_PER_S, 400, seed=100 * k + i)
            expected[s].append(seg.samples)
            pieces += sds.split_by_day(seg)
        sds.append(pieces)
        assert len(sds._files._fds) <= 3
    sds.close()
    for s in stations:
        data = _read(tmp_path, s, DAY0, DAY0 + 40 * NS_PER_S)
        np.testing.assert_array_equal(data, np.concatenate(expected[s]))


def test_remove_closes_the_file_so_later_appends_are_not_lost(tmp_path):
    sds = SdsArchive(tmp_path)
    first = _segment("STA", DAY0, 400, seed=1)
    pieces = sds.split_by_day(first)
    sds.append(pieces)
    sds.remove(pieces[0][0])  # budget pruning deletes the day file the writer still has open
    second = _segment("STA", DAY0 + 10 * NS_PER_S, 400, seed=2)
    sds.append(sds.split_by_day(second))
    sds.close()
    data = _read(tmp_path, "STA", DAY0, DAY0 + 20 * NS_PER_S)
    np.testing.assert_array_equal(data, second.samples)  # written to a new file, not a deleted inode


def test_append_returns_exactly_the_records_it_wrote(tmp_path):
    """What a real-time feed (the SeedLink ring) gets is byte for byte what the day files hold."""
    sds = SdsArchive(tmp_path)
    across = _segment("STA", DAY0 + NS_PER_DAY - 5 * NS_PER_S, 400, seed=1)
    other = Segment("XX", "OTH", "", "HHZ", DAY0, 100.0, _segment("OTH", DAY0, 1000, seed=2).samples)
    pieces = sds.split_by_day(across) + sds.split_by_day(other)
    written = sds.append(pieces)
    sds.close()
    assert [w[:4] for w in written] == [("XX", "STA", "00", "BHZ")] * 2 + [("XX", "OTH", "", "HHZ")]
    for (path, _), (*_, records) in zip(pieces, written, strict=True):
        with open(path, "rb") as fh:
            assert fh.read() == records


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"station": "../.."}, "station '../..' is not 1-5 ASCII letters or digits"),
        ({"station": "/tmp"}, "station '/tmp'"),
        ({"location": ".."}, "location '..'"),
        ({"channel": "B\0Z"}, "channel 'B\\\\x00Z'"),
        ({"network": "XÄ"}, "network 'XÄ'"),
        ({"rate": 40_000.0}, "40000 sps is outside"),
        ({"start_ns": -NS_PER_S}, "outside 1970 to 2262"),
        ({"samples": np.array([0, 1 << 30], dtype=np.int32)}, "differ by more than the 30 bits"),
    ],
)
def test_what_the_packer_would_refuse_is_refused_before_a_path_is_made(tmp_path, change, message):
    """Codes become directories: a bad one is refused before any path exists, with the other limits the
    packer has, so an append of pieces that were split fails only on I/O."""
    sds = SdsArchive(tmp_path / "sds")
    seg = dataclasses.replace(_segment("STA", DAY0, 4), **change)
    with pytest.raises(ValueError, match=message):
        sds.split_by_day(seg)
    sds.close()
    assert not list((tmp_path / "sds").rglob("*"))  # not even a directory in the archive


def test_pieces_whose_boundary_steim2_cannot_encode_are_packed_apart(tmp_path):
    """Two frames' pieces of one channel, each fine alone, were packed as one run; the jump between them
    needs 31 bits, and the packer refused the whole append (every station's batch)."""
    sds = SdsArchive(tmp_path)
    first = Segment("XX", "STA", "00", "BHZ", DAY0, 40.0, np.full(40, -(1 << 29), dtype=np.int32))
    second = dataclasses.replace(first, start_ns=first.end_ns, samples=np.full(40, 1 << 29, dtype=np.int32))
    sds.append(sds.split_by_day(first) + sds.split_by_day(second))
    sds.close()
    np.testing.assert_array_equal(
        _read(tmp_path, "STA", first.start_ns, second.end_ns), np.concatenate([first.samples, second.samples])
    )
