"""A station disk that can really fill up: a small tmpfs mounted under the station's data folder.

A ``disk_full`` fault writes a filler file until the kernel answers ENOSPC, so the station's outbox,
archive and status writes fail exactly as on a full disk; ending the fault deletes the filler. Mounting
needs root (CAP_SYS_ADMIN); where that is missing, ``SmallDisk.mount`` says so and nothing is changed.
"""

from __future__ import annotations

import errno
import gc
import logging
import shutil
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

FILLER = ".disk-full-filler"
CHUNK = b"\0" * (1 << 20)


class DiskUnavailable(RuntimeError):
    """The small disk cannot be mounted here (not root, no tmpfs)."""


class SmallDisk:
    def __init__(self, path: Path, size_mb: int = 128) -> None:
        self.path = path
        self.size_mb = size_mb
        self.mounted = False

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={self.size_mb}m", "tmpfs", str(self.path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise DiskUnavailable(
                f"cannot mount a {self.size_mb} MB tmpfs at {self.path} for a disk_full "
                f"fault (needs root): {result.stderr.strip() or result.returncode}"
            )
        self.mounted = True

    def fill(self) -> int:
        """Write until the disk is full; returns the bytes it took."""
        written = 0
        with (self.path / FILLER).open("ab") as fh:
            try:
                while True:
                    fh.write(CHUNK)
                    fh.flush()
                    written += len(CHUNK)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
        log.info("station disk full", extra={"path": str(self.path), "filler_bytes": written})
        return written

    def free(self) -> None:
        (self.path / FILLER).unlink(missing_ok=True)
        log.info("station disk space back", extra={"path": str(self.path)})

    def unmount_keeping_contents(self) -> None:
        """Copy what the station wrote to the real disk, then unmount, so the run's output stays whole."""
        if not self.mounted:
            return
        self.free()
        kept = self.path.with_name(self.path.name + ".kept")
        shutil.copytree(self.path, kept)
        for _ in range(20):  # a just-exited process or a connection awaiting collection may hold a file
            if subprocess.run(["umount", str(self.path)], capture_output=True, check=False).returncode == 0:
                break
            gc.collect()
            time.sleep(0.1)
        else:
            log.warning("small disk still busy; detached lazily", extra={"path": str(self.path)})
            subprocess.run(["umount", "-l", str(self.path)], check=True)
        self.mounted = False
        self.path.rmdir()
        kept.rename(self.path)
