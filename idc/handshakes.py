"""Failed ZeroMQ handshakes on the receiver's sockets, which ZeroMQ settles before any message reaches
the loop: a station holding the wrong CurveZMQ server key, a plaintext client on a CurveZMQ socket (or
the reverse), a broken peer. Without this they are invisible at the IDC (the ZAP handler only hears
from clients whose handshake got as far as their key); the station just sees no answer.

Each watched socket's monitor reports the three HANDSHAKE_FAILED events and nothing else (so a flood of
connections costs no events unless their handshakes fail). Every failure is counted; a reason is logged
at most once per LOG_INTERVAL_NS, the next line saying how many were not logged meanwhile, because a
misconfigured station retries its handshake every reconnect interval and anyone can cause failures.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator

import zmq

from gci_link.clock import Clock
from idc.vocabulary import HandshakeFailure
from timeunits import NS_PER_S

log = logging.getLogger(__name__)

LOG_INTERVAL_NS = 60 * NS_PER_S
EVENTS = (
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
)
# events queued for the loop, which drains them every poll round. ZeroMQ sends monitor events blocking:
# its I/O thread (every connection's) would wait at a full queue, so the queue is deep (a few MB at most).
QUEUED_EVENTS = 100_000

_HINTS = {
    HandshakeFailure.CRYPTOGRAPHIC: "the client's CurveZMQ server key is not this receiver's",
    HandshakeFailure.MECHANISM_MISMATCH: "one side uses CurveZMQ and the other does not",
    HandshakeFailure.AUTH: "client key not authorized (see the refused CurveZMQ client key line)",
    HandshakeFailure.PROTOCOL: "the peer broke the ZeroMQ protocol",
    HandshakeFailure.NO_DETAIL: "system error during the handshake",
}


def classify(event: int, value: int) -> HandshakeFailure:
    """The reason of one monitor event (``value``: the ZMTP protocol error code, ZAP status or errno)."""
    if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        return HandshakeFailure.AUTH
    if event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        return HandshakeFailure.NO_DETAIL
    if value == zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC:
        return HandshakeFailure.CRYPTOGRAPHIC
    if value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
        return HandshakeFailure.MECHANISM_MISMATCH
    return HandshakeFailure.PROTOCOL


class HandshakeMonitor:
    """Watches sockets for failed handshakes: ``watch`` a socket, poll ``sockets``, ``read`` the one
    that is ready; ``close`` before closing the watched sockets."""

    def __init__(self, context: zmq.Context, clock: Clock) -> None:
        self._context = context
        self._clock = clock
        self._watched: dict[zmq.Socket, zmq.Socket] = {}  # monitor PAIR -> watched socket
        self._last_logged: dict[HandshakeFailure, int] = {}
        self._unlogged: dict[HandshakeFailure, int] = {}

    @property
    def sockets(self) -> Iterator[zmq.Socket]:
        return iter(self._watched)

    def watch(self, sock: zmq.Socket) -> zmq.Socket:
        """Start monitoring ``sock``; returns the socket its events arrive on, for the poller."""
        endpoint = f"inproc://idc.handshakes.{len(self._watched)}.{id(sock):x}"
        sock.monitor(endpoint, EVENTS)
        pair = self._context.socket(zmq.PAIR)
        pair.setsockopt(zmq.RCVHWM, QUEUED_EVENTS)
        pair.setsockopt(zmq.LINGER, 0)
        pair.connect(endpoint)
        self._watched[pair] = sock
        return pair

    def read(self, pair: zmq.Socket) -> list[HandshakeFailure]:
        """Every failure queued on ``pair`` (logged as the rate limit allows), oldest first."""
        failures: list[HandshakeFailure] = []
        while True:
            try:
                head, endpoint = pair.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return failures
            event, value = struct.unpack("=HI", head)
            reason = classify(event, value)
            failures.append(reason)
            self._log(reason, value, endpoint.decode(errors="replace"))

    def _log(self, reason: HandshakeFailure, value: int, endpoint: str) -> None:
        now = self._clock()
        last = self._last_logged.get(reason)
        if last is not None and now - last < LOG_INTERVAL_NS:
            self._unlogged[reason] = self._unlogged.get(reason, 0) + 1
            return
        self._last_logged[reason] = now
        log.warning(
            "handshake failed",
            extra={
                "reason": str(reason),
                "endpoint": endpoint,
                "code": hex(value),
                "hint": _HINTS[reason],
                "not_logged": self._unlogged.pop(reason, 0),
            },
        )

    def close(self) -> None:
        for pair, sock in self._watched.items():
            sock.disable_monitor()  # first: ZeroMQ would wait for ever on a monitor nobody reads
            pair.close()
        self._watched.clear()
