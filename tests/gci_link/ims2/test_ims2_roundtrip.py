"""Every data type survives write -> parse -> write; the reader tolerates what real files do."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gci_link import ims2
from tests.gci_link.ims2 import builders
from tests.gci_link.ims2.builders import assert_same


def _roundtrip(message: ims2.Message) -> ims2.Message:
    text = ims2.write(message)
    again = ims2.parse(text)
    assert_same(message, again)
    assert ims2.write(again) == text
    return again


@pytest.mark.parametrize("data_type", ims2.PHD_TYPES)
def test_beta_gamma_phd_of_every_type(data_type):
    _roundtrip(builders.beta_gamma(np.random.default_rng(1), data_type, n=64))


@pytest.mark.parametrize("data_type", ims2.PHD_TYPES)
@pytest.mark.parametrize("system_type", ["P", "G"])
def test_hpge_phd_of_every_type(data_type, system_type):
    m = builders.hpge(np.random.default_rng(2), data_type, channels=1024, system_type=system_type)
    again = _roundtrip(m)
    assert again.g_first_channel == 1 and again.b_spectrum is None and again.histogram is None


def test_large_messages_keep_every_count():
    rng = np.random.default_rng(3)
    bg = builders.beta_gamma(rng, n=256)
    bg = dataclasses.replace(bg, histogram=bg.histogram * 1_000_003)  # many-digit counts
    _roundtrip(bg)
    hp = builders.hpge(rng, channels=8192)
    counts = hp.g_spectrum.copy()
    counts[::97] = 10**17 + np.arange(counts[::97].size)
    _roundtrip(dataclasses.replace(hp, g_spectrum=counts))


def test_rmssoh_met_and_every_alert():
    _roundtrip(builders.soh())
    _roundtrip(builders.met())
    for data_type in ims2.ALERT_TYPES:
        _roundtrip(builders.alert(data_type))


def test_rmssoh_written_as_the_convention_says():
    text = ims2.write(builders.soh())
    lines = text.splitlines()
    assert lines[:8] == [
        "BEGIN IMS2.0",
        "MSG_TYPE DATA",
        "MSG_ID 20240301010005200 ZZX01",
        "DATA_TYPE RMSSOH",
        "#Header 3",
        "ZZX01 ZZX01_001 B",
        "2024/03/01 01:00:20.0 2024/03/01 02:00:20.0",
        "2024/03/01 02:00:25.2",
    ]
    assert "#DetEnv" in lines  # exact line, as the only public RMSSOH reader tests it
    assert lines[lines.index("#DetEnv") + 1] == "22.4 CLOSED 41 3000 -181 ON 87 2 2024/03/01 01:00:20.0 600"
    assert "985.0 - 2024/03/01 01:10:20.0 600" in lines
    assert all(line == line.rstrip() for line in lines) and text.endswith("STOP\n")


def test_alert_written_as_the_convention_says():
    lines = ims2.write(builders.alert("ALERT_UPS")).splitlines()
    at = lines.index("#Alert")
    assert lines[at + 1 : at + 3] == ["2024/03/01 01:00:30.0 UPS LOW RAISED", "SAMPLER 412.5 500.0 M3/H"]


def test_phd_written_as_the_convention_says():
    text = ims2.write(builders.beta_gamma(np.random.default_rng(4), n=16))
    lines = text.splitlines()
    assert lines[4:6] == ["#Header 3", "ZZX01 ZZX01_001 B CYLINDER          FULL"]
    labels = [line for line in lines if line.startswith("#")]
    assert labels == [
        "#Header 3",
        "#Comment",
        "#Collection",
        "#Acquisition",
        "#Calibration",
        "#Processing",
        "#g_Energy",
        "#b_Energy",
        "#g_Resolution",
        "#b_Resolution",
        "#ROI_Limits",
        "#g_Efficiency",
        "#b-gEfficiency",
        "#Ratios",
        "#g_Spectrum",
        "#b_Spectrum",
        "#Histogram",
    ]
    spectrum = lines[lines.index("#g_Spectrum") + 1 : lines.index("#b_Spectrum")]
    assert spectrum[0] == "16 720" and [row.split()[0] for row in spectrum[1:]] == ["0", "5", "10", "15"]
    assert len(spectrum[-1].split()) == 2  # the last row is short
    assert lines[lines.index("#Histogram") + 1] == "16 16 720 550"
    assert all(line == line.rstrip() for line in lines)


def test_default_channel_numbering_follows_the_system_type():
    rng = np.random.default_rng(5)
    bg = ims2.parse(ims2.write(builders.beta_gamma(rng, n=16, first_channel=None)))
    assert bg.g_first_channel == bg.b_first_channel == 0
    hp = ims2.parse(ims2.write(dataclasses.replace(builders.hpge(rng, channels=64), g_first_channel=None)))
    assert hp.g_first_channel == 1


def test_one_based_beta_gamma_spectra_are_read_from_their_labels():
    m = builders.beta_gamma(np.random.default_rng(6), n=32, first_channel=1)
    again = _roundtrip(m)
    assert again.g_first_channel == 1 and np.array_equal(again.g_spectrum, m.g_spectrum)


def _fixture_like() -> str:
    return ims2.write(builders.beta_gamma(np.random.default_rng(7), n=16))


def test_crlf_tabs_blanks_and_case_are_tolerated():
    text = _fixture_like()
    m = ims2.parse(text)
    messy = []
    for line in text.splitlines():
        if line.startswith("#"):
            line = "  " + line.lower()
        elif line and line[0].isdigit():
            line = "\t" + line.replace(" ", " \t  ") + "   "
        messy.append(line)
        if line.strip().lower() in ("#g_spectrum", "#histogram"):
            continue
        if line.strip().lower().startswith(("#g_energy", "#ratios")):
            messy.append("")  # blank lines inside tables
    crlf = "\r\n".join(messy).replace("STOP", "stop") + "\r\n"
    again = ims2.parse(crlf)
    assert_same(m, again)


def test_blank_lines_inside_spectrum_and_histogram_blocks():
    text = _fixture_like()
    text = text.replace("#g_Spectrum\n16 720\n", "#g_Spectrum\n\n16 720\n\n").replace("\n5 ", "\n\n5 ", 1)
    hist_at = text.index("#Histogram")
    text = text[:hist_at] + text[hist_at:].replace("\n", "\n\n", 3)
    assert_same(ims2.parse(_fixture_like()), ims2.parse(text))


def test_text_after_stop_and_blank_lines_before_begin_are_ignored():
    text = _fixture_like()
    assert_same(ims2.parse(text), ims2.parse("\n\n" + text + "BEGIN IMS2.0\nrubbish\n"))


@pytest.mark.parametrize("rows", [16, 18, 20])
def test_ratio_tables_of_16_18_20_rows(rows):
    m = builders.beta_gamma(np.random.default_rng(8), n=16)
    extra = tuple(ims2.Ratio(f"XE133M-{i}", 6, 5, 0.01 * i, 0.001) for i in range(rows - 16))
    again = _roundtrip(dataclasses.replace(m, ratios=m.ratios + extra))
    assert len(again.ratios) == rows and again.warnings == ()


def test_unusual_row_counts_are_warned_about_not_refused():
    m = builders.beta_gamma(np.random.default_rng(9), n=16)
    odd = dataclasses.replace(m, ratios=m.ratios[:15], bg_efficiency=m.bg_efficiency[:8])
    warnings = ims2.parse(ims2.write(odd)).warnings
    assert len(warnings) == 2
    assert "#Ratios" in warnings[0] and "15 rows" in warnings[0]
    assert "#b-gEfficiency" in warnings[1] and "8 rows" in warnings[1]


def test_unknown_blocks_are_kept_and_written_back_verbatim():
    text = _fixture_like()
    block = "#VendorState  x=1  y=2\n  free   text with  blanks  \n\n17 18\n"
    text = text.replace("#Ratios\n", block + "#Ratios\n")
    m = ims2.parse(text)
    assert m.extra_blocks == (
        ims2.RawBlock("#VendorState  x=1  y=2", ("  free   text with  blanks  ", "", "17 18")),
    )
    assert "#VendorState" in m.warnings[0] and "kept verbatim" in m.warnings[0]
    written = ims2.write(m)
    assert block in written and written.endswith(block + "STOP\n")
    assert ims2.parse(written).extra_blocks == m.extra_blocks


def test_structured_certificate_and_non_standard_one():
    rng = np.random.default_rng(10)
    m = _roundtrip(builders.beta_gamma(rng, "QCPHD", n=16))
    assert m.certificate.lines[0].nuclide == "CS-137" and m.certificate.lines[1].energy_kev == 1332.49
    raw = dataclasses.replace(m, certificate=ims2.RawBlock("#Certificate", ("Xe-133",)))
    again = ims2.parse(ims2.write(raw))
    assert again.certificate == raw.certificate and "kept verbatim" in again.warnings[0]
    missing = ims2.parse(ims2.write(dataclasses.replace(m, certificate=None)))
    assert missing.warnings == ("a QCPHD without a #Certificate block",)


def test_envelope_ref_id_and_other_keyword_lines_are_kept():
    m = dataclasses.replace(builders.met(), ref_id="REQ123 ZZP01", extra_envelope=("PROD_ID 42 7",))
    text = ims2.write(m)
    assert "REF_ID REQ123 ZZP01\nPROD_ID 42 7\nDATA_TYPE MET\n" in text
    _roundtrip(m)


# ---------------------------------------------------------------- property: random messages

_floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
_times = st.integers(min_value=0, max_value=4_000_000_000 * builders.S)
_counts = st.integers(min_value=0, max_value=10**12)


def _writable_text(text: str) -> bool:
    return not any(line.lstrip().startswith("#") for line in text.split("\n"))


@st.composite
def _phd(draw):
    system_type = draw(st.sampled_from("BPG"))
    n = draw(st.integers(1, 40))
    first = draw(st.sampled_from([0, 1]))
    g = np.array(draw(st.lists(_counts, min_size=n, max_size=n)), dtype=np.int64)
    fields = {}
    if system_type == "B":
        ng, nb = draw(st.integers(1, 6)), draw(st.integers(1, 6))
        cells = draw(st.lists(_counts, min_size=ng * nb, max_size=ng * nb))
        fields.update(
            b_spectrum=np.array(draw(st.lists(_counts, min_size=n, max_size=n)), dtype=np.int64),
            b_energy_span_kev=draw(_floats),
            b_first_channel=first,
            histogram=np.array(cells, dtype=np.int64).reshape(ng, nb),
            histogram_gamma_span_kev=draw(_floats),
            histogram_beta_span_kev=draw(_floats),
            xe_volume_ml=draw(_floats),
            xe_volume_unc_ml=draw(_floats),
            xe_yield=draw(_floats),
            xe_yield_unc=draw(_floats),
            archive_id=draw(st.one_of(st.none(), st.text("0123456789AZ", min_size=1, max_size=4))),
            ratios=tuple(
                ims2.Ratio("R" + str(i), draw(st.integers(1, 10)), i, draw(_floats), draw(_floats))
                for i in range(16)
            ),
        )
    word = st.text("ABCXYZ_-019", min_size=1, max_size=8).filter(lambda w: w != "-")
    return ims2.PhdMessage(
        data_type="SAMPLEPHD",
        msg_id=draw(st.text("0123456789", min_size=1, max_size=17)),
        msg_source=draw(st.one_of(st.none(), word)),
        comment=draw(st.text("abc XYZ 12#\n", max_size=30).filter(_writable_text)),
        station=draw(word),
        detector=draw(word),
        system_type=system_type,
        sample_geometry=draw(word),
        spectrum_qualifier=draw(st.sampled_from(["PREL", "FULL"])),
        srid=draw(word),
        sample_id=draw(st.one_of(st.none(), word.filter(lambda w: w != "0"))),
        detbk_id=draw(st.one_of(st.none(), word.filter(lambda w: w != "0"))),
        gasbk_id=draw(st.one_of(st.none(), word.filter(lambda w: w != "0"))),
        transmit_ns=draw(_times),
        collection_start_ns=draw(_times),
        collection_stop_ns=draw(_times),
        air_volume_m3=draw(_floats),
        acquisition_start_ns=draw(_times),
        real_time_s=draw(_floats),
        live_time_s=draw(_floats),
        calibration_ns=draw(st.one_of(st.none(), _times)),
        g_energy=tuple(
            ims2.EnergyPoint(draw(_floats), draw(_floats), draw(_floats))
            for _ in range(draw(st.integers(0, 3)))
        ),
        g_spectrum=g,
        g_energy_span_kev=draw(_floats),
        g_first_channel=first,
        **fields,
    )


@settings(max_examples=150, deadline=None)
@given(_phd())
def test_property_random_phd_messages_roundtrip(message):
    _roundtrip(message)
