"""Where the station keeps what it could not send: a message its own builder made malformed, a spectrum
that could not be read, a count lost across a restart. Never dropped silently: each case is a file here
(a JSON note, and the message text when there was one) and an alarm in the cycle.

Bounded: beyond ``max_entries`` notes the oldest are deleted, with a warning in the log.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from gci_link.durable import write_atomically

log = logging.getLogger(__name__)


class Quarantine:
    def __init__(self, folder: Path, system: str, max_entries: int = 1000) -> None:
        self.folder = folder
        self.system = system
        self.max_entries = max_entries
        self.count = 0  # entries made by this process

    def put(self, time_ns: int, what: str, reason: str, message: bytes | None = None) -> Path | None:
        """Keep one case; ``what`` names it (``SAMPLE 1234 FULL``), ``reason`` says what went wrong.
        If the disk refuses the note, the log line is all that remains of it (and says so)."""
        stem = f"{self.system}-{time_ns}-{what.replace(' ', '_')}"
        note = {"system": self.system, "time_ns": time_ns, "what": what, "reason": reason,
                "message_file": f"{stem}.msg" if message is not None else None}
        path = self.folder / f"{stem}.json"
        self.count += 1
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if message is not None:
                write_atomically(self.folder / f"{stem}.msg", message)
            write_atomically(path, (json.dumps(note, indent=1) + "\n").encode())
            self._trim()
        except OSError as exc:
            log.error("radionuclide case not kept: the quarantine cannot be written",
                      extra={"system": self.system, "what": what, "reason": reason, "error": str(exc)})
            return None
        log.error("radionuclide case quarantined", extra={"system": self.system, "what": what,
                                                           "reason": reason, "path": str(path)})
        return path

    def _trim(self) -> None:
        notes = sorted(self.folder.glob(f"{self.system}-*.json"), key=lambda p: p.stat().st_mtime)
        for old in notes[: max(0, len(notes) - self.max_entries)]:
            log.warning("quarantine full: oldest entry deleted", extra={"path": str(old)})
            old.unlink(missing_ok=True)
            old.with_suffix(".msg").unlink(missing_ok=True)
