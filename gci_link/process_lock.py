"""Who owns a folder: an exclusive lock on a file in it, held for a process's life.

The station daemon and a bench calibration session take one on the station's state folder (station/lock.py),
since two readers of one serial port garble each other's blocks; the IDC receiver takes one on its data root,
since a second receiver would "recover" the live one's day files, and ``ims idc reload`` reads it to find
the receiver to signal. ``flock`` is released by the kernel when the process ends, however it ends, so a
crash leaves no stale lock; the file's text (JSON: role, pid, time and facts) only says who holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any


class LockHeld(RuntimeError):
    """Another process holds the lock; ``holder`` is what it wrote (may be empty)."""

    def __init__(self, path: Path, holder: dict[str, Any]) -> None:
        self.path = path
        self.holder = holder
        who = holder.get("role", "another process")
        pid = holder.get("pid")
        super().__init__(f"{path}: held by {who}" + (f" (pid {pid})" if pid else ""))


class ProcessLock:
    """``acquire`` it (raises ``LockHeld``), ``release`` it when done; usable as a context manager."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, path: Path, role: str, **facts: Any) -> ProcessLock:
        """Take the lock without waiting and write who holds it (``role``, pid, time, ``facts``)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockHeld(path, read_holder(path)) from None
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


def current_holder(path: Path) -> dict[str, Any] | None:
    """What the process holding the lock wrote, or None if no process holds it now (a file left by one
    that ended says nothing): a lock taken and let go at once, which never waits."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return read_holder(path)
    finally:
        os.close(fd)
    return None
