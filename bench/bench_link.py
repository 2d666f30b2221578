"""GCI link, station end: acknowledged latency at nominal load, and a backlog draining after an outage.

Real parts on loopback: the station's ``Sender`` with its SQLite outbox, a DEALER over
tcp://127.0.0.1 to the IDC ``Receiver`` polling in a thread (as its tests run it), which verifies every
signature, commits, fsyncs its archive and only then acknowledges. Both run in this one process, so
they share the GIL (a real station and IDC do not; the figures are, if anything, pessimistic).

Latency is taken from the sender's own view: from the moment the outbox stored the frame (its
``enqueued_ns``) to the moment the sender marks it acknowledged because an acknack covered it (the
outbox's ``ack`` call, timed by a thin subclass). Frames (one station: 3 channels x 100 sps, 10 s,
every channel and the frame signed with ECDSA P-256) are built and signed beforehand, so the time
measured is the link's, not the signing's.

1. Nominal load: one station's frames handed to the outbox one at a time, with the link idle in
   between (random spacing 50-150 ms, i.e. about 100x one station's real rate but never two frames
   queued together, and uncorrelated with the sender's poll period); and a burst of stations: every
   station's frame of a 10 s slot handed over at the same instant, as happens on the UTC grid.
   Target: p99 < 50 ms.
2. Backlog drain: 12 h of one station's frames waiting in the outbox when the link comes back;
   frames/s and MB/s until the last of them is acknowledged, while live frames keep arriving (one
   every 0.1 s); how long those live frames waited for their acknack during the drain.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import zmq

from bench.bench_receiver import _config, _signed_frame
from gci_link.keys import CertificateAuthority, StationSigner
from gci_link.link_session import SessionConfig, State
from gci_link.station_end.outbox import AckSpec, Outbox
from gci_link.station_end.sender import Sender
from idc.server import Receiver
from timeunits import NS_PER_S

CHANNELS = [("HHZ", 100), ("HHN", 100), ("HHE", 100)]
NOMINAL_FRAMES = 200
BURST_STATIONS = 20
BURST_SLOTS = 10
BACKLOG_FRAMES = 12 * 360  # 12 h of 10 s frames
LIVE_EVERY_S = 0.1
LATENCY_TARGET_MS = 50.0
RECEIVER_POLL_MS = 20


class _AckTimedOutbox(Outbox):
    """The outbox as the sender uses it, also noting when each frame's acknowledgement landed."""

    def __init__(self, path: Path, budget_bytes: int, *, first_sequence: int) -> None:
        super().__init__(path, budget_bytes, first_sequence=first_sequence)
        self.acked_at: dict[int, int] = {}

    def ack(self, acked: AckSpec) -> int:
        now = time.time_ns()
        items = [acked] if isinstance(acked, int | range) else list(acked)
        for item in items:
            for seq in item if isinstance(item, range) else (item,):
                self.acked_at.setdefault(seq, now)
        return super().ack(items)


class _Idc:
    """The IDC receiver on 127.0.0.1, serving in a background thread."""

    def __init__(self, root: Path, ca: CertificateAuthority, names: list[str]) -> None:
        self.ctx = zmq.Context()
        config = _config(root, ca.trust_dir, names, "tcp://127.0.0.1:*")
        self.receiver = Receiver(config, ca.trust_store(), context=self.ctx)
        self.receiver.start()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self.receiver.run, args=(self._stop, RECEIVER_POLL_MS), daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.receiver.close()
        self.ctx.destroy(linger=0)


