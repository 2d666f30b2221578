"""No false alarms, no missed ones: every alarm a station raised against the faults the harness injected.

An alarm is explained when a fault that can cause it (``CAUSES``) was active at that station, or at the
receiver, when it was raised, allowing for how long the alarm may trail its cause (``Trail``: the
station looks at its link once per status interval, a link restored may first sit out its back-off, a
backlog takes time to drain). Every other alarm is false. A fault long enough that its alarm must have
come (``EXPECTED``: any one of the alarms listed for it will do) that raised none is a missed alarm. Both
tables go into the summary, so a reviewer can see each alarm next to the fault that explains it.

A crashed station is down until its restarted daemon says ``READY=1``, not merely until the harness has
started it again: a loaded machine took six real seconds (6,000 simulated at 1000x) to bring one up, and
the frames of its outbox aged all that time. A restart's fault log entry carries ``ready_s`` for this.

Times come from the station logs (wall clock, millisecond) mapped onto simulated time with the
simulated clock's own mapping.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from timeunits import NS_PER_S

_LINE = re.compile(
    r'^ts=(\S+)Z .*?msg="alarm (raised|cleared): [^"]*" .*?alarm=(\S+) source=("[^"]*"|\S+)'
)

# alarm -> the fault kinds that can cause it at the station that raised it (receiver_crash: at any)
CAUSES: dict[str, tuple[str, ...]] = {
    "gci_link_down": ("link_outage", "receiver_crash"),
    "delivery_backlog": ("link_outage", "receiver_crash", "station_crash"),
    "gps_unlocked": ("gps_unlock",),
    "clock_differential_too_large": ("gps_unlock",),  # a free-running clock drifts
    "outbox_write_failed": ("disk_full",),
    "archive_write_failed": ("disk_full",),
    "digitizer_silent": ("unplug",),  # a digitizer whose cable is pulled sends nothing
}
# fault kind -> the alarms of which it must raise one when it lasts at least their thresholds plus the
# trail. A full disk holds both the outbox and the local archive: whichever store writes first fails first.
EXPECTED: dict[str, tuple[str, ...]] = {
    "link_outage": ("gci_link_down",),
    "receiver_crash": ("gci_link_down",),
    "gps_unlock": ("gps_unlocked",),
    "disk_full": ("archive_write_failed", "outbox_write_failed"),
    "unplug": ("digitizer_silent",),
}


@dataclass(frozen=True)
class Thresholds:
    """The station and receiver settings that decide when an alarm comes (simulated seconds): the alarm
    thresholds, and the link timeouts that decide when a silent IDC counts as lost."""

    link_down_after_s: float = 120.0
    backlog_after_s: float = 600.0
    gps_unlocked_after_s: float = 60.0
    digitizer_silent_after_s: float = 60.0
    backoff_cap_s: float = 300.0  # the link's longest back-off before a reconnect (SessionConfig)
    connect_timeout_s: float = 10.0  # station [link]: connection and option responses
    response_timeout_s: float = 60.0  # station [link]: data sent and no acknack since
    idle_timeout_s: float = 130.0  # station [link]: nothing heard from the IDC
    idc_silence_s: float = 120.0  # receiver silence_timeout_s: a silent station's session is closed

    @property
    def link_lost_after_s(self) -> float:
        """How long a dead IDC takes to be noticed by a station that keeps sending data."""
        return min(self.response_timeout_s, self.idle_timeout_s)


@dataclass(frozen=True)
class FaultSpan:
    index: int
    kind: str
    station: str | None  # None: the receiver
    begin_s: float
    end_s: float


def fault_spans(fault_log: Iterable[dict]) -> list[FaultSpan]:
    """Each fault from its ``begin`` to its ``end`` entry of the harness's fault log, a restarted daemon's
    down time lasting until it was ready (``ready_s``) where that was heard."""
    spans: list[FaultSpan] = []
    begun: dict[tuple[str, str | None], float] = {}
    for entry in fault_log:
        key = (entry["fault"], entry["station"])
        if entry["phase"] == "begin":
            begun[key] = entry["at_s"]
        else:
            kind, station = key
            end_s = entry.get("ready_s", entry["at_s"])
            spans.append(FaultSpan(len(spans), kind, station, begun.pop(key), end_s))
    return spans


@dataclass
class AlarmEpisode:
    station: str
    alarm: str
    source: str
    raised_s: float
    cleared_s: float | None = None
    explained_by: int | None = None  # FaultSpan.index


def read_alarms(
    log_path: Path, station: str, wall0_ns: int, speed: float, start_s: float = 0.0
) -> list[AlarmEpisode]:
    """Alarm episodes from one station log (all its processes, in order), times in simulated seconds.
    ``wall0_ns`` is the wall-clock instant at which simulated time was ``start_s``."""
    open_: dict[tuple[str, str], AlarmEpisode] = {}
    episodes: list[AlarmEpisode] = []
    if not log_path.exists():
        return episodes
    for line in log_path.read_text(errors="replace").splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        stamp, what, alarm, source = match.groups()
        sim_s = start_s + (_wall_ns(stamp) - wall0_ns) * speed / NS_PER_S
        key = (alarm, source.strip('"'))
        if what == "raised":
            if key not in open_:  # a restarted station raises afresh what its predecessor had raised
                episode = AlarmEpisode(station, alarm, key[1], round(sim_s, 1))
                open_[key] = episode
                episodes.append(episode)
        elif key in open_:
            open_.pop(key).cleared_s = round(sim_s, 1)
    return episodes


def _wall_ns(stamp: str) -> int:
    """Nanoseconds of a logfmt ``ts`` (``2026-12-06T14:47:26.128``, UTC)."""
    import datetime as dt

    whole, _, millis = stamp.partition(".")
    seconds = dt.datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC).timestamp()
    return int(seconds) * NS_PER_S + int(millis or 0) * 1_000_000


def trail_s(alarm: str, thresholds: Thresholds, status_interval_sim_s: float) -> float:
    """How long after its cause ended an alarm may still be raised (simulated seconds)."""
    slack = 2 * status_interval_sim_s  # the station looks once per status interval
    if alarm == "gci_link_down":  # a link back after an outage may wait out its back-off first
        return thresholds.backoff_cap_s + thresholds.link_down_after_s + slack
    if alarm == "delivery_backlog":  # the oldest frame keeps ageing until the backlog has drained
        return thresholds.backoff_cap_s + thresholds.backlog_after_s + slack
    return slack


def delay_s(alarm: str, thresholds: Thresholds) -> float:
    """How long a cause must last before its alarm is due (simulated seconds)."""
    return {
        "gci_link_down": thresholds.link_lost_after_s + thresholds.link_down_after_s,
        "delivery_backlog": thresholds.backlog_after_s,
        "gps_unlocked": thresholds.gps_unlocked_after_s,
        "digitizer_silent": thresholds.digitizer_silent_after_s,
    }.get(alarm, 0.0)


def cross_check(
    alarms: Iterable[AlarmEpisode],
    faults: Iterable[FaultSpan],
    thresholds: Thresholds,
    status_interval_sim_s: float,
) -> dict:
    """The alarm table (each alarm with the fault that explains it, or none), the fault table (each fault
    with the alarms it explains and whether the one it must raise came), and the counts of false and
    missed alarms."""
    faults = list(faults)
    table = []
    for alarm in alarms:
        trail = trail_s(alarm.alarm, thresholds, status_interval_sim_s)
        for fault in faults:
            here = fault.station is None or fault.station == alarm.station
            if (here and fault.kind in CAUSES.get(alarm.alarm, ())
                    and fault.begin_s <= alarm.raised_s <= fault.end_s + trail):
                alarm.explained_by = fault.index
                break
        table.append(asdict(alarm))
    stations = sorted({a["station"] for a in table} | {f.station for f in faults if f.station})
    fault_rows = []
    missed = 0
    for fault in faults:
        raised = [a for a in table if a["explained_by"] == fault.index]
        expected = EXPECTED.get(fault.kind)
        row = asdict(fault) | {"alarms": sorted({a["alarm"] for a in raised})}
        if expected is not None:
            # due only once every one of them would be: the fault may have caused the slowest
            due = max(delay_s(e, thresholds) for e in expected) + 2 * status_interval_sim_s
            row["expected_alarms"] = list(expected) if fault.end_s - fault.begin_s >= due else None
            if row["expected_alarms"]:
                end = fault.end_s + max(trail_s(e, thresholds, status_interval_sim_s) for e in expected)
                where = stations if fault.station is None else [fault.station]
                row["missed_at"] = [s for s in where if not any(  # active at some time during the fault
                    a["alarm"] in expected and a["station"] == s and a["raised_s"] <= end
                    and (a["cleared_s"] is None or a["cleared_s"] >= fault.begin_s) for a in table
                )]
                missed += len(row["missed_at"])
        fault_rows.append(row)
    false = [a for a in table if a["explained_by"] is None]
    return {"alarms": table, "faults": fault_rows, "false_alarms": len(false), "missed_alarms": missed}
