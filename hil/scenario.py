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
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from opskit.tomlcheck import Table, TomlError, in_range, one_of, parse_toml, read_toml, text
from rn_analysis.library import NUCLIDES
from station.config import BAUD_RATES, ConfigError, parse_config
from station.radionuclide.settings import CycleTimes

SENSORS = {"seismometer": "seismic", "microbarometer": "infrasonic", "hydrophone": "hydroacoustic"}
FAULT_KINDS = ("link_outage", "station_crash", "receiver_crash", "gps_unlock", "unplug", "disk_full")
STATIONLESS_FAULTS = ("receiver_crash",)
CRASH_FAULTS = ("station_crash", "receiver_crash")
WHEN = ("any", "archive_write")  # a crash at its moment, or at the first archive write from then on
RN_KINDS = ("particulate", "noble_gas")
RN_FAULTS = ("link_outage", "station_crash")  # the faults that concern a radionuclide station too
RN_CYCLE_KEYS = tuple(f.name for f in dataclasses.fields(CycleTimes) if f.name != "offset_s")
HISTOGRAM_CHANNELS = (64, 128, 256)  # a noble-gas system's gamma and beta channels
RANDOM_SPAN = (0.01, 0.97)  # random faults lie within these fractions of the run, leaving time to recover


class ScenarioError(TomlError):
    """Every problem found in one scenario file."""

    what = "scenario"


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
class Fault:
    kind: str
    at_s: float
    duration_s: float
    station: str | None = None
    when: str = "any"  # crashes only: "archive_write" waits for the process to be writing its archive


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
class RemoteCalibration:
    """``[[calibrations]]``: at ``at_s`` the operator sends ``ims idc command STATION calibrate CHANNEL
    SIGNAL MINUTES`` through the running receiver."""

    station: str
    channel: str  # a channel code of the station (BHZ)
    signal: str  # random or step (judged by the fit; a sine session needs frequencies)
    minutes: int
    at_s: float

    @property
    def words(self) -> list[str]:
        return ["calibrate", self.channel, self.signal, str(self.minutes)]


CALIBRATION_SIGNALS = ("random", "step")
# data time a calibration needs beyond its minutes: the next clock minute, the session seeing the signal
# end (a minute of data and a few blocks), the fit and the answer
CALIBRATION_MARGIN_S = 240.0


@dataclass(frozen=True)
class Scenario:
    source: str
    duration_s: float
    speed: float
    seed: int
    frame_length_s: int
    stations: tuple[StationSpec, ...]
    faults: tuple[Fault, ...]
    calibrations: tuple[RemoteCalibration, ...] = ()
    rn_stations: tuple[RnStationSpec, ...] = ()


def load(path: Path | None = None, run_overrides: dict[str, Any] | None = None) -> Scenario:
    """A scenario file (the embedded default when ``path`` is None); ``run_overrides`` replace keys of
    its ``[run]`` table before validation. A new ``duration_s`` compresses the whole scenario: fault
    times and lengths scale with it, so a shortened run meets the same faults in the same order, and so
    do the moments radionuclide slots first open (their cycles keep their lengths)."""
    if path is None:
        default = resources.files("hil").joinpath("scenarios/default.toml").read_text(encoding="utf-8")
        return parse(default, "hil/scenarios/default.toml", run_overrides)
    data, problems = read_toml(path)
    if data is None:
        raise ScenarioError(problems)
    return _parse(data, str(path), run_overrides)


def parse(text: str, source: str, run_overrides: dict[str, Any] | None = None) -> Scenario:
    data, problems = parse_toml(text, source)
    if data is None:
        raise ScenarioError(problems)
    return _parse(data, source, run_overrides)


