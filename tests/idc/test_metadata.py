"""StationXML at the IDC: built from the subframes' calib/calper and the declared response shape, a new
epoch when a calibration is accepted, and ObsPy's ``remove_response`` on the SDS archive with it gives
back the ground motion that was simulated, in amplitude and phase."""

from __future__ import annotations

import io
import math
import subprocess
import time
from dataclasses import replace

import numpy as np
import obspy
import pytest
from obspy import UTCDateTime
from obspy.clients.filesystem.sds import Client

from calibration.response import Seismometer, calib_from_response
from gci_link.cd11 import build_data_frame, build_subframe, encode_frame, sign_all_channels, sign_frame
from idc.config import DeclaredResponse, load_config
from idc.metadata import ChannelMetadata
from tests.idc.conftest import REPO, T0, Running, ims_idc, make_config
from timeunits import NS_PER_S

pytestmark = pytest.mark.timeout(120)

RATE = 20.0
FRAME_S = 10
FRAMES = 180  # 30 minutes
CHANGE_AT = 90  # the frame from which the station applies an accepted calibration
LOW, HIGH = 0.02, 1.0  # Hz: near the 120 s sensor's corner, and in its flat band at calper
V_LOW, V_HIGH = 2e-6, 1e-6  # ground velocity amplitudes, m/s
BEFORE = Seismometer(120.0, 0.707, 6.0e8).velocity_response("counts")
AFTER = Seismometer(120.0, 0.707, 5.4e8).velocity_response("counts")  # 10 % less sensitive
CALPER = 1.0
# the usual band limit of a deconvolution: without it the taper's low-frequency leakage, divided by the
# sensor's falling response, swamps the long-period signal
PRE_FILT = (0.004, 0.008, 8.0, 9.5)


def counts(response, start_ns: int, n: int) -> np.ndarray:
    """The channel's counts for the steady-state ground velocity V_LOW sin(2π LOW t) + V_HIGH sin(2π HIGH
    t)."""
    t = (start_ns - T0) / NS_PER_S + np.arange(n) / RATE
    y = np.zeros(n)
    for f, v in ((LOW, V_LOW), (HIGH, V_HIGH)):
        h = complex(response(f))
        y += v * abs(h) * np.sin(2 * np.pi * f * t + np.angle(h))
    return np.round(y).astype(np.int32)


def frame(seq: int, keys) -> bytes:
    start = T0 + seq * FRAME_S * NS_PER_S
    response = BEFORE if seq < CHANGE_AT else AFTER
    n = int(FRAME_S * RATE)
    subs = [build_subframe(counts(response, start, n), site="STA1A", channel=code, location="00",
                           time_ns=start, sample_rate=RATE, calib=calib_from_response(response, CALPER),
                           calper=CALPER)
            for code in ("BHZ", "BHN")]
    f = build_data_frame(subs, creator="STA1", sequence=seq, nominal_time_ns=start)
    f = sign_all_channels(f, keys.sta1.key_id, keys.sta1.sign)
    return encode_frame(sign_frame(f, keys.sta1.key_id, keys.sta1.sign))


def sine_fit(trace: obspy.Trace, f: float) -> complex:
    """Amplitude and phase (as a phasor of sin) of the component at ``f`` Hz in the trace's middle half."""
    n = len(trace.data)
    keep = slice(n // 4, 3 * n // 4)
    t = (trace.stats.starttime.ns - T0) / NS_PER_S + np.arange(n)[keep] / trace.stats.sampling_rate
    columns = [np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t)]
    for other in (LOW, HIGH):
        if other != f:
            columns += [np.sin(2 * np.pi * other * t), np.cos(2 * np.pi * other * t)]
    a, b, *_ = np.linalg.lstsq(np.column_stack([*columns, np.ones_like(t)]), trace.data[keep], rcond=None)[0]
    return complex(a, b)


