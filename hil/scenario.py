"""Scenario files for the simulated network: stations, duration, speed and faults, validated at load.

Faults are listed one by one (``[[faults]]``) or drawn at seeded random moments (``[[random_faults]]``: a
kind, a count, a range of lengths), so a week-long soak can hold dozens of faults that are the same in
every run with the same seed. Errors name the file, the key (``faults[1].at_s``) and the problem, like
the station configuration.
"""

from __future__ import annotations

import dataclasses
import math
import random
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from rn_analysis.library import NUCLIDES
from station.config import BAUD_RATES, ConfigError, parse_config, toml_key
from station.radionuclide.settings import CycleTimes

SENSORS = {"seismometer": "seismic", "microbarometer": "infrasonic", "hydrophone": "hydroacoustic"}
FAULT_KINDS = ("link_outage", "station_crash", "receiver_crash", "gps_unlock", "unplug", "disk_full")
STATIONLESS_FAULTS = ("receiver_crash",)
RN_KINDS = ("particulate", "noble_gas")
RN_FAULTS = ("link_outage", "station_crash")  # the faults that concern a radionuclide station too
RN_CYCLE_KEYS = tuple(f.name for f in dataclasses.fields(CycleTimes) if f.name != "offset_s")
HISTOGRAM_CHANNELS = (64, 128, 256)  # a noble-gas system's gamma and beta channels
CRASH_FAULTS = ("station_crash", "receiver_crash")
WHEN = ("any", "archive_write")  # a crash at its moment, or at the first archive write from then on
RANDOM_SPAN = (0.01, 0.97)  # random faults lie within these fractions of the run, leaving time to recover
_Number = TypeVar("_Number", int, float)


class ScenarioError(ValueError):
    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"invalid scenario {source}:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class ChannelSpec:
    site: str
    channel: str
    location: str

    @property
    def code(self) -> str:
        return f"{self.site}.{self.channel}.{self.location}"


@dataclass(frozen=True)
class StationSpec:
    name: str
    network: str
    sensor: str
    sample_rate: int
    block_s: int
    channels: tuple[ChannelSpec, ...]
    baud: int = 115200
    bit_error_rate: float = 0.0
    drop_rate: float = 0.0
    flash_blocks: int = 100_000  # the digitizer's store-and-forward capacity, in GCF blocks
    status_every_s: int = 10  # the digitizer's text status block interval

    @property
    def sensor_type(self) -> str:
        return SENSORS[self.sensor]


@dataclass(frozen=True)
class RnStationSpec:
    """A radionuclide station with one system (particulate or noble gas), run by its own daemon.

    Its schedule is shifted so that its first slot (the counts of one sample) opens ``first_slot_s``
    after the run starts: the faults of the scenario then meet the counts where the file says."""

    name: str
    network: str
    kind: str
    code: str  # IMS station code in the messages
    srid_station: str
    first_slot_s: int
    cycle: dict[str, int]  # [radionuclide.cycle] keys for the daemon (offset_s comes from first_slot_s)
    activities_bq: dict[str, float]  # a filter's or a gas sample's; empty: the simulator's default
    histogram_channels: int = 256


@dataclass(frozen=True)
class Fault:
    kind: str
    at_s: float
    duration_s: float
    station: str | None = None
    when: str = "any"  # crashes only: "archive_write" waits for the process to be writing its archive


@dataclass(frozen=True)
class Scenario:
    source: str
    duration_s: float
    speed: float
    seed: int
    frame_length_s: int
    stations: tuple[StationSpec, ...]
    faults: tuple[Fault, ...]
    rn_stations: tuple[RnStationSpec, ...] = ()


def load(path: Path | None = None, run_overrides: dict[str, Any] | None = None) -> Scenario:
    """A scenario file (the embedded default when ``path`` is None); ``run_overrides`` replace keys of
    its ``[run]`` table before validation. A new ``duration_s`` compresses the whole scenario: fault
    times and lengths scale with it, so a shortened run meets the same faults in the same order, and so
    do the moments radionuclide slots first open (their cycles keep their lengths)."""
    if path is None:
        source = "hil/scenarios/default.toml"
        text = resources.files("hil").joinpath("scenarios/default.toml").read_text(encoding="utf-8")
    else:
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ScenarioError(source, [f"cannot read: {exc}"]) from exc
    return parse(text, source, run_overrides)


