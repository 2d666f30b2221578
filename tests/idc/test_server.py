"""The receiver over real sockets: honest frames archived exactly, hostile ones refused and quarantined."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest
from obspy import UTCDateTime
from obspy.clients.filesystem.sds import Client

from gci_link.cd11 import (
    AlertBody,
    ChannelStatus,
    ConnectionBody,
    Frame,
    FrameHeader,
    FrameType,
    crc64,
    encode_frame,
    sign_frame,
)
from idc.stores import StationStore
from tests.idc.conftest import (
    Running,
    connection_request,
    data_frame,
    make_config,
    samples_for,
    signed,
)
from timeunits import NS_PER_S

pytestmark = pytest.mark.timeout(60)


def sds_samples(root, seq: int, station: str = "STA1A") -> np.ndarray:
    """Samples the SDS archive holds for the 10 s slot of ``seq`` (read with ObsPy, an independent reader)."""
    start = UTCDateTime(data_frame(seq, None).body.nominal_time_ns / NS_PER_S)
    st = Client(str(root)).get_waveforms("XX", station, "00", "BHZ", start, start + 9.975)
    st.merge(method=-1)
    assert len(st) <= 1, st
    return st[0].data if len(st) else np.array([], dtype=np.int32)


def test_honest_frames_archived_exactly_and_acknowledged(tmp_path, keys, clock):
    run = Running(make_config(tmp_path, keys.ca.trust_dir), keys.ca.trust_store(), clock)
    try:
        sta = run.station()
        response = sta.connect()
        assert response.body.port == int(run.receiver.data_endpoint.rsplit(":", 1)[1])
        data = run.station(endpoint=run.receiver.data_endpoint)
        data.negotiate()  # the session moves to the data connection
        for seq in (2000, 2001, 2003):
            data.send(signed(seq, keys))
        ack = data.acknack_covering(2003)
        assert (ack.frame_set, ack.lowest, ack.highest, ack.gaps) == ("STA1:0", 2000, 2003, ((2002, 2003),))
        for seq in (2000, 2001, 2003):
            np.testing.assert_array_equal(sds_samples(tmp_path / "sds", seq), samples_for(seq))
        data.send(signed(2000, keys))  # a resend: harmless, acknowledged again, not archived twice
        assert data.acknack_covering(2003).gaps == ((2002, 2003),)
        data.send(signed(2002, keys))
        ack = data.acknack_covering(2003)
        assert ack.gaps == ()
        np.testing.assert_array_equal(sds_samples(tmp_path / "sds", 2000), samples_for(2000))
        counters = run.on_loop(run.receiver.metrics.counters)
        assert counters[("STA1", "frames")] == 4 and counters[("STA1", "duplicates")] == 1
        report = run.on_loop(lambda: run.receiver.metrics.channel_reports(T_END(2003), 40))[0]
        assert report.channel == "STA1A.BHZ.00" and report.authenticated_pct == 100.0
        assert report.availability_pct == pytest.approx(100.0)
        sta.close()
        data.close()
    finally:
        run.stop()


def test_frames_carrying_status_flags_are_counted_per_flag(tmp_path, keys, clock):
    run = Running(make_config(tmp_path, keys.ca.trust_dir), keys.ca.trust_store(), clock)
    try:
        sta = run.station()
        sta.connect()
        data = run.station(endpoint=run.receiver.data_endpoint)
        data.negotiate()
        unlocked = ChannelStatus.format1().with_flags(["gps_receiver_unlocked", "calibration_underway"])
        data.send(signed(2000, keys, status=ChannelStatus.format1()))  # format 1, no flag set
        data.send(signed(2001, keys, status=unlocked))
        data.send(signed(2002, keys, status=unlocked))
        data.acknack_covering(2002)
        counters = run.on_loop(run.receiver.metrics.counters)
        assert counters[("STA1", "status:gps_receiver_unlocked")] == 2
        assert counters[("STA1", "status:calibration_underway")] == 2
        assert not [name for _, name in counters if name.startswith("status:") and "unlocked" not in name
                    and "calibration" not in name]
        sta.close()
        data.close()
    finally:
        run.stop()


def T_END(seq: int) -> int:
    return data_frame(seq, None).body.nominal_time_ns + 10 * NS_PER_S


def _hostile(keys) -> list[tuple[str, bytes]]:
    """(expected rejection kind, frame bytes) for every kind of bad input the receiver must refuse."""
    good = data_frame(500, keys.sta1)
    sub = good.body.channels[0]
    # a channel signature that does not verify inside a frame whose own signature is valid
    bad_channel = dataclasses.replace(good.body, channels=(dataclasses.replace(sub, auth_value=bytes(64)),))
    forged_channel = sign_frame(dataclasses.replace(good, body=bad_channel), keys.sta1.key_id, keys.sta1.sign)
    forged_frame = dataclasses.replace(good, trailer=dataclasses.replace(good.trailer, auth_value=bytes(64)))
    flipped = bytearray(encode_frame(good))
    flipped[200] ^= 0x01
    unknown_type = bytearray(encode_frame(good))
    unknown_type[0:4] = (11).to_bytes(4, "big")
    unknown_type[-8:] = crc64(bytes(unknown_type[:-8])).to_bytes(8, "big")
    noise = np.random.default_rng(1).integers(-(2**30), 2**30, 40_000).astype(np.int32)
    return [
        ("channel_signature", encode_frame(forged_channel)),
        ("crc", bytes(flipped)),
        ("frame_signature", encode_frame(forged_frame)),
        ("replay", signed(2000, keys, samples=samples_for(9))),
        ("frame_revoked", encode_frame(data_frame(502, keys.revoked))),
        ("frame_unknown_key", encode_frame(data_frame(503, keys.stranger))),
        ("creator_mismatch", encode_frame(data_frame(504, keys.sta2, creator="STA1"))),
        ("oversized", signed(501, keys, samples=noise)),
        ("format", bytes(unknown_type)),
        ("format", b"\x00\x00\x00\x05\x7f\xff\xff\xff" + bytes(40)),  # absurd trailer offset
        ("format", np.random.default_rng(2).bytes(300)),
        ("frame_unsigned", encode_frame(data_frame(505, None))),
    ]


def test_hostile_frames_rejected_while_honest_station_is_served(tmp_path, keys, clock, caplog):
    caplog.set_level(logging.WARNING)
    run = Running(make_config(tmp_path, keys.ca.trust_dir, data_endpoint=None), keys.ca.trust_store(), clock)
    try:
        sta = run.station()
        assert sta.connect().body.port == 0  # same socket: stay on this connection
        sta.send(signed(2000, keys))
        sta.acknack_covering(2000)
        seq = 2001
        hostile = _hostile(keys)
        for expected, raw in hostile:
            sta.send(raw)
            sta.send(signed(seq, keys))  # the honest station keeps being served in between
            ack = sta.acknack_covering(seq)
            assert ack.lowest == 2000 and ack.gaps == (), expected
            seq += 1
        kinds = [r.kind for r in caplog.records if r.getMessage() == "frame rejected"]
        assert kinds == [kind for kind, _ in hostile]
        quarantined = run.on_loop(run.receiver.quarantine.entries)
        assert [reason.split(":")[0] for _, _, _, reason, _ in quarantined] == kinds
        limit = run.receiver.config.max_frame_bytes  # an oversized item is kept up to the frame size limit
        assert [frame for *_, frame in quarantined] == [raw[:limit] for _, raw in hostile]
        store = StationStore(tmp_path / "raw" / "STA1.sqlite")
        assert sorted(store.gap_list().intervals()) == [(2000, seq)]  # nothing from a hostile frame
        store.close()
        for rejected_seq in (500, 501, 502, 503, 504, 505):
            assert len(sds_samples(tmp_path / "sds", rejected_seq)) == 0
        np.testing.assert_array_equal(sds_samples(tmp_path / "sds", 2000), samples_for(2000))
        counters = run.on_loop(run.receiver.metrics.counters)
        assert counters[("STA1", "rejected:channel_signature")] == 1
        report = run.on_loop(lambda: run.receiver.metrics.channel_reports(clock(), 60))[0]
        assert report.authenticated_pct == pytest.approx(100.0 * (seq - 2000) / (seq - 2000 + 1))
        assert counters[("STA1", "frames")] == seq - 2000
        sta.close()
    finally:
        run.stop()


def test_restart_keeps_gap_list_and_never_archives_twice(tmp_path, keys, clock):
    config = make_config(tmp_path, keys.ca.trust_dir, data_endpoint=None)
    run = Running(config, keys.ca.trust_store(), clock)
    try:
        sta = run.station()
        sta.connect()
        for seq in (10, 12):
            sta.send(signed(seq, keys))
        sta.acknack_covering(12)
        sta.close()
    finally:
        run.stop()
    run = Running(config, keys.ca.trust_store(), clock)
    try:
        sta = run.station()
        sta.connect()
        first = sta.recv_type(FrameType.ACKNACK).body  # the restored gap list, before any new data
        assert (first.lowest, first.highest, first.gaps) == (10, 12, ((11, 12),))
        sta.send(signed(10, keys))  # resent after the restart: a duplicate, not archived again
        sta.send(signed(11, keys))
        for _ in range(3):  # one acknack per batch handled: the duplicate and 11 may come apart
            if sta.acknack_covering(12).gaps == ():
                break
        else:
            pytest.fail("gap 11 never closed")
        for seq in (10, 11, 12):
            np.testing.assert_array_equal(sds_samples(tmp_path / "sds", seq), samples_for(seq))
        sta.close()
    finally:
        run.stop()


def test_silence_closes_with_alert_and_heartbeat_acknacks(tmp_path, keys, clock):
    run = Running(make_config(tmp_path, keys.ca.trust_dir, data_endpoint=None), keys.ca.trust_store(), clock)
    try:
        sta = run.station()
        sta.connect()
        sta.recv_type(FrameType.ACKNACK)
        clock.advance(56)
        assert sta.recv_type(FrameType.ACKNACK).body.highest == -1  # heartbeat without data
        clock.advance(65)
        assert b"no frame from STA1" in sta.recv_type(FrameType.ALERT).body.message
        sta.send(signed(1, keys))  # the session is gone: the station is told to reconnect, not acknacked
        reply = sta.recv_type(FrameType.ALERT)
        assert b"no open session" in reply.body.message
        assert run.on_loop(run.receiver.metrics.counters)[("STA1", "rejected:no_session")] == 1
        sta.close()
    finally:
        run.stop()


def test_connection_flood_and_unknown_station_do_not_starve_honest_station(tmp_path, keys, clock):
    run = Running(make_config(tmp_path, keys.ca.trust_dir, data_endpoint=None), keys.ca.trust_store(), clock)
    try:
        flooder = run.station("STA2")
        stranger = run.station("NOPE")
        for _ in range(300):
            flooder.send(connection_request("STA2"))  # authentic, but far too many
        stranger.send(connection_request("NOPE"))
        sta = run.station()
        sta.connect()
        sta.send(signed(1, keys))
        assert sta.acknack_covering(1).highest == 1
        assert stranger.recv(0.2) is None  # unknown stations get no answer and no session
        counters = run.on_loop(run.receiver.metrics.counters)
        assert counters[("?", "connect_rate_limited")] >= 250
        assert counters[("?", "rejected:unknown_station")] == 1  # a stranger's claimed name is no label
        assert not [label for label, _ in counters if label == "NOPE"]
        assert ("STA2", "rejected:frame_unsigned") not in counters
        assert "NOPE" not in run.on_loop(lambda: set(run.receiver.sessions))
        for s in (flooder, stranger, sta):
            s.close()
    finally:
        run.stop()


def test_unsigned_control_frames_of_a_signing_station_are_refused(tmp_path, keys, clock):
    """A forged (unsigned) alert or connection request must not close or take over the real session."""
    run = Running(make_config(tmp_path, keys.ca.trust_dir, data_endpoint=None), keys.ca.trust_store(), clock)
    try:
        sta = run.station()
        sta.connect()
        forger = run.station()
        forger.send(encode_frame(Frame(FrameHeader(FrameType.ALERT, "STA1"), AlertBody(b"bye"))))
        forger.send(
            encode_frame(
                Frame(FrameHeader(FrameType.CONNECTION_REQUEST, "STA1"), ConnectionBody(station="STA1"))
            )
        )
        # all the forger hears is the fate of what it sent (rejection notices, docs/link.md)
        heard = [forger.recv_type(FrameType.ALERT).body.text for _ in range(2)]
        assert heard == ["frame rejected: STA1 alert: frame_unsigned",
                         "frame rejected: STA1 connection_request: frame_unsigned"]
        assert forger.recv(0.3) is None
        sta.send(signed(1, keys))
        assert sta.acknack_covering(1).highest == 1  # the honest session survived and kept its route
        assert run.on_loop(run.receiver.metrics.counters)[("STA1", "rejected:frame_unsigned")] == 2
        for s in (sta, forger):
            s.close()
    finally:
        run.stop()
