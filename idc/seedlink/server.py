"""asyncio TCP adapter of the SeedLink core: serves a :class:`~idc.seedlink.ring.Ring` to many clients.

New records reach clients in real time: the ring calls a listener after every append batch, which
wakes the event loop (``call_soon_threadsafe``, no polling). The newest records are read from the ring
once per wake-up and kept framed in a small shared cache, so a hundred clients cost one read and one
framing per record; a client that is behind reads the ring itself, a bounded chunk per turn.

A slow client never holds the others up or grows memory: its socket buffer is bounded (asyncio's
write-buffer limits), and while it is full the client's cursor simply stays where it is in the ring,
which is the buffer. If the ring overwrites records the client was not sent yet, it goes on from the
oldest held (logged with the number lost); a client whose socket has taken nothing for
``stall_timeout_s`` is disconnected (logged). Handshakes must finish within ``handshake_timeout_s``.

:func:`start_server` runs the server on its own thread and event loop, for a receiver whose main loop
is not asyncio; :class:`SeedLinkServer` can also run on an existing loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from idc.seedlink.info import Identity
from idc.seedlink.protocol import FramedRecord, Limits, Phase, Session
from idc.seedlink.ring import Accept, Ring, StreamSummary

log = logging.getLogger(__name__)

DEFAULT_PORT = 18000
PUMP_RECORDS = 512  # ring slots one client looks at per read
PUMP_BUDGET = 4096  # ... and per turn of the event loop, so a client catching up lets others run
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}


class SeedLinkServerError(Exception):
    """The server could not start (the message names the address and the reason)."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    max_clients: int = 100
    organization: str = "IMS IDC"  # second line of HELLO
    software: str = "IMS-IDC"
    limits: Limits = field(default_factory=Limits)
    handshake_timeout_s: float = 120.0
    stall_timeout_s: float = 300.0
    end_grace_s: float = 5.0  # after END, the client has this long to close before the server does
    write_buffer_bytes: int = 256 << 10  # per client; above it the client is not read for
    cache_records: int = 8192  # newest records kept framed for every client to share
    housekeeping_s: float = 1.0  # timeouts and time-window ends are checked this often
    info_max_age_s: float = 10.0  # INFO STATIONS/STREAMS may be this old (the summary scans the ring)


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) of the ``listen`` setting; ValueError saying what is wrong."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:{DEFAULT_PORT}")
    return host.strip("[]"), int(port)


class _RingView:
    """The ring as sessions see it, with its channel summary (for INFO) recomputed at most every
    ``max_age_s``: it scans the whole ring (about 0.5 s for 1 GiB), which clients repeating INFO
    must not make the event loop do over and over."""

    def __init__(self, ring: Ring, max_age_s: float) -> None:
        self.ring = ring
        self.max_age_s = max_age_s
        self._streams: list[StreamSummary] = []
        self._at = float("-inf")

    @property
    def next_seq(self) -> int:
        return self.ring.next_seq

    @property
    def oldest_seq(self) -> int:
        return self.ring.oldest_seq

    def first_seq_ending_after(self, time_ns: int) -> int:
        return self.ring.first_seq_ending_after(time_ns)

    def start_of(self, seq: int) -> int | None:
        return self.ring.start_of(seq)

    def streams(self) -> list[StreamSummary]:
        now = time.monotonic()
        if now - self._at > self.max_age_s:
            self._streams, self._at = self.ring.streams(), now
        return self._streams


