"""A QC spectrum whose peaks drifted or broadened raises a detector SOH alarm at the station, announced as an
ALERT_SYSTEM, and a good QC clears it."""

from __future__ import annotations

import numpy as np

from calibration.detector_monitor import QcVerdict, check_qc
from hil.calibration_phd import calibration_message
from station.alarms import AlarmBoard
from station.radionuclide.alerts import DETECTOR, AlertWatch, judge_qc
from tests.station.radionuclide.conftest import system_config


def _verdict(gain: float = 1.0, fwhm_factor: float = 1.0) -> QcVerdict:
    return check_qc(calibration_message(np.random.default_rng(3), gain=gain, fwhm_factor=fwhm_factor,
                                        data_type="QCPHD", real_s=3600.0))


def test_drift_and_resolution_alarms_are_raised_and_cleared() -> None:
    alarms = AlarmBoard()
    watch = AlertWatch(alarms, system_config("particulate").limits)
    judge_qc(alarms, _verdict(gain=1.003, fwhm_factor=1.3), 1_000)
    changes = watch.changes()
    texts = {event: alert for event, alert in changes}
    assert set(texts) == {f"ALERT gain_drift {DETECTOR} RAISED",
                          f"ALERT resolution_degraded {DETECTOR} RAISED"}
    drift = texts[f"ALERT gain_drift {DETECTOR} RAISED"]
    assert (drift.category, drift.condition, drift.subject, drift.unit) == (
        "SYSTEM", "GAIN_DRIFT", "DETECTOR", "FWHM")
    assert drift.value is not None and drift.limit is not None and drift.value > drift.limit
    assert "QC:" in drift.text
    for event, _ in changes:
        watch.announced(event)
    judge_qc(alarms, _verdict(), 2_000)
    assert sorted(event for event, _ in watch.changes()) == [
        f"ALERT gain_drift {DETECTOR} CLEARED", f"ALERT resolution_degraded {DETECTOR} CLEARED"]
