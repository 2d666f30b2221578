"""SeedLink output at full IMS rate: sample-time-to-client latency, and how many clients are held.

IMS rate: ~300 stations x ~10 channels at 40 sps is about 2,670 channels; the receiver archives each
channel's 10 s frame as one 512-byte record, so the ring takes RECORDS_PER_S = 2,670 / 10 = 267 records
per second, appended as a receiver would, in batches (BATCHES_PER_S a second) with the ring's msync.
Each record's last sample is stamped "now" when it is appended, so latency = the time a client has the
packet minus its last sample's time: what the SeedLink hop adds to the data.

The server (its event-loop thread) and the appending thread run in this process; the clients run in a
second process (asyncio, one socket each, every client subscribed to every station, the worst case),
so server and clients share the machine's two cores. Probe clients decode every packet's header for
the latency; the others count packets. A client count is "held" when every client got every record of
the run and the probes' p99 latency stays within LATENCY_LIMIT_S; the count doubles until one is not.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from gci_link.io.mseed2 import header_id, pack_records
from idc.seedlink.protocol import Phase
from idc.seedlink.record import read_header
from idc.seedlink.ring import Ring
from idc.seedlink.server import RunningServer, ServerConfig, start_server
from timeunits import NS_PER_S

CHANNELS = 2670  # ~300 stations x ~10 channels
RECORD_INTERVAL_S = 10.0  # one record per channel per 10 s frame
RECORDS_PER_S = CHANNELS / RECORD_INTERVAL_S  # 267
BATCHES_PER_S = 10
RATE = 40.0
SAMPLES = int(RATE * RECORD_INTERVAL_S)  # 400 samples of small steps: one 512-byte Steim-2 record
RUN_S = 10.0
DRAIN_S = 10.0
LATENCY_LIMIT_S = 1.0
PROBES = 4
CLIENT_STEPS = (10, 100, 400, 1000, 1400, 2000, 2800)
PACKET = 8 + 512


def _channels() -> list[tuple[str, bytes]]:
    """(station, header id) of every channel: stations of ten channels each."""
    names = ("BHZ", "BHN", "BHE", "HHZ", "HHN", "HHE", "LHZ", "LHN", "LHE", "SHZ")
    out = []
    for i in range(CHANNELS):
        station = f"S{i // len(names):03d}"
        out.append((station, header_id("IM", station, "00", names[i % len(names)])))
    return out


class _Appender:
    """Appends RECORDS_PER_S records a second in batches, each record's last sample at "now"."""

    def __init__(self, ring: Ring) -> None:
        self.ring = ring
        self.channels = _channels()
        self.block = np.cumsum(np.random.default_rng(0).integers(-7, 8, SAMPLES)).astype(np.int32)
        self.appended = 0
        self.append_s: list[float] = []

    def _batch(self, first: int, count: int) -> list[tuple[str, str, str, str, bytes]]:
        picked = [self.channels[(first + i) % CHANNELS] for i in range(count)]
        last_ns = time.time_ns()
        start = last_ns - round((SAMPLES - 1) / RATE * NS_PER_S)
        packed = pack_records(
            np.tile(self.block, count),
            np.arange(count + 1, dtype=np.int64) * SAMPLES,
            np.full(count, start, dtype=np.int64),
            np.full(count, RATE),
            np.frombuffer(b"".join(h for _, h in picked), dtype=np.uint8).reshape(-1, 12),
        )
        assert len(packed.records) == count, "each channel's 10 s must fit one record"
        names = [(h[10:12].decode().strip(), h[0:5].decode().strip(), h[7:10].decode()) for _, h in picked]
        return [(net, sta, "00", cha, packed.records[i].tobytes()) for i, (net, sta, cha) in enumerate(names)]

    def run(self, seconds: float) -> None:
        per_batch = RECORDS_PER_S / BATCHES_PER_S
        started = time.monotonic()
        owed = 0.0
        for k in range(int(seconds * BATCHES_PER_S)):
            time.sleep(max(0.0, started + k / BATCHES_PER_S - time.monotonic()))
            owed += per_batch
            count = int(owed)
            owed -= count
            entries = self._batch(self.appended, count)
            t = time.perf_counter()
            self.ring.append_batch(entries)
            self.append_s.append(time.perf_counter() - t)
            self.appended += count


class _Counter(asyncio.Protocol):
    """One client: all stations, protocol 3 all-station mode; counts packets, probes time them."""

    def __init__(self, probe: bool) -> None:
        self.probe = probe
        self.bytes = 0
        self.pending = b""
        self.latencies_ns: list[int] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(b"DATA\r\n")

    def data_received(self, data: bytes) -> None:
        self.bytes += len(data)
        if not self.probe:
            return
        now = time.time_ns()
        buf = self.pending + data
        whole = len(buf) - len(buf) % PACKET
        for at in range(0, whole, PACKET):
            head = read_header(buf[at + 8 : at + PACKET])
            last = head.end_ns - round(NS_PER_S / RATE)
            self.latencies_ns.append(now - last)
        self.pending = buf[whole:]


