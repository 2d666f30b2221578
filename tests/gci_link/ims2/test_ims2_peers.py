"""Files written by gci_link.ims2 are read by third-party readers with the same spectra and times.

SpecUtils (sandiaspecutils) reads the gamma part of any PHD: ``#g_Spectrum`` and ``#Acquisition``.
It maps row labels as 1-based, so it reads 1-based (particulate, HPGe) files exactly and 0-based
(beta-gamma) files shifted by one channel, row 0 dropped (spec §12); the test pins that quirk.
openSpex reads beta-gamma PHD (singles, histogram, header, collection, processing) to the second.
Neither reads RMSSOH, MET or ALERT messages, so none is tested with them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import os

import numpy as np
import pytest

from gci_link import ims2
from tests.conftest import shared_fixture_dir
from tests.gci_link.ims2 import builders

FIXTURES = ["SAMPLE-FULL-20211203070613605.PHD", "CALIBPHD-20190502222812845.PHD"]
ROI_COUNTS = {  # openSpex 1.0.7 on the original files (MANIFEST)
    FIXTURES[0]: [211, 262, 651, 698, 451, 78, 111, 44, 122, 562],
    FIXTURES[1]: [152, 296, 14115, 12431, 3978, 1951, 5583, 611, 2596, 9737],
}
BETA_GAMMA_TYPES = ["SAMPLEPHD", "SPIKEPHD", "DETBKPHD", "GASBKPHD", "CALIBPHD", "QCPHD", "BLANKPHD"]


def _datetime(ns: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=ns // 1000)


def _seconds(ns: int) -> dt.datetime:
    """openSpex drops the tenths of every time."""
    return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=ns // 1_000_000_000)


def _written(tmp_path, message: ims2.PhdMessage, name: str = "written.PHD"):
    path = tmp_path / name
    path.write_text(ims2.write(message), encoding="ascii")
    return path


# ---------------------------------------------------------------- SpecUtils


@pytest.fixture(scope="module")
def specutils():
    return pytest.importorskip("SpecUtils", reason="sandiaspecutils is in the test extra")


def _specutils_read(specutils, path):
    spec = specutils.SpecFile()
    spec.loadFile(str(path), specutils.ParserType.Phd)  # raises RuntimeError if it cannot read the file
    (measurement,) = spec.measurements()
    return measurement


def _assert_specutils_times(measurement, m: ims2.PhdMessage):
    assert measurement.startTime() == _datetime(m.acquisition_start_ns)
    assert measurement.realTime() == np.float32(m.real_time_s)  # SpecUtils keeps single precision
    assert measurement.liveTime() == np.float32(m.live_time_s)


@pytest.mark.parametrize("data_type", ims2.PHD_TYPES)
@pytest.mark.parametrize("system_type", ["P", "G"])
def test_specutils_reads_our_hpge_phd_identically(specutils, tmp_path, data_type, system_type):
    m = builders.hpge(np.random.default_rng(20), data_type, channels=8192, system_type=system_type)
    measurement = _specutils_read(specutils, _written(tmp_path, m))
    counts = np.asarray(measurement.gammaCounts())
    assert counts.size == 8192 and np.array_equal(counts, m.g_spectrum)
    _assert_specutils_times(measurement, m)


def test_specutils_reads_a_one_based_beta_gamma_file_identically(specutils, tmp_path):
    m = builders.beta_gamma(np.random.default_rng(21), n=256, first_channel=1)
    measurement = _specutils_read(specutils, _written(tmp_path, m))
    assert np.array_equal(np.asarray(measurement.gammaCounts()), m.g_spectrum)
    _assert_specutils_times(measurement, m)


@pytest.mark.parametrize("name", FIXTURES)
def test_specutils_reads_our_rewrite_of_the_real_files_with_its_known_shift(specutils, tmp_path, name):
    m = ims2.parse((shared_fixture_dir("phd") / name).read_text(encoding="ascii"))
    measurement = _specutils_read(specutils, _written(tmp_path, m, name))
    counts = np.asarray(measurement.gammaCounts())
    assert counts.size == 256
    assert np.array_equal(counts[4:255], m.g_spectrum[5:])  # channel c lands at index c - 1 ...
    assert not counts[:4].any() and counts[255] == 0  # ... and the row labelled 0 is dropped
    original = _specutils_read(specutils, shared_fixture_dir("phd") / name)
    assert np.array_equal(np.asarray(original.gammaCounts()), counts)  # exactly as it reads the original
    _assert_specutils_times(measurement, m)


# ---------------------------------------------------------------- openSpex


@pytest.fixture(scope="module")
def openspex():
    os.environ.setdefault("MPLBACKEND", "Agg")
    module = pytest.importorskip(
        "open_spex.BGMeasurement",
        reason="open-spex is installed with --no-deps (its wxpython dependency has no Linux wheel)",
    )
    return module


def _openspex_read(openspex, path, calibrate=False):
    with contextlib.redirect_stdout(io.StringIO()):  # it prints what it checks
        return openspex.BGMeasurement("SAUNA", str(path), makeHist=False, calibrate=calibrate)


def _assert_openspex_same(o, m: ims2.PhdMessage):
    assert not o.errors
    assert (o.msg_id, o.data_type) == (
        f"{m.msg_id} {m.msg_source}" if m.msg_source else m.msg_id,
        m.data_type,
    )
    assert (o.station, o.detector, o.qual, o.srid) == (m.station, m.detector, m.spectrum_qualifier, m.srid)
    assert (o.sample_id, o.detbk_id, o.gasbk_id) == tuple(
        i or "0" for i in (m.sample_id, m.detbk_id, m.gasbk_id)
    )
    assert o.transmit_time == _seconds(m.transmit_ns)
    assert o.acq_start == _seconds(m.acquisition_start_ns)
    assert (o.acq_realtime, o.acq_livetime) == (m.real_time_s, m.live_time_s)
    assert (o.ngamma_chan, o.nbeta_chan) == (m.g_spectrum.size, m.b_spectrum.size)
    assert np.array_equal(o.gamma, m.g_spectrum) and np.array_equal(o.beta, m.b_spectrum)
    assert (o.nbg_gamma_chan, o.nbg_beta_chan) == m.histogram.shape
    assert np.array_equal(o.beta_gamma, m.histogram.ravel())  # flat, [g * n_beta + b]
    assert (o.nbg_gamma_maxene, o.nbg_beta_maxene) == (m.histogram_gamma_span_kev, m.histogram_beta_span_kev)
    if m.collection_start_ns is not None:
        assert (o.collstart_time, o.collstop_time) == (
            _seconds(m.collection_start_ns),
            _seconds(m.collection_stop_ns),
        )
        assert o.air_volume == m.air_volume_m3
    if m.xe_volume_ml is not None:
        assert (o.xe_vol, o.xe_vol_err, o.xe_yield, o.xe_yield_err) == (
            m.xe_volume_ml,
            m.xe_volume_unc_ml,
            m.xe_yield,
            m.xe_yield_unc,
        )
    assert [list(r) for r in o.ROI_limits_ene] == [list(r) for r in m.roi_limits]
    assert [tuple(r) for r in o.bg_eff] == list(m.bg_efficiency)
    assert [tuple(r) for r in o.ratio] == list(m.ratios)
    assert [tuple(r) for r in o.gEnergy] == list(m.g_energy)


@pytest.mark.parametrize("name", FIXTURES)
def test_openspex_reads_our_rewrite_of_the_real_files(openspex, tmp_path, name):
    m = ims2.parse((shared_fixture_dir("phd") / name).read_text(encoding="ascii"))
    o = _openspex_read(openspex, _written(tmp_path, m, name), calibrate=True)
    _assert_openspex_same(o, m)
    assert list(o.roi_counts) == ROI_COUNTS[name]  # its own ROI analysis of our file, as of the original
    original = _openspex_read(openspex, shared_fixture_dir("phd") / name)
    assert o.status == original.status  # the same findings (no #Certificate in the sample: 1 << 23)


@pytest.mark.parametrize("data_type", BETA_GAMMA_TYPES)
def test_openspex_reads_our_beta_gamma_phd_identically(openspex, tmp_path, data_type):
    m = builders.beta_gamma(np.random.default_rng(22), data_type, n=256)
    o = _openspex_read(openspex, _written(tmp_path, m))
    _assert_openspex_same(o, m)
    assert not o.warnings if data_type in ("CALIBPHD", "QCPHD") else o.status == 1 << 23
    if m.certificate is not None:
        assert o.certificate == "".join(
            ims2.write(m).split("#Certificate\n")[1].split("\nSTOP")[0].split("\n")
        )
