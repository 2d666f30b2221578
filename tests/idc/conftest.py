"""A real network CA, station keys, a receiver running in a thread on 127.0.0.1, a DEALER client, and
``ims idc run`` as a daemon process whose log lines a test can wait for."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import numpy as np
import pytest
import zmq

from gci_link.cd11 import (
    ChannelStatus,
    ConnectionBody,
    Frame,
    FrameHeader,
    FrameType,
    OptionBody,
    build_data_frame,
    build_subframe,
    decode_frame,
    encode_frame,
    sign_all_channels,
    sign_frame,
)
from gci_link.keys import CertificateAuthority, StationSigner, TrustStore
from idc.config import IdcConfig, StationPolicy
from idc.server import Receiver
from timeunits import NS_PER_S

T = TypeVar("T")
T0 = 1_700_000_000 * 1_000_000_000  # 2023-11-14T22:13:20Z, on the 10 s grid


class FakeClock:
    """Starts at the real time (certificates must be valid) and moves only when a test says so."""

    def __init__(self) -> None:
        self.now = time.time_ns()

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * NS_PER_S)


@dataclass
class Keys:
    ca: CertificateAuthority
    sta1: StationSigner
    sta2: StationSigner
    revoked: StationSigner  # a STA1 key that the CA revoked
    stranger: StationSigner  # a STA1 key from another CA
    idc: StationSigner  # the IDC receiver's own key
    idc_bundle: Path  # where it lies (idc.key_bundle)


SIGNERS: dict[str, StationSigner] = {}  # each configured station's key, filled by the ``keys`` fixture
TAG = 0x5E55  # the session tag of the test stations' connection requests and control frames
_last_stamp = 0


def next_stamp() -> int:
    """A control-frame stamp: the wall clock (which the test receivers' clocks start from), never twice."""
    global _last_stamp
    _last_stamp = max(time.time_ns(), _last_stamp + 1)
    return _last_stamp


def control(name: str, kind: FrameType, body, tag: int = TAG) -> bytes:
    """A link-control frame from ``name`` as a station sends it: stamped now and tagged for its session
    (docs/link.md), signed with its key when it has one (the receiver requires every frame of a station
    that must sign to be signed, control frames included)."""
    frame = Frame(FrameHeader(kind, name, "0", next_stamp(), tag), body)
    signer = SIGNERS.get(name)
    if signer is not None:
        frame = sign_frame(frame, signer.key_id, signer.sign)
    return encode_frame(frame)


def connection_request(name: str, tag: int = TAG) -> bytes:
    return control(name, FrameType.CONNECTION_REQUEST, ConnectionBody(station=name), tag)


def make_keys(root: Path) -> Keys:
    """A network CA under ``root`` with the test stations' keys (and the attackers'), as the ``keys``
    fixture (tests/conftest.py) gives them; for the benchmarks, which run outside pytest."""
    ca = CertificateAuthority.create(root / "net")
    sta1 = StationSigner.load(ca.issue("STA1").bundle)
    sta2 = StationSigner.load(ca.issue("STA2").bundle)
    revoked = StationSigner.load(ca.issue("STA1").bundle)
    ca.revoke(revoked.key_id)
    other = CertificateAuthority.create(root / "other")
    stranger = StationSigner.load(other.issue("STA1").bundle)
    SIGNERS.update(STA1=sta1, STA2=sta2)
    idc_bundle = ca.issue_idc().bundle
    return Keys(ca, sta1, sta2, revoked, stranger, StationSigner.load(idc_bundle), idc_bundle)


def samples_for(seq: int, n: int = 400) -> np.ndarray:
    rng = np.random.default_rng(seq)
    return rng.integers(-(2**20), 2**20, n).astype(np.int32)


def data_frame(
    seq: int,
    signer: StationSigner | None,
    creator: str = "STA1",
    *,
    channel_signer=None,
    samples: np.ndarray | None = None,
    time_ns: int | None = None,
    status: ChannelStatus | None = None,
) -> Frame:
    """A 10 s, 40 sps, one-channel data frame; seq picks its slot on the 10 s grid and its samples."""
    start = T0 + (seq % 100_000) * 10 * NS_PER_S if time_ns is None else time_ns
    x = samples_for(seq) if samples is None else samples
    sub = build_subframe(
        x, site=f"{creator}A"[:5], channel="BHZ", location="00", time_ns=start, sample_rate=40.0,
        status=status,
    )
    frame = build_data_frame([sub], creator=creator, sequence=seq, nominal_time_ns=start)
    ch = channel_signer or signer
    if ch is not None:
        frame = sign_all_channels(frame, ch.key_id, ch.sign)
    if signer is not None:
        frame = sign_frame(frame, signer.key_id, signer.sign)
    return frame


def signed(seq: int, keys: Keys, **kw) -> bytes:
    return encode_frame(data_frame(seq, keys.sta1, **kw))


class Station:
    """A DEALER speaking CD-1.1 to the receiver, one frame per message."""

    def __init__(self, ctx: zmq.Context, endpoint: str, name: str = "STA1", **sockopts) -> None:
        self.name = name
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        for opt, value in sockopts.items():
            setattr(self.sock, opt, value)
        self.sock.connect(endpoint)

    def send(self, raw: bytes) -> None:
        self.sock.send(raw)

    def recv(self, timeout_s: float = 5.0) -> Frame | None:
        if not self.sock.poll(int(timeout_s * 1000)):
            return None
        return decode_frame(self.sock.recv())

    def recv_type(self, kind: FrameType, timeout_s: float = 5.0) -> Frame:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            frame = self.recv(max(0.01, deadline - time.monotonic()))
            if frame is not None and frame.header.frame_type == kind:
                return frame
        raise AssertionError(f"no {kind.name} frame within {timeout_s} s")

    def connect(self) -> Frame:
        self.send(connection_request(self.name))
        return self.recv_type(FrameType.CONNECTION_RESPONSE)

    def negotiate(self) -> Frame:
        """The option exchange, which also moves the station's session to this connection (as a station
        does on the data endpoint a connection response names)."""
        self.send(control(self.name, FrameType.OPTION_REQUEST, OptionBody(((1, self.name.encode()),))))
        return self.recv_type(FrameType.OPTION_RESPONSE)

    def acknack_covering(self, seq: int, timeout_s: float = 5.0):
        """Wait for an acknack whose highest reaches ``seq``; returns its body."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            body = self.recv_type(FrameType.ACKNACK, max(0.01, deadline - time.monotonic())).body
            if body.highest >= seq:
                return body
        raise AssertionError(f"no acknack covering {seq}")

    def close(self) -> None:
        self.sock.close()


def make_config(root: Path, trust_dir: Path, **overrides) -> IdcConfig:
    values = dict(
        root=root,
        trust_dir=trust_dir,
        connection_endpoint="tcp://127.0.0.1:*",
        data_endpoint="tcp://127.0.0.1:*",
        advertise_address="127.0.0.1",
        max_frame_bytes=64 * 1024,
        stations={
            "STA1": StationPolicy("STA1", "XX", sites=("STA1A",)),
            "STA2": StationPolicy("STA2", "XX", sites=("STA2A",)),
        },
    )
    values.update(overrides)
    return IdcConfig(**values)


class Running:
    """A receiver serving in a background thread; ``on_loop`` runs a call on that thread (the receiver's
    stores and database connections are its loop's alone); ``stop`` joins it and closes the stores."""

    def __init__(self, config: IdcConfig, trust: TrustStore, clock: FakeClock) -> None:
        self.ctx = zmq.Context()
        self.receiver = Receiver(config, trust, clock, self.ctx)
        self.receiver.start()
        self._stop = threading.Event()
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        """Receiver.run, with the calls asked for by ``on_loop`` between two poll rounds."""
        while not self._stop.is_set():
            self.receiver.step(20)
            while not self._calls.empty():
                call, result = self._calls.get()
                try:
                    result.set_result(call())
                except BaseException as exc:  # the caller sees it
                    result.set_exception(exc)

    def on_loop(self, call: Callable[[], T], timeout_s: float = 10.0) -> T:
        """``call()`` run on the loop thread, e.g. ``run.on_loop(run.receiver.metrics.counters)``."""
        result: Future[T] = Future()
        self._calls.put((call, result))
        return result.result(timeout_s)

    def counters_reaching(self, expected: dict[tuple[str, str], int], timeout_s: float = 5.0):
        """The receiver's counters once they hold ``expected`` (frames sent on other sockets may still be
        on their way), or as they are after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            counters = self.on_loop(self.receiver.metrics.counters)
            if expected.items() <= counters.items() or time.monotonic() > deadline:
                return counters
            time.sleep(0.02)

    def station(self, name: str = "STA1", endpoint: str | None = None, **opts) -> Station:
        return Station(self.ctx, endpoint or self.receiver.connection_endpoint, name, **opts)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive()
        self.receiver.close()
        self.ctx.destroy(linger=0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def process_running(pid: int) -> bool:
    """True while ``pid`` runs; a zombie has exited and only waits for its parent to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


REPO = Path(__file__).resolve().parents[2]


def idc_toml(root: Path, trust_dir: Path, endpoint: str = "tcp://127.0.0.1:*", extra: str = "") -> Path:
    """A receiver configuration file for ``ims idc run`` (data under ``root/data``, station STA1)."""
    path = root / "idc.toml"
    path.write_text(
        f"[idc]\nroot = 'data'\ntrust_dir = '{trust_dir}'\nconnection_endpoint = '{endpoint}'\n{extra}"
        "[stations.STA1]\nnetwork = 'XX'\n"
    )
    return path


def ims_idc(*args: str) -> list[str]:
    return [sys.executable, "-m", "station.ims", "idc", *args]


class DaemonLog:
    """A daemon's log lines (stderr), read on a thread so every wait for one is bounded."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in iter(stream.readline, ""):
            self._lines.put(line)

    def wait_for(self, text: str, timeout_s: float) -> str:
        """The first line from now on that holds ``text``; fails after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                self.seen.append(self._lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
            if text in self.seen[-1]:
                return self.seen[-1]
        raise AssertionError(f"no {text!r} within {timeout_s} s:\n" + "".join(self.seen))

    @property
    def text(self) -> str:
        return "".join(self.seen)


def start_idc_run(config: Path) -> tuple[subprocess.Popen[str], DaemonLog]:
    """``ims idc run --config CONFIG`` with its log read by a DaemonLog; the caller must end it."""
    proc = subprocess.Popen(
        ims_idc("run", "--config", str(config)), cwd=REPO, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    return proc, DaemonLog(proc.stderr)


def end(proc: subprocess.Popen[str]) -> None:
    """Kill a daemon still running and reap it (no test may leave a process behind)."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=20)
