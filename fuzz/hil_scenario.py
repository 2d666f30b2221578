"""Simulated-network scenario TOML through ``hil.scenario.load``.

Invariants:
- any bytes give a Scenario or a ScenarioError listing at least one problem; nothing else escapes;
- an accepted scenario can be run: finite numbers in their ranges, a seed the random generators take,
  a frame length that divides a minute, faults on stations of the scenario ending before the run does;
- the station and receiver configurations the simulated network writes for it (hil.network's own
  station_toml and scenario_receiver_toml, wired as its _make_station wires them; a radionuclide
  station's as _make_rn_station does) pass station.config and idc.config: a scenario the loader accepts
  never fails later on a configuration of its own making.
"""

from __future__ import annotations

from pathlib import Path

from fuzz.config_file import TOML_SYNTAX, TOML_VALUES, as_file, finite
from hil.network import (
    DigitizerWiring,
    _stream_suffixes,
    rn_system_spec,
    scenario_receiver_toml,
    station_toml,
)
from hil.rn_station import rn_station_toml, system_toml
from hil.scenario import FAULT_KINDS, RN_FAULTS, STATIONLESS_FAULTS, Scenario, ScenarioError, load
from idc.config import load_config as load_idc_config
from station.config import parse_config

NAME = "scenario.toml"


def check(data: bytes) -> None:
    path = as_file(data, NAME)
    for overrides in (None, {"duration_s": 3600.0}):  # as `ims hil run` and `ims hil run --duration`
        try:
            scenario = load(path, overrides)
        except ScenarioError as exc:
            assert exc.problems and all(p.file == str(path) for p in exc.problems), f"unclear error: {exc}"
            continue
        _check_accepted(scenario)
        _check_generated_configs(scenario, path.parent)


def _check_accepted(s: Scenario) -> None:
    assert finite(s.duration_s, s.speed) and s.duration_s >= 10 and 0.1 <= s.speed <= 1000
    assert isinstance(s.seed, int) and 0 <= s.seed < 2**63, f"seed {s.seed} cannot seed the simulation"
    assert 1 <= s.frame_length_s <= 60 and 60 % s.frame_length_s == 0, f"frame length {s.frame_length_s}"
    names = {st.name for st in s.stations} | {st.name for st in s.rn_stations}
    assert names and len(names) == len(s.stations) + len(s.rn_stations)
    for st in s.stations:
        assert 1 <= st.sample_rate <= 250 and 1 <= st.block_s <= 60 and st.sample_rate * st.block_s <= 250
        assert 1 <= len(st.channels) <= 16
        assert finite(st.bit_error_rate, st.drop_rate)
    for f in s.faults:
        assert f.kind in FAULT_KINDS and finite(f.at_s, f.duration_s) and f.at_s >= 0 and f.duration_s >= 0
        assert f.at_s + f.duration_s < s.duration_s
        assert (f.station is None) if f.kind in STATIONLESS_FAULTS else (f.station in names)
        assert f.kind in RN_FAULTS or f.station not in {st.name for st in s.rn_stations}


def _check_generated_configs(s: Scenario, folder: Path) -> None:
    for index, spec in enumerate(s.stations):  # wired as hil.network.SimNetwork._make_station does
        serial = spec.name[:4].upper() if len(spec.name) >= 4 else f"{spec.name}{index:02d}"[-4:]
        streams = {serial + sfx: ch for sfx, ch in zip(_stream_suffixes(spec), spec.channels, strict=True)}
        wiring = DigitizerWiring("digitizer", spec.name, "/dev/pts/fuzz", streams)
        text = station_toml(spec, [wiring], "tcp://127.0.0.1:1", folder / "bundle", s.frame_length_s)
        parse_config(text, source=f"station {spec.name}", base_dir=folder)  # ConfigError here is a bug
    for index, rn in enumerate(s.rn_stations):
        system = rn_system_spec(rn, 1_800_000_000 * 10**9, index)
        sampler = "/dev/pts/fuzz-air" if rn.kind == "particulate" else "/dev/pts/fuzz"
        table = system_toml(system, "/dev/pts/fuzz", sampler)
        text = rn_station_toml(rn.name, rn.network, "tcp://127.0.0.1:1", folder / "bundle", [table])
        parse_config(text, source=f"station {rn.name}", base_dir=folder)  # ConfigError here is a bug
    receiver = scenario_receiver_toml(s, folder / "idc", folder / "trust", 1)
    load_idc_config(as_file(receiver.encode(), "receiver.toml"))  # IdcConfigError here is a bug


def seeds() -> list[bytes]:
    """The shipped default scenario and the test scenarios next to it."""
    root = Path(__file__).resolve().parents[1]
    tests = sorted((root / "tests" / "hil" / "scenarios").glob("*.toml"))
    files = [root / "hil" / "scenarios" / "default.toml", *tests]
    return [p.read_bytes() for p in files if p.is_file()]


DICTIONARY = TOML_VALUES + TOML_SYNTAX + [b"[[faults]]", b"[[stations]]", b'kind = "receiver_crash"',
                                         b"station", b"[[rn_stations]]", b'kind = "noble_gas"',
                                         b"[rn_stations.cycle]", b"first_slot_s"]
