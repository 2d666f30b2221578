"""``ims rn analyse``: the JSON keys operators rely on, the readable report, the plot, and bad input
refused with exit code 2 and the reason (never a traceback)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from gci_link import ims2
from hil.particulate_sample import SampleSetup, detector_background, expected_counts, sample_message
from station import ims
from tests.conftest import shared_fixture_dir

SETUP = SampleSetup()


@pytest.fixture(scope="module")
def sample() -> ims2.PhdMessage:
    rng = np.random.default_rng(4)
    return sample_message(rng.poisson(expected_counts({"Be-7": 3e-3, "Cs-137": 20e-6}, SETUP)), SETUP)


def _write(tmp_path: Path, message: ims2.PhdMessage, name: str = "sample.phd") -> Path:
    path = tmp_path / name
    path.write_text(ims2.write(message))
    return path


def test_json_carries_the_issue_keys(tmp_path: Path, sample: ims2.PhdMessage,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert ims.main(["rn", "analyse", str(_write(tmp_path, sample)), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "particulate"
    assert set(out["peaks"][0]) == {"energy_keV", "centroid_channel", "area", "area_unc", "fwhm_keV",
                                    "nuclide"}
    assert set(out["nuclides"][0]) == {"name", "identified", "concentration_uBq_m3", "uncertainty_uBq_m3",
                                       "mdc_uBq_m3", "lc_uBq_m3"}
    by_name = {n["name"]: n for n in out["nuclides"]}
    assert by_name["BE-7"]["identified"] and by_name["CS-137"]["identified"]
    be7 = next(p for p in out["peaks"] if p["nuclide"] == "BE-7")
    assert be7["energy_keV"] == pytest.approx(477.6, abs=0.1)
    assert {f["name"] for f in out["flags"]} >= {"Ba140MDC", "FlowRate", "CollectionTime", "DecayTime"}


def test_report_and_plot(tmp_path: Path, sample: ims2.PhdMessage, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "out.png"
    assert ims.main(["rn", "analyse", str(_write(tmp_path, sample)), "--plot", str(png)]) == 0
    text = capsys.readouterr().out
    assert "BE-7" in text and "PASS  Ba140MDC" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("change", "reason"), [
    ({"g_efficiency": None}, "no #g_Efficiency block"),
    ({"g_resolution": None}, "no #g_Resolution block"),
    ({"live_time_s": 0.0}, "live time is 0.0 s"),
    ({"g_spectrum": np.zeros(8192, dtype=np.int64)}, "#g_Spectrum is empty"),
])
def test_bad_input_exits_2_with_the_reason(tmp_path: Path, sample: ims2.PhdMessage, change: dict, reason: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, dataclasses.replace(sample, **change))
    assert ims.main(["rn", "analyse", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    assert reason in captured.err and "Traceback" not in captured.err and captured.out == ""


def test_unreadable_and_non_phd_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ims.main(["rn", "analyse", str(tmp_path / "absent.phd")]) == 2
    assert "cannot read the sample" in capsys.readouterr().err
    garbage = tmp_path / "garbage.phd"
    garbage.write_text("hello\n")
    assert ims.main(["rn", "analyse", str(garbage)]) == 2
    assert "not a valid IMS 2.0 message" in capsys.readouterr().err


def test_detector_background_is_used_and_checked(tmp_path: Path, sample: ims2.PhdMessage,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, sample)
    background = _write(tmp_path, detector_background(np.random.default_rng(9)), "detbk.phd")
    assert ims.main(["rn", "analyse", str(path), "--detbk", str(background), "--json"]) == 0
    k40 = next(n for n in json.loads(capsys.readouterr().out)["nuclides"] if n["name"] == "K-40")
    assert abs(k40["concentration_uBq_m3"]) < 3 * k40["uncertainty_uBq_m3"]
    assert ims.main(["rn", "analyse", str(path), "--detbk", str(path)]) == 2
    assert "holds SAMPLEPHD, not DETBKPHD" in capsys.readouterr().err
    other = _write(tmp_path, dataclasses.replace(detector_background(np.random.default_rng(9)),
                                                 detector="ZZP02_001"), "other.phd")
    assert ims.main(["rn", "analyse", str(path), "--detbk", str(other)]) == 2
    assert "from detector ZZP02_001" in capsys.readouterr().err


def test_gas_background_is_for_beta_gamma_only(tmp_path: Path, sample: ims2.PhdMessage,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, sample)
    assert ims.main(["rn", "analyse", str(path), "--gasbk", str(path)]) == 2
    assert "a gas background applies to beta-gamma samples only" in capsys.readouterr().err


def test_the_real_beta_gamma_sample_goes_to_the_beta_gamma_analysis(
        capsys: pytest.CaptureFixture[str]) -> None:
    path = shared_fixture_dir("phd") / "SAMPLE-FULL-20211203070613605.PHD"
    code = ims.main(["rn", "analyse", str(path), "--json"])
    captured = capsys.readouterr()
    assert code == 0 and json.loads(captured.out)["kind"] == "beta-gamma"


def test_beta_gamma_input_errors_exit_2(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(sample: ims2.PhdMessage, *, gasbk: object, detbk: object) -> None:
        raise ValueError("the histogram is empty")

    monkeypatch.setattr("rn_analysis.dispatch.analyse_betagamma", refuse)
    path = shared_fixture_dir("phd") / "SAMPLE-FULL-20211203070613605.PHD"
    assert ims.main(["rn", "analyse", str(path)]) == 2
    assert "the histogram is empty" in capsys.readouterr().err
