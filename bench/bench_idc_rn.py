"""What the IDC's radionuclide analysis costs the receiver's data path: the in-process ingest of one
station's signed data frames (``Receiver.handle``, as bench_receiver drives it) with the analysis idle,
against the same ingest while the analysis works through a backlog of beta-gamma samples with their
backgrounds (idc/rn_analyser.py, its own process at a lower priority), measured in the same run.

Target: the ingest keeps at least 0.8 of its idle rate while the analysis runs (``analysing_ratio``).
The backlog is large enough that the analysis is still busy when the ingest ends, which the figures
check (``samples_analysed_during``, ``backlog_left``). Also: the analysis throughput, samples per
second of wall time with the receiver ingesting beside it. Rounds alternate idle and analysing; the
best of each counts, since other work on a shared machine only ever slows a round.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.bench_receiver import INGEST_CHANNELS, _drive, _open_sessions, _signed_frame, _StubSocket
from gci_link import ims2
from gci_link.keys import CertificateAuthority, StationSigner
from hil.betagamma_phd import simulate_set
from idc.config import IdcConfig, StationPolicy
from idc.rn_store import INDEX_NAME, RnStore
from idc.server import Receiver

Progress = Callable[[str], None]
FRAMES = 600
BACKLOG = 120  # samples, each with its gas and detector background
ROUNDS = 3
TARGET_RATIO = 0.8


def _config(root: Path, trust_dir: Path) -> IdcConfig:
    """One station whose connection request needs no stamp: the data frames are what is measured."""
    return IdcConfig(root=root, trust_dir=trust_dir, connection_endpoint="inproc://unused",
                     stations={"STA1": StationPolicy("STA1", "XX", fresh_control=False)})


def _backlog(root: Path, progress: Progress) -> None:
    store = RnStore(root / "ims2")
    seq = 0
    for k in range(BACKLOG):
        cycle = simulate_set(1000 + k, detector=f"RNB_{k:03d}")
        for message in (cycle.detbk, cycle.gasbk, cycle.sample):
            seq += 1
            store.write("RNB", seq, cycle.sample.transmit_ns, ims2.write(message).encode())
        if k % 20 == 0:
            progress(f"backlog: {k}/{BACKLOG} samples stored")
    store.close()


def _analysed(root: Path) -> int:
    db = sqlite3.connect(f"file:{root / 'ims2' / INDEX_NAME}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT COUNT(*) FROM analyses").fetchone()[0])
    finally:
        db.close()


def _ingest(root: Path, ca: CertificateAuthority, signer: StationSigner, frames: list[bytes],
            progress: Progress, analysing: bool) -> tuple[float, int]:
    """Wall seconds of the ingest into a receiver of its own at ``root``; with ``analysing``, also the
    number of samples analysed meanwhile."""
    receiver = Receiver(_config(root, ca.trust_dir), ca.trust_store())
    sock = _StubSocket()
    try:
        before = 0
        if analysing:
            assert receiver.rn_analyser is not None
            receiver.rn_analyser.start()
            deadline = time.monotonic() + 60
            while (before := _analysed(root)) == 0 and time.monotonic() < deadline:  # process up, working
                time.sleep(0.01)
        _open_sessions(receiver, sock, [signer])
        run = _drive(receiver, sock, [[b"STA1", raw] for raw in frames], progress,
                     "ingest while analysing" if analysing else "ingest, analysis idle")
        done = _analysed(root) - before if analysing else 0
        if receiver.metrics.counters().get(("STA1", "frames")) != len(frames):
            raise RuntimeError(f"receiver archived {receiver.metrics.counters()} of {len(frames)} frames")
    finally:
        receiver.close()
    return run.wall_s, done


def run(progress: Progress) -> dict:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        ca = CertificateAuthority.create(tmp / "ca")
        signer = StationSigner.load(ca.issue("STA1").bundle)
        rng = np.random.default_rng(3)
        frames = [_signed_frame(signer, "STA1", i, INGEST_CHANNELS, rng) for i in range(FRAMES)]
        idle_s = busy_s = float("inf")
        analysed = left = 0
        for k in range(ROUNDS):  # every receiver has a root of its own, so the same frames serve each
            idle_s = min(idle_s, _ingest(tmp / f"idle{k}", ca, signer, frames, progress, False)[0])
            _backlog(tmp / f"busy{k}", progress)
            wall, done = _ingest(tmp / f"busy{k}", ca, signer, frames, progress, True)
            if wall < busy_s:
                busy_s, analysed, left = wall, done, BACKLOG - _analysed(tmp / f"busy{k}")
        ratio = idle_s / busy_s
        return {
            "frames": FRAMES,
            "idle_frames_per_s": round(FRAMES / idle_s, 1),
            "analysing_frames_per_s": round(FRAMES / busy_s, 1),
            "analysing_ratio": round(ratio, 3),
            "samples_analysed_during": analysed,
            "analysed_samples_per_s": round(analysed / busy_s, 1),
            "backlog_left": left,
            "verdict": "ok" if ratio >= TARGET_RATIO and left > 0 else
            ("analysis ended before the ingest: not measured under load" if left == 0 else
             f"ingest below {TARGET_RATIO} of its idle rate while analysing"),
        }
