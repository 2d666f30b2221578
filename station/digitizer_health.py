"""The alarm an operator on site needs first: a digitizer that has gone quiet (cable unplugged, instrument
off, serial port gone). The drivers reconnect on their own; this says, by name, that nothing arrives."""

from __future__ import annotations

from station.alarms import AlarmBoard, Severity
from timeunits import NS_PER_S

SILENT = "digitizer_silent"


class DigitizerWatch:
    def __init__(self, silent_after_s: float, alarms: AlarmBoard, system_ids: dict[str, str], now_ns: int
                 ) -> None:
        self.silent_after_ns = round(silent_after_s * NS_PER_S)
        self.alarms = alarms
        self.system_ids = system_ids  # digitizer name -> system id, the source its alarms carry
        self.last_heard_ns: dict[str, int | None] = dict.fromkeys(system_ids)
        self._since_ns = now_ns  # a digitizer never heard is counted from the daemon's start

    def start(self, now_ns: int) -> None:
        """Count silence from now: the daemon's start-up (opening ports, compiling) is not a digitizer's."""
        self._since_ns = now_ns

    def heard(self, name: str, now_ns: int) -> None:
        """Its driver delivered something (a packet, a status, a gap report)."""
        self.last_heard_ns[name] = now_ns

    def observe(self, now_ns: int) -> None:
        for name, last in self.last_heard_ns.items():
            silent_ns = now_ns - (self._since_ns if last is None else last)
            source = self.system_ids[name]
            if silent_ns >= self.silent_after_ns:
                self.alarms.raise_alarm(
                    SILENT, source, Severity.CRITICAL, now_ns, value=silent_ns / NS_PER_S,
                    threshold=self.silent_after_ns / NS_PER_S,
                    message=f"digitizer {name} ({source}): no data for {silent_ns / NS_PER_S:.0f} s; "
                    "check its cable, power and serial port",
                )
            else:
                self.alarms.clear_alarm(SILENT, source, now_ns, value=silent_ns / NS_PER_S)

    def silent(self, name: str) -> bool:
        return self.alarms.get(SILENT, self.system_ids[name]) is not None
