"""Who owns a station's digitizers: an exclusive lock on ``STATE_DIR/station.lock`` held for a process's
life.

The station daemon holds it while it runs, and so does a bench calibration session (``ims cal``),
because both open the digitizers' serial ports and two readers of one port garble each other's
blocks. ``flock`` is released by the kernel when the process ends, however it ends, so a crash leaves
no stale lock; the file's text (JSON: role, pid, channels, ports) only says who holds it, for the
message that refuses the other.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

LOCK_NAME = "station.lock"


class StationBusy(RuntimeError):
    """Another process holds the station's lock; ``holder`` is what it wrote (may be empty)."""

    def __init__(self, path: Path, holder: dict[str, Any]) -> None:
        self.path = path
        self.holder = holder
        who = holder.get("role", "another process")
        pid = holder.get("pid")
        super().__init__(f"{path}: held by {who}" + (f" (pid {pid})" if pid else ""))


class StationLock:
    """``acquire`` it (raises ``StationBusy``), ``release`` it when done; usable as a context manager."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, state_dir: Path, role: str, **facts: Any) -> StationLock:
        """Take the lock without waiting and write who holds it (``role``, pid, time, ``facts``)."""
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StationBusy(path, read_holder(path)) from None
        holder = {"role": role, "pid": os.getpid(), "since_ns": time.time_ns(), **facts}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder, sort_keys=True) + "\n").encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> StationLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def read_holder(path: Path) -> dict[str, Any]:
    """What the holder wrote; empty when unreadable (it may be writing it right now)."""
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}
