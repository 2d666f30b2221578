"""Detector calibration from a simulated certified mixed source: recovered curves against the simulator's
truth (``hil.gamma_response``), with its gain off by up to 20 %, and the bad inputs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from calibration.detector_calibration import calibrate_detector
from calibration.detector_energy import CalibrationError
from calibration.detector_source import SourceError
from gci_link import ims2
from hil.calibration_phd import MIXED_SOURCE, calibration_message
from hil.gamma_response import GammaResponse
from rn_analysis.curves import gamma_calibration
from station import ims

TRUTH = GammaResponse()
INDICES = np.array([300.0, 1500.0, 3000.0, 5000.0])
ENERGIES = np.array([80.0, 200.0, 662.0, 1500.0])


def _pulls(gain: float, seed: int, activity_unc_pct: float | None = 0.0) -> dict[str, np.ndarray]:
    cal = calibrate_detector(calibration_message(np.random.default_rng(seed), gain=gain,
                                                 activity_unc_pct=activity_unc_pct))
    assert len(cal.energy.matches) == len(MIXED_SOURCE)  # every certified line on its peak
    true_energy = np.polynomial.polynomial.polyval(INDICES, [gain * a for a in TRUTH.calibration.coefficients
                                                             ])
    eff = cal.efficiency
    assert eff is not None
    true_eff = np.array([TRUTH.efficiency(e) for e in ENERGIES])
    return {
        "energy": (cal.energy.curve().energy(INDICES) - true_energy) / cal.energy.energy_unc(INDICES),
        "fwhm": (cal.resolution.curve.fwhm(ENERGIES) - np.array([TRUTH.resolution.fwhm(e) for e in ENERGIES]))
        / cal.resolution.fwhm_unc(ENERGIES),
        "efficiency": np.log(eff.curve(ENERGIES) / true_eff) / eff.rel_unc(ENERGIES),
        "points": (eff.points.value - np.array([TRUTH.efficiency(e) for e in eff.points.energy_kev]))
        / eff.points.unc,
    }


@pytest.mark.parametrize("gain", [1.0, 1.2, 0.8])
def test_recovers_the_simulated_detector_within_its_uncertainties(gain: float) -> None:
    """The file's tables describe the undrifted detector; the spectrum is drifted by ``gain``."""
    for name, pull in _pulls(gain, 11).items():
        assert np.all(np.abs(pull) < 3.5), (name, pull)


def test_stated_uncertainties_cover_the_truth_over_realisations() -> None:
    """16 seeded realisations, counting statistics only (certificate uncertainty 0): the pulls of the
    energy, FWHM and efficiency curves and of the efficiency points have a spread near 1. (100
    realisations: docs/calibration.md.)"""
    pooled: dict[str, list[np.ndarray]] = {}
    for seed in range(16):
        for name, pull in _pulls(1.2 if seed % 2 else 1.0, 500 + seed).items():
            pooled.setdefault(name, []).append(pull)
    for name, pulls in pooled.items():
        p = np.concatenate(pulls)
        assert abs(p.mean()) < 0.35, (name, p.mean())
        assert 0.6 < p.std() < 1.35, (name, p.std())


def test_certificate_uncertainty_enters_the_efficiency() -> None:
    cal = calibrate_detector(calibration_message(np.random.default_rng(3)))  # certificate says 2 %
    eff = cal.efficiency
    assert eff is not None
    rel = eff.points.unc / eff.points.value
    assert np.all(rel > 0.02) and np.all(rel < 0.025)


def test_without_a_certificate_the_library_lines_give_energy_and_fwhm_only() -> None:
    message = dataclasses.replace(calibration_message(np.random.default_rng(4), gain=1.15), certificate=None)
    cal = calibrate_detector(message, ["Co-60", "Cs-137", "Co-57"])
    assert cal.efficiency is None
    assert sorted({m.line.nuclide for m in cal.energy.matches}) == ["Co-57", "Co-60", "Cs-137"]
    e = cal.energy.curve().energy(INDICES)
    true_energy = np.polynomial.polynomial.polyval(INDICES, [1.15 * a for a in TRUTH.calibration.coefficients
                                                             ])
    assert np.all(np.abs(e - true_energy) < 4 * cal.energy.energy_unc(INDICES))


