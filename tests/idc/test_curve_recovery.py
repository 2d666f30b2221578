"""CurveZMQ: a known key gets through, a wrong key is refused with a log line, failed handshakes are
logged (rate-limited) and counted. Crash recovery: a half-written SDS append is truncated and redone, so
the day file holds every sample exactly once."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest
import zmq.auth

from gci_link.cd11 import decode_frame
from idc.config import CurveConfig
from idc.handshakes import LOG_INTERVAL_NS
from idc.stores import StationStore
from tests.idc.conftest import Running, make_config, samples_for, signed
from tests.idc.test_server import sds_samples
from timeunits import NS_PER_S

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


def test_failed_handshakes_are_logged_rate_limited_and_counted(tmp_path, keys, clock, caplog):
    """A station with the wrong server key and a plaintext client: ZeroMQ ends both handshakes before the
    ZAP handler hears of them. Each reason is logged once per interval and every failure is counted, under
    the one anonymous station label."""
    caplog.set_level(logging.WARNING)
    server_pub, _ = zmq.auth.create_certificates(tmp_path, "server")
    (tmp_path / "stations").mkdir()
    _, station_secret = zmq.auth.create_certificates(tmp_path / "stations", "sta1")
    wrong_server_pub, _ = zmq.auth.create_certificates(tmp_path, "not-the-server")
    curve = CurveConfig(tmp_path / "server.key_secret", tmp_path / "stations")
    run = Running(
        make_config(tmp_path / "idc", keys.ca.trust_dir, data_endpoint=None, curve=curve),
        keys.ca.trust_store(),
        clock,
    )

    def failures(reason: str) -> int:
        return run.on_loop(run.receiver.metrics.counters).get(("?", f"handshake_failed:{reason}"), 0)

    def wait_until(condition, what: str) -> None:
        deadline = time.monotonic() + 20
        while not condition():
            assert time.monotonic() < deadline, what
            time.sleep(0.05)

    def logged(reason: str) -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage() == "handshake failed" and r.reason == reason]

    try:
        plaintext = run.station()
        plaintext.send(signed(1, keys))
        wait_until(lambda: failures("mechanism_mismatch") >= 1, "no mechanism mismatch counted")
        pub, sec = zmq.auth.load_certificate(station_secret)
        wrong_server_key = zmq.auth.load_certificate(wrong_server_pub)[0]
        wrong_key = run.station(curve_serverkey=wrong_server_key, curve_publickey=pub, curve_secretkey=sec)
        wrong_key.send(signed(1, keys))  # it retries the handshake every reconnect interval
        wait_until(lambda: failures("cryptographic") >= 3, "the wrong server key's retries not counted")
        assert len(logged("cryptographic")) == 1 and len(logged("mechanism_mismatch")) == 1
        assert "server key" in logged("cryptographic")[0].hint
        clock.advance(LOG_INTERVAL_NS / NS_PER_S)
        wait_until(lambda: len(logged("cryptographic")) == 2, "no log line after the interval")
        assert logged("cryptographic")[1].not_logged >= 2  # the retries in between, summed up
        counted = run.on_loop(run.receiver.metrics.counters)
        assert [key for key in counted if key[0] != "?"] == []  # no label from what a stranger claims
        for client in (plaintext, wrong_key):
            client.close()
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
