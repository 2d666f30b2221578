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
    assert [len(rows) for rows in (system.calibration.g_energy, system.calibration.g_efficiency)] == [3, 4]


def calibration(kind: str, **tables: str) -> str:
    return BASE + system_toml(kind) + "[radionuclide.calibration]\n" + "".join(
        f"{name} = {rows}\n" for name, rows in tables.items())


P_TABLES = dict(g_energy="[[122.0, 371.1, 0.01], [661.7, 2006.2, 0.01]]", g_resolution="[[122.0, 1.2, 0.01]]",
                g_efficiency="[[122.0, 0.07, 0.001]]")
ROIS = "[" + ", ".join(f"[{roi}, {b0}, {b1}, {g0}, {g1}]" for roi, b0, b1, g0, g1 in (
    (1, 30, 600, 320, 385), (2, 30, 730, 229, 280), (3, 30, 350, 71, 100), (4, 30, 394, 19, 41),
    (5, 78, 166, 19, 41), (6, 171, 253, 19, 41))) + "]"
BG_TABLES = dict(g_energy="[[30.0, 10.2, 0.05], [81.0, 28.3, 0.05]]", b_energy='[[129.0, "C", 59.5, 0.1]]',
                 roi_limits=ROIS,
                 bg_efficiency='[["XE-135", 2, 0.5, 0.01], ["XE-133", 3, 0.4, 0.01], '
                               '["XE-133", 4, 0.3, 0.01], ["XE-131m", 5, 0.6, 0.01], '
                               '["XE-133m", 6, 0.6, 0.01]]',
                 ratios='[["RN222_1:2", 1, 2, 0.9, 0.01], ["XE133_3:4", 3, 4, 0.2, 0.01]]')


def test_a_noble_gas_calibration_is_read_as_the_blocks_rows():
    system = parse_config(calibration("noble_gas", **BG_TABLES), "station.toml", Path(".")).radionuclide[0]
    c = system.calibration
    assert c.b_energy == ((129.0, "C", 59.5, 0.1),)
    assert c.roi_limits[4] == (5, 78.0, 166.0, 19.0, 41.0)
    assert c.bg_efficiency[0] == ("XE-135", 2, 0.5, 0.01) and c.ratios[1] == ("XE133_3:4", 3, 4, 0.2, 0.01)
    assert c.g_resolution == () and c.b_resolution == ()  # not given: the block is left out
    assert c.time_ns is None
    dated = calibration("particulate", **P_TABLES, time="2026-11-20T09:15:00.5+01:00")
    assert parse_config(dated, "station.toml", Path(".")).radionuclide[0].calibration.time_ns == (
        1_795_162_500 * 10**9 + 5 * 10**8)  # 08:15:00.5 UTC


@pytest.mark.parametrize(("kind", "tables", "problem"), [
    ("noble_gas", dict(BG_TABLES, ratios="[]"),
     "calibration: the IDC analysis needs g_energy, b_energy, roi_limits, bg_efficiency, ratios together; "
     "missing ratios"),
    ("particulate", dict(g_energy="[[122.0, 371.1, 0.01], [661.7, 2006.2, 0.01]]"),
     "calibration: the IDC analysis needs g_energy, g_resolution, g_efficiency together; missing "
     "g_resolution, g_efficiency"),
    ("particulate", dict(roi_limits=ROIS), "calibration.roi_limits: only a noble-gas (beta-gamma) system "
                                           "writes this table"),
    ("particulate", dict(g_energy="[[122.0, 371.1, 0.01]]", g_resolution="[[122.0, 1.2, 0.01]]",
                         g_efficiency="[[122.0, 0.07, 0.001]]"),
     "calibration.g_energy: an energy calibration needs at least 2 rows, got 1"),
    ("particulate", dict(g_energy="[[122.0, 371.1, 0.01], [2614.5, 9000.0, 0.01]]",
                         g_resolution="[[122.0, 1.2, 0.01]]", g_efficiency="[[122.0, 0.07, 0.001]]"),
     "calibration.g_energy: a centroid lies outside the detector's channels 1-8192"),
    ("particulate", dict(P_TABLES, g_efficiency="[[122.0, 7.0, 0.1]]"),
     "calibration.g_efficiency: row 1: efficiency must be a fraction in (0, 1], got 7.0"),
    ("particulate", dict(P_TABLES, g_resolution="[[122.0, 1.2]]"),
     "calibration.g_resolution: row 1: want a list of 3 values, got [122.0, 1.2]; each row is "
     "[energy_kev, fwhm_kev, fwhm_uncertainty]"),
    ("noble_gas", dict(BG_TABLES, b_energy='[[129.0, "C C", 59.5, 0.1]]'),
     "calibration.b_energy: row 1: value 2 must be one word, got 'C C'; each row is "
     "[electron_kev, decay_mode, channel, channel_uncertainty]"),
    ("noble_gas", dict(BG_TABLES, roi_limits="[[1, 30.0, 600.0, 320.0, 385.0]]"),
     "calibration.roi_limits: the analysis needs ROIs 1-6; missing 2, 3, 4, 5, 6"),
    ("noble_gas", dict(BG_TABLES, roi_limits=ROIS.replace("[5, 78, 166", "[5, 20, 166")),
     "calibration.roi_limits: ROI 5 must lie inside ROI 4"),
    ("noble_gas", dict(BG_TABLES, roi_limits=ROIS.replace("[1, 30, 600", "[11, 30, 600")),
     "calibration.roi_limits: row 1: ROI must be 1-10, got 11"),
    ("noble_gas", dict(BG_TABLES, bg_efficiency='[["XE-135", 2, 0.5, 0.01]]'),
     "calibration.bg_efficiency: the analysis needs ROIs 2-6; missing 3, 4, 5, 6"),
    ("noble_gas", dict(BG_TABLES, ratios='[["RN222_1:9", 1, 9, 0.1, 0.01]]'),
     "calibration.ratios: names ROI 9, which roi_limits does not define"),
    ("noble_gas", dict(BG_TABLES, ratios='[["RN222_1:2", 1, 2, -0.1, 0.01]]'),
     "calibration.ratios: row 1: value and uncertainty must be >= 0, got -0.1, 0.01"),
    ("particulate", dict(P_TABLES, time="2026-11-20T09:15:00"),
     "calibration.time: must end in Z or a UTC offset, got 2026-11-20T09:15:00"),
    ("particulate", dict(P_TABLES, time="2026-11-20"),
     "calibration.time: must be a date and time (TOML, e.g. 2026-11-20T09:15:00Z), got date "
     "datetime.date(2026, 11, 20)"),
    ("noble_gas", dict(BG_TABLES, g_energy="[[30.0, 10.2, nan]]"),
     "calibration.g_energy: row 1: value 3 must be a finite number, got nan; each row is "
     "[energy_kev, centroid_channel, channel_uncertainty]"),
])
def test_a_calibration_the_analysis_could_not_use_is_refused_by_file_and_key(kind, tables, problem):
    assert problems(calibration(kind, **tables)) == [f"radionuclide[0].{problem}"]