def test_written_blocks_read_back_as_the_fitted_curves(tmp_path: Path) -> None:
    message = calibration_message(np.random.default_rng(8), gain=1.2)
    path = tmp_path / "cal.phd"
    path.write_text(ims2.write(message))
    out = tmp_path / "out"
    assert ims.main(["cal", "detector", str(path), "--out", str(out)]) == 0
    assert {p.name for p in out.iterdir()} == {"calibration_blocks.txt", "detector_calibration.json",
                                               "energy_residuals.png", "fwhm.png", "efficiency.png"}
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert ims.main(["cal", "detector", str(path), "--out", str(out)]) == 2  # never overwritten
    result = json.loads((out / "detector_calibration.json").read_text())
    # the blocks, put into the message in place of its own tables, give the analysis our curves
    text = ims2.write(message).replace("#g_Spectrum", (out / "calibration_blocks.txt").read_text()
                                       + "#g_Spectrum", 1)
    blocks = ims2.parse(_drop_first_tables(text))
    assert isinstance(blocks, ims2.PhdMessage)
    curves = gamma_calibration(blocks, 8192, 1)
    # the analysis fits the energy points unweighted, we weight them: the same curve within its uncertainty
    ours = np.polynomial.polynomial.polyval(INDICES, result["energy"]["coefficients"])
    cov = np.array(result["energy"]["covariance"])
    v = np.vander(INDICES, 3, increasing=True)
    assert np.all(np.abs(curves.energy.energy(INDICES) - ours) < np.sqrt(np.einsum("ij,jk,ik->i", v, cov, v)))
    assert curves.resolution.a == pytest.approx(result["resolution"]["a"], rel=1e-3)
    assert curves.efficiency(661.657) == pytest.approx(
        float(np.exp(np.polynomial.polynomial.polyval(np.log(result["efficiency"]["e0_keV"] / 661.657),
                                                      result["efficiency"]["terms"]))), rel=1e-4)


def _drop_first_tables(text: str) -> str:
    """The message with its own (nominal) calibration tables removed, so only the written ones remain."""
    out, skipping, seen = [], False, set()
    for line in text.splitlines():
        label = line.split()[0] if line.startswith("#") else None
        if label is not None:
            skipping = label in ("#g_Energy", "#g_Resolution", "#g_Efficiency") and label not in seen
            seen.add(label)
        if not skipping:
            out.append(line)
    return "\n".join(out) + "\n"


@pytest.mark.parametrize(("change", "reason"), [
    ({"g_spectrum": np.zeros(8192, dtype=np.int64)}, "#g_Spectrum is empty"),
    ({"live_time_s": 0.0}, "live time"),
    ({"certificate": None}, "no #Certificate"),
    ({"data_type": "DETBKPHD"}, "needs a CALIBPHD or QCPHD"),
])
def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict,
                                         reason: str) -> None:
    message = dataclasses.replace(calibration_message(np.random.default_rng(2)), **change)
    path = tmp_path / "bad.phd"
    path.write_text(ims2.write(message))
    out = tmp_path / "out"
    assert ims.main(["cal", "detector", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert reason in err and err.count("\n") == 1
    assert not out.exists()


def test_unreadable_or_peakless_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ims.main(["cal", "detector", str(tmp_path / "absent.phd")]) == 2
    assert "cannot read" in capsys.readouterr().err
    flat = dataclasses.replace(calibration_message(np.random.default_rng(2)),
                               g_spectrum=np.random.default_rng(0).poisson(50, 8192))
    with pytest.raises(CalibrationError, match="found .* peak|two source lines"):
        calibrate_detector(flat)
    with pytest.raises(SourceError, match="no gamma lines"):
        calibrate_detector(dataclasses.replace(flat, certificate=None), ["Xe-131m"])
