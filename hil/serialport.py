"""A simulated serial cable: a pseudo-terminal whose device end paces bytes at the baud rate.

The driver opens ``PtyLine.path`` with pyserial like any tty. That path is a symbolic link (as udev's
``/dev/serial/by-id/…``) to the current pty slave, so an unplug can make the port vanish and a replug
can bring it back under the same name while the kernel hands out a new ``/dev/pts/N``.

Faithful: wire time (10 bits per byte at 8N1) for device→host bytes, bit errors and lost bytes from a
seeded ``FaultInjector`` in each direction, stalls, a port that disappears (open fails with ENOENT) and
a read that fails on the host side when the cable is pulled (pyserial raises ``SerialException``).
Not faithful: host→device bytes are not paced (they are only ACKs and commands); a pty has no modem
lines (CTS/DSR/CD raise ENOTTY), no parity/framing errors and no UART FIFO overruns; bytes written
while the host has the port closed may wait in the pty buffer instead of being lost (up to ~20 KiB,
beyond that they are dropped and counted in ``overrun_bytes``).
"""

from __future__ import annotations

import errno
import os
import select
import tempfile
import threading
import time
import tty
from pathlib import Path

import numpy as np

from hil.faults import FaultInjector, LineFaults

_CHUNK_SECONDS = 0.005  # pacing granularity
CLEAN = LineFaults()


class PtyLine:
    """Device end of a simulated serial line (the host end is the file at ``path``)."""

    def __init__(
        self,
        baudrate: int = 115200,
        to_host: LineFaults = CLEAN,
        to_device: LineFaults = CLEAN,
        seed: int = 0,
        link_dir: str | os.PathLike[str] | None = None,
        name: str = "ttySIM0",
    ):
        if baudrate <= 0:
            raise ValueError(f"baudrate must be positive, got {baudrate}")
        self.baudrate = baudrate
        up, down = np.random.SeedSequence(seed).spawn(2)
        self.faults_to_host = FaultInjector(to_host, up)
        self.faults_to_device = FaultInjector(to_device, down)
        self._own_dir: tempfile.TemporaryDirectory[str] | None = None
        if link_dir is None:
            self._own_dir = tempfile.TemporaryDirectory(prefix="ptyline-")
            base = Path(self._own_dir.name)
        else:
            base = Path(link_dir)
        self.path = str(base / name)
        self._lock = threading.Lock()
        self._tx_lock = threading.Lock()
        self._master = -1
        self._slave = -1
        self._stall_until = 0.0
        self._tx_free_at = 0.0
        self.tty_path = ""
        self.plugged = False
        self.overrun_bytes = 0
        self.replugs = 0
        self.replug()

    # -- cable ---------------------------------------------------------------------------------------
    def replug(self) -> None:
        """Create a fresh pty and publish it under ``path``."""
        with self._lock:
            if self.plugged:
                return
            master, slave = os.openpty()
            tty.setraw(slave)  # before anyone writes: a cooked pty echoes and eats control bytes
            os.set_blocking(master, False)
            self._master, self._slave = master, slave
            self.tty_path = os.ttyname(slave)
            tmp = self.path + ".new"
            if os.path.lexists(tmp):
                os.unlink(tmp)
            os.symlink(self.tty_path, tmp)
            os.replace(tmp, self.path)
            self.plugged = True
            self.replugs += 1

    def unplug(self) -> None:
        """Pull the cable: the port vanishes and the host's open handle fails on its next read."""
        with self._lock:
            if not self.plugged:
                return
            self.plugged = False
            if os.path.lexists(self.path):
                os.unlink(self.path)
            for fd in (self._master, self._slave):
                os.close(fd)
            self._master = self._slave = -1

    def stall(self, seconds: float) -> None:
        """Hold all traffic for ``seconds`` (bytes are delayed, not lost)."""
        self._stall_until = max(self._stall_until, time.monotonic() + seconds)

    def close(self) -> None:
        self.unplug()
        if self._own_dir is not None:
            self._own_dir.cleanup()

    def __enter__(self) -> PtyLine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- device side I/O -----------------------------------------------------------------------------
    def _wait_stall(self) -> None:
        while (left := self._stall_until - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))

    def write(self, data: bytes) -> bytes:
        """Send ``data`` to the host, returning once its last bit left the UART (wire time), with the bytes
        as the line delivered them (bit errors and lost bytes applied), so a simulator can tell what the
        host was given."""
        chunk = max(1, int(self.baudrate / 10 * _CHUNK_SECONDS))
        delivered = bytearray()
        with self._tx_lock:
            for start in range(0, len(data), chunk):
                self._wait_stall()
                piece = data[start : start + chunk]
                now = time.monotonic()
                self._tx_free_at = max(self._tx_free_at, now) + 10 * len(piece) / self.baudrate
                damaged = self.faults_to_host.apply(piece)
                delivered += damaged
                self._put(damaged)
                delay = self._tx_free_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        return bytes(delivered)

    def _put(self, piece: bytes) -> None:
        with self._lock:
            if not self.plugged or not piece:
                return
            try:
                written = os.write(self._master, piece)
            except BlockingIOError:
                written = 0
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                written = 0
            self.overrun_bytes += len(piece) - written

    def read(self, max_bytes: int = 4096, timeout: float = 0.05) -> bytes:
        """Bytes the host sent (after line faults); ``b''`` on timeout or while unplugged."""
        deadline = time.monotonic() + timeout
        while True:
            self._wait_stall()
            with self._lock:
                fd = self._master if self.plugged else -1
            left = deadline - time.monotonic()
            if fd < 0:
                if left > 0:
                    time.sleep(min(left, 0.02))
                return b""
            try:
                ready, _, _ = select.select([fd], [], [], max(0.0, min(left, 0.02)))
            except (OSError, ValueError):  # closed by unplug meanwhile
                ready = []
            if ready:
                with self._lock:
                    if not self.plugged or fd != self._master:
                        return b""
                    try:
                        data = os.read(fd, max_bytes)
                    except (BlockingIOError, OSError):
                        data = b""
                if data:
                    return self.faults_to_device.apply(data)
            if time.monotonic() >= deadline:
                return b""