class SeedLinkServer:
    """Serves ``ring`` on ``config.host``:``config.port`` once :meth:`start` is awaited."""

    def __init__(self, ring: Ring, config: ServerConfig, clock: Callable[[], int] = time.time_ns) -> None:
        self.ring = ring
        self.config = config
        self.clock = clock
        self.identity = Identity(config.software, config.organization, clock())
        self.view = _RingView(ring, config.info_max_age_s)
        self.clients: set[_Client] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._wake_pending = threading.Event()
        self._housekeeping: asyncio.TimerHandle | None = None
        self._cache: list[FramedRecord | None] = []
        self._cache_first = ring.next_seq  # sequence number of _cache[0]

    @property
    def address(self) -> tuple[str, int]:
        """Where the server listens (the port the system chose when configured with port 0)."""
        assert self._server is not None and self._server.sockets
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        try:
            self._server = await self._loop.create_server(
                lambda: _Client(self),
                self.config.host,
                self.config.port,
                reuse_address=True,
                backlog=max(100, self.config.max_clients),  # many clients reconnect at once after a restart
            )
        except OSError as exc:
            raise SeedLinkServerError(
                f"cannot listen on {self.config.host}:{self.config.port}: {exc.strerror or exc}"
            ) from None
        self.ring.add_listener(self._on_append)
        self._housekeeping = self._loop.call_later(self.config.housekeeping_s, self._tick)
        log.info("seedlink server listening", extra={"address": ":".join(map(str, self.address))})

    async def close(self) -> None:
        """Stop listening, disconnect every client and detach from the ring."""
        self.ring.remove_listener(self._on_append)
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        if self._server is not None:
            self._server.close()
        for client in list(self.clients):
            client.close("server stopping", abort=True)
        if self._server is not None:
            await self._server.wait_closed()
        log.info("seedlink server stopped")

    # ---- new records

    def _on_append(self) -> None:
        """Ring listener (the appending thread): wake the loop once, however many batches come first."""
        if self._loop is None or self._wake_pending.is_set():
            return
        self._wake_pending.set()
        try:
            self._loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the loop has closed: the server is gone
            pass

    def _wake(self) -> None:
        self._wake_pending.clear()
        self._refresh_cache()
        for client in list(self.clients):
            client.pump()

    def _refresh_cache(self) -> None:
        """Read the records appended since the last wake-up into the shared cache, framed on demand."""
        head = self.ring.next_seq
        end = self._cache_first + len(self._cache)
        if head - end > self.config.cache_records or end < self.ring.oldest_seq:  # start afresh near the head
            self._cache = []
            self._cache_first = end = max(self.ring.oldest_seq, head - self.config.cache_records)
        while end < head:
            batch = self.ring.read(end, head - end)
            if batch.first_seq > end:  # overwritten meanwhile: restart the cache there
                self._cache, self._cache_first = [], batch.first_seq
            for rec in batch.records:
                self._cache.extend([None] * (rec.seq - self._cache_first - len(self._cache)))
                self._cache.append(FramedRecord(rec))
            self._cache.extend([None] * (batch.next_seq - self._cache_first - len(self._cache)))
            end = batch.next_seq
        excess = len(self._cache) - self.config.cache_records
        if excess > self.config.cache_records // 4:  # trim in steps, not on every wake-up
            del self._cache[:excess]
            self._cache_first += excess

    def records_from(
        self, seq: int, max_records: int, accept: Accept | None = None
    ) -> tuple[list[FramedRecord], int, int]:
        """(records, first sequence number covered, next sequence number) from ``seq`` on: from the
        shared cache where it holds them, else read from the ring, skipping channels ``accept`` does
        not want without copying them (a client catching up on a few stations of a full ring)."""
        first = self._cache_first
        end = first + len(self._cache)
        if first <= seq < end:
            stop = min(end, seq + max_records)
            return [f for f in self._cache[seq - first : stop - first] if f is not None], seq, stop
        batch = self.ring.read(seq, max_records, accept)
        return [FramedRecord(r) for r in batch.records], batch.first_seq, batch.next_seq

    # ---- housekeeping

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        for client in list(self.clients):
            client.housekeeping(now)
        self._housekeeping = self._loop.call_later(self.config.housekeeping_s, self._tick)


