"""IDC receiver throughput against the limit set by signature verification, and an IMS-sized replay.

1. Ingest: one station (6 channels, 3 at 100 sps and 3 at 40 sps, 10 s frames, ECDSA P-256, every
   channel and the frame signed, as station/publisher.py signs) through the receiver's real per-batch
   path (``Receiver.handle``: size/CRC/decode, every signature, SQLite commit, SDS append + fsync,
   metrics, acknack), in-process with a stub socket; side by side with cryptography's bare ``verify``
   on the same public key, signatures and signed bytes in a tight loop, measured in the same run.
   Target: frames/s x signatures per frame >= 0.8 x verifies/s. The receiver verifies on two worker
   processes, so the ratio against a two-thread bare verify in the same run is reported too: that one
   says how close the receiver is to what this machine can verify at all. The same frames are also sent
   through a real DEALER -> ROUTER hop on ipc:// to the receiver running its own poll loop in a thread.
2. Replay: an IMS-sized network (240 stations, ~2,700 channels at 20-250 sps) for a slice of
   simulated time, every station's frames interleaved as they would arrive, through one receiver;
   extrapolated to minutes per simulated day (target < 30, i.e. >= 48x real time): the first 10 s slot,
   which creates every channel's folders and day files, is timed apart and counted once per day; the
   remaining slots give the steady rate.
Frames are built and signed before timing (signing is the stations' cost). Disk is real: a temporary
directory on the machine's disk, with the receiver's fsyncs.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zmq
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from gci_link.cd11 import (
    AcknackBody,
    DataBody,
    Frame,
    FrameType,
    build_data_frame,
    build_subframe,
    channel_signed_bytes,
    decode_frame,
    encode_signed_frame,
    frame_signed_bytes,
    sign_all_channels,
)
from gci_link.keys import CertificateAuthority, StationSigner, TrustStore
from gci_link.link_session import ControlHeader, SendConnectionRequest
from gci_link.station_end.link_frames import control_frame
from idc.config import IdcConfig, StationPolicy
from idc.server import BATCH, Receiver
from timeunits import NS_PER_S, S_PER_DAY

Progress = Callable[[str], None]
FRAME_S = 10
T0 = 1_704_067_200 * NS_PER_S  # 2024-01-01T00:00:00Z: data time (certificates are checked at arrival time)
INGEST_CHANNELS = [("HHZ", 100), ("HHN", 100), ("HHE", 100), ("BHZ", 40), ("BHN", 40), ("BHE", 40)]
INGEST_FRAMES = 1500  # 250 minutes of one station: long enough that the workers starting up counts little
REPLAY_SLICE_S = 240  # long enough that one slow second on a shared machine moves the figure little
# (stations, channels per station, sample rates cycled over the channels): a plausible IMS mix
IMS_MIX = [
    (30, 22, (40,)),  # primary seismic arrays
    (120, 6, (40, 40, 40, 100, 100, 100)),  # three-component seismic, broadband + high rate
    (60, 20, (20,)),  # infrasound arrays
    (6, 3, (250,)),  # hydrophone triplets
    (5, 3, (100,)),  # T-phase stations
    (19, 3, (40,)),  # auxiliary seismic
]


class _StubSocket:
    """Stands in for the ROUTER: keeps what the receiver sends, so acknacks can be counted."""

    def __init__(self) -> None:
        self.sent: list[list[bytes]] = []

    def send_multipart(self, parts: list[bytes], flags: int = 0) -> None:
        self.sent.append(parts)


def _counts(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random walk: about as compressible as broadband seismic counts."""
    return np.cumsum(rng.integers(-60, 61, n)).astype(np.int32)


def _signed_frame(
    signer: StationSigner, name: str, seq: int, channels: list[tuple[str, int]], rng: np.random.Generator
) -> bytes:
    start = T0 + seq * FRAME_S * NS_PER_S
    subs = [
        build_subframe(
            _counts(rng, rate * FRAME_S),
            site=name[:5],
            channel=chan,
            location="00",
            time_ns=start,
            sample_rate=float(rate),
        )
        for chan, rate in channels
    ]
    frame = build_data_frame(subs, creator=name, sequence=seq, nominal_time_ns=start)
    frame = sign_all_channels(frame, signer.key_id, signer.sign)
    return encode_signed_frame(frame, signer.key_id, signer.sign)


