"""Calibration curves from a PHD message's point tables: they reproduce the simulated detector's curves,
interpolate as documented, and name the block that is missing."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gci_link import ims2
from hil.particulate_sample import SampleSetup, sample_message
from rn_analysis.curves import efficiency_curve, energy_curve, gamma_calibration, resolution_curve
from rn_analysis.errors import AnalysisError

SETUP = SampleSetup()
TRUE = SETUP.response


@pytest.fixture(scope="module")
def message() -> ims2.PhdMessage:
    return sample_message(np.ones(8192, dtype=np.int64), SETUP)


def test_energy_curve_matches_the_simulated_detector(message: ims2.PhdMessage) -> None:
    curve = energy_curve(message, 8192, 1)
    index = np.arange(0, 8192, 97)
    np.testing.assert_allclose(curve.energy(index), TRUE.calibration.energy(index), atol=2e-3)
    assert curve.index(661.657) == pytest.approx(TRUE.calibration.channel(661.657, 8192), abs=0.01)


def test_resolution_curve_recovers_a_plus_b_sqrt_e(message: ims2.PhdMessage) -> None:
    curve = resolution_curve(message)
    assert (curve.a, curve.b) == pytest.approx((TRUE.resolution.a, TRUE.resolution.b), rel=1e-6)


def test_efficiency_curve_follows_the_log_polynomial(message: ims2.PhdMessage) -> None:
    curve = efficiency_curve(message)
    for e in (50.0, 100.0, 364.49, 661.657, 1460.8, 2500.0):
        assert curve(e) == pytest.approx(TRUE.efficiency(e), rel=5e-3), e


def test_efficiency_goes_on_as_a_power_law_beyond_the_table(message: ims2.PhdMessage) -> None:
    curve = efficiency_curve(message)
    top = curve.e_max
    values = curve(np.array([top, 1.5 * top, 2.25 * top]))
    ratios = values[1:] / values[:-1]
    assert ratios[0] == pytest.approx(ratios[1], rel=1e-9)  # straight in log-log
    assert curve(top * (1 + 1e-9)) == pytest.approx(curve(top), rel=1e-6)  # continuous at the end


def test_two_efficiency_points_give_a_power_law(message: ims2.PhdMessage) -> None:
    two = dataclasses.replace(message, g_efficiency=(ims2.EfficiencyPoint(100.0, 0.1, 0.0),
                                                      ims2.EfficiencyPoint(1000.0, 0.01, 0.0)))
    curve = efficiency_curve(two)
    assert curve(np.array([100.0, 316.227766, 1000.0, 3000.0])) == pytest.approx(
        [0.1, 0.0316227766, 0.01, 0.01 / 3], rel=1e-6)


def test_efficiency_uncertainty_is_interpolated_in_the_table(message: ims2.PhdMessage) -> None:
    rows = (ims2.EfficiencyPoint(100.0, 0.1, 0.002), ims2.EfficiencyPoint(1000.0, 0.01, 0.0004))
    curve = efficiency_curve(dataclasses.replace(message, g_efficiency=rows))
    assert curve.relative_uncertainty(550.0) == pytest.approx(0.03)
    assert curve.relative_uncertainty(5000.0) == pytest.approx(0.04)


@pytest.mark.parametrize(("field", "block"), [("g_energy", "#g_Energy"), ("g_resolution", "#g_Resolution"),
                                              ("g_efficiency", "#g_Efficiency")])
def test_a_missing_block_is_named(message: ims2.PhdMessage, field: str, block: str) -> None:
    with pytest.raises(AnalysisError, match=block):
        gamma_calibration(dataclasses.replace(message, **{field: None}), 8192, 1)


def test_an_energy_calibration_that_falls_is_refused(message: ims2.PhdMessage) -> None:
    falling = (ims2.EnergyPoint(100.0, 1000.0, 0.1), ims2.EnergyPoint(200.0, 500.0, 0.1))
    with pytest.raises(AnalysisError, match="does not rise"):
        energy_curve(dataclasses.replace(message, g_energy=falling), 8192, 1)
