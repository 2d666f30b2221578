"""The real MIX58 PHD files parse to the totals of their MANIFEST, and write(parse()) keeps every number."""

from __future__ import annotations

import calendar
import re

import numpy as np
import pytest

from gci_link import ims2
from tests.conftest import shared_fixture_dir
from tests.gci_link.ims2.builders import assert_same

SAMPLE = "SAMPLE-FULL-20211203070613605.PHD"
CALIB = "CALIBPHD-20190502222812845.PHD"
S = 1_000_000_000


def _ns(text: str) -> int:
    """UTC nanoseconds of 'YYYY/MM/DD hh:mm:ss.s', by arithmetic independent of the codec."""
    date, time = text.split()
    y, mo, d = map(int, date.split("/"))
    hh, mm, ss = time.split(":")
    whole, _, tenths = ss.partition(".")
    seconds = calendar.timegm((y, mo, d, int(hh), int(mm), int(whole), 0, 0, 0))
    return seconds * S + int(tenths or 0) * S // 10


def _text(name: str) -> str:
    return (shared_fixture_dir("phd") / name).read_text(encoding="ascii")


@pytest.fixture(scope="module")
def sample() -> ims2.PhdMessage:
    return ims2.parse(_text(SAMPLE))


@pytest.fixture(scope="module")
def calib() -> ims2.PhdMessage:
    return ims2.parse(_text(CALIB))


def test_sample_envelope_header_and_times(sample):
    m = sample
    assert (m.data_type, m.msg_id, m.msg_source) == ("SAMPLEPHD", "20211203070613605", None)
    assert (m.station, m.detector, m.system_type) == ("MIX58", "MIX58_222", "B")
    assert (m.sample_geometry, m.spectrum_qualifier, m.srid) == ("CYLINDER", "FULL", "58202112020111X")
    assert m.sample_id == "MIX58_222-2021/12/02-17:00:54.4"
    assert m.detbk_id == "MIX58_222-2021/08/16-06:20:34.8"
    assert m.gasbk_id == "MIX58_222-2021/12/02-08:08:59.1"
    assert m.transmit_ns == _ns("2021/12/03 07:06:13.6")
    assert m.collection_start_ns == _ns("2021/12/02 01:00:25.0")
    assert m.collection_stop_ns == _ns("2021/12/02 12:59:59.0")
    assert m.collection_stop_ns - m.collection_start_ns == 43_174 * S
    assert m.air_volume_m3 == 22.3474140
    assert m.acquisition_start_ns == _ns("2021/12/02 17:00:54.4")
    assert (m.real_time_s, m.live_time_s) == (50_719.17, 50_400.00)
    assert m.acquisition_start_ns - m.collection_stop_ns == 14_455_400_000_000
    assert m.calibration_ns == _ns("2021/12/02 17:00:54.4")
    assert (m.xe_volume_ml, m.xe_volume_unc_ml, m.xe_yield, m.xe_yield_unc) == (
        0.99533,
        0.08659,
        0.61685,
        0.05367,
    )
    assert m.archive_id == "17"
    assert m.comment == "Histogram data\n"
    assert m.certificate is None and m.extra_blocks == () and m.warnings == ()


def test_sample_tables(sample):
    m = sample
    rows = {
        "g_energy": 5,
        "b_energy": 24,
        "g_resolution": 5,
        "b_resolution": 11,
        "roi_limits": 10,
        "g_efficiency": 6,
        "bg_efficiency": 9,
        "ratios": 16,
    }
    assert {name: len(getattr(m, name)) for name in rows} == rows
    assert m.g_energy[2] == ims2.EnergyPoint(81.0, 31.55, 0.05)
    assert m.b_energy[0] == ims2.BetaEnergyPoint(79.02, "C", 21.2, 0.1)
    assert m.roi_limits[2] == ims2.RoiLimits(3, 29.8, 352.5, 71.15, 99.83)
    assert m.bg_efficiency[3] == ims2.BgEfficiency("XE-131m", 5, 0.298, 0.005)
    assert m.ratios[0] == ims2.Ratio("PB214_352:242", 1, 2, 0.65, 0.0083)
    assert m.ratios[-1] == ims2.Ratio("XE133-10_81:30", 3, 10, 0.08, 0.0015)


