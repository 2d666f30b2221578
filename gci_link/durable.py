"""Making writes durable: fsync by path, atomic file replacement, and one ``syncfs`` for a whole
filesystem where Linux has it.

Both IDC stores and the SDS archive use these, so a batch of frames costs one filesystem sync instead of
one fsync per file.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from pathlib import Path


def _libc_syncfs() -> Callable[[int], int] | None:
    """Linux ``syncfs(2)``: flushes a whole filesystem with one journal commit; None where absent."""
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


_SYNCFS = _libc_syncfs()


class FilesystemSync:
    """Makes everything written to the filesystem holding ``root`` durable with one ``syncfs`` call.

    The descriptor stays open, so writeback errors since it was opened are reported. ``available`` is
    False where ``syncfs`` is missing; callers then sync file by file.
    """

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self._fd: int | None = os.open(root, os.O_RDONLY) if _SYNCFS is not None else None

    @property
    def available(self) -> bool:
        return self._fd is not None

    def sync(self) -> None:
        assert _SYNCFS is not None and self._fd is not None
        if _SYNCFS(self._fd) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"syncfs failed: {os.strerror(errno)}", str(self.root))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def fsync_path(path: Path) -> None:
    """fsync a file or directory by name (directories: so a new entry in them survives a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes, mode: int | None = None) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old file or the new one, never a part,
    and the new one survives a power loss once this returns (the directory entry is synced too).

    ``mode`` is set exactly (the umask does not apply); None leaves it to the umask.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666 if mode is None else mode)
    if mode is not None:
        os.fchmod(fd, mode)  # O_CREAT's mode is filtered by the umask and ignored for an existing file
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    fsync_path(path.parent)
