"""Gain-drift and resolution monitoring of simulated QC spectra against the detector's calibration."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.detector_monitor import MonitorLimits, check_qc
from gci_link import ims2
from hil.calibration_phd import calibration_message


def _qc(gain: float = 1.0, fwhm_factor: float = 1.0, seed: int = 7) -> ims2.PhdMessage:
    return calibration_message(np.random.default_rng(seed), gain=gain, fwhm_factor=fwhm_factor,
                               data_type="QCPHD", real_s=3600.0)


def test_a_stable_detector_passes() -> None:
    verdict = check_qc(_qc())
    assert len(verdict.lines) == 12
    assert not verdict.gain_drifted and not verdict.resolution_degraded
    assert abs(verdict.gain_change) < 2e-4
    assert verdict.fwhm_ratio == pytest.approx(1.0, abs=4 * verdict.fwhm_ratio_unc)


@pytest.mark.parametrize("gain", [1.002, 0.998, 1.2, 0.8])
def test_gain_drift_is_measured_and_flagged(gain: float) -> None:
    """A 0.2 % drift moves the 1836 keV line by 3.7 keV, 1.5 FWHM; 20 % is still matched and measured."""
    verdict = check_qc(_qc(gain))
    assert len(verdict.lines) == 12
    assert verdict.gain_drifted
    assert verdict.gain_change == pytest.approx(gain - 1, abs=2e-4)
    assert not verdict.resolution_degraded


def test_resolution_degradation_is_flagged_at_the_configured_ratio() -> None:
    verdict = check_qc(_qc(fwhm_factor=1.25))
    assert verdict.fwhm_ratio == pytest.approx(1.25, abs=0.01)
    assert verdict.resolution_degraded and not verdict.gain_drifted
    lenient = check_qc(_qc(fwhm_factor=1.25), limits=MonitorLimits(max_fwhm_ratio=1.3))
    assert not lenient.resolution_degraded


def test_reference_from_another_message() -> None:
    """The calibration file is the reference; the QC file's own tables are not used."""
    reference = calibration_message(np.random.default_rng(1), gain=1.0)
    qc = _qc(gain=1.002)
    assert check_qc(qc, reference=reference).gain_drifted
