"""Catching a process in the middle of an archive write, to SIGKILL it there.

A crash at a random moment mostly lands while a daemon waits for data; the moments that test recovery
are the ones inside a write. Linux shows, for each thread blocked in a system call, the call and its
arguments (``/proc/PID/task/TID/syscall``); a thread blocked in write, pwrite or an fsync family call
on a file descriptor that points under the process's archive folder is in an archive write, and a
SIGKILL sent then hits it there. Only blocked calls are visible (a write that completes in the page
cache without sleeping shows as "running"), so it is the flushes to disk that get caught.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")

# system call numbers of the calls that write or flush file data, per architecture
_WRITE_CALLS = {
    "x86_64": {1: "write", 18: "pwrite64", 20: "writev", 74: "fsync", 75: "fdatasync", 277: "sync_file_range",
               296: "pwritev", 306: "syncfs", 328: "pwritev2"},
    "aarch64": {64: "write", 66: "writev", 68: "pwrite64", 70: "pwritev", 82: "fsync", 83: "fdatasync",
                84: "sync_file_range", 267: "syncfs", 287: "pwritev2"},
}
WRITE_CALLS = _WRITE_CALLS.get(platform.machine(), {})


@dataclass(frozen=True)
class CaughtWrite:
    call: str  # e.g. "fsync"
    path: str  # the file (or folder, for syncfs) the descriptor points to


def archive_write(pid: int, folder: Path) -> CaughtWrite | None:
    """The write or flush a thread of ``pid`` is blocked in on a file under ``folder``, if any now."""
    prefix = str(folder.resolve()) + os.sep
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return None
    for task in tasks:
        try:
            fields = (task / "syscall").read_text().split()
        except OSError:  # the thread ended meanwhile
            continue
        if len(fields) < 2 or not fields[0].isdigit() or int(fields[0]) not in WRITE_CALLS:
            continue  # "running", or blocked outside a system call ("-1 sp pc"), or another call
        try:
            target = os.readlink(PROC / str(pid) / "fd" / str(int(fields[1], 16)))
        except OSError:
            continue
        if (target + os.sep).startswith(prefix):
            return CaughtWrite(WRITE_CALLS[int(fields[0])], target)
    return None


def wait_for_archive_write(pid: int, folder: Path, timeout_s: float) -> CaughtWrite | None:
    """Poll until ``pid`` is caught writing under ``folder`` (returns what it was writing) or
    ``timeout_s`` real seconds passed (None). The caller kills it at once either way."""
    if not WRITE_CALLS:
        return None  # an architecture whose call numbers are not listed: never caught, said as such
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        caught = archive_write(pid, folder)
        if caught is not None:
            return caught
        time.sleep(0)  # let the harness's own threads (simulated digitizers, relays) run
    return None
