"""What the framer learns of calibrations (status bit spans, accepted calib), the station lock that keeps
the daemon and a bench session apart, and the ``calibrate`` command's words."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from calibration.session import parse_calibrate
from digitizer.packet import Packet
from gci_link.cd11 import ChannelStatus
from station.acquisition import ChannelBuffer
from station.calibration_state import ACCEPTED_NAME, Accepted, CalibrationState
from station.config import ChannelConfig
from station.framer import Framer
from station.lock import LOCK_NAME, StationBusy, StationLock
from tests.station.test_service import Clock, make_service
from timeunits import NS_PER_S

T0 = 1_700_000_000 * NS_PER_S
S = NS_PER_S
BHZ = ChannelConfig(digitizer="d", stream_id="Z", site="TST", channel="BHZ", location="",
                    sensor_type="seismic", calib=0.5, calper=1.0, sample_rate=10.0)


def test_a_calibration_span_covers_what_overlaps_it_and_stays_open_while_it_runs():
    state = CalibrationState()
    window = state.begin("TST.BHZ.", T0 + 100 * S)
    assert state.underway("TST.BHZ.", T0 + 95 * S, T0 + 105 * S)
    assert state.underway("TST.BHZ.", T0 + 10_000 * S, T0 + 10_010 * S)  # open: everything after
    assert not state.underway("TST.BHZ.", T0 + 90 * S, T0 + 100 * S)  # ends where it starts
    assert not state.underway("TST.BHN.", T0 + 95 * S, T0 + 105 * S)
    state.end(window, T0 + 200 * S)
    assert state.underway("TST.BHZ.", T0 + 195 * S, T0 + 205 * S)
    assert not state.underway("TST.BHZ.", T0 + 200 * S, T0 + 210 * S)


def test_accepted_calib_applies_from_its_data_time_and_survives_a_restart(tmp_path):
    state = CalibrationState(tmp_path)
    assert state.calib(BHZ, T0) == (0.5, 1.0)
    state.accept(BHZ.code, Accepted(T0 + 100 * S, 0.34, 1.0, "report-1"))
    state.accept(BHZ.code, Accepted(T0 + 200 * S, 0.33, 1.0, "report-2"))
    assert [state.calib(BHZ, T0 + t * S) for t in (99, 100, 199, 200)] == [
        (0.5, 1.0), (0.34, 1.0), (0.34, 1.0), (0.33, 1.0)]
    again = CalibrationState(tmp_path)
    assert again.calib(BHZ, T0 + 150 * S) == (0.34, 1.0) and again.calib(BHZ, T0 + 300 * S) == (0.33, 1.0)
    assert json.loads((tmp_path / ACCEPTED_NAME).read_text())["TST.BHZ."][1]["report"] == "report-2"
    assert CalibrationState().calib(BHZ, T0 + 300 * S) == (0.5, 1.0)  # no state dir: nothing persisted


def test_a_value_that_cannot_be_kept_is_not_applied(tmp_path):
    state = CalibrationState(tmp_path / "gone")
    (tmp_path / "gone").write_text("a file where the state folder should be")
    with pytest.raises(OSError):
        state.accept(BHZ.code, Accepted(T0, 0.34, 1.0))
    assert state.calib(BHZ, T0 + S) == (0.5, 1.0)


def test_an_unreadable_accepted_file_falls_back_to_the_configured_calib(tmp_path, caplog):
    (tmp_path / ACCEPTED_NAME).write_text('{"TST.BHZ.": [{"from_ns": "soon"}]}')
    assert CalibrationState(tmp_path).calib(BHZ, T0) == (0.5, 1.0)
    assert "accepted calibrations unreadable" in caplog.text


def test_the_framer_flags_and_rescales_only_the_calibrated_channel_by_data_time():
    channels = [BHZ, ChannelConfig("d", "N", "TST", "BHN", "", "seismic", 0.6, 1.0, 10.0)]
    buffers = {c.code: ChannelBuffer(c.code, lateness_budget_s=5.0) for c in channels}
    state = CalibrationState()
    state.end(state.begin("TST.BHZ.", T0 + 12 * S), T0 + 25 * S)
    state.accept("TST.BHZ.", Accepted(T0 + 30 * S, 0.34, 2.0))
    framer = Framer(channels, buffers, frame_length_s=10, lateness_budget_s=5.0,
                    status_for=lambda c: ChannelStatus.format1(), calibrations=state)
    for c in channels:
        for s in range(45):
            buffers[c.code].ingest(Packet("SYS", c.stream_id, T0 + s * S, 10.0, np.zeros(10, np.int32)))
    subs = [(sub.channel, (sub.time_ns - T0) // S, sub.status.flag("calibration_underway"), sub.calib,
             sub.calper) for d in framer.cut() for sub in d.subframes]
    assert [(t, flag, calib, calper) for ch, t, flag, calib, calper in subs if ch == "BHZ"] == [
        (0, False, 0.5, 1.0), (10, True, 0.5, 1.0), (20, True, 0.5, 1.0),
        (30, False, pytest.approx(0.34), 2.0)]  # calib is a float32 in CD-1.1
    bhn = [(flag, calib) for ch, _, flag, calib, _ in subs if ch == "BHN"]
    assert len(bhn) == 4 and all(not flag and calib == pytest.approx(0.6) for flag, calib in bhn)


def test_the_station_lock_says_who_holds_it_and_frees_itself(tmp_path):
    with StationLock.acquire(tmp_path, "station daemon", channels=["TST.BHZ."]):
        with pytest.raises(StationBusy) as info:
            StationLock.acquire(tmp_path, "bench calibration")
        assert info.value.holder["role"] == "station daemon" and info.value.holder["pid"] == os.getpid()
        assert info.value.holder["channels"] == ["TST.BHZ."] and "held by station daemon" in str(info.value)
    StationLock.acquire(tmp_path, "bench calibration").release()  # free again once released


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    script = ("import sys, time; from pathlib import Path; from station.lock import StationLock; "
              f"StationLock.acquire(Path({str(tmp_path)!r}), 'station daemon'); print('held', flush=True); "
              "time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             env=os.environ | {"PYTHONPATH": os.getcwd()})
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(StationBusy):
            StationLock.acquire(tmp_path, "bench calibration")
    finally:
        child.kill()
        child.wait(10)
    assert json.loads((tmp_path / LOCK_NAME).read_text())["role"] == "station daemon"  # text stays ...
    StationLock.acquire(tmp_path, "bench calibration").release()  # ... but the lock went with the process


def test_the_daemon_does_not_start_while_a_bench_session_holds_the_station(tmp_path, caplog):
    service, _ = make_service(tmp_path, Clock())
    with StationLock.acquire(tmp_path / "state", "bench calibration"):
        assert service.run(install_signals=False) == 3
    assert "station not started: its digitizers are in use" in caplog.text


def test_calibrate_command_words():
    name, plan = parse_calibrate("calibrate XMPL.BHZ. sine 30 0.1 1 5".split())
    assert name == "XMPL.BHZ."
    assert (plan.signal, plan.minutes, plan.frequencies) == ("sine", 30, (0.1, 1.0, 5.0))
    assert parse_calibrate(["calibrate", "BHZ", "step", "20"])[1].runs()[0].kind == "square"
    for words, message in ((["calibrate", "BHZ", "random"], "expected calibrate CHANNEL"),
                           (["calibrate", "BHZ", "random", "-3"], "MINUTES must be a whole number"),
                           (["calibrate", "BHZ", "sine", "20", "1Hz"], "frequencies must be numbers in Hz"),
                           (["calibrate", "BHZ", "chirp", "20"], "signal 'chirp' is not one of")):
        with pytest.raises(ValueError, match=message):
            parse_calibrate(words)