def _parse(data: dict[str, Any], source: str, run_overrides: dict[str, Any] | None) -> Scenario:
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
            for cal in data.get("calibrations", []):  # a calibration's minutes shrink with the run
                if isinstance(cal, dict) and _finite(cal.get("at_s")):
                    cal["at_s"] = float(cal["at_s"]) * float(new) / float(old)
                if isinstance(cal, dict) and isinstance(cal.get("minutes"), int) and _finite(cal["minutes"]):
                    cal["minutes"] = max(2, round(cal["minutes"] * float(new) / float(old)))
            for rn in data.get("rn_stations", []):  # the cycle itself keeps its length (its limits)
                if isinstance(rn, dict) and isinstance(rn.get("first_slot_s"), int):
                    rn["first_slot_s"] = round(rn["first_slot_s"] * float(new) / float(old))
    root = Table.root(data, source, Path("."))
    run = root.table("run")
    duration = run.get("duration_s", float, check=in_range(10.0, None))
    speed = run.get("speed", float, check=in_range(0.1, 1000.0))
    seed = run.get("seed", int, default=0, check=in_range(0, 2**63 - 1))  # numpy seeds are >= 0
    frame_length = run.get("frame_length_s", int, default=10, check=_frame_length)
    run.done()
    tables = root.tables("stations")
    parsed = [_station(t) for t in tables]
    stations = tuple(s for s in parsed if s is not None)
    rn_tables = root.tables("rn_stations")
    rn_stations = tuple(s for t in rn_tables if (s := _rn_station(t, duration or 0.0)) is not None)
    names = [s.name for s in stations] + [s.name for s in rn_stations]
    for name in {n for n in names if names.count(n) > 1}:
        root.problem("stations", f"station {name!r} appears more than once")
    rn_names = {s.name for s in rn_stations}
    listed = [f for t in root.tables("faults")
              if (f := _fault(t, set(names), duration, rn_names)) is not None]
    for i, a in enumerate(listed):
        for b in listed[:i]:
            if (a.kind, a.station) == (b.kind, b.station) and a.at_s <= b.at_s + b.duration_s \
                    and b.at_s <= a.at_s + a.duration_s:
                root.problem("faults", f"two {a.kind} faults at {a.station or 'the receiver'} overlap "
                                       f"(at {b.at_s:g} s and {a.at_s:g} s)")
    drawn: list[Fault] = []
    for i, t in enumerate(root.tables("random_faults")):
        drawn += _random_faults(t, names, duration, (seed or 0, i), listed + drawn, rn_names)
    faults = tuple(sorted(listed + drawn, key=lambda f: (f.at_s, f.kind, f.station or "")))
    calibrations = tuple(c for t in root.tables("calibrations")
                         if (c := _calibration(t, stations, duration or 0.0)) is not None)
    root.done()
    if not tables and not rn_tables and "stations" not in {p.key for p in root.problems}:
        root.problem("stations", "at least one station ([[stations]] or [[rn_stations]]) is needed")
    # a value is None only where a problem was recorded
    if root.problems or duration is None or speed is None or seed is None or frame_length is None:
        raise ScenarioError(root.problems)
    return Scenario(source, duration, speed, seed, frame_length, stations, faults, calibrations, rn_stations)


def _frame_length(v: int) -> str | None:
    return None if 1 <= v <= 60 and 60 % v == 0 else f"must divide 60 s evenly, got {v}"


def _channel_code(v: str) -> str | None:
    parts = v.split(".")
    if len(parts) not in (2, 3) or not all(
        _code(part, low, high) for part, low, high in zip(parts, (1, 1, 0), (5, 3, 2), strict=False)
    ):
        return (f"expected SITE.CHA or SITE.CHA.LO (1-5, 1-3 and 0-2 ASCII letters or digits), got {v!r}")
    return None


def _station(t: Table) -> StationSpec | None:
    """The station of table ``t``, or None when a problem was recorded for one of its values."""
    name = t.get("name", str, check=text(1, 5, alnum=True))
    sensor = t.get("sensor", str, check=one_of(SENSORS, ordered=True))
    rate = t.get("sample_rate", int, check=in_range(1, 250))
    block_s = t.get("block_s", int, check=in_range(1, 60))
    if rate and block_s and rate * block_s > 250:
        t.problem("block_s", f"{block_s} s at {rate} sps exceeds the 250 samples a GCF block can always hold")
    channels: list[ChannelSpec] = []
    for i, code in enumerate(t.strings("channels", check=_channel_code) or ()):
        parts = code.split(".")
        channel = ChannelSpec(parts[0], parts[1], parts[2] if len(parts) == 3 else "")
        if channel in channels:
            t.problem(f"channels[{i}]", f"{code!r} is listed twice")
            continue
        channels.append(channel)
    if not 1 <= len(channels) <= 16 and "channels" in t.data:
        t.problem("channels", "1 to 16 channels per simulated digitizer")
    network = t.get("network", str, check=text(1, 2, alnum=True))
    baud = t.get("baud", int, default=115200, check=one_of(BAUD_RATES))
    bit_error_rate = t.get("bit_error_rate", float, default=0.0, check=in_range(0.0, 1e-2))
    drop_rate = t.get("drop_rate", float, default=0.0, check=in_range(0.0, 1e-2))
    flash_blocks = t.get("flash_blocks", int, default=100_000, check=in_range(1, 10_000_000))
    status_every_s = t.get("status_every_s", int, default=10, check=in_range(1, 3600))
    t.done()
    if (name is None or network is None or sensor is None or rate is None or block_s is None or baud is None
            or bit_error_rate is None or drop_rate is None or flash_blocks is None or status_every_s is None):
        return None
    return StationSpec(name, network, sensor, rate, block_s, tuple(channels), baud,
                       bit_error_rate, drop_rate, flash_blocks, status_every_s)


