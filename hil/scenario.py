"""Scenario files for the simulated network: stations, duration, speed and faults, validated at load.

Errors name the file, the key (``faults[1].at_s``) and the problem, like the station configuration.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from station.config import BAUD_RATES, toml_key

SENSORS = {"seismometer": "seismic", "microbarometer": "infrasonic", "hydrophone": "hydroacoustic"}
FAULT_KINDS = ("link_outage", "station_crash", "receiver_crash", "gps_unlock", "unplug", "disk_full")
STATIONLESS_FAULTS = ("receiver_crash",)
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

    @property
    def sensor_type(self) -> str:
        return SENSORS[self.sensor]


@dataclass(frozen=True)
class Fault:
    kind: str
    at_s: float
    duration_s: float
    station: str | None = None


@dataclass(frozen=True)
class Scenario:
    source: str
    duration_s: float
    speed: float
    seed: int
    frame_length_s: int
    stations: tuple[StationSpec, ...]
    faults: tuple[Fault, ...]


def load(path: Path | None = None, run_overrides: dict[str, Any] | None = None) -> Scenario:
    """A scenario file (the embedded default when ``path`` is None); ``run_overrides`` replace keys of
    its ``[run]`` table before validation. A new ``duration_s`` compresses the whole scenario: fault
    times and lengths scale with it, so a shortened run meets the same faults in the same order."""
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
            for fault in data.get("faults", []):
                for key in ("at_s", "duration_s"):
                    if isinstance(fault, dict) and _finite(fault.get(key)):
                        fault[key] = float(fault[key]) * float(new) / float(old)
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
    tables = check.array(data, "stations")
    parsed = [_station(check, t, f"stations[{i}]") for i, t in enumerate(tables)]
    stations = tuple(s for s in parsed if s is not None)
    names = [s.name for s in stations]
    for name in {n for n in names if names.count(n) > 1}:
        problems.append(f"stations: station {name!r} appears more than once")
    faults = tuple(
        f
        for i, t in enumerate(check.array(data, "faults", required=False))
        if (f := _fault(check, t, f"faults[{i}]", set(names), duration or 0.0)) is not None
    )
    check.unknown(data, "", {"run", "stations", "faults"})
    if not tables:
        problems.append("stations: at least one station is needed")
    # a value is None only where a problem was recorded
    if problems or duration is None or speed is None or seed is None or frame_length is None:
        raise ScenarioError(source, problems)
    return Scenario(source, duration, speed, seed, frame_length, stations, faults)


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
    check.unknown(t, key, {f.name for f in dataclasses.fields(StationSpec)})
    if (name is None or network is None or sensor is None or rate is None or block_s is None or baud is None
            or bit_error_rate is None or drop_rate is None):
        return None
    return StationSpec(name, network, sensor, rate, block_s, tuple(channels), baud, bit_error_rate, drop_rate)


def _fault(
    check: _Checker, t: dict[str, Any], key: str, stations: set[str], duration: float
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
    if at_s is not None and length is not None and at_s + length >= duration:
        check.problems.append(f"{key}: must end before the run does ({at_s} + {length} >= {duration})")
    check.unknown(t, key, {f.name for f in dataclasses.fields(Fault)})
    if kind is None or at_s is None or length is None:
        return None
    return Fault(kind, at_s, length, station)


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