def _connection_request(signer: StationSigner) -> bytes:
    """Signed, stamped now and tagged, as the receiver requires of a station's control frames (docs/link.md),
    made by the station's own frame builder."""
    header = ControlHeader(time.time_ns(), 1 + threading.get_ident() % (1 << 30))
    return control_frame(SendConnectionRequest(), signer.station, header, signer)


def _config(root: Path, trust_dir: Path, names: list[str], endpoint: str = "inproc://unused") -> IdcConfig:
    return IdcConfig(
        root=root,
        trust_dir=trust_dir,
        connection_endpoint=endpoint,
        connect_burst=len(names) + 5,
        stations={n: StationPolicy(n, "XX") for n in names},
    )


def _verify_rates(frames: list[bytes], trust: TrustStore) -> tuple[float, float]:
    """cryptography's verify in a tight loop over the very signatures and bytes of ``frames``: verifies/s
    on one thread (the limit the target is stated against) and on two threads splitting the work (the
    ceiling for the receiver's two verifier threads on this machine)."""
    jobs = []
    for raw in frames:
        frame = decode_frame(raw)
        assert isinstance(frame.body, DataBody)
        for sub in frame.body.channels:
            jobs.append((sub.auth_key_id, channel_signed_bytes(sub), sub.auth_value))
        jobs.append((frame.trailer.auth_key_id, frame_signed_bytes(raw), frame.trailer.auth_value))
    keys = {k.key_id: k.public_key for k in trust.keys}
    work = [
        (
            keys[key_id],
            encode_dss_signature(int.from_bytes(v[:32], "big"), int.from_bytes(v[32:], "big")),
            data,
        )
        for key_id, data, v in jobs
    ]
    algorithm = ec.ECDSA(hashes.SHA256())

    def loop(part: list) -> None:
        for public_key, der, data in part:
            public_key.verify(der, data, algorithm)

    best_one = best_two = float("inf")
    with ThreadPoolExecutor(2) as pool:
        for _ in range(3):
            started = time.perf_counter()
            loop(work)
            best_one = min(best_one, time.perf_counter() - started)
            started = time.perf_counter()
            list(pool.map(loop, [work[0::2], work[1::2]]))
            best_two = min(best_two, time.perf_counter() - started)
    return len(work) / best_one, len(work) / best_two


@dataclass
class _Run:
    """Wall time of a drive and the CPU it took: the receiver loop's thread and the whole receiver (the
    process plus its verifier workers), so a slow figure says whether CPU or waiting was short."""

    wall_s: float
    loop_cpu_s: float
    receiver_cpu_s: float


def _worker_cpu_s(receiver: Receiver) -> float:
    """CPU time used so far by the receiver's verifier worker processes (Linux /proc)."""
    total = 0
    for pid in receiver.checker.worker_pids:
        if pid is not None:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _drive(
    receiver: Receiver, sock: _StubSocket, messages: list[list[bytes]], progress: Progress, what: str
) -> _Run:
    """Feed ``messages`` in poll-round batches to the receiver's real processing path, as its loop does
    while more messages are waiting."""
    started, loop_cpu = time.perf_counter(), time.thread_time()
    receiver_cpu = time.process_time() + _worker_cpu_s(receiver)
    for i in range(0, len(messages), BATCH):
        receiver.handle(sock, messages[i : i + BATCH], settle=False)
        if i % (BATCH * 16) == 0:
            progress(f"{what}: {i}/{len(messages)} frames")
    receiver.settle()  # the last frames too are durable and acknowledged before the clock stops
    return _Run(
        time.perf_counter() - started,
        time.thread_time() - loop_cpu,
        time.process_time() + _worker_cpu_s(receiver) - receiver_cpu,
    )


def _cpu_figures(prefix: str, run: _Run, units: int, unit: str) -> dict:
    """CPU per unit on the loop thread and in the whole receiver, and how busy both cores were."""
    return {
        f"{prefix}_loop_thread_cpu_us_per_{unit}": round(run.loop_cpu_s / units * 1e6, 1),
        f"{prefix}_receiver_cpu_us_per_{unit}": round(run.receiver_cpu_s / units * 1e6, 1),
        f"{prefix}_cores_busy": round(run.receiver_cpu_s / run.wall_s, 2),
    }