class _Station:
    """One station's outbox and sender (its own ZeroMQ context, as a separate process would have)."""

    def __init__(self, folder: Path, signer: StationSigner, endpoint: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.signer = signer
        self.outbox = _AckTimedOutbox(folder / "outbox.sqlite", 1 << 34, first_sequence=1)
        self.ctx = zmq.Context()
        self.sender = Sender(
            SessionConfig(station=signer.station, endpoints=(endpoint,)),
            self.outbox,
            signer=signer,
            context=self.ctx,
        )
        self._thread: threading.Thread | None = None

    def frames(self, count: int, rng: np.random.Generator) -> list[bytes]:
        """The next ``count`` frames this outbox will number, built and signed now."""
        first = self.outbox.next_sequence
        name = self.signer.station
        return [_signed_frame(self.signer, name, first + i, CHANNELS, rng) for i in range(count)]

    def append(self, raw: bytes) -> int:
        return self.outbox.append("data", 0, raw)

    def start(self, timeout_s: float = 30.0) -> None:
        self._thread = threading.Thread(target=self.sender.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while self.sender.session.state is not State.DATA:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.signer.station}: link not up within {timeout_s} s")
            time.sleep(0.01)

    def wait_acked(self, seqs: list[int], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not all(s in self.outbox.acked_at for s in seqs):
            if time.monotonic() > deadline:
                missing = sum(s not in self.outbox.acked_at for s in seqs)
                raise RuntimeError(f"{self.signer.station}: {missing} frames unacked after {timeout_s} s")
            time.sleep(0.01)

    def enqueued_ns(self, seq: int) -> int:
        frame = self.outbox.get(seq)
        if frame is None:  # evicted: the outbox budget is far larger than any run, so a bug
            raise RuntimeError(f"{self.signer.station}: frame {seq} is no longer in the outbox")
        return frame.enqueued_ns

    def latencies_ms(self, seqs: list[int]) -> list[float]:
        return [(self.outbox.acked_at[s] - self.enqueued_ns(s)) / 1e6 for s in seqs]

    def close(self) -> None:
        self.sender.stop()
        if self._thread is not None:
            self._thread.join(10)
        self.outbox.close()
        self.ctx.destroy(linger=0)


def _percentiles(prefix: str, values_ms: list[float]) -> dict[str, float]:
    a = np.asarray(values_ms)
    return {
        f"{prefix}_frames": len(a),
        f"{prefix}_p50_ms": round(float(np.percentile(a, 50)), 2),
        f"{prefix}_p99_ms": round(float(np.percentile(a, 99)), 2),
        f"{prefix}_max_ms": round(float(a.max()), 2),
    }


def _nominal(tmp: Path, ca: CertificateAuthority, progress: Callable[[str], None]) -> dict[str, float]:
    signer = StationSigner.load(ca.issue("STA1").bundle)
    idc = _Idc(tmp / "idc-nominal", ca, ["STA1"])
    station = _Station(tmp / "sta-nominal", signer, idc.receiver.connection_endpoint)
    try:
        frames = station.frames(NOMINAL_FRAMES, np.random.default_rng(1))
        station.start()
        spacing = random.Random(2)
        seqs = []
        for i, raw in enumerate(frames):
            seqs.append(station.append(raw))
            time.sleep(spacing.uniform(0.05, 0.15))
            if i % 50 == 49:
                progress(f"nominal load: {i + 1}/{NOMINAL_FRAMES} frames handed to the outbox")
        station.wait_acked(seqs, 30)
        return _percentiles("nominal_ack_latency", station.latencies_ms(seqs))
    finally:
        station.close()
        idc.close()


def _burst(tmp: Path, ca: CertificateAuthority, progress: Callable[[str], None]) -> dict[str, float]:
    """Every station hands its frame of a slot to its outbox at the same instant (the UTC 10 s grid)."""
    names = [f"B{i:02d}" for i in range(BURST_STATIONS)]
    signers = [StationSigner.load(ca.issue(n).bundle) for n in names]
    idc = _Idc(tmp / "idc-burst", ca, names)
    stations = [_Station(tmp / f"sta-{s.station}", s, idc.receiver.connection_endpoint) for s in signers]
    try:
        rng = np.random.default_rng(3)
        frames = [st.frames(BURST_SLOTS, rng) for st in stations]
        for st in stations:
            st.start()
        seqs: list[list[int]] = [[] for _ in stations]
        go = threading.Barrier(len(stations) + 1)

        def hand_over(k: int) -> None:
            for slot in range(BURST_SLOTS):
                go.wait()
                seqs[k].append(stations[k].append(frames[k][slot]))

        feeders = [threading.Thread(target=hand_over, args=(k,), daemon=True) for k in range(len(stations))]
        for t in feeders:
            t.start()
        for slot in range(BURST_SLOTS):
            go.wait()
            time.sleep(1.0)  # a compressed 10 s slot: the burst has long been acknowledged
            progress(f"burst of {BURST_STATIONS} stations: slot {slot + 1}/{BURST_SLOTS}")
        for t in feeders:
            t.join(10)
        latencies = []
        for st, own in zip(stations, seqs, strict=True):
            st.wait_acked(own, 30)
            latencies += st.latencies_ms(own)
        return {"burst_stations": BURST_STATIONS} | _percentiles("burst_ack_latency", latencies)
    finally:
        for st in stations:
            st.close()
        idc.close()


def _backlog(tmp: Path, ca: CertificateAuthority, progress: Callable[[str], None]) -> dict[str, float]:
    """12 h of frames waiting when the link returns; live frames keep coming while they drain."""
    signer = StationSigner.load(ca.issue("STA2").bundle)
    idc = _Idc(tmp / "idc-backlog", ca, ["STA2"])
    station = _Station(tmp / "sta-backlog", signer, idc.receiver.connection_endpoint)
    try:
        rng = np.random.default_rng(4)
        progress(f"building and signing a backlog of {BACKLOG_FRAMES} frames (12 h of one station)")
        backlog_frames = station.frames(BACKLOG_FRAMES, rng)
        started = time.perf_counter()
        backlog = [station.append(raw) for raw in backlog_frames]
        append_s = time.perf_counter() - started
        backlog_bytes = sum(map(len, backlog_frames))
        live_frames = station.frames(400, rng)  # more than the drain will take; numbered after the backlog
        live: list[int] = []
        stop = threading.Event()

        def live_feed() -> None:
            for raw in live_frames:
                if stop.wait(LIVE_EVERY_S):
                    return
                live.append(station.append(raw))

        progress("link up: draining the backlog with live frames arriving")
        acked = station.outbox.acked_at
        started_ns = time.time_ns()
        station.start()
        feeder = threading.Thread(target=live_feed, daemon=True)
        feeder.start()
        deadline = time.monotonic() + 150
        next_report = time.monotonic() + 5
        while not all(s in acked for s in backlog):
            if time.monotonic() > deadline:
                raise RuntimeError("backlog not drained in 150 s")
            if time.monotonic() >= next_report:
                next_report += 5
                progress(f"backlog: {sum(s in acked for s in backlog)}/{BACKLOG_FRAMES} frames acknowledged")
            time.sleep(0.05)
        drained_ns = max(acked[s] for s in backlog)
        drain_s = (drained_ns - started_ns) / NS_PER_S
        stop.set()
        feeder.join(5)
        station.wait_acked(live, 30)
        during = [s for s in live if station.enqueued_ns(s) <= drained_ns]
        return {
            "backlog_frames": BACKLOG_FRAMES,
            "backlog_mb": round(backlog_bytes / 1e6, 2),
            "backlog_outbox_append_frames_per_s": round(BACKLOG_FRAMES / append_s, 1),
            "backlog_drain_s": round(drain_s, 2),
            "backlog_drain_frames_per_s": round(BACKLOG_FRAMES / drain_s, 1),
            "backlog_drain_mb_per_s": round(backlog_bytes / 1e6 / drain_s, 3),
            "backlog_drain_x_real_time": round(BACKLOG_FRAMES * 10 / drain_s, 1),
        } | _percentiles("live_during_drain_ack_latency", station.latencies_ms(during))
    finally:
        station.close()
        idc.close()


def run(progress: Callable[[str], None]) -> dict[str, float | str]:
    with tempfile.TemporaryDirectory(prefix="bench-link-") as name:
        tmp = Path(name)
        ca = CertificateAuthority.create(tmp / "ca")
        figures: dict[str, float | str] = {
            "frame_channels": "3 x 100 sps, 10 s, ECDSA P-256 on every channel and the frame"
        }
        progress(f"nominal load: {NOMINAL_FRAMES} frames of one station, one at a time")
        figures |= _nominal(tmp, ca, progress)
        progress(f"burst: {BURST_STATIONS} stations handing over a frame at the same instant")
        figures |= _burst(tmp, ca, progress)
        figures["ack_latency_target"] = f"p99 < {LATENCY_TARGET_MS:g} ms"
        figures |= _backlog(tmp, ca, progress)
        return figures