def _rn_station(t: Table, duration: float) -> RnStationSpec | None:
    """The radionuclide station of table ``t``, or None when a problem was recorded for one of its values.
    Its cycle is checked by the station configuration's own validator, as the daemon will read it."""
    name = t.get("name", str, check=text(1, 5, alnum=True))
    network = t.get("network", str, check=text(1, 2, alnum=True))
    kind = t.get("kind", str, check=one_of(RN_KINDS, ordered=True))
    code = t.get("code", str, default=name, check=text(1, 5, alnum=True))
    srid_station = t.get("srid_station", str, default="01", check=_two_digits)
    first_slot_s = t.get("first_slot_s", int, default=300, check=in_range(0, None))
    if first_slot_s is not None and first_slot_s >= duration:
        t.problem("first_slot_s", f"must be within the run ({duration:g} s), got {first_slot_s}")
    channels = t.get("histogram_channels", int, default=256, check=one_of(HISTOGRAM_CHANNELS, ordered=True))
    if "histogram_channels" in t.data and kind == "particulate":
        t.problem("histogram_channels", "only a noble-gas system has a histogram")
    cycle = _rn_cycle(t.table("cycle", required=False), kind)
    activities = _activities(t.table("activities_bq", required=False))
    t.done()
    if (name is None or network is None or kind is None or code is None or srid_station is None
            or first_slot_s is None or channels is None or cycle is None or activities is None):
        return None
    return RnStationSpec(name, network, kind, code, srid_station, first_slot_s, cycle, activities, channels)


def _two_digits(v: str) -> str | None:
    return None if len(v) == 2 and v.isdigit() else f"must be two digits, got {v!r}"


def _rn_cycle(t: Table, kind: str | None) -> dict[str, int] | None:
    """The ``cycle`` table: whole seconds per ``[radionuclide.cycle]`` key, checked together (a slot's
    counts must fit its period and so on) by the station configuration's validator."""
    before = len(t.problems)
    if "offset_s" in t.data:
        station = t.prefix.removesuffix(".cycle")
        t.problem("offset_s", f"set by {station}.first_slot_s (when the first slot opens)")
        t.used.add("offset_s")
    found = {name: t.get(name, int, default=None, check=in_range(0, None)) for name in RN_CYCLE_KEYS}
    t.done()
    cycle = {name: value for name, value in found.items() if value is not None}
    if len(t.problems) > before or kind not in RN_KINDS:
        return None
    lines = "".join(f"{name} = {value}\n" for name, value in cycle.items())
    detector, sampler = ("sim-detector", "sim-detector") if kind == "noble_gas" else ("sim-det", "sim-air")
    config = (f'[station]\nname = "X"\nnetwork = "XX"\n[link]\nendpoints = ["tcp://127.0.0.1:1"]\n'
              f'[archive]\npath = "a"\n[outbox]\npath = "o"\n'
              f'[[radionuclide]]\nname = "x"\nkind = "{kind}"\ndetector_code = "X_001"\nsrid_station = "01"\n'
              f'[radionuclide.detector]\nport = "{detector}"\n[radionuclide.sampler]\nport = "{sampler}"\n'
              f"[radionuclide.cycle]\n{lines}")
    try:
        parse_config(config, t.source, Path("."))
    except ConfigError as exc:
        for problem in exc.problems:
            t.problem(problem.key.removeprefix("radionuclide[0].cycle").lstrip("."), problem.problem)
        return None
    return cycle


def _activities(t: Table) -> dict[str, float] | None:
    """``activities_bq``: nuclide = becquerel of a filter or a gas sample."""
    before = len(t.problems)
    activities: dict[str, float] = {}
    for name in list(t.data):
        if name not in NUCLIDES:
            t.problem(name, f"unknown nuclide (known: {', '.join(NUCLIDES)})")
            t.used.add(name)
        elif (value := t.get(name, float, check=in_range(0.0, None))) is not None:
            activities[name] = value
    return activities if len(t.problems) == before else None


def _fault(t: Table, stations: set[str], duration: float | None, rn_stations: set[str]) -> Fault | None:
    """The fault of table ``t``, or None when a problem was recorded for one of its values."""
    kind = t.get("kind", str, check=one_of(FAULT_KINDS, ordered=True))
    at_s = t.get("at_s", float, check=in_range(0.0, None))
    length = t.get("duration_s", float, check=in_range(0.0, None))
    station = t.get("station", str, default=None)
    if kind in STATIONLESS_FAULTS:
        if station is not None:
            t.problem("station", f"a {kind} concerns the receiver, not a station")
    elif station not in stations and not ("station" in t.data and station is None):  # else reported
        t.problem("station", f"must name a station of this scenario, got {station!r}")
    elif station in rn_stations and kind not in RN_FAULTS:
        t.problem("kind", f"{station} is a radionuclide station; it takes {' or '.join(RN_FAULTS)}, "
                          f"not {kind}")
    if at_s is not None and length is not None and duration is not None and at_s + length >= duration:
        t.problem("", f"must end before the run does ({at_s} + {length} >= {duration})")
    when = t.get("when", str, default="any", check=one_of(WHEN, ordered=True))
    if when == "archive_write" and kind not in CRASH_FAULTS:
        t.problem("when", f"only a crash ({', '.join(CRASH_FAULTS)}) can wait for a write")
    t.done()
    if kind is None or at_s is None or length is None or when is None:
        return None
    return Fault(kind, at_s, length, station, when)


