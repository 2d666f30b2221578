"""Scenario files: the embedded default loads; every problem of a bad file is reported, and only real ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil import scenario
from rn_analysis.library import NUCLIDES

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


RN_STATION = """
[[rn_stations]]
name = "{name}"
network = "IM"
kind = "{kind}"
"""


def test_the_default_scenario_has_a_particulate_and_a_noble_gas_station_with_faults_mid_count():
    demo = scenario.load()
    assert sorted(s.kind for s in demo.rn_stations) == ["noble_gas", "particulate"]
    rn = {s.name for s in demo.rn_stations}
    assert {f.kind for f in demo.faults if f.station in rn} == {"station_crash", "link_outage"}
    short = scenario.load(None, {"duration_s": demo.duration_s / 2})  # the first slots move with the faults
    assert [s.first_slot_s for s in short.rn_stations] == [s.first_slot_s // 2 for s in demo.rn_stations]


def test_radionuclide_stations_are_checked_like_the_others_and_their_cycle_like_the_daemon_does():
    text = "[run]\nduration_s = 7200\nspeed = 60\n" + STATION.format(site="ABC1").replace(
        "[[stations]]", '[[stations]]\nname = "ABC1"')
    text += RN_STATION.format(name="RNB1", kind="particulate")
    text += "histogram_channels = 64\nfirst_slot_s = 9000\n"
    text += '[rn_stations.cycle]\ncollection_s = 3600\nqc_s = 3000\nacquisition_s = 2700\noffset_s = 5\n'
    text += RN_STATION.format(name="RNX1", kind="noble_gas") + 'activities_bq = {"Xe-999" = 1.0}\n'
    text += '[rn_stations.cycle]\ncollection_s = 600\nspin_s = 3\n'
    text += RN_STATION.format(name="RNX2", kind="noble_gas") + '[rn_stations.cycle]\ngasbk_s = 0\n'
    text += RN_STATION.format(name="RNP2", kind="particulate") + '[rn_stations.cycle]\nqc_s = 300\n'
    text += RN_STATION.format(name="RNP3", kind="particulate") + '[rn_stations.cycle]\nqc_s = 4000\n'
    text += RN_STATION.format(name="ABC1", kind="particulate")
    text += '[[faults]]\nkind = "gps_unlock"\nstation = "RNP2"\nat_s = 10\nduration_s = 5\n'
    text += '[[random_faults]]\nkind = "unplug"\ncount = 2\nmin_duration_s = 1\nmax_duration_s = 2\n'
    text += 'stations = ["RNP2"]\n'
    with pytest.raises(scenario.ScenarioError) as caught:
        scenario.parse(text, "rn.toml")
    assert [f"{p.key}: {p.problem}" for p in caught.value.problems] == [
        "rn_stations[0].first_slot_s: must be within the run (7200 s), got 9000",
        "rn_stations[0].histogram_channels: only a noble-gas system has a histogram",
        "rn_stations[0].cycle.offset_s: set by rn_stations[0].first_slot_s (when the first slot opens)",
        "rn_stations[1].cycle.spin_s: unknown key",
        f"rn_stations[1].activities_bq.Xe-999: unknown nuclide (known: {', '.join(NUCLIDES)})",
        "rn_stations[2].cycle.gasbk_s: a noble-gas system counts a gas background before every sample (> 0)",
        "rn_stations[4].cycle: the counts of one slot take 88600 s (QC, detector background, gas background "
        "and acquisition) but a slot lasts collection_s = 86400 s",
        "stations: station 'ABC1' appears more than once",
        "faults[0].kind: RNP2 is a radionuclide station; it takes link_outage or station_crash, "
        "not gps_unlock",
        "random_faults[0].stations: RNP2 is a radionuclide station; it takes link_outage or station_crash, "
        "not unplug",
    ]


def test_a_scenario_of_radionuclide_stations_alone_is_valid_and_random_faults_skip_them_when_unfit():
    text = "[run]\nduration_s = 86400\nspeed = 500\n" + RN_STATION.format(name="RNP1", kind="particulate")
    text += RN_STATION.format(name="RNX1", kind="noble_gas") + "histogram_channels = 128\n"
    text += '[[random_faults]]\nkind = "station_crash"\ncount = 4\n'
    text += 'min_duration_s = 60\nmax_duration_s = 600\n'
    loaded = scenario.parse(text, "rn-only.toml")
    assert loaded.stations == () and [s.histogram_channels for s in loaded.rn_stations] == [256, 128]
    assert {f.station for f in loaded.faults} == {"RNP1", "RNX1"}
    with pytest.raises(scenario.ScenarioError) as caught:
        scenario.parse(text.replace("station_crash", "gps_unlock"), "rn-only.toml")
    problems = [f"{p.key}: {p.problem}" for p in caught.value.problems]
    assert problems == ["random_faults[0].kind: no station of this scenario takes gps_unlock"]


def test_the_radionuclide_day_scenario_holds_a_whole_particulate_slot_at_the_ims_schedule():
    day = scenario.load(Path(scenario.__file__).parent / "scenarios" / "rn-day.toml")
    particulate = next(s for s in day.rn_stations if s.kind == "particulate")
    cycle = particulate.cycle
    assert cycle["collection_s"] == cycle["decay_s"] == 86400
    assert particulate.first_slot_s + cycle["qc_s"] + cycle["acquisition_s"] < day.duration_s
    rn = {s.name for s in day.rn_stations}
    assert {f.kind for f in day.faults if f.station in rn} == {"station_crash", "link_outage"}
