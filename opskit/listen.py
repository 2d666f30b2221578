"""Listening ports checked before a daemon creates anything, so a port already taken is a one-line error
and not a half-started process."""

from __future__ import annotations

import socket


class ListenError(OSError):
    """A port that cannot be listened on; the message names what, where and the system's reason."""


def split_tcp_endpoint(endpoint: str) -> tuple[str, str] | None:
    """``tcp://host:port`` as (host, port), None when it is not one; the port may be ``*`` (any)."""
    host, sep, port = endpoint.removeprefix("tcp://").rpartition(":")
    if not (endpoint.startswith("tcp://") and sep and host and (port == "*" or port.isdigit())):
        return None
    if port != "*" and not 0 < int(port) < 65536:
        return None
    return host, port


def check_free(what: str, host: str, port: int) -> None:
    """Raise ListenError unless a TCP listener could bind ``host:port`` now (``*``/empty: every address).

    The socket takes SO_REUSEADDR, as ZeroMQ's and the exporter's do, so a port left in TIME_WAIT by a
    previous run counts as free and only a live listener counts as taken."""
    host = "" if host in ("*", "") else host.strip("[]")
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"{what} {host or '*'}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ListenError(f"{what} {host or '*'}:{port}: {exc.strerror or exc}") from None


def check_endpoint_free(what: str, endpoint: str) -> None:
    """``check_free`` for a ZeroMQ ``tcp://host:port`` bind endpoint (an ephemeral ``*`` port is free)."""
    parts = split_tcp_endpoint(endpoint)
    if parts is None:
        raise ListenError(f"{what} {endpoint!r}: not a tcp://host:port endpoint")
    host, port = parts
    if port != "*":
        check_free(what, host, int(port))
