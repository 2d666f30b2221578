"""Clients that misbehave get clear errors and bounded resources, and never disturb a client that
behaves: garbage, overlong lines, thousands of selectors and stations, too many connections, silent
and stalled sockets, a client the ring overtakes."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

from idc.seedlink.protocol import Limits, Session
from idc.seedlink.ring import Ring
from idc.seedlink.server import SeedLinkServer, ServerConfig
from tests.idc.seedlink.conftest import T0, records, streaming_clients, wait_until, walk
from timeunits import NS_PER_S

PACKET = 8 + 512


class Raw:
    """A plain TCP client speaking SeedLink by hand."""

    def __init__(self, address, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(address)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError(f"closed after {len(self.buf)} of {n} bytes")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError(f"closed; pending {self.buf[:80]!r}")
            self.buf += chunk
        out, _, self.buf = self.buf.partition(b"\r\n")
        return out

    def closed_by_server(self) -> bool:
        """True once the server has closed (all it sent before is read and dropped)."""
        try:
            while self.sock.recv(1 << 16):
                pass
        except ConnectionResetError:
            pass
        return True

    def close(self) -> None:
        self.sock.close()


def _append(ring: Ring, k: int) -> int:
    return ring.append(
        "XX", "STA1", "00", "BHZ", records("XX", "STA1", "00", "BHZ", T0 + k * NS_PER_S, walk(k, 40))
    )


def _watcher(server) -> Raw:
    """A well-behaved protocol 3 client streaming STA1 in real time."""
    good = Raw(server.address)
    good.send(b"STATION STA1 XX\r\n")
    assert good.line() == b"OK"
    good.send(b"DATA\r\n")
    assert good.line() == b"OK"
    good.send(b"END\r\n")
    wait_until(lambda: streaming_clients(server) >= 1)
    return good


def test_garbage_overlong_lines_and_floods_get_errors_and_leave_others_alone(ring, serve, caplog):
    caplog.set_level(logging.INFO)
    server = serve(ring, limits=Limits(max_line_bytes=256, max_selectors=32, max_stations=50, max_errors=10))
    good = _watcher(server)

    garbage = Raw(server.address)
    garbage.send(
        os.urandom(2000).replace(b"\r", b"").replace(b"\n", b"") + b"\r\n" + b"\x00\xff\x7f junk\r\n"
    )
    assert garbage.line() == b"ERROR"  # the 2000 bytes: an overlong line
    assert garbage.line() == b"ERROR"  # the junk line: not ASCII
    garbage.send(b"CAPABILITIES EXTREPLY\r\nNOPE\r\n")
    assert garbage.line() == b"OK"
    assert garbage.line() == b"ERROR\rUNSUPPORTED unknown command NOPE"

    long_line = Raw(server.address)
    long_line.send(b"SLPROTO 4.0\r\n" + b"A" * 1_000_000)  # a megabyte without a line end
    assert long_line.line() == b"OK"
    assert long_line.line() == b"ERROR LIMIT command line longer than 256 bytes"
    long_line.send(b"\r\nHELLO\r\n")  # the rest of that line is dropped; the connection still works
    assert long_line.line().startswith(b"SeedLink v4.0")

    selectors = Raw(server.address)
    selectors.send(b"STATION STA1 XX\r\n" + b"".join(b"SELECT %03d\r\n" % (i % 1000) for i in range(5000)))
    replies = [selectors.line() for _ in range(1 + 32 + 10)]
    assert replies[:33] == [b"OK"] * 33 and replies[33:] == [b"ERROR"] * 10  # 10 errors: closed
    assert selectors.closed_by_server()

    stations = Raw(server.address)
    stations.send(b"SLPROTO 4.0\r" + b"".join(b"STATION XX_S%d\r" % i for i in range(3000)))
    replies = [stations.line() for _ in range(1 + 50 + 10)]
    assert replies[:51] == [b"OK"] * 51
    assert replies[51] == b"ERROR LIMIT more than 50 stations"
    assert replies[-1] == b"ERROR LIMIT more than 50 stations; too many errors, closing"
    assert stations.closed_by_server()

    # meanwhile the well-behaved client is served, in order, as if nothing happened
    seqs = [_append(ring, k) for k in range(20)]
    got = [int(good.read(PACKET)[2:8], 16) for _ in seqs]
    assert got == seqs
    assert "command refused" in caplog.text and "client closed after too many refused commands" in caplog.text
    for c in (good, garbage, long_line, selectors, stations):
        c.close()


def test_connections_past_the_limit_are_refused_with_a_reason(ring, serve, caplog):
    server = serve(ring, max_clients=2)
    first, second = Raw(server.address), Raw(server.address)
    wait_until(lambda: len(server.server.clients) == 2)
    third = Raw(server.address)
    assert third.line() == b"ERROR LIMIT too many clients (2)"
    assert third.closed_by_server()
    assert "too many clients" in caplog.text
    first.send(b"HELLO\r\n")
    assert first.line().startswith(b"SeedLink")
    for c in (first, second, third):
        c.close()


def test_a_silent_client_is_dropped_after_the_handshake_timeout(ring, serve, caplog):
    caplog.set_level(logging.INFO)
    server = serve(ring, handshake_timeout_s=0.3, housekeeping_s=0.05)
    silent = Raw(server.address)
    assert silent.closed_by_server()
    wait_until(lambda: any(getattr(r, "reason", "") == "handshake timed out" for r in caplog.records))
    silent.close()


def test_a_stalled_client_neither_slows_the_others_nor_grows_memory(tmp_path, serve, caplog):
    ring = Ring.open(tmp_path / "big", records=16384, sync=False)
    config = dict(write_buffer_bytes=64 << 10, stall_timeout_s=1.0, housekeeping_s=0.05)
    server = serve(ring, **config)
    stalled = Raw(server.address, rcvbuf=4096)
    stalled.send(b"STATION STA1 XX\r\nDATA\r\nEND\r\n")  # then never reads
    good = _watcher(server)
    wait_until(lambda: streaming_clients(server) == 2)
    peak = 0

    def buffered() -> None:
        nonlocal peak
        while not done.is_set():
            for c in list(server.server.clients):
                if c.transport is not None:
                    peak = max(peak, c.transport.get_write_buffer_size())
            time.sleep(0.005)

    done = threading.Event()
    meter = threading.Thread(target=buffered, daemon=True)
    meter.start()
    # more than the kernel's socket buffers (4 MB at most here) hold, in one go
    blob = records("XX", "STA1", "00", "BHZ", T0, walk(5, 40 * 86400))
    seqs = ring.append_batch([("XX", "STA1", "00", "BHZ", blob)])
    assert len(seqs) * PACKET > 5 << 20
    got = [int(good.read(PACKET)[2:8], 16) for _ in seqs]
    assert got == list(seqs)  # all of it, promptly, while the other client takes nothing
    wait_until(lambda: "seedlink client stalled" in caplog.text, 10)
    done.set()
    meter.join()
    # bounded by the write-buffer limit plus at most one pump chunk (512 packets)
    assert peak <= (64 << 10) + 512 * PACKET
    assert len(server.server.clients) == 1
    stalled.close()
    good.close()
    server.stop()
    ring.close()


def test_a_client_the_ring_overtakes_goes_on_from_the_oldest_record_held(tmp_path):
    """What the adapter does when a client's cursor was overwritten: the read reports where the ring
    really starts, and the session moves on from there, logging how many records the client lost."""
    with Ring.open(tmp_path / "small", records=16, sync=False) as ring:
        server = SeedLinkServer(ring, ServerConfig())
        session = Session(ring, server.identity, peer="slow")
        session.feed(b"STATION STA1 XX\r\nDATA\r\nEND\r\n", T0)
        assert session.cursor == 1
        for k in range(40):  # the client takes nothing meanwhile
            _append(ring, k)
        framed, first, next_seq = server.records_from(session.cursor, 100)
        assert (first, next_seq) == (ring.oldest_seq, ring.next_seq) == (25, 41)
        session.skip_to(first)
        packets = session.stream(framed, next_seq)
        sent = [int(packets[i + 2 : i + 8], 16) for i in range(0, len(packets), PACKET)]
        assert sent == list(range(25, 41))
        lost = [
            e for e in session.take_events() if e.message == "client fell behind the ring; records lost to it"
        ]
        assert [e.fields for e in lost] == [{"peer": "slow", "from_seq": 1, "lost": 24}]


def test_repeated_info_requests_do_not_rescan_the_ring_each_time(tmp_path):
    """The channel summary scans the whole ring; INFO floods get one at most info_max_age_s old."""
    with Ring.open(tmp_path / "r", records=64, sync=False) as ring:
        _append(ring, 0)
        fresh = SeedLinkServer(ring, ServerConfig(info_max_age_s=0.0)).view
        cached = SeedLinkServer(ring, ServerConfig(info_max_age_s=3600.0)).view
        assert len(fresh.streams()) == len(cached.streams()) == 1
        ring.append("XX", "STA2", "00", "BHZ", records("XX", "STA2", "00", "BHZ", T0, walk(1, 40)))
        assert len(fresh.streams()) == 2
        assert len(cached.streams()) == 1  # the same summary until it is an hour old
