"""An exclusive lock on a file held for a process's life: who owns a station's digitizers, or an IDC data
root.

``flock`` is released by the kernel when the process ends, however it ends, so a crash leaves no stale
lock; the file's text (JSON: role, pid, time and facts) only says who holds it, for the message that
refuses the other.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any


class LockBusy(RuntimeError):
    """Another process holds the lock; ``holder`` is what it wrote (may be empty)."""

    def __init__(self, path: Path, holder: dict[str, Any]) -> None:
        self.path = path
        self.holder = holder
        who = holder.get("role", "another process")
        pid = holder.get("pid")
        super().__init__(f"{path}: held by {who}" + (f" (pid {pid})" if pid else ""))


class ProcessLock:
    """``acquire`` it (raises ``LockBusy``), ``release`` it when done; usable as a context manager."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, path: Path, role: str, **facts: Any) -> ProcessLock:
        """Take the lock on ``path`` (its folder is created) without waiting and write who holds it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockBusy(path, read_holder(path)) from None
        holder = {"role": role, "pid": os.getpid(), "since_ns": time.time_ns(), **facts}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder, sort_keys=True) + "\n").encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __enter__(self) -> ProcessLock:
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


def live_holder(path: Path) -> dict[str, Any] | None:
    """What the process holding the lock at ``path`` wrote, if that process still runs; else None.

    Read without taking the lock (a probe could make a daemon starting that moment refuse to start): the
    holder's text is emptied at release, and a crashed holder's pid no longer runs."""
    holder = read_holder(path)
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # it runs, as another user
        pass
    return holder
