"""The report folder: JSON, StationXML read back by ObsPy, PNG figures and the self-contained HTML page."""

from __future__ import annotations

import base64
import json
import math
import re
from functools import cache, partial
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from obspy import UTCDateTime, read_inventory

from calibration.report import Session, write_report
from calibration.response import Seismometer, calib_from_response
from calibration.seismometer import FitResult, fit_response
from calibration.signals import random_telegraph
from calibration.stationxml import ChannelSite, write_stationxml
from tests.calibration.truth import Recording, record

START_NS = 1_765_000_000_250_000_000
COIL = 2.5e-6  # m/s² of equivalent ground acceleration per input count
DIGITIZER = 4e5  # counts per volt
SENSOR = Seismometer(30.0, 0.7, -1500.0 * DIGITIZER * COIL)  # reversed polarity; per integrated input count
SITE = ChannelSite("IM", "TST", "00", "BHZ", 47.5, 8.25, 420.0, 1.5, 20.0, START_NS)


@cache
def calibrated() -> tuple[Recording, FitResult]:
    signal = partial(random_telegraph, amplitude=1000.0, interval=2.0, seed=3)
    rec = record(signal, 20.0, SENSOR.coil_response(), duration=900.0, preroll=60.0, delay_fine_samples=2,
                 seed=4)
    nominal = Seismometer(31.0, 0.7, SENSOR.gain)
    return rec, fit_response(rec.cal_input, rec.output, rec.sample_rate, nominal=nominal)


def session(coil_constant: float | None = COIL) -> Session:
    return Session("IM", "TST", "00", "BHZ", "BC0", START_NS, "random telegraph ±1000 counts, 2 s interval",
                   operator="test", coil_constant=coil_constant)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict[str, Path]:
    """One report folder (rendering the figures takes about a second), shared by the checks below."""
    rec, fit = calibrated()
    return write_report(tmp_path_factory.mktemp("report"), session(), fit, rec.cal_input, rec.output,
                        site=SITE, digitizer_gain=DIGITIZER)


def test_json_result_carries_the_fit_and_calib(report):
    _, fit = calibrated()
    data = json.loads(report["json"].read_text())
    assert data["fit"]["period"] == fit.period and data["fit"]["verdict"] == fit.verdict
    assert data["fit"]["uncertainty"]["damping"] == fit.uncertainty.damping
    assert data["session"]["start_utc"] == "2025-12-06 05:46:40.250 UTC"
    expected = calib_from_response(fit.ground_response(COIL), 1.0)
    assert data["calib"] == expected and data["calper"] == 1.0
    assert expected < 0  # reversed polarity gives a negative calib
    assert abs(expected) == pytest.approx(1e9 / (2 * math.pi * 1500.0 * DIGITIZER), rel=1e-3)  # truth's G·D


def _check_channel(path: Path, stages: int) -> None:
    _, fit = calibrated()
    inventory = read_inventory(str(path))
    channel = inventory.select(network="IM", station="TST", location="00", channel="BHZ")[0][0][0]
    assert channel.sample_rate == 20.0 and channel.start_date == UTCDateTime("2025-12-06T05:46:40.25")
    assert (channel.latitude, channel.longitude, channel.elevation, channel.depth) == (47.5, 8.25, 420.0, 1.5)
    response = channel.response
    assert len(response.response_stages) == stages
    freqs = np.geomspace(1e-3, 9.0, 40)
    theirs = response.get_evalresp_response_for_frequencies(freqs, output="VEL")
    ours = fit.ground_response(COIL)(freqs)
    assert np.allclose(theirs, ours, rtol=1e-6)
    assert response.instrument_sensitivity.value == pytest.approx(fit.ground_response(COIL).sensitivity(1.0))
    assert response.instrument_sensitivity.input_units == "M/S"


def test_stationxml_with_sensor_and_digitizer_stages_is_read_back_by_obspy(report):
    _check_channel(report["stationxml"], stages=2)
    stages = read_inventory(str(report["stationxml"]))[0][0][0].response.response_stages
    assert stages[0].output_units == "V" and stages[1].stage_gain == DIGITIZER


def test_stationxml_with_one_stage_in_counts_is_read_back_by_obspy(tmp_path):
    _, fit = calibrated()
    write_stationxml(tmp_path / "one.xml", SITE, fit.ground_response(COIL))
    _check_channel(tmp_path / "one.xml", stages=1)


def test_figures_are_pngs_of_a_readable_size(report):
    for kind in ("response_png", "traces_png"):
        image = matplotlib.image.imread(report[kind])
        assert image.shape[0] >= 800 and image.shape[1] >= 1100
        assert image[..., :3].std() > 0.05  # not blank


def test_html_page_is_self_contained_and_states_what_an_engineer_files(report):
    _, fit = calibrated()
    page = report["html"].read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert [base64.b64decode(i) for i in images] == [report["response_png"].read_bytes(),
                                                       report["traces_png"].read_bytes()]
    assert "src=\"http" not in page and "<link" not in page  # nothing fetched from elsewhere
    for text in ("IM.TST.00.BHZ", "BC0", "2025-12-06 05:46:40.250 UTC", "random telegraph",
                 "Free period T0", "Damping h", "calib at calper 1 s", "Largest amplitude deviation",
                 f"{fit.period:.3f}", "31 s"):
        assert text in page, text
    assert ("PASS" in page) == (fit.verdict == "pass") and ("FAIL" in page) == (fit.verdict == "fail")


def test_without_a_coil_constant_there_is_no_absolute_level(tmp_path):
    rec, fit = calibrated()
    paths = write_report(tmp_path, session(coil_constant=None), fit, rec.cal_input, rec.output, site=SITE)
    assert "stationxml" not in paths and not (tmp_path / "response.xml").exists()
    assert "calib" not in json.loads(paths["json"].read_text())
    assert "absolute sensitivity not determined" in paths["html"].read_text()