def parse(text: str, source: str, run_overrides: dict[str, Any] | None = None) -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(source, [f"(syntax): {exc}"]) from exc
    if run_overrides and isinstance(data.get("run"), dict):
        old = data["run"].get("duration_s")
        data["run"].update(run_overrides)
        new = data["run"].get("duration_s")
        if _finite(old) and _finite(new) and old > 0 and new != old:
            lengths = ("min_duration_s", "max_duration_s")
            for table, keys in (("faults", ("at_s", "duration_s")), ("random_faults", lengths)):
                for fault in data.get(table, []):
                    for key in keys:
                        if isinstance(fault, dict) and _finite(fault.get(key)):
                            fault[key] = float(fault[key]) * float(new) / float(old)
            for rn in data.get("rn_stations", []):  # the cycle itself keeps its length (its limits)
                if isinstance(rn, dict) and isinstance(rn.get("first_slot_s"), int):
                    rn["first_slot_s"] = round(rn["first_slot_s"] * float(new) / float(old))
    problems: list[str] = []
    check = _Checker(problems)
    run = check.table(data, "run")
    duration = check.number(run, "run", "duration_s", low=10.0)
    speed = check.number(run, "run", "speed", low=0.1, high=1000.0)
    seed = check.integer(run, "run", "seed", default=0, low=0, high=2**63 - 1)  # numpy seeds are >= 0
    frame_length = check.integer(run, "run", "frame_length_s", default=10, low=1, high=60)
    if frame_length is not None and 1 <= frame_length <= 60 and 60 % frame_length:
        problems.append(f"run.frame_length_s: must divide 60 s evenly, got {frame_length}")
    check.unknown(run, "run", {"duration_s", "speed", "seed", "frame_length_s"})
    tables = check.array(data, "stations", required="rn_stations" not in data)
    parsed = [_station(check, t, f"stations[{i}]") for i, t in enumerate(tables)]
    stations = tuple(s for s in parsed if s is not None)
    rn_tables = check.array(data, "rn_stations", required=False)
    rn_parsed = [_rn_station(check, t, f"rn_stations[{i}]", duration or 0.0) for i, t in enumerate(rn_tables)]
    rn_stations = tuple(s for s in rn_parsed if s is not None)
    names = [s.name for s in stations] + [s.name for s in rn_stations]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(f"stations: station {name!r} appears more than once")
    rn_names = {s.name for s in rn_stations}
    listed = [
        f
        for i, t in enumerate(check.array(data, "faults", required=False))
        if (f := _fault(check, t, f"faults[{i}]", set(names), duration or 0.0, rn_names)) is not None
    ]
    for i, a in enumerate(listed):
        for b in listed[:i]:
            if (a.kind, a.station) == (b.kind, b.station) and a.at_s <= b.at_s + b.duration_s \
                    and b.at_s <= a.at_s + a.duration_s:
                problems.append(f"faults: two {a.kind} faults at {a.station or 'the receiver'} overlap "
                                f"(at {b.at_s:g} s and {a.at_s:g} s)")
    drawn: list[Fault] = []
    for i, t in enumerate(check.array(data, "random_faults", required=False)):
        drawn += _random_faults(
            check, t, f"random_faults[{i}]", names, duration or 0.0, (seed or 0, i), listed + drawn, rn_names
        )
    faults = tuple(sorted(listed + drawn, key=lambda f: (f.at_s, f.kind, f.station or "")))
    check.unknown(data, "", {"run", "stations", "rn_stations", "faults", "random_faults"})
    if not tables and not rn_tables:
        problems.append("stations: at least one station ([[stations]] or [[rn_stations]]) is needed")
    # a value is None only where a problem was recorded
    if problems or duration is None or speed is None or seed is None or frame_length is None:
        raise ScenarioError(source, problems)
    return Scenario(source, duration, speed, seed, frame_length, stations, faults, rn_stations)


