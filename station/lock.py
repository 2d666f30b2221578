"""Who owns a station's digitizers: an exclusive lock on ``STATE_DIR/station.lock`` held for a process's
life (``opskit.lock``: a crash leaves no stale lock).

The station daemon holds it while it runs, and so does a bench calibration session (``ims cal``),
because both open the digitizers' serial ports and two readers of one port garble each other's
blocks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opskit.lock import LockBusy, ProcessLock

LOCK_NAME = "station.lock"
StationBusy = LockBusy  # another process holds the station's lock


class StationLock:
    @staticmethod
    def acquire(state_dir: Path, role: str, **facts: Any) -> ProcessLock:
        """Take ``STATE_DIR/station.lock`` without waiting (raises ``StationBusy``); release it when done."""
        return ProcessLock.acquire(state_dir / LOCK_NAME, role, **facts)
