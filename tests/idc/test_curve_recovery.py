"""CurveZMQ: a known key gets through, a wrong key is refused with a log line. Crash recovery: a
half-written SDS append is truncated and redone, so the day file holds every sample exactly once."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import zmq.auth

from gci_link.cd11 import decode_frame
from idc.config import CurveConfig
from idc.stores import StationStore
from tests.idc.conftest import Running, make_config, samples_for, signed
from tests.idc.test_server import sds_samples

pytestmark = pytest.mark.timeout(60)


def test_curve_known_key_served_unknown_key_refused_and_logged(tmp_path, keys, clock, caplog):
    caplog.set_level(logging.WARNING)
    server_pub, server_secret = zmq.auth.create_certificates(tmp_path, "server")
    (tmp_path / "stations").mkdir()
    (tmp_path / "rogue").mkdir()
    station_pub, station_secret = zmq.auth.create_certificates(tmp_path / "stations", "sta1")
    _, rogue_secret = zmq.auth.create_certificates(tmp_path / "rogue", "rogue")
    curve = CurveConfig(tmp_path / "server.key_secret", tmp_path / "stations")
    run = Running(
        make_config(tmp_path / "idc", keys.ca.trust_dir, data_endpoint=None, curve=curve),
        keys.ca.trust_store(),
        clock,
    )
    try:

        def client(secret_file):
            pub, sec = zmq.auth.load_certificate(secret_file)
            return run.station(
                curve_serverkey=zmq.auth.load_certificate(server_pub)[0],
                curve_publickey=pub,
                curve_secretkey=sec,
            )

        good = client(station_secret)
        good.connect()
        good.send(signed(1, keys))
        assert good.acknack_covering(1).highest == 1
        rogue = client(rogue_secret)
        rogue.send(signed(2, keys))
        assert rogue.recv(0.5) is None  # the handshake never completes
        refused = [r for r in caplog.records if r.getMessage() == "refused CurveZMQ client key"]
        assert refused and refused[0].client_key == zmq.auth.load_certificate(rogue_secret)[0].decode()
        good.close()
        rogue.close()
    finally:
        run.stop()


def test_half_written_append_is_truncated_and_redone_on_start(tmp_path, keys, clock):
    config = make_config(tmp_path, keys.ca.trust_dir, data_endpoint=None)
    run = Running(config, keys.ca.trust_store(), clock)
    try:
        sta = run.station()
        sta.connect()
        sta.send(signed(5, keys))
        sta.acknack_covering(5)
        sta.close()
    finally:
        run.stop()
    # simulate a crash after the commit of frame 6 and half of its SDS append
    store = StationStore(tmp_path / "raw" / "STA1.sqlite")
    raw6 = signed(6, keys)
    gaps = store.gap_list()
    gaps.add(6)
    day_file = next((tmp_path / "sds").rglob("XX.STA1A.00.BHZ.D.*"))
    size = day_file.stat().st_size
    store.commit([(6, clock(), raw6, [(str(day_file), size)])], gaps, epoch=store.archived_through() + 1)
    with day_file.open("ab") as fh:
        fh.write(b"\0" * 200)  # torn record
    store.close()
    assert decode_frame(raw6).header.sequence == 6
    run = Running(config, keys.ca.trust_store(), clock)
    run.stop()
    for seq in (5, 6):
        np.testing.assert_array_equal(sds_samples(tmp_path / "sds", seq), samples_for(seq))
    assert day_file.stat().st_size > size and (day_file.stat().st_size - size) % 512 == 0