class _Client(asyncio.Protocol):
    """One connection: bytes to and from its :class:`Session`."""

    def __init__(self, server: SeedLinkServer) -> None:
        self.server = server
        self.config = server.config
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.peer = "?"
        self.paused_since: float | None = None
        self.connected_at = 0.0
        self.deadline: float | None = None  # handshake, or the grace after END
        self.reason = "client closed"
        self._pump_scheduled = False

    # ---- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        loop = asyncio.get_running_loop()
        self.connected_at = loop.time()
        if len(self.server.clients) >= self.config.max_clients:
            log.warning(
                "seedlink client refused: too many clients",
                extra={"peer": self.peer, "max_clients": self.config.max_clients},
            )
            transport.write(f"ERROR LIMIT too many clients ({self.config.max_clients})\r\n".encode())
            transport.close()
            return
        self.server.clients.add(self)
        transport.set_write_buffer_limits(high=self.config.write_buffer_bytes)
        self.session = Session(self.server.view, self.server.identity, self.config.limits, self.peer)
        self.deadline = self.connected_at + self.config.handshake_timeout_s
        log.info("seedlink client connected", extra={"peer": self.peer, "clients": len(self.server.clients)})

    def data_received(self, data: bytes) -> None:
        if self.session is None or self.transport is None:
            return
        was = self.session.phase
        out = self.session.feed(data, self.server.clock())
        self._log_events()
        if out:
            self.transport.write(out)
        phase = self.session.phase
        if phase is Phase.CLOSED:
            self.close(
                "client said BYE"
                if self.session.errors < self.config.limits.max_errors
                else "too many errors"
            )
        elif phase is Phase.STREAMING and was is Phase.HANDSHAKE:
            self.deadline = None
            self.pump()
        elif phase is Phase.ENDED and was is not Phase.ENDED:
            self._ended()

    def pause_writing(self) -> None:
        self.paused_since = asyncio.get_running_loop().time()

    def resume_writing(self) -> None:
        self.paused_since = None
        self.pump()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.session is None:
            return
        self.server.clients.discard(self)
        if exc is not None and self.reason == "client closed":
            self.reason = f"connection lost: {exc}"
        log.info(
            "seedlink client disconnected",
            extra={
                "peer": self.peer,
                "reason": self.reason,
                "packets": self.session.packets_sent,
                "seconds": round(asyncio.get_running_loop().time() - self.connected_at, 1),
                "clients": len(self.server.clients),
            },
        )
        self.session = None

    # ---- streaming

    def pump(self) -> None:
        """Send from the cursor on until caught up with the ring, the socket buffer is full, or this
        turn's budget is spent (then continue on the next turn of the loop)."""
        session, transport = self.session, self.transport
        if session is None or transport is None or session.phase is not Phase.STREAMING:
            return
        budget = PUMP_BUDGET
        while self.paused_since is None and session.phase is Phase.STREAMING:
            if session.cursor >= self.server.ring.next_seq:
                out = session.caught_up(self.server.clock())
                self._log_events()
                if out:
                    transport.write(out)
                    self._ended()
                return
            if budget <= 0:
                if not self._pump_scheduled:
                    self._pump_scheduled = True
                    asyncio.get_running_loop().call_soon(self._scheduled_pump)
                return
            records, first, next_seq = self.server.records_from(
                session.cursor, min(budget, PUMP_RECORDS), session.wants
            )
            if first > session.cursor:
                session.skip_to(first)
                self._log_events()
            budget -= max(1, next_seq - session.cursor)
            out = session.stream(records, next_seq)
            if out:
                transport.write(out)

    def _log_events(self) -> None:
        if self.session is not None:
            for event in self.session.take_events():
                log.log(_LEVELS[event.level], event.message, extra=event.fields)

    def _scheduled_pump(self) -> None:
        self._pump_scheduled = False
        self.pump()

    def _ended(self) -> None:
        """END went out: let the client close; it gets ``end_grace_s`` before the server does."""
        if self.transport is not None and self.transport.can_write_eof():
            self.transport.write_eof()
        self.deadline = asyncio.get_running_loop().time() + self.config.end_grace_s
        self.reason = "request complete"

    def housekeeping(self, now: float) -> None:
        """Timeouts, and a streaming client's chance to end a time window that no new data closes."""
        if self.session is None:
            return
        if self.deadline is not None and now > self.deadline:
            self.close("handshake timed out" if self.session.phase is Phase.HANDSHAKE else "request complete")
        elif self.paused_since is not None and now - self.paused_since > self.config.stall_timeout_s:
            log.warning(
                "seedlink client stalled: nothing sent to it for too long",
                extra={
                    "peer": self.peer,
                    "seconds": round(now - self.paused_since),
                    "cursor": self.session.cursor,
                },
            )
            self.close("stalled", abort=True)
        else:
            self.pump()

    def close(self, reason: str, abort: bool = False) -> None:
        """Close after what is buffered has gone out, or at once with ``abort`` (a stalled client's
        buffer would never drain)."""
        self.reason = reason
        if self.transport is not None and (abort or not self.transport.is_closing()):
            (self.transport.abort if abort else self.transport.close)()


class RunningServer:
    """A :class:`SeedLinkServer` on its own thread and event loop; see :func:`start_server`."""

    def __init__(self, ring: Ring, config: ServerConfig, clock: Callable[[], int]) -> None:
        self.server = SeedLinkServer(ring, config, clock)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="seedlink", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return self.server.address

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start())
        except BaseException as exc:  # reported to the thread that called start_server
            self._error = exc
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self.server.close())
            self._loop.close()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def stop(self, timeout_s: float = 10.0) -> None:
        """Disconnect every client and stop; returns when the thread has ended."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout_s)


def start_server(
    ring: Ring,
    listen: str = f"127.0.0.1:{DEFAULT_PORT}",
    config: ServerConfig | None = None,
    clock: Callable[[], int] = time.time_ns,
) -> RunningServer:
    """Serve ``ring`` over SeedLink on ``listen`` (``HOST:PORT``, port 0: any free port) on a thread of
    its own; returns once listening (raises SeedLinkServerError if it cannot). ``stop()`` ends it."""
    host, port = parse_listen(listen)
    running = RunningServer(ring, dataclasses.replace(config or ServerConfig(), host=host, port=port), clock)
    running.start()
    return running