def _station(check: _Checker, t: dict[str, Any], key: str) -> StationSpec | None:
    """The station at ``key``, or None when a problem was recorded for one of its values."""
    name = check.text(t, key, "name", 1, 5)
    sensor = check.choice(t, key, "sensor", tuple(SENSORS))
    rate = check.integer(t, key, "sample_rate", low=1, high=250)
    block_s = check.integer(t, key, "block_s", low=1, high=60)
    if rate and block_s and rate * block_s > 250:
        check.problems.append(
            f"{key}.block_s: {block_s} s at {rate} sps exceeds the 250 samples a GCF block can always hold"
        )
    channels = []
    for i, code in enumerate(check.strings(t, key, "channels")):
        parts = code.split(".")
        if len(parts) not in (2, 3) or not all(
            _code(part, low, high) for part, low, high in zip(parts, (1, 1, 0), (5, 3, 2), strict=False)
        ):
            check.problems.append(
                f"{key}.channels[{i}]: expected SITE.CHA or SITE.CHA.LO (1-5, 1-3 and 0-2 ASCII letters or "
                f"digits), got {code!r}"
            )
            continue
        channel = ChannelSpec(parts[0], parts[1], parts[2] if len(parts) == 3 else "")
        if channel in channels:
            check.problems.append(f"{key}.channels[{i}]: {code!r} is listed twice")
            continue
        channels.append(channel)
    if not 1 <= len(channels) <= 16:
        check.problems.append(f"{key}.channels: 1 to 16 channels per simulated digitizer")
    network = check.text(t, key, "network", 1, 2)
    baud = check.choice(t, key, "baud", tuple(sorted(BAUD_RATES)), default=115200, kinds=(int,))
    bit_error_rate = check.number(t, key, "bit_error_rate", default=0.0, low=0.0, high=1e-2)
    drop_rate = check.number(t, key, "drop_rate", default=0.0, low=0.0, high=1e-2)
    flash_blocks = check.integer(t, key, "flash_blocks", default=100_000, low=1, high=10_000_000)
    status_every_s = check.integer(t, key, "status_every_s", default=10, low=1, high=3600)
    check.unknown(t, key, {f.name for f in dataclasses.fields(StationSpec)})
    if (name is None or network is None or sensor is None or rate is None or block_s is None or baud is None
            or bit_error_rate is None or drop_rate is None or flash_blocks is None or status_every_s is None):
        return None
    return StationSpec(name, network, sensor, rate, block_s, tuple(channels), baud, bit_error_rate, drop_rate,
                       flash_blocks, status_every_s)


def _rn_station(check: _Checker, t: dict[str, Any], key: str, duration: float) -> RnStationSpec | None:
    """The radionuclide station at ``key``, or None when a problem was recorded for one of its values.
    Its cycle is checked by the station configuration's own validator, as the daemon will read it."""
    name = check.text(t, key, "name", 1, 5)
    network = check.text(t, key, "network", 1, 2)
    kind = check.choice(t, key, "kind", RN_KINDS)
    code = check.text(t, key, "code", 1, 5) if "code" in t else name
    srid_station = check.text(t, key, "srid_station", 2, 2) if "srid_station" in t else "01"
    if srid_station is not None and not srid_station.isdigit():
        check.problems.append(f"{key}.srid_station: must be two digits, got {srid_station!r}")
    first_slot_s = check.integer(t, key, "first_slot_s", default=300, low=0)
    if first_slot_s is not None and first_slot_s >= duration:
        check.problems.append(
            f"{key}.first_slot_s: must be within the run ({duration:g} s), got {first_slot_s}")
    channels = check.choice(t, key, "histogram_channels", HISTOGRAM_CHANNELS, default=256, kinds=(int,))
    if "histogram_channels" in t and kind == "particulate":
        check.problems.append(f"{key}.histogram_channels: only a noble-gas system has a histogram")
    cycle = _rn_cycle(check, t, key, kind)
    activities = _activities(check, t, key)
    check.unknown(t, key, {f.name for f in dataclasses.fields(RnStationSpec)})
    if (name is None or network is None or kind is None or code is None or srid_station is None
            or first_slot_s is None or channels is None or cycle is None or activities is None):
        return None
    return RnStationSpec(name, network, kind, code, srid_station, first_slot_s, cycle, activities, channels)


