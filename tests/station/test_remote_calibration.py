"""A remote calibration through the whole station: the IDC's ``calibrate`` command arrives over the real
link, the daemon drives the simulated digitizer's calibrator over the pseudo-terminal while it keeps
acquiring, framing and sending, and answers with the fit. Data time runs 400 times faster than the wall.
"""

from __future__ import annotations

import json
import threading

import pytest

import station.remote_calibration  # noqa: F401  (imported before the digitizer starts)
from gci_link.cd11 import decode_frame
from station.calibration_state import ACCEPTED_NAME
from station.config import parse_config
from station.service import StationService
from tests.calibration.sim_station import (
    TRUE_DAMPING,
    TRUE_PERIOD,
    TRUE_SENSITIVITY,
    SimDigitizerRig,
    station_toml,
)
from tests.gci_link.station_end.test_sender import FakeIdc, wait_for
from timeunits import NS_PER_S

SPEED = 400.0
CONFIGURED_CALIB = 0.5  # nm/count; the simulated sensor's is 0.3395 at 1 s
FRAME_NS = 10 * NS_PER_S

pytestmark = [pytest.mark.pty, pytest.mark.timeout(90)]


def subframes(idc: FakeIdc) -> list[tuple[int, bool, float]]:
    """(start, calibration underway, calib) of every BHZ subframe the IDC received, in time order."""
    found = {}
    for raw in list(idc.raw_frames):
        for sub in decode_frame(raw).body.channels:
            if sub.channel == "BHZ":
                found[sub.time_ns] = (sub.status.flag("calibration_underway"), sub.calib)
    return [(t, *found[t]) for t in sorted(found)]


def test_remote_calibration_keeps_data_flowing_flags_the_channel_and_applies_the_fit(tmp_path):
    idc = FakeIdc()
    try:
        with SimDigitizerRig(SPEED, seed=4) as rig:
            text = station_toml(rig.port, endpoint=idc.endpoint, calib=CONFIGURED_CALIB,
                                extra="[calibration]\napply_accepted = true\n")
            service = StationService(parse_config(text, "test", tmp_path))
            runner = threading.Thread(target=service.run, kwargs={"install_signals": False})
            runner.start()
            try:
                wait_for(lambda: len(idc.raw_frames) >= 3, 30)
                before = len(idc.arrivals)
                idc.send_command(1, "calibrate BHZ step 20")
                wait_for(lambda: rig.sim.calibration is not None, 10)
                idc.send_command(2, "status")  # a second command while the calibration runs
                wait_for(lambda: len(idc.command_responses) >= 2, 60)
                during = len(idc.arrivals) - before
                wait_for(lambda: any(calib != CONFIGURED_CALIB for *_, calib in subframes(idc)[-1:]), 30)
                settled = len(idc.raw_frames)
                wait_for(lambda: len(idc.raw_frames) >= settled + 3, 30)
            finally:
                service.stop()
                runner.join(30)
    finally:
        idc.close()
    busy, answer = (r.response.decode() for r in idc.command_responses)
    assert busy.startswith("busy: requests 1 not answered yet")
    result = json.loads(answer)
    print("command response:", answer)
    print(f"data frames received while the calibration ran: {during}")

    assert result["verdict"] == "pass" and result["applied"] is True
    truth = {"T0_s": TRUE_PERIOD, "h": TRUE_DAMPING, "G": TRUE_SENSITIVITY}
    for name, value in truth.items():
        fitted, sigma = result[name]
        assert abs(fitted / value - 1) < 1e-3 and 0 < sigma < 1e-4 * abs(value), (name, fitted, sigma)
    assert result["G_units"] == "counts/(m/s)"
    expected_calib = 1e9 / (2 * 3.141592653589793 * TRUE_SENSITIVITY)  # flat band at calper 1 s
    assert result["calib"] == pytest.approx(expected_calib, rel=2e-3) and result["calper"] == 1.0
    # the digitizer's 20-minute step (plus up to a minute to the next clock minute) in 10 s frames
    assert during >= 60, "data frames stopped while the calibration ran"

    rows = subframes(idc)
    start, end = result["start_ns"], result["end_ns"]
    flagged = [t for t, flag, _ in rows if flag]
    assert not rows[0][1], "flagged before the command"
    assert flagged and flagged == [t for t, *_ in rows if flagged[0] <= t <= flagged[-1]], "flag not one span"
    inside = [t for t, *_ in rows if start <= t and t + FRAME_NS <= end]
    assert len(inside) >= 100 and set(inside) <= set(flagged)
    lead_s, trail_s = (start - flagged[0]) / NS_PER_S, (flagged[-1] + FRAME_NS - end) / NS_PER_S
    print(f"flag set {lead_s:.0f} s before and {trail_s:.0f} s after the recorded span")
    calibs = [calib for *_, calib in rows]
    switch = next(i for i, c in enumerate(calibs) if c != CONFIGURED_CALIB)
    assert all(c == CONFIGURED_CALIB for c in calibs[:switch])
    assert all(c == pytest.approx(result["calib"], rel=1e-5) for c in calibs[switch:])  # 6 digits, float32
    assert rows[switch][0] >= end, "the accepted calib reached data from before the calibration ended"
    # the session closes the span before it accepts the fit, so data from then on is never flagged
    # (how far past the signal the span reached depends on how far the framer ran ahead of the
    # session noticing the end, up to a minute of data and more at 400 times the wall)
    assert not any(flag for _, flag, _ in rows[switch:]), "flag still set after the calibration"
    assert (tmp_path / "state" / ACCEPTED_NAME).exists()  # a restarted daemon keeps it
    report = tmp_path / "state" / "calibrations"
    (folder,) = report.iterdir()
    assert result["report"] == str(folder) and (folder / "report.html").exists()
