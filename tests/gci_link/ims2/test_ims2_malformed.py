"""Malformed messages raise Ims2FormatError naming the block, the 1-based line and the problem."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from gci_link import ims2
from tests.gci_link.ims2 import builders

BETA_GAMMA = ims2.write(builders.beta_gamma(np.random.default_rng(11), n=16))
SOH = ims2.write(builders.soh())
MET = ims2.write(builders.met())
ALERT = ims2.write(builders.alert("ALERT_TEMP"))


def line_of(text: str, pattern: str, after: str | None = None) -> int:
    """1-based number of the first line matching ``pattern`` (after the line starting ``after``)."""
    lines = text.split("\n")
    start = 0 if after is None else next(i for i, ln in enumerate(lines) if ln.startswith(after)) + 1
    return next(i for i in range(start, len(lines)) if re.search(pattern, lines[i])) + 1


def replace_line(text: str, number: int, new: str | None) -> str:
    lines = text.split("\n")
    if new is None:
        del lines[number - 1]
    else:
        lines[number - 1] = new
    return "\n".join(lines)


def edit(text: str, pattern: str, new, after: str | None = None) -> tuple[str, int]:
    """Change (or with None delete) one line; returns the text and that line's number."""
    number = line_of(text, pattern, after)
    old = text.split("\n")[number - 1]
    return replace_line(text, number, new(old) if callable(new) else new), number