def _rn_cycle(check: _Checker, t: dict[str, Any], key: str, kind: str | None) -> dict[str, int] | None:
    """The ``cycle`` table: whole seconds per ``[radionuclide.cycle]`` key, checked together (a slot's
    counts must fit its period and so on) by the station configuration's validator."""
    table = t.get("cycle", {})
    if not isinstance(table, dict):
        check.problems.append(f"{key}.cycle: must be a table of [radionuclide.cycle] keys, got {table!r}")
        return None
    cycle: dict[str, int] = {}
    broken = False
    for name in table:
        if name == "offset_s":
            check.problems.append(
                f"{key}.cycle.offset_s: set by {key}.first_slot_s (when the first slot opens)")
            broken = True
        elif name not in RN_CYCLE_KEYS:
            check.problems.append(
                f"{key}.cycle.{toml_key(name)}: unknown key (known: {', '.join(RN_CYCLE_KEYS)})")
            broken = True
        elif (value := check.integer(table, f"{key}.cycle", name, low=0)) is None:
            broken = True
        else:
            cycle[name] = value
    if broken or kind not in RN_KINDS:
        return None
    lines = "".join(f"{name} = {value}\n" for name, value in cycle.items())
    detector, sampler = ("sim-detector", "sim-detector") if kind == "noble_gas" else ("sim-det", "sim-air")
    text = (f'[station]\nname = "X"\nnetwork = "XX"\n[link]\nendpoints = ["tcp://127.0.0.1:1"]\n'
            f'[archive]\npath = "a"\n[outbox]\npath = "o"\n'
            f'[[radionuclide]]\nname = "x"\nkind = "{kind}"\ndetector_code = "X_001"\nsrid_station = "01"\n'
            f'[radionuclide.detector]\nport = "{detector}"\n[radionuclide.sampler]\nport = "{sampler}"\n'
            f"[radionuclide.cycle]\n{lines}")
    try:
        parse_config(text, key, Path("."))
    except ConfigError as exc:
        for problem in exc.problems:
            where = problem.key.replace("radionuclide[0].cycle", f"{key}.cycle", 1)
            check.problems.append(f"{where.rstrip('.')}: {problem.problem}")
        return None
    return cycle


def _activities(check: _Checker, t: dict[str, Any], key: str) -> dict[str, float] | None:
    table = t.get("activities_bq", {})
    if not isinstance(table, dict):
        check.problems.append(f"{key}.activities_bq: must be a table of nuclide = becquerel, got {table!r}")
        return None
    activities: dict[str, float] = {}
    for name in table:
        if name not in NUCLIDES:
            check.problems.append(f"{key}.activities_bq.{toml_key(name)}: unknown nuclide (known: "
                                  f"{', '.join(NUCLIDES)})")
        elif (value := check.number(table, f"{key}.activities_bq", name, low=0.0)) is not None:
            activities[name] = value
    return activities if len(activities) == len(table) else None


def _fault(
    check: _Checker, t: dict[str, Any], key: str, stations: set[str], duration: float, rn_stations: set[str]
) -> Fault | None:
    """The fault at ``key``, or None when a problem was recorded for one of its values."""
    kind = check.choice(t, key, "kind", FAULT_KINDS)
    at_s = check.number(t, key, "at_s", low=0.0)
    length = check.number(t, key, "duration_s", low=0.0)
    station = t.get("station")
    if station is not None and not isinstance(station, str):
        check.problems.append(f"{key}.station: must be a station name, got {station!r}")
        station = None
    if kind in STATIONLESS_FAULTS:
        if station is not None:
            check.problems.append(f"{key}.station: a {kind} concerns the receiver, not a station")
    elif station not in stations:
        check.problems.append(f"{key}.station: must name a station of this scenario, got {station!r}")
    elif station in rn_stations and kind not in RN_FAULTS:
        check.problems.append(f"{key}.kind: {station} is a radionuclide station; it takes "
                              f"{' or '.join(RN_FAULTS)}, not {kind}")
    if at_s is not None and length is not None and at_s + length >= duration:
        check.problems.append(f"{key}: must end before the run does ({at_s} + {length} >= {duration})")
    when = _when(check, t, key, kind)
    check.unknown(t, key, {f.name for f in dataclasses.fields(Fault)})
    if kind is None or at_s is None or length is None or when is None:
        return None
    return Fault(kind, at_s, length, station, when)