def _clients(address: tuple[str, int], count: int, pipe: Connection) -> None:
    """Client process: connect ``count`` clients, report connected, then on the word report packets."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        clients = []
        for i in range(count):
            _, proto = await loop.create_connection(functools.partial(_Counter, i < PROBES), *address)
            clients.append(proto)
        pipe.send("connected")
        cpu, wall = time.process_time(), time.perf_counter()
        expected = await loop.run_in_executor(None, pipe.recv)
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline and min(c.bytes for c in clients) < expected * PACKET:
            await asyncio.sleep(0.05)
        counts = [c.bytes // PACKET for c in clients]
        cores = (time.process_time() - cpu) / (time.perf_counter() - wall)
        pipe.send((counts, [x for c in clients for x in c.latencies_ns], cores))

    asyncio.run(main())


def _streaming(server: RunningServer) -> int:
    return sum(1 for c in list(server.server.clients) if c.session and c.session.phase is Phase.STREAMING)


def _step(ring: Ring, server: RunningServer, count: int, progress: Callable[[str], None]) -> dict:
    """One run at full rate with ``count`` clients: packets each got, probe latencies, server CPU."""
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    child = ctx.Process(target=_clients, args=(server.address, count, theirs), daemon=True)
    child.start()
    if not ours.poll(60) or ours.recv() != "connected":
        raise RuntimeError(f"{count} clients did not connect")
    deadline = time.monotonic() + 30
    while _streaming(server) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    progress(f"{count} clients streaming; appending at {RECORDS_PER_S:.0f} records/s for {RUN_S:.0f} s")
    appender = _Appender(ring)
    cpu, wall = time.process_time(), time.perf_counter()
    appender.run(RUN_S)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    ours.send(appender.appended)
    counts, latencies, client_cores = ours.recv()
    child.join(30)
    lat = np.array(latencies, dtype=np.float64) / NS_PER_S
    return {
        "clients": count,
        "records": appender.appended,
        "complete": sum(1 for c in counts if c >= appender.appended),
        "p50_s": float(np.percentile(lat, 50)) if len(lat) else float("inf"),
        "p99_s": float(np.percentile(lat, 99)) if len(lat) else float("inf"),
        "server_cores": cpu / wall,  # this process: event loop + appender (ring writes, msync)
        "client_cores": client_cores,  # the client process, from connected to its report
        "append_ms_p50": float(np.percentile(appender.append_s, 50) * 1e3),
    }


def run(progress: Callable[[str], None]) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-seedlink-") as name:
        ring = Ring.open(Path(name) / "seedlink.ring", records=1 << 16)  # msync per batch, as deployed
        config = ServerConfig(max_clients=max(CLIENT_STEPS) + 10)
        server = start_server(ring, "127.0.0.1:0", config)
        steps = []
        try:
            for count in CLIENT_STEPS:
                step = _step(ring, server, count, progress)
                held = step["complete"] == count and step["p99_s"] <= LATENCY_LIMIT_S
                progress(
                    f"{count} clients: {step['complete']} complete, p50 {step['p50_s'] * 1e3:.1f} ms, "
                    f"p99 {step['p99_s'] * 1e3:.1f} ms, server {step['server_cores']:.2f} cores, "
                    f"clients {step['client_cores']:.2f} cores" + ("" if held else " - not held")
                )
                steps.append((step, held))
                _wait_for_disconnects(server)
                if not held:
                    break
        finally:
            server.stop()
            ring.close()
    first = steps[0][0]
    held_steps = [s for s, ok in steps if ok]
    best = held_steps[-1] if held_steps else None
    figures: dict = {
        "ims_channels": CHANNELS,
        "ims_records_per_s": RECORDS_PER_S,
        "latency_limit_p99_s": LATENCY_LIMIT_S,
        f"latency_p50_ms_at_{first['clients']}_clients": round(first["p50_s"] * 1e3, 2),
        f"latency_p99_ms_at_{first['clients']}_clients": round(first["p99_s"] * 1e3, 2),
        "ring_append_ms_per_batch_p50": round(first["append_ms_p50"], 2),
        "clients_held_at_ims_rate": best["clients"] if best else 0,
        "clients_tried_up_to": max(s["clients"] for s, _ in steps),
    }
    if best is not None:
        figures["latency_p50_ms_at_most_clients_held"] = round(best["p50_s"] * 1e3, 2)
        figures["latency_p99_ms_at_most_clients_held"] = round(best["p99_s"] * 1e3, 2)
        figures["latency_p99_over_limit_at_most_clients_held"] = round(best["p99_s"] / LATENCY_LIMIT_S, 3)
        figures["server_cores_at_most_clients_held"] = round(best["server_cores"], 2)
        figures["client_process_cores_at_most_clients_held"] = round(best["client_cores"], 2)
    figures["clients_target"] = "every client gets every record, probes' p99 <= the limit; 2 cores shared"
    return figures


def _wait_for_disconnects(server: RunningServer) -> None:
    deadline = time.monotonic() + 30
    while server.server.clients and time.monotonic() < deadline:
        time.sleep(0.05)
