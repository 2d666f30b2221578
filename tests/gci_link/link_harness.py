"""Processes and checks shared by the link crash and outage tests.

The station (``tests/gci_link/link_station.py``) and the IDC receiver (``ims idc run``) run as separate
processes on one simulated clock, so a SIGKILL is a real crash. The checks compare what the IDC archived,
read back with ObsPy's SDS client, against the frames the station's outbox holds, decoded by the codec.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gci_link.cd11 import DataBody, decode_frame
from gci_link.clock import SIM_CLOCK_ENV, sim_clock_spec
from gci_link.gaplist import GapList
from gci_link.keys import CertificateAuthority
from gci_link.station_end.outbox import Outbox, OutboxFrame
from hil.compare import ChannelComparison, compare_channel, read_sds_traces
from idc.stores import Quarantine, StationStore, read_arrivals
from station.publisher import DATA_KIND
from tests.gci_link.link_station import FRAME_S, STATION
from timeunits import NS_PER_S

REPO = Path(__file__).resolve().parents[2]
NETWORK = "XX"


@dataclass(frozen=True)
class SimTime:
    """The shared simulated clock: data time starts on the frame grid and runs ``speed`` times real time."""

    start_ns: int
    wall0_ns: int
    speed: float

    @classmethod
    def starting_now(cls, speed: float) -> SimTime:
        wall0 = time.time_ns()
        grid = FRAME_S * NS_PER_S
        return cls(wall0 - wall0 % grid, wall0, speed)

    def env(self) -> dict[str, str]:
        return os.environ | {SIM_CLOCK_ENV: sim_clock_spec(self.start_ns, self.wall0_ns, self.speed)}

    def now_ns(self) -> int:
        return self.start_ns + int((time.time_ns() - self.wall0_ns) * self.speed)

    def wait_until(self, t_ns: int) -> None:
        while (left := (t_ns - self.now_ns()) / self.speed / NS_PER_S) > 0:
            time.sleep(min(left, 0.05))


@dataclass(frozen=True)
class NetworkKeys:
    trust_dir: Path  # for the IDC (station certificates) and the station (IDC certificates)
    station: Path  # key bundle of STA1
    idc: Path  # key bundle of the IDC receiver


def station_keys(folder: Path) -> NetworkKeys:
    """The keys of a fresh network CA: STA1's and the IDC's, so both ends sign and check each other."""
    ca = CertificateAuthority.create(folder / "ca")
    return NetworkKeys(ca.trust_dir, ca.issue(STATION).bundle, ca.issue_idc().bundle)


def write_idc_config(
    path: Path,
    keys: NetworkKeys,
    port: int,
    *,
    data_port: int | None = None,
    silence_timeout_s: float = 120.0,
    speed: float = 1.0,
) -> Path:
    """The receiver's configuration; its control window allows for 5 s of real delay at ``speed``."""
    lines = [
        "[idc]",
        "root = 'idc'",
        f"trust_dir = '{keys.trust_dir}'",
        f"key_bundle = '{keys.idc}'",
        f"connection_endpoint = 'tcp://127.0.0.1:{port}'",
        f"silence_timeout_s = {silence_timeout_s}",
        f"control_window_s = {max(300.0, 5.0 * speed)}",
        "connect_rate_per_s = 1000.0",
        "connect_burst = 1000",
    ]
    if data_port is not None:
        lines.append(f"data_endpoint = 'tcp://127.0.0.1:{data_port}'")
    lines += [f"[stations.{STATION}]", f"network = '{NETWORK}'"]
    path.write_text("\n".join(lines) + "\n")
    return path


class Daemon:
    """One restartable process; every incarnation logs (stdout and stderr) to the same file."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        assert not self.alive, "already running"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        self.starts += 1

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or closed."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def terminate(self, timeout_s: float = 20.0) -> int:
        """SIGTERM and wait for the exit status (SIGKILL and fail if it does not come)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            what = " ".join(self.argv[2:5])
            raise AssertionError(f"{what} ignored SIGTERM for {timeout_s} s; see {self.log_path}") from None

    def stop_quietly(self) -> None:
        """Clean-up after a failed test: make sure nothing is left running."""
        if self.alive:
            assert self.process is not None
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def idc_daemon(config: Path, sim: SimTime, log_path: Path) -> Daemon:
    argv = [sys.executable, "-m", "station.ims", "idc", "run", "--config", str(config)]
    return Daemon(argv, sim.env(), log_path)


