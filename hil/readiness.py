"""The harness as the daemons' service manager: it hands them ``NOTIFY_SOCKET`` and hears their ``READY=1``.

A station daemon takes one to ten real seconds to start (imports, compiled kernels, its console), longer
on a loaded machine; at 40x that is up to 400 simulated seconds. A scenario's faults are meant for running
stations, so the network starts the scenario's clock when every daemon has said it is ready, as systemd
would start what depends on them. Senders are told apart by the kernel's credentials on each datagram
(``SO_PASSCRED``), not by what they write.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import subprocess
import time
from collections.abc import Mapping

_CREDENTIALS = struct.Struct("iII")  # struct ucred: pid, uid, gid


class ReadinessListener:
    """An abstract-namespace datagram socket (no file to clean up, no path-length limit)."""

    def __init__(self) -> None:
        self.address = f"@ims-hil-{os.getpid()}-{os.urandom(6).hex()}"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self._sock.bind("\0" + self.address[1:])
        self._ready: set[int] = set()

    def env(self) -> dict[str, str]:
        """What a daemon's environment needs to report to this listener."""
        return {"NOTIFY_SOCKET": self.address}

    def wait(self, daemons: Mapping[str, subprocess.Popen], timeout_s: float) -> None:
        """Return once every daemon (name -> process) has sent ``READY=1``; raise, naming it, when one exits
        first or the time runs out."""
        deadline = time.monotonic() + timeout_s
        while waiting := [name for name, proc in daemons.items() if proc.pid not in self._ready]:
            for name in waiting:
                if daemons[name].poll() is not None:
                    raise RuntimeError(f"{name} exited with {daemons[name].returncode} before it was ready")
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"not ready after {timeout_s:g} s: {', '.join(waiting)}")
            if select.select([self._sock], [], [], min(left, 0.2))[0]:
                self._receive()

    def ready(self, pid: int) -> bool:
        """Whether the process ``pid`` has sent ``READY=1``, hearing what has arrived without waiting."""
        while select.select([self._sock], [], [], 0)[0]:
            self._receive()
        return pid in self._ready

    def _receive(self) -> None:
        data, ancillary, _, _ = self._sock.recvmsg(4096, socket.CMSG_SPACE(_CREDENTIALS.size))
        if b"READY=1" not in data.split(b"\n"):
            return
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, _, _ = _CREDENTIALS.unpack(payload[: _CREDENTIALS.size])
                self._ready.add(pid)

    def close(self) -> None:
        self._sock.close()