def _when(check: _Checker, t: dict[str, Any], key: str, kind: str | None) -> str | None:
    when = check.choice(t, key, "when", WHEN, default="any")
    if when == "archive_write" and kind not in CRASH_FAULTS:
        check.problems.append(f"{key}.when: only a crash ({', '.join(CRASH_FAULTS)}) can wait for a write")
    return when


def _random_faults(
    check: _Checker,
    t: dict[str, Any],
    key: str,
    names: list[str],
    duration: float,
    seed: tuple[int, int],
    earlier: list[Fault],
    rn_stations: set[str],
) -> list[Fault]:
    """``count`` faults of one kind at seeded random moments within ``RANDOM_SPAN`` of the run, their
    lengths log-uniform between the bounds (as many short as long ones per decade), spread over the
    listed stations (by default every one the kind concerns) in turn. Two faults of one kind never
    overlap at one station (or at the receiver), these nor ``earlier`` ones: an outage inside an outage
    would end at the inner one's end, a crash inside a crash would start the station twice."""
    kind = check.choice(t, key, "kind", FAULT_KINDS)
    count = check.integer(t, key, "count", low=1, high=1000)
    shortest = check.number(t, key, "min_duration_s", low=0.0)
    longest = check.number(t, key, "max_duration_s", low=0.0)
    at_archive_write = check.integer(t, key, "archive_write", default=0, low=0)
    concerned = [n for n in names if n not in rn_stations or kind in RN_FAULTS]
    stations: list[str | None] = (
        list(check.strings(t, key, "stations")) if "stations" in t else list(concerned))
    check.unknown(t, key, {"kind", "count", "min_duration_s", "max_duration_s", "archive_write", "stations"})
    if kind in STATIONLESS_FAULTS:
        if "stations" in t:
            check.problems.append(f"{key}.stations: a {kind} concerns the receiver, not a station")
        stations = [None]
    if not stations and kind not in STATIONLESS_FAULTS and "stations" not in t:
        check.problems.append(f"{key}.kind: no station of this scenario takes {kind}")
    for name in stations:
        if name is not None and name not in names:
            check.problems.append(f"{key}.stations: must name stations of this scenario, got {name!r}")
        elif name is not None and name not in concerned:
            check.problems.append(f"{key}.stations: {name} is a radionuclide station; it takes "
                                  f"{' or '.join(RN_FAULTS)}, not {kind}")
    if at_archive_write and kind not in CRASH_FAULTS:
        check.problems.append(f"{key}.archive_write: only crashes ({', '.join(CRASH_FAULTS)}) wait for one")
    if count is not None and at_archive_write is not None and at_archive_write > count:
        check.problems.append(f"{key}.archive_write: at most count ({count}), got {at_archive_write}")
    if kind is None or count is None or shortest is None or longest is None or at_archive_write is None:
        return []
    first, last = RANDOM_SPAN[0] * duration, RANDOM_SPAN[1] * duration
    if not 0 < shortest <= longest or longest >= (last - first) / 2:
        check.problems.append(
            f"{key}: need 0 < min_duration_s <= max_duration_s < {(last - first) / 2:g} (half the span "
            f"faults are drawn in), got {shortest:g}..{longest:g}"
        )
        return []
    if not stations or check.problems:
        return []
    rng = random.Random(f"{seed[0]}/{seed[1]}/{kind}")
    faults: list[Fault] = []
    for n in range(count):
        station = stations[n % len(stations)]
        length = math.exp(rng.uniform(math.log(shortest), math.log(longest)))
        taken = [(f.at_s, f.at_s + f.duration_s) for f in earlier + faults
                 if f.station == station and f.kind == kind]
        for _ in range(1000):
            at_s = rng.uniform(first, last - length)
            if all(at_s + length < begin or at_s > end for begin, end in taken):
                break
        else:
            check.problems.append(f"{key}: no room for {count} faults that do not overlap; fewer or shorter")
            return []
        when = "archive_write" if n < at_archive_write else "any"
        faults.append(Fault(kind, round(at_s, 1), round(length, 1), station, when))
    return faults


