"""SIGKILL at the worst instants of the per-batch commit path: a restart loses no acknowledged frame and
the SDS archive holds every frame's samples exactly once (read back with ObsPy)."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from obspy import read

from gci_link.cd11 import build_data_frame, build_subframe, encode_frame, sign_all_channels, sign_frame
from gci_link.keys import StationSigner, TrustStore
from idc.config import IdcConfig, StationPolicy
from idc.server import Receiver
from idc.stores import StationStore
from tests.idc.conftest import T0, connection_request, make_config, samples_for, signed
from tests.idc.test_server import sds_samples
from timeunits import NS_PER_S

pytestmark = pytest.mark.timeout(60)

POINTS = ["after_commit", "mid_append", "after_archive_sync"]

# Runs a receiver in a child process: settles every batch but the last, then dies by SIGKILL at
# ``point`` while settling the last one (none of whose frames was acknowledged), or, at "after_ack",
# right after settling it. Every acknack it sends is written to ACKS as JSON lines, as it is sent.
CHILD = """
import json, os, pickle, signal, sys
from gci_link import durable
from gci_link.cd11 import FrameType, decode_frame
from gci_link.io.sds import archive as sds
from gci_link.keys import TrustStore
from idc import stores
from idc.server import Receiver
config, trust_dir, batches, point, acks = pickle.load(open(sys.argv[1], "rb"))
receiver = Receiver(config, TrustStore.load(trust_dir))
acks = open(acks, "a")

class Sink:
    def send_multipart(self, parts, flags=0):
        frame = decode_frame(parts[1])
        if frame.header.frame_type == FrameType.ACKNACK:
            body = frame.body
            acks.write(json.dumps([frame.header.destination, body.lowest, body.highest, body.gaps]) + "\\n")
            acks.flush()

sink = Sink()
for batch in batches[:-1]:
    receiver.handle(sink, [[b"id", raw] for raw in batch])
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
append = sds._append_to
if point == "after_commit":  # transactions written (synchronous=NORMAL), before the raw-store syncfs
    durable.FilesystemSync.sync = lambda self: die()
