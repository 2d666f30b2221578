"""Records built from known samples with the archive's own packer, a ring on disk, and SeedLink servers
on 127.0.0.1 (any free port) that the tests stop."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from gci_link.io.mseed2 import header_id, pack_records
from idc.seedlink.protocol import Phase
from idc.seedlink.ring import Ring
from idc.seedlink.server import RunningServer, ServerConfig, start_server
from timeunits import NS_PER_S

T0 = 1_700_000_000 * NS_PER_S  # 2023-11-14T22:13:20Z


def walk(seed: int, n: int) -> np.ndarray:
    """Known int32 samples: a random walk, about as compressible as broadband counts."""
    return np.cumsum(np.random.default_rng(seed).integers(-800, 801, n)).astype(np.int32)


def records(
    network: str,
    station: str,
    location: str,
    channel: str,
    start_ns: int,
    samples: np.ndarray,
    rate: float = 40.0,
) -> bytes:
    """The samples as 512-byte Steim-2 records, packed as the receiver's archive packs them."""
    ids = np.frombuffer(header_id(network, station, location, channel), dtype=np.uint8).reshape(1, 12)
    packed = pack_records(samples, np.array([0, len(samples)]), np.array([start_ns]), np.array([rate]), ids)
    return packed.records.tobytes()


def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def streaming_clients(server: RunningServer) -> int:
    return sum(1 for c in list(server.server.clients) if c.session and c.session.phase is Phase.STREAMING)


@pytest.fixture
def ring(tmp_path) -> Iterator[Ring]:
    with Ring.open(tmp_path / "seedlink.ring", records=4096, sync=False) as r:
        yield r


@pytest.fixture
def serve() -> Iterator[Callable[..., RunningServer]]:
    """``serve(ring, **config)``: a server on a free port (or ``port=``), stopped after the test."""
    running: list[RunningServer] = []

    def start(ring: Ring, port: int = 0, **config: object) -> RunningServer:
        server = start_server(ring, f"127.0.0.1:{port}", ServerConfig(**config))  # type: ignore[arg-type]
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()