def _calibration(t: Table, stations: tuple[StationSpec, ...], duration: float) -> RemoteCalibration | None:
    """The remote calibration of table ``t``, or None when a problem was recorded for one of its values."""
    name = t.get("station", str)
    spec = next((s for s in stations if s.name == name), None)
    if name is not None and spec is None:
        t.problem("station", f"must name a station of this scenario, got {name!r}")
    elif spec is not None and spec.sensor != "seismometer":
        t.problem("station", f"only a seismometer has a calibration coil; {name} has a {spec.sensor}")
    channel = t.get("channel", str, check=text(1, 3, alnum=True))
    if spec is not None and channel is not None and channel not in {c.channel for c in spec.channels}:
        t.problem("channel", f"{channel!r} is not a channel of {name}")
    signal = t.get("signal", str, check=one_of(CALIBRATION_SIGNALS, ordered=True))
    minutes = t.get("minutes", int, check=in_range(2, 240))
    at_s = t.get("at_s", float, check=in_range(0.0, None))
    if at_s is not None and minutes is not None and at_s + 60 * minutes + CALIBRATION_MARGIN_S >= duration:
        t.problem("", f"must end before the run does ({at_s:g} s + {minutes} min + "
                      f"{CALIBRATION_MARGIN_S:g} s to judge it >= {duration:g} s)")
    t.done()
    if spec is None or channel is None or signal is None or minutes is None or at_s is None:
        return None
    return RemoteCalibration(spec.name, channel, signal, minutes, at_s)


def _random_faults(
    t: Table,
    names: list[str],
    duration: float | None,
    seed: tuple[int, int],
    earlier: list[Fault],
    rn_stations: set[str],
) -> list[Fault]:
    """``count`` faults of one kind at seeded random moments within ``RANDOM_SPAN`` of the run, their
    lengths log-uniform between the bounds (as many short as long ones per decade), spread over the
    listed stations (by default every one the kind concerns) in turn. Two faults of one kind never
    overlap at one station (or at the receiver), these nor ``earlier`` ones: an outage inside an outage
    would end at the inner one's end, a crash inside a crash would start the station twice."""
    kind = t.get("kind", str, check=one_of(FAULT_KINDS, ordered=True))
    count = t.get("count", int, check=in_range(1, 1000))
    shortest = t.get("min_duration_s", float, check=in_range(0.0, None))
    longest = t.get("max_duration_s", float, check=in_range(0.0, None))
    at_archive_write = t.get("archive_write", int, default=0, check=in_range(0, None))
    concerned = [n for n in names if n not in rn_stations or kind in RN_FAULTS]
    stations: list[str | None] = (list(t.strings("stations") or ()) if "stations" in t.data
                                  else list(concerned))
    t.done()
    if kind in STATIONLESS_FAULTS:
        if "stations" in t.data:
            t.problem("stations", f"a {kind} concerns the receiver, not a station")
        stations = [None]
    if not stations and kind not in STATIONLESS_FAULTS and "stations" not in t.data:
        t.problem("kind", f"no station of this scenario takes {kind}")
    for name in stations:
        if name is not None and name not in names:
            t.problem("stations", f"must name stations of this scenario, got {name!r}")
        elif name is not None and name not in concerned:
            t.problem("stations", f"{name} is a radionuclide station; it takes {' or '.join(RN_FAULTS)}, "
                                  f"not {kind}")
    if at_archive_write and kind not in CRASH_FAULTS:
        t.problem("archive_write", f"only crashes ({', '.join(CRASH_FAULTS)}) wait for one")
    if count is not None and at_archive_write is not None and at_archive_write > count:
        t.problem("archive_write", f"at most count ({count}), got {at_archive_write}")
    if (kind is None or count is None or shortest is None or longest is None or at_archive_write is None
            or duration is None):
        return []
    first, last = RANDOM_SPAN[0] * duration, RANDOM_SPAN[1] * duration
    if not 0 < shortest <= longest or longest >= (last - first) / 2:
        t.problem("", f"need 0 < min_duration_s <= max_duration_s < {(last - first) / 2:g} (half the span "
                      f"faults are drawn in), got {shortest:g}..{longest:g}")
        return []
    if not stations or t.problems:
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
            t.problem("", f"no room for {count} faults that do not overlap; fewer or shorter")
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
