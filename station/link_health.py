"""Delivery alarms at the station: the GCI link out of its data state, and frames waiting too long.

The IDC sees a dead link as missing data; the operator on site needs it said explicitly, with the
age of the oldest frame still waiting for an acknowledgement.
"""

from __future__ import annotations

from station.alarms import AlarmBoard, Severity
from station.config import SohSettings
from timeunits import NS_PER_S

LINK_DOWN = "gci_link_down"
BACKLOG = "delivery_backlog"
SOURCE = "station"


class LinkHealth:
    def __init__(self, settings: SohSettings, alarms: AlarmBoard) -> None:
        self.down_after_ns = round(settings.link_down_after_s * NS_PER_S)
        self.backlog_after_ns = round(settings.backlog_after_s * NS_PER_S)
        self.alarms = alarms
        self._down_since_ns: int | None = None

    def observe(self, now_ns: int, link_up: bool, oldest_unacked_ns: int | None) -> None:
        if link_up:
            self._down_since_ns = None
            self.alarms.clear_alarm(LINK_DOWN, SOURCE, now_ns)
        else:
            self._down_since_ns = self._down_since_ns if self._down_since_ns is not None else now_ns
            down_ns = now_ns - self._down_since_ns
            if down_ns >= self.down_after_ns:
                self.alarms.raise_alarm(
                    LINK_DOWN,
                    SOURCE,
                    Severity.CRITICAL,
                    now_ns,
                    value=down_ns / NS_PER_S,
                    threshold=self.down_after_ns / NS_PER_S,
                )
        age_ns = 0 if oldest_unacked_ns is None else now_ns - oldest_unacked_ns
        if age_ns >= self.backlog_after_ns:
            self.alarms.raise_alarm(
                BACKLOG,
                SOURCE,
                Severity.WARNING,
                now_ns,
                value=age_ns / NS_PER_S,
                threshold=self.backlog_after_ns / NS_PER_S,
            )
        else:
            self.alarms.clear_alarm(BACKLOG, SOURCE, now_ns, value=age_ns / NS_PER_S)