def _cases():
    t = BETA_GAMMA
    yield (
        "bad count",
        *edit(t, r"^5 ", lambda s: s.replace(" ", " 12x", 1), "#g_Spectrum"),
        "#g_Spectrum",
        "'12x",
    )
    yield "label without values", *edit(t, r"^15 ", "15", "#g_Spectrum"), "#g_Spectrum", "no values"
    yield (
        "wrong row label",
        *edit(t, r"^10 ", lambda s: "11" + s[2:], "#g_Spectrum"),
        "#g_Spectrum",
        "start at",
    )
    yield (
        "first label 2",
        *edit(t, r"^0 ", lambda s: "2" + s[1:], "#b_Spectrum"),
        "#b_Spectrum",
        "want 0 or 1",
    )
    text, n = edit(t, r"^15 ", None, "#g_Spectrum")
    yield "truncated spectrum", text, n - 1, "#g_Spectrum", "truncated spectrum: 15 channels"
    text, n = edit(t, r"^15 ", lambda s: s + " 7 8 9 10 11", "#b_Spectrum")
    yield "too many channels", text, n, "#b_Spectrum", "too many channels"
    yield (
        "negative count",
        *edit(t, r"^5 ", lambda s: s.rsplit(" ", 1)[0] + " -3", "#b_Spectrum"),
        "#b_Spectrum",
        "negative count -3",
    )
    yield "size line", *edit(t, r"^16 720$", "16.5 720"), "#g_Spectrum", "bad integer '16.5'"
    yield "size line count", *edit(t, r"^16 550$", "16"), "#b_Spectrum", "wrong count of values: 1"
    text, n = edit(t, r".", lambda s: s.rsplit(" ", 1)[0], "16 16 720 550")
    yield "histogram short row", text, n, "#Histogram", "wrong count of values: 15 in this row"
    hist = line_of(t, r".", "#Histogram")
    text = replace_line(t, hist + 3, None)
    yield "histogram row count", text, hist + 15, "#Histogram", "row count mismatch: 15 rows"
    text, n = edit(t, r".", lambda s: "-1" + s[1:], "16 16 720 550")
    yield "histogram negative", text, n, "#Histogram", "negative count -1"
    text, n = edit(t, r".", lambda s: s[:-1] + "+", "16 16 720 550")
    yield "histogram lone sign", text, n, "#Histogram", "bad number"
    text, n = edit(t, r"^#Header", "#Heeder 3")
    yield "missing #Header", text, line_of(t, "^DATA_TYPE"), "#Header", "missing #Header block"
    text, n = edit(t, r"^ZZX01 ZZX01_001 B", "ZZX01 ZZX01_001 B FULL")
    yield "header ids", text, n, "#Header", "wrong count of values: 4, want 5"
    text, _ = edit(t, r"^01202403010111X", "")
    yield "header lines", text, line_of(t, "^#Header"), "#Header", "3 non-blank lines, want 4"
    yield (
        "bad date",
        *edit(t, r".", lambda s: s.replace("/03/", "/02/").replace("/01 ", "/30 ", 1), "#Acquisition"),
        "#Acquisition",
        "impossible date/time",
    )
    yield (
        "bad time",
        *edit(t, r".", lambda s: s.replace(":", "h", 1), "#Acquisition"),
        "#Acquisition",
        "bad date",
    )
    yield (
        "live time",
        *edit(t, r".", lambda s: s.replace("50388.52", "5O388.52"), "#Acquisition"),
        "#Acquisition",
        "bad number '5O388.52' for live time",
    )
    yield (
        "acquisition count",
        *edit(t, r".", lambda s: s.rsplit(" ", 1)[0], "#Acquisition"),
        "#Acquisition",
        "wrong count of values: 3, want 4",
    )
    text, _ = edit(t, r"^#Collection", "#Collected")
    yield "missing #Collection", text, line_of(t, "^DATA_TYPE"), "#Collection", "missing #Collection"
    text, _ = edit(t, r"^#Processing", "#Processed")
    yield "missing #Processing", text, line_of(t, "^DATA_TYPE"), "#Processing", "missing #Processing"
    yield "processing", *edit(t, r".", "1.0214", "#Processing"), "#Processing", "wrong count of values: 1"
    yield (
        "g_Energy",
        *edit(t, r".", "81.0 31.6", "#g_Energy"),
        "#g_Energy",
        "wrong count of values: 2, want 3",
    )
    yield "b_Energy", *edit(t, r".", "80.0 C x 0.1", "#b_Energy"), "#b_Energy", "bad number 'x' for channel"
    yield (
        "ratios",
        *edit(t, r"^PB214", lambda s: s.replace(" 1 ", " one ", 1)),
        "#Ratios",
        "bad integer 'one' for upper_roi",
    )
    yield (
        "roi",
        *edit(t, r"^3 ", lambda s: s + " 5", "#ROI_Limits"),
        "#ROI_Limits",
        "wrong count of values: 6",
    )
    yield "nan", *edit(t, r".", "nan 0.41 0.1", "#g_Efficiency"), "#g_Efficiency", "bad number 'nan'"
    yield (
        "duplicate",
        t.replace("#Calibration\n", "#Calibration\n2024/02/20 09:15:00.0\n#Calibration\n"),
        line_of(t, "^#Calibration") + 2,
        "#Calibration",
        "block appears twice (first at line",
    )
    yield "no STOP", t.replace("STOP\n", ""), len(t.split("\n")) - 1, "STOP", "without a STOP"
    yield "no BEGIN", *edit(t, "^BEGIN", "BEGIN"), "envelope", "want 'BEGIN IMS2.0'"
    yield "request", *edit(t, "^MSG_TYPE", "MSG_TYPE REQUEST"), "envelope", "not a data message"
    yield (
        "data type",
        *edit(t, "^DATA_TYPE", "DATA_TYPE SAMPLE"),
        "envelope",
        "unsupported DATA_TYPE 'SAMPLE'",
    )
    yield "no MSG_ID", *edit(t, "^MSG_ID", "MSG_ID"), "envelope", "MSG_ID wants an id"
    text = t.replace("DATA_TYPE SAMPLEPHD\n", "DATA_TYPE SAMPLEPHD\nloose text\n")
    yield "outside blocks", text, line_of(t, "^DATA_TYPE") + 1, "envelope", "text outside any block"
    yield (
        "detenv",
        *edit(SOH, r".", lambda s: s.replace(" 3000 ", " 3000.5 "), "#DetEnv"),
        "#DetEnv",
        "bad integer '3000.5' for hv_v",
    )
    yield (
        "soh row",
        *edit(SOH, r".", lambda s: s.rsplit(" ", 1)[0], "#NIMBIN"),
        "#NIMBIN",
        "wrong count of values: 4, want 5",
    )
    yield (
        "soh interval",
        *edit(SOH, r".", lambda s: s[: s.rindex(" ")] + " 10m", "#TamperEnv"),
        "#TamperEnv",
        "bad integer '10m' for interval",
    )
    yield (
        "chromatogram",
        *edit(SOH, r"^20 ", lambda s: s + " 1", "#Chromatogram"),
        "#Chromatogram",
        "too many channels",
    )
    yield "soh header", *edit(SOH, r"^ZZX01 ZZX01_001 B$", "ZZX01 B"), "#Header", "wrong count of values: 2"
    yield (
        "met row",
        *edit(MET, r".", lambda s: s + " 7", "#Met"),
        "#Met",
        "wrong count of values: 11, want 10",
    )
    text, _ = edit(MET, "^#Met", "#Mett")
    yield "missing #Met", text, line_of(MET, "^DATA_TYPE"), "#Met", "missing #Met block"
    yield (
        "alert category",
        *edit(ALERT, r".", lambda s: s.replace(" TEMP ", " FLOW "), "#Alert"),
        "#Alert",
        "category FLOW does not match DATA_TYPE ALERT_TEMP",
    )
    yield (
        "alert state",
        *edit(ALERT, r".", lambda s: s.replace("RAISED", "UP"), "#Alert"),
        "#Alert",
        "state 'UP'",
    )
    yield "alert value", *edit(ALERT, r"^SAMPLER", "SAMPLER 41,5 500.0 M3/H"), "#Alert", "bad number '41,5'"