def test_remove_response_with_the_receivers_stationxml_gives_the_simulated_ground_motion(tmp_path, keys):
    policy = make_config(tmp_path, keys.ca.trust_dir).stations["STA1"]
    declared = (("BHZ", DeclaredResponse("velocity", period_s=120.0, damping=0.707)),)
    stations = {"STA1": replace(policy, responses=declared, coordinates=(46.0, 7.5, 900.0))}
    config = make_config(tmp_path, keys.ca.trust_dir, stations=stations)
    run = Running(config, keys.ca.trust_store(), time.time_ns)
    try:
        sta = run.station(endpoint=run.receiver.connection_endpoint)
        sta.connect()
        sta.negotiate()
        for seq in range(FRAMES):
            sta.send(frame(seq, keys))
        sta.acknack_covering(FRAMES - 1, timeout_s=60)
        path = tmp_path / "stationxml" / "XX.STA1A.xml"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (not path.exists() or len(obspy.read_inventory(str(path))
                                                                         .select(channel="BHZ")[0][0]) < 2):
            time.sleep(0.1)
        sta.close()
    finally:
        run.stop()
    inventory = obspy.read_inventory(str(path))  # ObsPy reads what the receiver wrote
    bhz = inventory.select(channel="BHZ")[0][0].channels
    change = UTCDateTime(ns=T0 + CHANGE_AT * FRAME_S * NS_PER_S)
    assert [(c.start_date, c.end_date) for c in bhz] == [(UTCDateTime(ns=T0), change - 1e-6), (change, None)]
    assert inventory[0][0].latitude == 46.0
    assert "velocity seismometer T0 120 s, h 0.707" in bhz[0].comments[0].value
    ratio = bhz[0].response.instrument_sensitivity.value / bhz[1].response.instrument_sensitivity.value
    assert ratio == pytest.approx(1 / 0.9, rel=1e-6)  # the accepted calibration's level

    sds = Client(str(tmp_path / "sds"))
    epochs = ((UTCDateTime(ns=T0), change, BEFORE), (change, change + (FRAMES - CHANGE_AT) * FRAME_S, AFTER))
    for begin, end, response in epochs:
        velocity = sds.get_waveforms("XX", "STA1A", "00", "BHZ", begin, end - 1 / RATE)
        assert len(velocity) == 1 and velocity[0].stats.npts == round((end - begin) * RATE)
        velocity.remove_response(inventory=inventory, output="VEL", pre_filt=PRE_FILT)
        for f, v in ((LOW, V_LOW), (HIGH, V_HIGH)):
            measured = sine_fit(velocity[0], f)
            assert abs(measured) == pytest.approx(v, rel=0.005), (f, response)
            assert math.degrees(abs(np.angle(measured))) < 0.5, f  # the sensor's phase removed too

    # BHN has no declared shape: a flat displacement response, right at calper (1 Hz) only
    bhn = inventory.select(channel="BHN")[0][0].channels[0]
    assert "flat, right at calper only" in bhn.comments[0].value
    displacement = sds.get_waveforms("XX", "STA1A", "00", "BHN", UTCDateTime(ns=T0), change - 1 / RATE)
    displacement.remove_response(inventory=inventory, output="DISP", pre_filt=PRE_FILT)
    at_calper = sine_fit(displacement[0], HIGH)
    assert abs(at_calper) == pytest.approx(V_HIGH / (2 * np.pi * HIGH), rel=0.005)
    off_calper = abs(sine_fit(displacement[0], LOW))
    assert abs(off_calper / (V_LOW / (2 * np.pi * LOW)) - 1) > 0.5  # a flat response is wrong away from it


    # the same document through the command line, as an analyst fetches it
    toml = tmp_path / "idc.toml"
    toml.write_text(f"[idc]\nroot = '{tmp_path}'\ntrust_dir = '{keys.ca.trust_dir}'\n"
                    "connection_endpoint = 'tcp://127.0.0.1:*'\n[stations.STA1]\nnetwork = 'XX'\n")
    served = subprocess.run(ims_idc("stationxml", "--config", str(toml), "--station", "STA1A"), cwd=REPO,
                            capture_output=True, timeout=60)
    assert served.returncode == 0, served.stderr
    assert len(obspy.read_inventory(io.BytesIO(served.stdout)).select(channel="BHZ")[0][0]) == 2
    missing = subprocess.run(ims_idc("stationxml", "--config", str(toml), "--network", "YY"), cwd=REPO,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "no StationXML matches YY.*.xml" in missing.stderr


def test_epochs_follow_data_time_survive_a_restart_and_stay_bounded(tmp_path, keys):
    config = make_config(tmp_path, keys.ca.trust_dir)

    def sub(second: int, calib: float):
        return build_subframe(np.zeros(20, np.int32), site="STA1A", channel="BHZ", location="00",
                              time_ns=T0 + second * NS_PER_S, sample_rate=RATE, calib=calib, calper=1.0)

    meta = ChannelMetadata(tmp_path, config.stations)
    for second, calib in ((0, 0.5), (10, 0.5), (100, 0.3), (110, 0.3), (50, 0.5), (90, 0.3)):
        meta.observe("STA1", sub(second, calib))  # backlog arrives after live data
    (key,) = meta._epochs
    assert [(e.start_ns - T0) // NS_PER_S for e in meta.epochs(key)] == [0, 90]  # the change moved earlier
    assert meta.flush() == [tmp_path / "stationxml" / "XX.STA1A.xml"] and meta.flush() == []
    meta.close()
    again = ChannelMetadata(tmp_path, config.stations)
    assert [e.calib for e in again.epochs(key)] == [0.5, 0.30000001192092896]  # float32 on the wire
    for second in range(200, 200 + 2 * 1000):
        again.observe("STA1", sub(second, 0.1 + second % 2))
    assert len(again.epochs(key)) == 1000
    again.close()


def test_declared_responses_are_checked_at_load(tmp_path):
    base = "[idc]\nroot = 'r'\ntrust_dir = 't'\nconnection_endpoint = 'tcp://127.0.0.1:1'\n" \
           "[stations.STA1]\nnetwork = 'XX'\n"
    good = tmp_path / "good.toml"
    good.write_text(base + "latitude = 46.0\n[stations.STA1.responses.BHZ]\nkind = 'velocity'\n"
                    "period_s = 120\ndamping = 0.707\n[stations.STA1.responses.BDF]\n"
                    "kind = 'microbarometer'\nlow_corner_hz = 0.01\n")
    station = load_config(good).stations["STA1"]
    assert station.declared("BHZ") == DeclaredResponse("velocity", period_s=120.0, damping=0.707)
    assert station.declared("BDF").low_corner_hz == 0.01 and station.coordinates == (46.0, 0.0, 0.0)
    for extra, why in (
        ("[stations.STA1.responses.BHZ]\nkind = 'velocity'\nperiod_s = 120\n",
         "damping: missing \\(required\\)"),
        ("[stations.STA1.responses.BHZ]\nkind = 'geophone'\n", "one of velocity, microbarometer"),
        ("[stations.STA1.responses.BDF]\nkind = 'hydrophone'\nlow_corner_hz = 1\nhigh_corner_hz = 0.5\n",
         "must be above low_corner_hz"),
        ("[stations.STA1.responses.BHZ]\nkind = 'velocity'\nperiod_s = -1\ndamping = 0.7\n",
         "period_s: must be > 0"),
        ("latitude = 91\n", "latitude: must be <= 90"),
    ):
        bad = tmp_path / "bad.toml"
        bad.write_text(base + extra)
        with pytest.raises(ValueError, match=why):
            load_config(bad)


def test_a_changed_declaration_reaches_the_files_at_the_next_start(tmp_path, keys):
    config = make_config(tmp_path, keys.ca.trust_dir)
    sub = build_subframe(np.zeros(20, np.int32), site="STA1A", channel="BHZ", location="00", time_ns=T0,
                         sample_rate=RATE, calib=0.5, calper=1.0)
    meta = ChannelMetadata(tmp_path, config.stations)
    meta.observe("STA1", sub)
    (path,) = meta.flush()
    meta.close()
    assert "flat, right at calper only" in obspy.read_inventory(str(path))[0][0][0].comments[0].value
    declared = (("BHZ", DeclaredResponse("velocity", period_s=120.0, damping=0.707)),)
    stations = {"STA1": replace(config.stations["STA1"], responses=declared)}
    again = ChannelMetadata(tmp_path, stations)
    assert again.flush() == [path]
    again.close()
    assert "velocity seismometer" in obspy.read_inventory(str(path))[0][0][0].comments[0].value