elif point == "mid_append":  # journal durable, half of a day file's records written
    def torn(fd, data, fsync):
        append(fd, data[: len(data) // 2 + 100], False)  # and not synced
        die()
    sds._append_to = torn
elif point == "after_archive_sync":  # records durable, journal rows not yet released
    stores.StationStore.archived = lambda self, *args: die()
elif point == "unsynced_raw_stores":  # a broken receiver, for the power-loss test: no barrier 1 at all
    stores.RawStores.sync = lambda self: None
receiver.handle(sink, [[b"id", raw] for raw in batches[-1]])
if point in ("after_ack", "unsynced_raw_stores"):
    die()
sys.exit(3)  # not reached: the kill must have happened
"""


def crash(tmp_path: Path, config: IdcConfig, trust_dir: Path, batches: list, point: str, env=None) -> Path:
    """Run CHILD (with ``env``), check it died by SIGKILL; returns the file of the acknacks it sent."""
    args, acks = tmp_path / "args.pickle", tmp_path / "acks.jsonl"
    args.write_bytes(pickle.dumps((config, trust_dir, batches, point, str(acks))))
    repo = Path(__file__).resolve().parents[2]
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(args)], cwd=repo, capture_output=True, timeout=50, env=env
    )
    assert child.returncode == -9, child.stderr.decode()
    return acks


def restart(config: IdcConfig, trust_dir: Path) -> None:
    """Start and close a receiver on the data of a crashed one (its recovery)."""
    receiver = Receiver(config, TrustStore.load(trust_dir))
    receiver.start()  # recovery: truncate half-done appends and redo them from the raw frames
    receiver.close()


def acknowledged(acks: Path) -> dict[str, set[int]]:
    """Per station, every sequence number an acknack in ``acks`` covered."""
    covered: dict[str, set[int]] = {}
    for line in acks.read_text().splitlines():
        station, lowest, highest, gaps = json.loads(line)
        seqs = set(range(lowest, highest + 1)) - {seq for a, b in gaps for seq in range(a, b)}
        covered.setdefault(station, set()).update(seqs)
    return covered


def _held(root: Path, station: str):
    store = StationStore(root / "raw" / f"{station}.sqlite")
    try:
        return store.gap_list()
    finally:
        store.close()


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_while_settling_a_batch(tmp_path, keys, point):
    config = make_config(tmp_path, keys.ca.trust_dir, data_endpoint=None)
    frames = [signed(seq, keys) for seq in (1, 2, 3, 4, 5)]
    batches = [[connection_request("STA1")], frames[:3], frames[3:]]
    crash(tmp_path, config, keys.ca.trust_dir, batches, point)
    restart(config, keys.ca.trust_dir)
    held = _held(tmp_path, "STA1")
    assert all(seq in held for seq in (1, 2, 3))  # acknowledged before the crash: never lost
    for seq in (1, 2, 3, 4, 5):
        expected = samples_for(seq) if seq in held else np.array([], dtype=np.int32)
        np.testing.assert_array_equal(sds_samples(tmp_path / "sds", seq), expected)
    if point != "after_commit":  # the journal was durable: the batch is kept and archived once
        assert 4 in held and 5 in held


# Several stations writing to the same day files (an array's site that more than one station may send,
# as a primary and a backup station PC do): each station's frames take their own 10 s slots.
SHARED_SITE = "ARRAY"
SHARED_CHANNELS = ("BHZ", "BHN")
WRITERS = ("STA1", "STA2", "STA3")  # STA3 sends unsigned frames


def _shared_frame(station: str, seq: int, signer: StationSigner | None) -> bytes:
    start = T0 + (3 * seq + WRITERS.index(station)) * 10 * NS_PER_S
    subs = [
        build_subframe(
            _shared_samples(station, seq, channel),
            site=SHARED_SITE,
            channel=channel,
            location="00",
            time_ns=start,
            sample_rate=40.0,
        )
        for channel in SHARED_CHANNELS
    ]
    frame = build_data_frame(subs, creator=station, sequence=seq, nominal_time_ns=start)
    if signer is not None:
        frame = sign_frame(sign_all_channels(frame, signer.key_id, signer.sign), signer.key_id, signer.sign)
    return encode_frame(frame)


def _shared_samples(station: str, seq: int, channel: str) -> np.ndarray:
    rng = np.random.default_rng([WRITERS.index(station), seq, SHARED_CHANNELS.index(channel)])
    return rng.integers(-(2**20), 2**20, 400).astype(np.int32)


def _archived_samples(sds_root: Path) -> dict[str, dict[int, int]]:
    """Per channel, sample time (ns) -> value of every sample in the SDS archive, read with ObsPy; a
    sample time that occurs twice fails the test (a sample archived twice)."""
    seen: dict[str, dict[int, int]] = {}
    for day_file in sorted(p for p in sds_root.rglob("*") if p.is_file()):
        for trace in read(str(day_file), format="MSEED"):
            step = round(NS_PER_S / trace.stats.sampling_rate)
            samples = seen.setdefault(trace.stats.channel, {})
            times = trace.stats.starttime.ns + step * np.arange(trace.stats.npts, dtype=np.int64)
            repeated = Counter(int(t) for t in times if int(t) in samples)
            assert not repeated, f"{day_file.name}: {len(repeated)} samples archived twice"
            samples.update(zip(times.tolist(), trace.data.tolist(), strict=True))
    return seen


# (station, seq) per batch; the last batch is the one a crash interrupts. STA1 writes only in the first
# batch, so its journal rows are released but never deleted (a row goes with the station's next
# transaction) while the other stations' later rows are.
SHARED_PLAN = [
    [("STA1", 1), ("STA2", 1), ("STA3", 1)],
    [("STA2", 2), ("STA3", 2)],
    [("STA3", 3)],
    [("STA2", 3), ("STA3", 4)],
    [("STA2", 4), ("STA3", 5)],
]


def shared_writers(root: Path, keys) -> tuple[IdcConfig, list[list[bytes]]]:
    """The configuration (data under ``root``) of three stations on shared day files, and the batches of
    SHARED_PLAN (after one of connection requests)."""
    signers = {"STA1": keys.sta1, "STA2": keys.sta2, "STA3": None}
    stations = {
        "STA1": StationPolicy("STA1", "XX", sites=(SHARED_SITE,)),
        "STA2": StationPolicy("STA2", "XX", sites=(SHARED_SITE,)),
        "STA3": StationPolicy("STA3", "XX", require_signatures=False, sites=(SHARED_SITE,)),
    }
    config = make_config(root, keys.ca.trust_dir, data_endpoint=None, stations=stations)
    batches = [[connection_request(station) for station in WRITERS]]
    batches += [[_shared_frame(station, seq, signers[station]) for station, seq in b] for b in SHARED_PLAN]
    return config, batches


def lost_or_duplicated(root: Path, acked: dict[str, set[int]]) -> list[str]:
    """What is wrong after the restart: an acknowledged frame of SHARED_PLAN not in its station's raw
    store, or a frame held there whose samples are not in the SDS archive exactly once, or samples there
    of no frame held (duplicates fail while reading the archive)."""
    problems = []
    archived = _archived_samples(root / "sds")
    expected: dict[str, dict[int, int]] = {channel: {} for channel in SHARED_CHANNELS}
    for station, seq in (frame for batch in SHARED_PLAN for frame in batch):
        held = _held(root, station)
        if seq in acked.get(station, set()) and seq not in held:
            problems.append(f"{station} frame {seq} acknowledged but not in the raw store")
        if seq not in held:
            continue
        start = T0 + (3 * seq + WRITERS.index(station)) * 10 * NS_PER_S
        for channel in SHARED_CHANNELS:
            times = (start + 25_000_000 * np.arange(400, dtype=np.int64)).tolist()
            values = _shared_samples(station, seq, channel).tolist()
            expected[channel].update(zip(times, values, strict=True))
    for channel in SHARED_CHANNELS:
        have = archived.get(channel, {})
        missing = len(set(expected[channel]) - set(have))
        extra = len(set(have) - set(expected[channel]))
        if missing or extra:
            problems.append(f"{channel}: {missing} samples of held frames missing, {extra} of none")
        elif have != expected[channel]:
            problems.append(f"{channel}: sample values differ")
    return problems


@pytest.mark.parametrize("point", POINTS)
def test_sigkill_with_several_stations_writing_the_same_day_files(tmp_path, keys, point):
    """Every frame of every station that was acknowledged (or kept) is archived exactly once: the
    replay of a station's journal must never cut a shared file back over what other stations appended
    since."""
    config, batches = shared_writers(tmp_path, keys)
    acks = crash(tmp_path, config, keys.ca.trust_dir, batches, point)
    restart(config, keys.ca.trust_dir)
    acked = acknowledged(acks)
    assert all(seq in acked[station] for batch in SHARED_PLAN[:-1] for station, seq in batch)
    assert lost_or_duplicated(tmp_path, acked) == []