CASES = list(_cases())


@pytest.mark.parametrize(
    ("text", "line", "block", "problem"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_malformed_message_names_block_line_and_problem(text, line, block, problem):
    with pytest.raises(ims2.Ims2FormatError) as caught:
        ims2.parse(text)
    error = caught.value
    assert isinstance(error, ValueError)
    assert (error.block, error.line) == (block, line), str(error)
    assert problem in error.problem, str(error)
    assert str(error).startswith(f"{block}, line {line}: ")


def test_the_cases_cover_many_blocks():
    assert len(CASES) >= 40
    assert len({c[3] for c in CASES}) >= 20


def test_crlf_does_not_shift_line_numbers():
    text, n = edit(BETA_GAMMA, r"^5 ", lambda s: s + " x", "#g_Spectrum")
    with pytest.raises(ims2.Ims2FormatError) as caught:
        ims2.parse(text.replace("\n", "\r\n"))
    assert (caught.value.block, caught.value.line) == ("#g_Spectrum", n)


def test_non_ascii_in_a_spectrum_is_a_bad_number():
    text, n = edit(BETA_GAMMA, r"^10 ", lambda s: s.replace(" ", " 1µ", 1), "#g_Spectrum")
    with pytest.raises(ims2.Ims2FormatError, match=r"#g_Spectrum, line \d+: bad number '1µ\d+'") as caught:
        ims2.parse(text)
    assert caught.value.line == n


# ---------------------------------------------------------------- what write() refuses


def _bg():
    return builders.beta_gamma(np.random.default_rng(12), n=16)


@pytest.mark.parametrize(
    ("change", "block", "problem"),
    [
        ({"comment": "fine\n#Histogram"}, "#Comment", "would end the block or message"),
        ({"comment": " STOP"}, "#Comment", "would end the block or message"),
        ({"g_spectrum": -np.ones(16, dtype=np.int64)}, "#g_Spectrum", "negative count -1"),
        ({"g_spectrum": np.ones(16) * 2.5}, "#g_Spectrum", "counts must be integers"),
        ({"histogram": np.ones(16, dtype=np.int64)}, "#Histogram", "2-D array"),
        ({"histogram_beta_span_kev": None}, "#Histogram", "spans must all be given"),
        ({"g_first_channel": 2}, "#g_Spectrum", "0 or 1"),
        ({"histogram": None}, "#Histogram", "must have this block"),
        ({"collection_stop_ns": None}, "#Collection", "must all be given"),
        ({"station": "ZZ X01"}, "#Header", "one token"),
        ({"air_volume_m3": float("nan")}, "#Collection", "non-finite"),
        ({"ratios": (ims2.Ratio("A B", 1, 2, 0.1, 0.01),)}, "#Ratios", "one token"),
        ({"data_type": "RMSSOH"}, "envelope", "not one of"),
        ({"msg_id": ""}, "envelope", "one token"),
    ],
)
def test_write_refuses_what_could_not_be_read_back(change, block, problem):
    with pytest.raises(ims2.Ims2FormatError) as caught:
        ims2.write(dataclasses.replace(_bg(), **change))
    assert caught.value.block == block and caught.value.line is None
    assert problem in caught.value.problem, str(caught.value)


def test_write_refuses_alert_text_that_would_end_the_message():
    with pytest.raises(ims2.Ims2FormatError, match="#Alert: text line 2"):
        ims2.write(dataclasses.replace(builders.alert(), text="ok\nSTOP"))
