"""The process table as tests see it (Linux ``/proc``; elsewhere every answer is empty): which processes
still run, which are children of a process, and which descend from this test session, so that tests can
prove they leave no process behind."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")
# set to a token unique to the session by tests/conftest.py; every process it starts inherits it, so an
# orphan (its parent killed, itself adopted by init) is still known as the session's
SESSION_VARIABLE = "IMS_TEST_SESSION"


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), None if there is no such pid."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def running(pid: int) -> bool:
    """``pid`` exists and is not a zombie (a zombie has exited; only its exit status is left)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def _pids() -> list[int]:
    try:
        return [int(entry.name) for entry in os.scandir(PROC) if entry.name.isdigit()]
    except OSError:
        return []


def children(parent: int) -> set[int]:
    """Running processes whose parent is ``parent``."""
    found = set()
    for pid in _pids():
        fields = _stat(pid)
        if fields is not None and fields[0] != "Z" and int(fields[1]) == parent:
            found.add(pid)
    return found


def tagged(token: str) -> set[int]:
    """Running processes (other than this one) whose environment holds SESSION_VARIABLE=token."""
    marker = f"{SESSION_VARIABLE}={token}".encode() + b"\0"
    found = set()
    for pid in _pids():
        if pid == os.getpid():
            continue
        try:
            environ = (PROC / str(pid) / "environ").read_bytes() + b"\0"
        except OSError:
            continue
        if b"\0" + marker in b"\0" + environ and running(pid):
            found.add(pid)
    return found


def command_line(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def wait_gone(pids: Iterable[int], timeout_s: float) -> set[int]:
    """Poll until none of ``pids`` runs or ``timeout_s`` passed; returns those still running."""
    deadline = time.monotonic() + timeout_s
    left = {pid for pid in pids if running(pid)}
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = {pid for pid in left if running(pid)}
    return left