def station_daemon(
    folder: Path,
    keys: NetworkKeys,
    endpoint: str,
    sim: SimTime,
    end_ns: int,
    timeout_scale: float = 1.0,
    channels: int = 3,
) -> Daemon:
    argv = [
        sys.executable,
        "-m",
        "tests.gci_link.link_station",
        "--outbox",
        str(folder / "outbox.db"),
        "--bundle",
        str(keys.station),
        "--idc-trust",
        str(keys.trust_dir),
        "--endpoint",
        endpoint,
        "--start-ns",
        str(sim.start_ns),
        "--end-ns",
        str(end_ns),
        "--status",
        str(folder / "status.json"),
        "--timeout-scale",
        repr(timeout_scale),
        "--channels",
        str(channels),
    ]
    return Daemon(argv, sim.env(), folder / "station.log")


def read_status(folder: Path) -> dict:
    return json.loads((folder / "status.json").read_text())


def wait_for(
    predicate: Callable[[], bool], timeout_s: float, what: Callable[[], str], poll_s: float = 0.05
) -> None:
    """Poll until ``predicate()``; on timeout fail with ``what()`` (built then, so logs are current)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what()}")
        time.sleep(poll_s)


def outbox_frames(path: Path) -> list[OutboxFrame]:
    """Every data frame the outbox holds, lowest sequence first."""
    with Outbox(path, 1 << 34) as outbox:
        return list(reversed(outbox.newest(outbox.stats().frames + 1, DATA_KIND)))


def outbox_unacked(path: Path) -> int:
    if not path.exists():
        return -1
    with Outbox(path, 1 << 34) as outbox:
        return outbox.stats().unacked_frames


def idc_gap_list(idc_root: Path) -> GapList:
    store = StationStore(idc_root / "raw" / f"{STATION}.sqlite")
    try:
        return store.gap_list()
    finally:
        store.close()


def idc_arrivals(idc_root: Path) -> dict[int, int]:
    """Sequence number -> IDC receive time (simulated ns) of the copy it archived."""
    return {seq: received_ns for seq, received_ns, _ in read_arrivals(idc_root / "raw" / f"{STATION}.sqlite")}


def quarantine_reasons(idc_root: Path) -> set[str]:
    """Rejection kinds in the IDC quarantine (the text before the colon of each reason)."""
    quarantine = Quarantine(idc_root / "quarantine.sqlite", max_bytes=0, max_item_bytes=0, max_rows=1 << 62)
    try:
        return {reason.split(":", 1)[0] for _, _, _, reason, _ in quarantine.entries()}
    finally:
        quarantine.close()


def compare_archive(idc_root: Path, frames: list[OutboxFrame]) -> list[ChannelComparison]:
    """Each channel of the outbox frames (decoded, concatenated in time) against the SDS archive.

    Asserts the outbox frames themselves are contiguous in data time, so the concatenation is the
    truth the archive must equal sample for sample.
    """
    truth: dict[tuple[str, str, str], list[np.ndarray]] = {}
    first: dict[tuple[str, str, str], tuple[int, float]] = {}
    ends: dict[tuple[str, str, str], int] = {}
    for stored in frames:
        body = decode_frame(stored.frame).body
        assert isinstance(body, DataBody)
        for sub in body.channels:
            key = (sub.site, sub.location, sub.channel)
            if key in ends:
                assert sub.time_ns == ends[key], f"outbox seq {stored.seq}: {key} not contiguous in time"
            else:
                first[key] = (sub.time_ns, sub.sample_rate)
            ends[key] = sub.time_ns + sub.time_length_ms * 1_000_000
            truth.setdefault(key, []).append(np.asarray(sub.samples, dtype=np.int64))
    results = []
    for key, parts in sorted(truth.items()):
        site, location, channel = key
        start_ns, rate = first[key]
        traces = read_sds_traces(idc_root / "sds", NETWORK, site, location, channel, start_ns, ends[key])
        results.append(compare_channel(channel, start_ns, rate, np.concatenate(parts), traces))
    return results