def _open_sessions(receiver: Receiver, sock: _StubSocket, signers: list[StationSigner]) -> None:
    messages = [[s.station.encode(), _connection_request(s)] for s in signers]
    receiver.handle(sock, messages)


def _ingest(
    tmp: Path, ca: CertificateAuthority, signer: StationSigner, frames: list[bytes], progress: Progress
) -> _Run:
    receiver = Receiver(_config(tmp / "ingest", ca.trust_dir, ["STA1"]), ca.trust_store())
    sock = _StubSocket()
    try:
        _open_sessions(receiver, sock, [signer])
        run = _drive(receiver, sock, [[b"STA1", raw] for raw in frames], progress, "in-process ingest")
        if receiver.metrics.counters().get(("STA1", "frames")) != len(frames):
            raise RuntimeError(f"receiver archived {receiver.metrics.counters()} of {len(frames)} frames")
    finally:
        receiver.close()
    return run


def _socket_ingest(tmp: Path, ca: CertificateAuthority, signer: StationSigner, frames: list[bytes]) -> float:
    """Frames sent by a DEALER over ipc:// to the receiver's own poll loop; until the last is acked."""
    ctx = zmq.Context()
    receiver = Receiver(
        _config(tmp / "socket", ca.trust_dir, ["STA1"], f"ipc://{tmp}/idc.sock"),
        ca.trust_store(),
        context=ctx,
    )
    receiver.start()
    stop = threading.Event()
    loop = threading.Thread(target=receiver.run, args=(stop, 20), daemon=True)
    loop.start()
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(receiver.connection_endpoint)
    last = decode_frame(frames[-1]).header.sequence
    try:
        dealer.send(_connection_request(signer))
        _await(dealer, lambda f: f.header.frame_type == FrameType.CONNECTION_RESPONSE)
        started = time.perf_counter()
        for raw in frames:
            dealer.send(raw)
        _await(dealer, lambda f: isinstance(f.body, AcknackBody) and f.body.highest == last)
        return time.perf_counter() - started
    finally:
        stop.set()
        loop.join(10)
        dealer.close()
        receiver.close()
        ctx.term()


