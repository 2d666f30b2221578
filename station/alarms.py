"""The station's board of alarms: who raised what, when, at which value against which threshold.

Acquisition (buffer overflow) and state of health (thresholds, tamper, power) raise and clear alarms on
one shared board, so the CD-1.1 status flags, the metrics and the operator's table all read one truth.
Times are data/instrument times in integer ns, never the wall clock.
"""

from __future__ import annotations

import enum
import logging
from collections import deque
from dataclasses import dataclass, replace

log = logging.getLogger(__name__)

STATION_SOURCE = "station"  # source of alarms that concern the whole site (tamper, power)


class Severity(enum.IntEnum):
    INFO = 1
    WARNING = 2
    CRITICAL = 3


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm episode; ``cleared_ns`` stays None while it is active."""

    name: str
    source: str  # digitizer system id, channel name, or STATION_SOURCE
    severity: Severity
    raised_ns: int
    value: float | bool | None
    threshold: float | None
    cleared_ns: int | None = None
    message: str = ""

    @property
    def active(self) -> bool:
        return self.cleared_ns is None


class AlarmBoard:
    """Active alarms keyed by (name, source) plus a bounded history of cleared ones."""

    def __init__(self, history: int = 1000) -> None:
        self._active: dict[tuple[str, str], Alarm] = {}
        self.history: deque[Alarm] = deque(maxlen=history)

    def raise_alarm(
        self,
        name: str,
        source: str,
        severity: Severity,
        time_ns: int,
        value: float | bool | None = None,
        threshold: float | None = None,
        message: str = "",
    ) -> Alarm:
        """Raise an alarm; raising one that is already active keeps the original episode."""
        key = (name, source)
        current = self._active.get(key)
        if current is not None:
            return current
        alarm = Alarm(name, source, severity, time_ns, value, threshold, message=message)
        self._active[key] = alarm
        log.warning(
            "alarm raised: %s", message or name,
            extra={"alarm": name, "source": source, "severity": severity.name.lower(), "value": value,
                   "threshold": threshold},
        )
        return alarm

    def clear_alarm(
        self, name: str, source: str, time_ns: int, value: float | bool | None = None
    ) -> Alarm | None:
        """Clear an active alarm (no-op when it is not active); returns the closed episode."""
        current = self._active.pop((name, source), None)
        if current is None:
            return None
        closed = replace(current, cleared_ns=time_ns, value=value if value is not None else current.value)
        self.history.append(closed)
        log.info("alarm cleared: %s", name, extra={"alarm": name, "source": source, "value": value})
        return closed

    def get(self, name: str, source: str) -> Alarm | None:
        """The active episode of this alarm, or None."""
        return self._active.get((name, source))

    def active(self) -> list[Alarm]:
        """Active alarms, most severe first, then oldest first."""
        return sorted(self._active.values(), key=lambda a: (-a.severity, a.raised_ns, a.name, a.source))
