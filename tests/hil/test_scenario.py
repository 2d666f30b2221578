"""Scenario files: the embedded default loads; every problem of a bad file is reported, and only real ones."""

from __future__ import annotations

import pytest

from hil import scenario

STATION = """
[[stations]]
network = "IM"
sensor = "seismometer"
sample_rate = 40
block_s = 1
channels = ["{site}.BHZ"]
"""


def test_default_scenario_loads_and_compresses_its_faults():
    full = scenario.load()
    short = scenario.load(None, {"duration_s": full.duration_s / 4})
    assert short.stations == full.stations and len(short.faults) == len(full.faults) > 0
    for a, b in zip(full.faults, short.faults, strict=True):
        assert (b.kind, b.at_s, b.duration_s) == (a.kind, a.at_s / 4, a.duration_s / 4)


def test_stations_without_names_are_reported_once_each_and_faults_still_checked():
    text = "[run]\nduration_s = 600\nspeed = 10\n" + STATION.format(site="ABC1") + STATION.format(site="ABC2")
    text += '[[faults]]\nkind = "link_outage"\nat_s = 10\nduration_s = 5\n'
    with pytest.raises(scenario.ScenarioError) as caught:
        scenario.parse(text, "two.toml")
    assert [f"{p.key}: {p.problem}" for p in caught.value.problems] == [
        "stations[0].name: missing (required)",
        "stations[1].name: missing (required)",
        "faults[0].station: must name a station of this scenario, got None",
    ]


def test_every_problem_names_its_key():
    text = "[run]\nduration_s = 5\nspeed = 10\nseed = 1.5\n" + STATION.format(site="ABC1").replace(
        "block_s = 1", 'block_s = 10\nname = "A-1"'
    )
    text += '[[faults]]\nkind = "meteor"\nat_s = 1\nduration_s = 1\n'
    with pytest.raises(scenario.ScenarioError) as caught:
        scenario.parse(text, "bad.toml")
    assert [f"{p.key}: {p.problem}" for p in caught.value.problems] == [
        "run.duration_s: must be >= 10, got 5.0",
        "run.seed: must be an integer, got float 1.5",
        "stations[0].name: must be ASCII letters and digits, got 'A-1'",
        "stations[0].block_s: 10 s at 40 sps exceeds the 250 samples a GCF block can always hold",
        "faults[0].kind: must be one of link_outage, station_crash, receiver_crash, gps_unlock, unplug, "
        "disk_full; got 'meteor'",
        "faults[0].station: must name a station of this scenario, got None",
    ]


def test_remote_calibrations_load_compress_and_are_checked():
    default = scenario.load()
    (cal,) = default.calibrations
    assert (cal.station, cal.words) == ("SEIS1", ["calibrate", "BHZ", "random", "30"])
    short = scenario.load(None, {"duration_s": default.duration_s / 6})
    assert (short.calibrations[0].at_s, short.calibrations[0].minutes) == (cal.at_s / 6, 5)
    text = "[run]\nduration_s = 3600\nspeed = 10\n" + STATION.format(site="ABC1").replace(
        "block_s = 1", 'block_s = 1\nname = "ABC1"')
    infrasound = STATION.format(site="INF1").replace('sensor = "seismometer"', 'sensor = "microbarometer"')
    text += infrasound.replace("block_s = 1", 'block_s = 1\nname = "INF1"')
    for entry, problem in (
        ('station = "INF1"\nchannel = "BHZ"\nsignal = "random"\nminutes = 10\nat_s = 60\n',
         "calibrations[0].station: only a seismometer has a calibration coil; INF1 has a microbarometer"),
        ('station = "ABC1"\nchannel = "BHN"\nsignal = "random"\nminutes = 10\nat_s = 60\n',
         "calibrations[0].channel: 'BHN' is not a channel of ABC1"),
        ('station = "ABC1"\nchannel = "BHZ"\nsignal = "sine"\nminutes = 10\nat_s = 60\n',
         "calibrations[0].signal: must be one of random, step; got 'sine'"),
        ('station = "ABC1"\nchannel = "BHZ"\nsignal = "step"\nminutes = 60\nat_s = 60\n',
         "calibrations[0]: must end before the run does (60 s + 60 min + 240 s to judge it >= 3600 s)"),
    ):
        with pytest.raises(scenario.ScenarioError) as caught:
            scenario.parse(text + "[[calibrations]]\n" + entry, "cal.toml")
        assert [f"{p.key}: {p.problem}" for p in caught.value.problems] == [problem]
    ok = scenario.parse(text + '[[calibrations]]\nstation = "ABC1"\nchannel = "BHZ"\nsignal = "step"\n'
                        "minutes = 20\nat_s = 600\n", "cal.toml")
    assert ok.calibrations[0].words == ["calibrate", "BHZ", "step", "20"]
