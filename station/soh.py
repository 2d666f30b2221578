"""State of health: instrument readings, tamper and power inputs -> alarms, CD-1.1 status flags, metrics.

Every threshold has hysteresis (an alarm raised below ``min`` clears only at ``min + hysteresis``) so a
reading hovering at the limit does not flap. The active alarms decide the CD-1.1 channel status format 1
flags (cd11.md §7) through the table ``ALARM_FLAGS`` below, built into the codec's ChannelStatus.
Metrics are read live from the alarm board and the latest readings, so a scrape never sees a stale copy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from digitizer.packet import Status
from gci_link.cd11.status import ChannelStatus
from gci_link.cd11.timefmt import iso
from gci_link.texttable import columns
from station.alarms import STATION_SOURCE, AlarmBoard, Severity
from station.config import Limit, SohSettings
from timeunits import NS_PER_S

log = logging.getLogger(__name__)


# alarm name -> the CD-1.1 status format 1 flag it sets (flag names of gci_link.cd11.status.FLAGS,
# cd11.md §7: byte 2 data status, 3 security, 4 miscellaneous, 5 voltage; bit 1 = least significant).
# Alarms absent here (supply, temperature, mass position, buffer) have no flag in format 1.
ALARM_FLAGS: dict[str, str] = {
    "calibration_underway": "calibration_underway",  # byte 2 bit 4
    "housing_open": "equipment_housing_open",  # byte 3 bit 1
    "digitizer_open": "digitizing_equipment_open",  # byte 3 bit 2
    "vault_door_open": "vault_door_opened",  # byte 3 bit 3
    "seal_broken": "authentication_seal_broken",  # byte 3 bit 4
    "equipment_moved": "equipment_moved",  # byte 3 bit 5
    "clock_differential_too_large": "clock_differential_too_large",  # byte 4 bit 1
    "gps_unlocked": "gps_receiver_unlocked",  # byte 4 bit 3
    "mains_power_failure": "main_power_failure",  # byte 5 bit 1
    "backup_power_unstable": "backup_power_unstable",  # byte 5 bit 2
}
_INT32 = 2**31 - 1

# tamper input -> alarm it raises while open
TAMPER_ALARMS: dict[str, str] = {
    "housing": "housing_open",
    "digitizer": "digitizer_open",
    "vault_door": "vault_door_open",
    "seal": "seal_broken",
    "moved": "equipment_moved",
}


@dataclass(frozen=True, slots=True)
class Reading:
    value: float
    time_ns: int


class SohMonitor:
    """Latest readings per source, threshold evaluation with hysteresis, and the metrics registry."""

    def __init__(self, settings: SohSettings, alarms: AlarmBoard | None = None,
                 registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.alarms = alarms if alarms is not None else AlarmBoard()
        self.readings: dict[tuple[str, str], Reading] = {}  # (reading, source) -> latest
        self._unlocked_since: dict[str, int] = {}
        self.registry = registry if registry is not None else CollectorRegistry()
        self.registry.register(_SohCollector(self))

    # ----------------------------------------------------------------------------------------- inputs

    def observe_status(self, status: Status) -> None:
        """Take one digitizer Status; fields it leaves None change nothing."""
        src, t = status.system_id, status.time_ns
        s = self.settings
        if status.gps_locked is not None:
            self._record("gps_locked", src, float(status.gps_locked), t)
            self._gps_lock(src, status.gps_locked, t)
        if status.satellites is not None:
            self._record("gps_satellites", src, float(status.satellites), t)
        if status.last_gps_sync_ns is not None:
            self._record("last_gps_sync_ns", src, float(status.last_gps_sync_ns), t)
        if status.clock_offset_ns is not None:
            self._record("clock_offset_ns", src, float(status.clock_offset_ns), t)
            self._band(src, abs(status.clock_offset_ns) / 1000, s.clock_differential_us, t,
                       low=None, high="clock_differential_too_large", severity=Severity.WARNING)
        if status.supply_volts is not None:
            self._record("supply_volts", src, status.supply_volts, t)
            self._band(src, status.supply_volts, s.supply_volts, t,
                       low="supply_voltage_low", high="supply_voltage_high", severity=Severity.CRITICAL)
        if status.temperature_c is not None:
            self._record("temperature_c", src, status.temperature_c, t)
            self._band(src, status.temperature_c, s.temperature_c, t,
                       low="temperature_low", high="temperature_high", severity=Severity.WARNING)
        for i, position in enumerate(status.mass_positions):
            component = f"{src}/{i}"
            self._record("mass_position", component, position, t)
            self._band(component, abs(position), s.mass_position, t,
                       low=None, high="mass_position_high", severity=Severity.WARNING)
        if status.calibration_active is not None:
            self._record("calibration_active", src, float(status.calibration_active), t)
            self._switch("calibration_underway", src, status.calibration_active, t, Severity.INFO)

    def observe_tamper(self, tamper_input: str, opened: bool, time_ns: int) -> None:
        """A tamper switch changed (or was polled): housing, digitizer, vault_door, seal, moved."""
        if tamper_input not in TAMPER_ALARMS:
            raise ValueError(f"unknown tamper input {tamper_input!r}; known: {', '.join(TAMPER_ALARMS)}")
        self._record(f"tamper_{tamper_input}", STATION_SOURCE, float(opened), time_ns)
        self._switch(TAMPER_ALARMS[tamper_input], STATION_SOURCE, opened, time_ns, Severity.CRITICAL)

    def observe_power(self, time_ns: int, mains_ok: bool | None = None,
                      backup_volts: float | None = None) -> None:
        """Site power: mains present or not; backup battery voltage (outside its band = unstable)."""
        if mains_ok is not None:
            self._record("mains_ok", STATION_SOURCE, float(mains_ok), time_ns)
            self._switch("mains_power_failure", STATION_SOURCE, not mains_ok, time_ns, Severity.CRITICAL)
        if backup_volts is not None:
            self._record("backup_volts", STATION_SOURCE, backup_volts, time_ns)
            self._band(STATION_SOURCE, backup_volts, self.settings.backup_volts, time_ns,
                       low="backup_power_unstable", high="backup_power_unstable", severity=Severity.WARNING)

    # ---------------------------------------------------------------------------------------- outputs

    def channel_status(self, system_id: str) -> ChannelStatus:
        """Format 1 status for the channels of one digitizer: its alarms plus the site-wide ones."""
        flags = [ALARM_FLAGS[a.name] for a in self.alarms.active()
                 if a.name in ALARM_FLAGS and a.source in (system_id, STATION_SOURCE)]
        sync = self.readings.get(("last_gps_sync_ns", system_id))
        offset = self.readings.get(("clock_offset_ns", system_id))
        differential_us = 0 if offset is None else max(-_INT32, min(_INT32, round(offset.value / 1000)))
        return ChannelStatus.format1(last_gps_sync_ns=None if sync is None else int(sync.value),
                                     clock_differential_us=differential_us).with_flags(flags)

    def render_table(self) -> str:
        """Current readings and active alarms as a plain-text table (for ``ims station status``)."""
        rows = [("READING", "SOURCE", "VALUE", "AT (UTC)")]
        rows += [(name, src, _value(name, r.value), iso(r.time_ns))
                 for (name, src), r in sorted(self.readings.items())]
        lines = columns(rows)
        active = self.alarms.active()
        lines.append("")
        if not active:
            lines.append("no active alarms")
            return "\n".join(lines)
        alarm_rows = [("SEVERITY", "ALARM", "SOURCE", "VALUE", "THRESHOLD", "SINCE (UTC)")]
        alarm_rows += [(a.severity.name, a.name, a.source, _value(a.name, a.value),
                        "" if a.threshold is None else f"{a.threshold:g}", iso(a.raised_ns)) for a in active]
        return "\n".join(lines + columns(alarm_rows))

    # -------------------------------------------------------------------------------------- internals

    def _record(self, name: str, source: str, value: float, time_ns: int) -> None:
        self.readings[(name, source)] = Reading(float(value), time_ns)

    def _switch(self, alarm: str, source: str, on: bool, time_ns: int, severity: Severity) -> None:
        if on:
            self.alarms.raise_alarm(alarm, source, severity, time_ns, value=True)
        else:
            self.alarms.clear_alarm(alarm, source, time_ns, value=False)

    def _gps_lock(self, source: str, locked: bool, time_ns: int) -> None:
        """GPS unlock is tolerated for ``gps_unlocked_after_s`` (a receiver re-acquires routinely)."""
        if locked:
            self._unlocked_since.pop(source, None)
            self.alarms.clear_alarm("gps_unlocked", source, time_ns, value=False)
            return
        since = self._unlocked_since.setdefault(source, time_ns)
        after_ns = round(self.settings.gps_unlocked_after_s * NS_PER_S)
        if time_ns - since >= after_ns:
            self.alarms.raise_alarm("gps_unlocked", source, Severity.WARNING, time_ns, value=True,
                                    threshold=self.settings.gps_unlocked_after_s,
                                    message=f"{source}: GPS unlocked since {iso(since)}")

    def _band(self, source: str, value: float, limit: Limit, time_ns: int, *, low: str | None,
              high: str | None, severity: Severity) -> None:
        check_band(self.alarms, source, value, limit, time_ns, low=low, high=high, severity=severity)


def check_band(alarms: AlarmBoard, source: str, value: float, limit: Limit, time_ns: int, *,
               low: str | None, high: str | None, severity: Severity) -> None:
    """Raise ``low``/``high`` outside [min, max]; clear only once back inside by the hysteresis margin.
    (The radionuclide cycle judges its instruments with this too, so every SOH threshold behaves alike.)"""
    for name, bound, outside, back_inside in (
        (low, limit.min, lambda v, b: v < b, lambda v, b: v >= b + limit.hysteresis),
        (high, limit.max, lambda v, b: v > b, lambda v, b: v <= b - limit.hysteresis),
    ):
        if name is None or bound is None:
            continue
        active = alarms.get(name, source)
        if active is not None and active.threshold == bound:
            if back_inside(value, bound):
                alarms.clear_alarm(name, source, time_ns, value=value)
        elif active is None and outside(value, bound):
            alarms.raise_alarm(name, source, severity, time_ns, value=value, threshold=bound,
                               message=f"{source}: {name} ({value:g}, limit {bound:g})")


# reading -> (family, help, scale to base units); one family per reading, for one meaning and one unit each
READING_FAMILIES: dict[str, tuple[str, str, float]] = {
    "gps_locked": ("ims_station_gps_locked", "1 while the digitizer's GPS is locked", 1.0),
    "gps_satellites": ("ims_station_gps_satellites", "Satellites the GPS tracks", 1.0),
    "last_gps_sync_ns": ("ims_station_last_gps_sync_timestamp_seconds", "Last GPS synchronisation, Unix "
                         "time", 1e-9),
    "clock_offset_ns": ("ims_station_clock_offset_seconds", "Digitizer clock minus GPS time", 1e-9),
    "supply_volts": ("ims_station_supply_volts", "Digitizer supply voltage", 1.0),
    "temperature_c": ("ims_station_temperature_celsius", "Digitizer temperature", 1.0),
    "mass_position": ("ims_station_mass_position_ratio", "Seismometer mass position, fraction of full scale",
                      1.0),
    "calibration_active": ("ims_station_calibration_active", "1 while the digitizer's calibrator runs", 1.0),
    "mains_ok": ("ims_station_mains_power_ok", "1 while mains power is present", 1.0),
    "backup_volts": ("ims_station_backup_volts", "Backup battery voltage", 1.0),
}
TAMPER_FAMILY = "ims_station_tamper_open"


class _SohCollector(Collector):
    """Exposes the monitor's state on each scrape: one family per kind of reading, and the alarms."""

    def __init__(self, monitor: SohMonitor) -> None:
        self.monitor = monitor

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = {name: GaugeMetricFamily(family, doc, labels=["source"])
                    for name, (family, doc, _) in READING_FAMILIES.items()}
        families["mass_position"] = GaugeMetricFamily(
            READING_FAMILIES["mass_position"][0], READING_FAMILIES["mass_position"][1],
            labels=["source", "component"])
        tamper = GaugeMetricFamily(TAMPER_FAMILY, "1 while the tamper switch is open", labels=["input"])
        for (name, source), reading in sorted(self.monitor.readings.items()):
            if name.startswith("tamper_"):
                tamper.add_metric([name.removeprefix("tamper_")], reading.value)
            elif name == "mass_position":  # source SYSTEM/COMPONENT
                families[name].add_metric(source.rsplit("/", 1), reading.value)
            elif name in families:
                families[name].add_metric([source], reading.value * READING_FAMILIES[name][2])
        yield from families.values()
        yield tamper
        board = self.monitor.alarms
        alarms = GaugeMetricFamily("ims_station_alarm_active", "1 while the alarm is active, 0 once cleared",
                                   labels=["alarm", "source", "severity"])
        active = {(a.name, a.source): a for a in board.active()}
        cleared = {(a.name, a.source): a for a in board.history if (a.name, a.source) not in active}
        for (name, source), alarm in sorted({**cleared, **active}.items()):
            alarms.add_metric([name, source, alarm.severity.name.lower()], float(alarm.active))
        yield alarms


def _value(name: str, value: float | bool | None) -> str:
    if value is None:
        return ""
    if name.endswith("_ns") and name != "clock_offset_ns":
        return iso(int(value))
    return f"{value:g}" if not isinstance(value, bool) else str(value).lower()
