"""Optional CurveZMQ on the GCI hop: the server key pair from a zmq.auth secret-key file, and a ZAP
handler (run inside the receiver loop, no thread) that admits only the public keys found in a directory
and logs every refused key, so a key mismatch shows up as a clear log line instead of a silent hang.
"""

from __future__ import annotations

import logging
from pathlib import Path

import zmq
import zmq.auth
from zmq.utils import z85

log = logging.getLogger(__name__)

ZAP_ENDPOINT = "inproc://zeromq.zap.01"


def configure_curve_server(sock: zmq.Socket, secret_key_file: Path) -> None:
    """Make ``sock`` a CurveZMQ server with the key pair stored in ``secret_key_file``."""
    try:
        public, secret = zmq.auth.load_certificate(secret_key_file)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{secret_key_file}: cannot load CurveZMQ key pair: {exc}") from exc
    if secret is None:
        raise ValueError(f"{secret_key_file}: holds no secret key (use the .key_secret file)")
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_server = True


def load_authorized_keys(directory: Path) -> set[bytes]:
    """Z85 public keys of every ``*.key`` / ``*.key_secret`` certificate in ``directory``."""
    if not directory.is_dir():
        raise ValueError(f"{directory}: CurveZMQ authorized-keys directory does not exist")
    return set(zmq.auth.load_certificates(directory))


class ZapHandler:
    """ZeroMQ Authentication Protocol responder for CURVE: known client keys pass, others are logged."""

    def __init__(self, context: zmq.Context, authorized_keys_dir: Path) -> None:
        self.allowed = load_authorized_keys(authorized_keys_dir)
        self.socket = context.socket(zmq.REP)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.bind(ZAP_ENDPOINT)
        self.refused = 0

    def handle(self) -> None:
        """Answer every pending ZAP request."""
        while True:
            try:
                request = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.socket.send_multipart(self._answer(request))

    def _answer(self, request: list[bytes]) -> list[bytes]:
        if len(request) < 6:
            log.warning("malformed ZAP request", extra={"parts": len(request)})
            return [b"1.0", request[1] if len(request) > 1 else b"", b"500", b"malformed request", b"", b""]
        version, request_id, _domain, address, _identity, mechanism = request[:6]
        credentials = request[6:]
        if mechanism == b"CURVE" and credentials and len(credentials[0]) == 32:
            key = z85.encode(credentials[0])
            if key in self.allowed:
                return [version, request_id, b"200", b"OK", key, b""]
            self.refused += 1
            log.warning(
                "refused CurveZMQ client key",
                extra={"client_key": key.decode(), "address": address.decode(errors="replace")},
            )
            return [version, request_id, b"400", b"unknown client key", b"", b""]
        log.warning(
            "refused connection without CurveZMQ",
            extra={
                "mechanism": mechanism.decode(errors="replace"),
                "address": address.decode(errors="replace"),
            },
        )
        return [version, request_id, b"400", b"CURVE required", b"", b""]

    def close(self) -> None:
        self.socket.close(linger=0)