def _finite(value: Any) -> bool:
    """A number that converts to a finite float (TOML allows nan, inf and integers beyond any float)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 2**1023 \
        and math.isfinite(value)


def _code(value: str, shortest: int, longest: int) -> bool:
    """A station, network, site, channel or location code: ASCII letters or digits (SEED, CD-1.1)."""
    return shortest <= len(value) <= longest and value.isascii() and (not value or value.isalnum())


class _Checker:
    """Typed reads that record a problem (with its key path) instead of raising, so all are reported."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def _get(
        self, t: dict[str, Any], key: str, name: str, kinds: tuple[type, ...], what: str, default: Any
    ) -> Any:
        path = f"{key}.{name}" if key else name
        if name not in t:
            if default is None:
                self.problems.append(f"{path}: missing (required)")
            return default
        value = t[name]
        if not isinstance(value, kinds) or isinstance(value, bool):
            self.problems.append(f"{path}: must be {what}, got {value!r}")
            return default
        return value

    def table(self, data: dict[str, Any], name: str) -> dict[str, Any]:
        value = self._get(data, "", name, (dict,), "a table", None)
        return value if isinstance(value, dict) else {}

    def array(self, data: dict[str, Any], name: str, required: bool = True) -> list[dict[str, Any]]:
        value = self._get(
            data, "", name, (list,), f"an array of tables ([[{name}]])", None if required else []
        )
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            if isinstance(value, list):
                self.problems.append(f"{name}: must be an array of tables ([[{name}]])")
            return []
        return value

    def number(
        self,
        t: dict[str, Any],
        key: str,
        name: str,
        *,
        default: float | None = None,
        low: float | None = None,
        high: float | None = None,
    ) -> float | None:
        value = self._get(t, key, name, (int, float), "a number", default)
        if value is not None and not _finite(value):  # TOML has nan and inf, and no range check stops nan
            self.problems.append(f"{key}.{name}: must be a finite number, got {value!r}")
            return None
        return None if value is None else self._bounded(key, name, float(value), low, high)

    def integer(
        self,
        t: dict[str, Any],
        key: str,
        name: str,
        *,
        default: int | None = None,
        low: int | None = None,
        high: int | None = None,
    ) -> int | None:
        value = self._get(t, key, name, (int,), "an integer", default)
        return None if value is None else self._bounded(key, name, value, low, high)

    def _bounded(
        self, key: str, name: str, value: _Number, low: _Number | None, high: _Number | None
    ) -> _Number:
        if (low is not None and value < low) or (high is not None and value > high):
            self.problems.append(f"{key}.{name}: must be within [{low}, {high}], got {value}")
        return value

    def text(self, t: dict[str, Any], key: str, name: str, shortest: int, longest: int) -> str | None:
        value = self._get(t, key, name, (str,), "a string", None)
        if value is not None and not _code(value, shortest, longest):
            self.problems.append(
                f"{key}.{name}: must be {shortest}-{longest} ASCII letters or digits, got {value!r}"
            )
        return value

    def choice(
        self,
        t: dict[str, Any],
        key: str,
        name: str,
        allowed: tuple[Any, ...],
        *,
        default: Any = None,
        kinds: tuple[type, ...] = (str,),
    ) -> Any:
        value = self._get(t, key, name, kinds, "a string" if kinds == (str,) else "an integer", default)
        if value is not None and value not in allowed:
            options = ", ".join(map(str, allowed))
            self.problems.append(f"{key}.{name}: must be one of {options}, got {value!r}")
        return value

    def strings(self, t: dict[str, Any], key: str, name: str) -> list[str]:
        value = self._get(t, key, name, (list,), "a list of strings", None)
        if value is None or not all(isinstance(v, str) for v in value):
            if value is not None:
                self.problems.append(f"{key}.{name}: must be a list of strings")
            return []
        return value

    def unknown(self, t: dict[str, Any], key: str, known: set[str]) -> None:
        for name in sorted(set(t) - known):
            self.problems.append(f"{key + '.' if key else ''}{toml_key(name)}: unknown key")
