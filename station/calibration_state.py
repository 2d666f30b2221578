"""What the framer must know of calibrations, by data time: where a calibration was under way (the
CD-1.1 "calibration underway" status bit) and which calib/calper a channel's data carries once a
remote calibration was accepted.

The command worker writes it while the main loop's framer reads it, so every access holds a lock.
Accepted values are kept in ``STATE_DIR/accepted_calibrations.json`` (written atomically) so a
restarted daemon does not fall back to the configured calib.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path

from station.config import ChannelConfig

log = logging.getLogger(__name__)

ACCEPTED_NAME = "accepted_calibrations.json"
KEPT_WINDOWS = 64  # calibration windows remembered for frames still to be cut
KEPT_ACCEPTED = 16  # accepted values per channel


@dataclass
class Window:
    """A calibration under way on ``code`` from ``start_ns``; ``end_ns`` is None while it runs."""

    code: str
    start_ns: int
    end_ns: int | None = None


@dataclass(frozen=True)
class Accepted:
    """From data time ``from_ns`` on, ``code``'s subframes carry this calib and calper."""

    from_ns: int
    calib: float
    calper: float
    report: str = ""


class CalibrationState:
    def __init__(self, state_dir: Path | None = None) -> None:
        """``state_dir``: where accepted values persist (None: in memory only)."""
        self._lock = threading.Lock()
        self._windows: deque[Window] = deque(maxlen=KEPT_WINDOWS)
        self._accepted: dict[str, list[Accepted]] = {}
        self._path = None if state_dir is None else state_dir / ACCEPTED_NAME
        if self._path is not None:
            self._accepted = _load(self._path)

    # -- calibrations under way -------------------------------------------------------------------------
    def begin(self, code: str, start_ns: int) -> Window:
        window = Window(code, start_ns)
        with self._lock:
            self._windows.append(window)
        return window

    def end(self, window: Window, end_ns: int) -> None:
        with self._lock:
            window.end_ns = max(end_ns, window.start_ns)

    def underway(self, code: str, start_ns: int, end_ns: int) -> bool:
        """Whether a calibration of ``code`` overlaps the data span [start_ns, end_ns)."""
        with self._lock:
            return any(w.code == code and w.start_ns < end_ns and (w.end_ns is None or w.end_ns > start_ns)
                       for w in self._windows)

    # -- accepted results ---------------------------------------------------------------------------------
    def accept(self, code: str, value: Accepted) -> None:
        """Use ``value`` for ``code`` from ``value.from_ns`` on, and keep it across restarts; when it
        cannot be kept (OSError) it is not used either."""
        with self._lock:
            accepted = dict(self._accepted)
            history = [a for a in accepted.get(code, []) if a.from_ns < value.from_ns] + [value]
            accepted[code] = history[-KEPT_ACCEPTED:]
            if self._path is not None:
                snapshot = {c: [asdict(a) for a in values] for c, values in accepted.items()}
                tmp = self._path.with_name(self._path.name + ".tmp")
                self._path.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_text(json.dumps(snapshot, indent=1, sort_keys=True) + "\n")
                os.replace(tmp, self._path)
            self._accepted = accepted

    def calib(self, channel: ChannelConfig, start_ns: int) -> tuple[float, float]:
        """calib and calper for ``channel``'s data starting at ``start_ns``: the latest accepted value
        in force by then, else the configured one."""
        with self._lock:
            in_force = [a for a in self._accepted.get(channel.code, []) if a.from_ns <= start_ns]
        return (in_force[-1].calib, in_force[-1].calper) if in_force else (channel.calib, channel.calper)


def _load(path: Path) -> dict[str, list[Accepted]]:
    """The persisted values; an unreadable file is logged and ignored (the configured calib applies)."""
    try:
        raw = json.loads(path.read_text())
        return {str(code): [Accepted(int(a["from_ns"]), float(a["calib"]), float(a["calper"]),
                                     str(a.get("report", ""))) for a in values]
                for code, values in raw.items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        log.error("accepted calibrations unreadable; configured calib used", extra={
            "path": str(path), "error": str(exc)})
        return {}
