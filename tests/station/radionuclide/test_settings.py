"""[[radionuclide]] tables are checked by the station configuration's validator: every problem is named
with file and key, together with the rest of the file's problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from station.config import ConfigError, parse_config
from tests.conftest import REPO_ROOT
from tests.station.radionuclide.conftest import BASE, system_toml

WAVEFORM = """
[[digitizers]]
name = "dm24"
system_id = "ZZS01"
port = "/dev/ttyUSB0"
[[channels]]
digitizer = "dm24"
stream_id = "ZZSZ2"
site = "ZZS"
channel = "BHZ"
sensor_type = "seismic"
calib = 1.0
calper = 1.0
sample_rate = 40.0
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "station.toml", Path("."))
    return [f"{p.key}: {p.problem}" for p in caught.value.problems]


def test_a_station_with_waveform_and_both_radionuclide_systems_in_one_file():
    text = BASE + WAVEFORM + system_toml("particulate", "part") + system_toml("noble_gas", "gas")
    config = parse_config(text, "station.toml", Path("."))
    part, gas = config.radionuclide
    assert len(config.channels) == 1
    assert (part.kind, part.system_type, part.cycle.collection_s, part.cycle.qc_every) == ("particulate", "P",
                                                                                           86400, 1)
    assert (gas.system_type, gas.cycle.collection_s, gas.cycle.gasbk_s, gas.srid_letter) == ("B", 43200, 2400,
                                                                                             "X")
    assert gas.shares_line and not part.shares_line
    assert part.limits.flow_m3h.min == 500.0 and gas.spectra.g_energy_span_kev == 720.0


def test_a_radionuclide_station_needs_no_waveform_channels_but_a_station_needs_something():
    assert parse_config(BASE + system_toml(), "station.toml", Path(".")).channels == ()
    assert problems(BASE) == ["channels: at least one [[channels]] or [[radionuclide]] entry is required"]


def test_every_problem_is_named_by_key():
    text = (BASE + WAVEFORM
            + system_toml("noble_gas", "gas", collection_s=3600, acquisition_s=3500, gasbk_s=0, offset_s=7200,
                          colection_s=1)
            + system_toml("particulate", "gas").replace("/dev/ttygas1", "/dev/ttygas0")
            .replace('srid_station = "01"', 'srid_station = "1A"')
            + system_toml("particulate", "p3").replace("/dev/ttyp30", "/dev/ttyUSB0"))
    found = problems(text)
    assert found == [
        "radionuclide[0].cycle.colection_s: unknown key",
        "radionuclide[0].cycle.offset_s: must be below collection_s (3600), got 7200",
        "radionuclide[0].cycle.gasbk_s: a noble-gas system counts a gas background before every sample (> 0)",
        "radionuclide[1].srid_station: must be digits, got '1A'",
        "radionuclide[1].sampler.port: a particulate system's air sampler needs a line of its own (the DP5 "
        "speaks only its packet protocol)",
        "radionuclide[1].name: duplicate 'gas' (also radionuclide[0])",
        "radionuclide[1].detector.port: port '/dev/ttygas0' is already used by radionuclide[0].detector.port",
        "radionuclide[2].detector.port: port '/dev/ttyUSB0' is already used by digitizers[0].port",
    ]


def test_counts_that_do_not_fit_a_slot_and_short_collections_are_refused():
    assert problems(BASE + system_toml("particulate", collection_s=3600, acquisition_s=3000, qc_s=300,
                                       qc_every=1, detbk_s=600, detbk_every=3)) == [
        "radionuclide[0].cycle: the counts of one slot take 3900 s (QC, detector background, gas background "
        "and acquisition) but a slot lasts collection_s = 3600 s"]
    assert problems(BASE + system_toml("noble_gas", collection_s=1800)) == [
        "radionuclide[0].cycle.collection_s: must be >= 3600, got 1800"]


def test_the_commented_example_in_the_example_configuration_is_valid():
    text = (REPO_ROOT / "station" / "example_station.toml").read_text()
    head, example = text.split("# [[radionuclide]]", 1)
    lines = ("# [[radionuclide]]" + example).splitlines()
    uncommented = "\n".join(line.removeprefix("# ") for line in lines)
    (system,) = parse_config(head + uncommented, "example", Path(".")).radionuclide
    assert (system.kind, system.cycle.acquisition_s) == ("particulate", 84600)
    assert system.limits.flow_m3h.min == 500.0
