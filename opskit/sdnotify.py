"""systemd's notification protocol without a dependency: readiness (``READY=1``), watchdog pings
(``WATCHDOG=1``) and ``STOPPING=1``, as datagrams to ``$NOTIFY_SOCKET`` (sd_notify(3)).

Outside systemd (no ``NOTIFY_SOCKET``) every call does nothing, so the daemons call it unconditionally.
The watchdog interval comes from ``WATCHDOG_USEC`` (when ``WATCHDOG_PID`` is unset or names this
process); pings go out at half of it, from the daemon's main loop, so a loop that hangs stops them and
systemd restarts the daemon.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, address: str | None, watchdog_ns: int | None,
                 monotonic_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self.address = address
        self.watchdog_ns = watchdog_ns
        self._monotonic_ns = monotonic_ns
        self._last_ping_ns: int | None = None
        self._sock: socket.socket | None = None
        if address is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Notifier:
        address = env.get("NOTIFY_SOCKET") or None
        if address is not None and not address.startswith(("/", "@")):
            log.warning("NOTIFY_SOCKET is neither a path nor an abstract socket", extra={"value": address})
            address = None
        watchdog_ns = None
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            watchdog_ns = int(usec) * 1000
        return cls(address, watchdog_ns)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram; False (and a log line) when it could not be sent."""
        if self._sock is None or self.address is None:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            self._sock.sendto("\n".join(assignments).encode(), target)
        except OSError as exc:
            log.warning("cannot notify systemd", extra={"socket": self.address, "error": str(exc)})
            return False
        return True

    def ready(self, status: str = "") -> None:
        """The daemon serves: systemd may start what depends on it (Type=notify)."""
        self.notify("READY=1", *([f"STATUS={status}"] if status else []))
        self._last_ping_ns = self._monotonic_ns()

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def ping(self) -> None:
        """``WATCHDOG=1`` if half the watchdog interval passed since the last one; call it every loop."""
        if self.watchdog_ns is None or self._sock is None:
            return
        now = self._monotonic_ns()
        if self._last_ping_ns is None or now - self._last_ping_ns >= self.watchdog_ns // 2:
            self.notify("WATCHDOG=1")
            self._last_ping_ns = now

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