def _await(sock: zmq.Socket, wanted: Callable[[Frame], bool], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if sock.poll(1000) and wanted(decode_frame(sock.recv())):
            return
    raise RuntimeError("the receiver did not answer in time")


Network = list[tuple[str, StationSigner, list[tuple[str, int]]]]


def _ims_network(ca: CertificateAuthority, progress: Progress) -> Network:
    stations: Network = []
    for count, nchan, rates in IMS_MIX:
        for _ in range(count):
            name = f"S{len(stations):03d}"
            channels = [(f"C{i:02d}", rates[i % len(rates)]) for i in range(nchan)]
            stations.append((name, StationSigner.load(ca.issue(name).bundle), channels))
    progress(f"issued {len(stations)} station certificates")
    return stations


def _replay(tmp: Path, ca: CertificateAuthority, progress: Progress) -> dict:
    network = _ims_network(ca, progress)
    rng = np.random.default_rng(7)
    order = np.random.default_rng(8)
    messages = []
    for k in range(REPLAY_SLICE_S // FRAME_S):
        slot = [
            [name.encode(), _signed_frame(signer, name, k, chans, rng)] for name, signer, chans in network
        ]
        messages += [slot[i] for i in order.permutation(len(slot))]  # arrival order within a 10 s slot
        progress(f"replay frames built and signed: {len(messages)}")
    names = [name for name, _, _ in network]
    receiver = Receiver(_config(tmp / "replay", ca.trust_dir, names), ca.trust_store())
    sock = _StubSocket()
    first = len(network)  # the first 10 s slot creates every channel's folders and day files
    try:
        _open_sessions(receiver, sock, [signer for _, signer, _ in network])
        first_seconds = _drive(receiver, sock, messages[:first], progress, "IMS replay, first slot").wall_s
        steady = _drive(receiver, sock, messages[first:], progress, "IMS replay")
        seconds = steady.wall_s
        archived = sum(v for (_, name), v in receiver.metrics.counters().items() if name == "frames")
        if archived != len(messages):
            raise RuntimeError(f"receiver archived {archived} of {len(messages)} replayed frames")
    finally:
        receiver.close()
    channels = sum(len(c) for _, _, c in network)
    samples = sum(rate for _, _, c in network for _, rate in c) * REPLAY_SLICE_S
    steady_s = REPLAY_SLICE_S - FRAME_S  # simulated time of the timed steady part
    speed = steady_s / seconds
    # per simulated day: the slot that creates the files once, then steady-state slots
    day_s = first_seconds + seconds / steady_s * (S_PER_DAY - FRAME_S)
    return {
        "replay_stations": len(network),
        "replay_channels": channels,
        "replay_samples_per_s_real_time": samples // REPLAY_SLICE_S,
        "replay_slice_simulated_s": REPLAY_SLICE_S,
        "replay_frames": len(messages),
        "replay_first_slot_wall_s": round(first_seconds, 2),
        "replay_steady_wall_s": round(seconds, 2),
        "replay_frames_per_s": round((len(messages) - first) / seconds, 1),
        "replay_signatures_per_s": round(
            (len(messages) - first + channels * steady_s // FRAME_S) / seconds, 1
        ),
        "replay_x_real_time": round(speed, 1),
        "replay_minutes_per_simulated_day": round(day_s / 60, 1),
        **_cpu_figures(
            "replay", steady, channels * (REPLAY_SLICE_S - FRAME_S) // FRAME_S, "channel_subframe"
        ),
        "replay_target": "< 30 minutes per simulated day (>= 48x real time)",
    }


def run(progress: Progress) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-receiver-") as name:
        tmp = Path(name)
        ca = CertificateAuthority.create(tmp / "ca")
        signer = StationSigner.load(ca.issue("STA1").bundle)
        rng = np.random.default_rng(1)
        progress(f"building and signing {INGEST_FRAMES} frames of a {len(INGEST_CHANNELS)}-channel station")
        frames = [_signed_frame(signer, "STA1", seq, INGEST_CHANNELS, rng) for seq in range(INGEST_FRAMES)]
        sigs_per_frame = len(INGEST_CHANNELS) + 1
        samples_per_frame = sum(rate for _, rate in INGEST_CHANNELS) * FRAME_S

        progress("bare ECDSA P-256 verification (cryptography) over the same signatures")
        verifies, verifies_two = _verify_rates(frames, ca.trust_store())
        progress("receiver ingest, in-process")
        ingest = _ingest(tmp, ca, signer, frames, progress)
        t_ingest = ingest.wall_s
        progress("receiver ingest through DEALER -> ROUTER on ipc://")
        t_socket = _socket_ingest(tmp, ca, signer, frames)
        figures = {
            "ingest_frames": INGEST_FRAMES,
            "ingest_signatures_per_frame": sigs_per_frame,
            "ingest_samples_per_frame": samples_per_frame,
            "verify_limit_per_s": round(verifies, 1),
            "verify_limit_two_threads_per_s": round(verifies_two, 1),
            "ingest_frames_per_s": round(INGEST_FRAMES / t_ingest, 1),
            "ingest_samples_per_s": round(INGEST_FRAMES * samples_per_frame / t_ingest),
            "ingest_signatures_per_s": round(INGEST_FRAMES * sigs_per_frame / t_ingest, 1),
            "ingest_over_verify_limit": round(INGEST_FRAMES * sigs_per_frame / t_ingest / verifies, 3),
            "ingest_over_two_thread_limit": round(
                INGEST_FRAMES * sigs_per_frame / t_ingest / verifies_two, 3
            ),
            **_cpu_figures("ingest", ingest, INGEST_FRAMES, "frame"),
            "socket_frames_per_s": round(INGEST_FRAMES / t_socket, 1),
            "socket_over_verify_limit": round(INGEST_FRAMES * sigs_per_frame / t_socket / verifies, 3),
            "socket_over_two_thread_limit": round(
                INGEST_FRAMES * sigs_per_frame / t_socket / verifies_two, 3
            ),
            "ingest_target": ">= 0.8 of the (single-thread) verify limit",
        }
        progress(f"IMS-sized replay: building {REPLAY_SLICE_S} s of the whole network")
        figures.update(_replay(tmp, ca, progress))
        return figures
