"""Who owns a station's digitizers: the process lock (gci_link/process_lock.py) on
``STATE_DIR/station.lock``.

The station daemon holds it while it runs, and so does a bench calibration session (``ims cal``),
because both open the digitizers' serial ports and two readers of one port garble each other's
blocks; the file says who holds it, for the message that refuses the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gci_link.process_lock import LockHeld as StationBusy
from gci_link.process_lock import ProcessLock

__all__ = ["LOCK_NAME", "StationBusy", "StationLock"]

LOCK_NAME = "station.lock"


class StationLock:
    @staticmethod
    def acquire(state_dir: Path, role: str, **facts: Any) -> ProcessLock:
        """Take the station's lock without waiting (raises ``StationBusy``)."""
        return ProcessLock.acquire(state_dir / LOCK_NAME, role, **facts)