def test_sample_spectra_totals(sample):
    m = sample
    assert m.g_spectrum.dtype == m.b_spectrum.dtype == m.histogram.dtype == np.int64
    assert (m.g_spectrum.size, m.g_energy_span_kev, m.g_first_channel) == (256, 720.0, 0)
    assert (m.b_spectrum.size, m.b_energy_span_kev, m.b_first_channel) == (256, 550.0, 0)
    assert m.g_spectrum.sum() == 267_961 and m.b_spectrum.sum() == 39_480
    assert (m.g_spectrum[4], m.g_spectrum[5], m.b_spectrum[4]) == (2_900, 6_308, 8_730)
    h = m.histogram
    assert h.shape == (256, 256) and (m.histogram_gamma_span_kev, m.histogram_beta_span_kev) == (720.0, 550.0)
    assert h.sum() == 3_480 and h.max() == 12 and np.count_nonzero(h) == 2_688
    assert int(np.argmax(h.sum(axis=1))) == 12 and int(np.argmax(h.sum(axis=0))) == 4


def test_calib_fields_and_totals(calib):
    m = calib
    assert (m.data_type, m.msg_id, m.station, m.detector, m.srid) == (
        "CALIBPHD",
        "20190502222812845",
        "MIX58",
        "MIX58_194",
        "58201904301011K",
    )
    assert m.sample_id == "MIX58_194-2019/05/02-07:22:37.1"
    assert m.detbk_id == "MIX58_194-2019/02/13-07:56:25.3"
    assert m.gasbk_id is None
    assert m.transmit_ns == _ns("2019/05/02 22:28:12.8")
    assert m.collection_start_ns is None and m.air_volume_m3 is None and m.xe_volume_ml is None
    assert m.acquisition_start_ns == _ns("2019/05/02 07:22:37.1")
    assert (m.real_time_s, m.live_time_s) == (54_335.69, 54_000.00)
    assert m.calibration_ns == _ns("2019/03/07 22:53:14")  # written without tenths
    assert [len(getattr(m, n)) for n in ("g_energy", "b_energy", "g_resolution", "b_resolution")] == [
        5,
        24,
        5,
        24,
    ]
    assert [len(getattr(m, n)) for n in ("roi_limits", "g_efficiency", "bg_efficiency", "ratios")] == [
        10,
        6,
        9,
        16,
    ]
    assert m.b_energy[0].energy_kev == 79.019997  # single-precision noise kept as written
    assert m.ratios[0].ratio_unc == 0.0083
    assert m.g_spectrum.sum() == 325_146 and m.g_spectrum[4] == 2_840
    assert m.b_spectrum.sum() == 149_498
    assert m.histogram.shape == (256, 256) and m.histogram.sum() == 31_572
    row_sums = m.histogram.sum(axis=1)
    assert set(np.argsort(row_sums)[-2:]) == {12, 32}


def test_calib_certificate_kept_verbatim_with_a_warning(calib):
    assert calib.certificate == ims2.RawBlock("#Certificate", ("Xe-133",))
    assert (
        len(calib.warnings) == 1 and "#Certificate" in calib.warnings[0] and "line 491" in calib.warnings[0]
    )


@pytest.mark.parametrize("name", [SAMPLE, CALIB])
def test_write_parse_keeps_every_field(name):
    original = ims2.parse(_text(name))
    written = ims2.write(original)
    again = ims2.parse(written)
    assert_same(original, again)
    assert ims2.write(again) == written  # our own output re-writes byte for byte


_TIME = re.compile(r"\d{2}:\d{2}:\d{2}(\.\d+)?")


def _same_token(a: str, b: str) -> bool:
    if a == b:
        return True
    if _TIME.fullmatch(a) and _TIME.fullmatch(b):
        return a.split(".")[0] == b.split(".")[0] and float("0." + (a + ".0").split(".")[1]) == float(
            "0." + (b + ".0").split(".")[1]
        )
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def _blocks(text: str) -> dict[str, list[str]]:
    """Tokens of each part of a message (envelope and every block), up to STOP."""
    parts: dict[str, list[str]] = {"envelope": []}
    current = "envelope"
    for line in text.splitlines():
        tokens = line.split()
        if tokens == ["STOP"]:
            break
        if tokens and tokens[0].startswith("#"):
            current = tokens[0]
            parts[current] = tokens[1:]
            continue
        parts[current].extend(tokens)
    return parts


@pytest.mark.parametrize("name", [SAMPLE, CALIB])
def test_written_numbers_equal_the_original_token_by_token(name):
    text = _text(name)
    original, written = _blocks(text), _blocks(ims2.write(ims2.parse(text)))
    assert list(written) == list(original)  # same blocks in the same (S1) order
    for block, tokens in original.items():
        assert len(written[block]) == len(tokens), block
        differ = [(a, b) for a, b in zip(tokens, written[block], strict=True) if not _same_token(a, b)]
        assert differ == [], block
    assert len(original["#Histogram"]) == 4 + 65_536  # the whole histogram was compared too
