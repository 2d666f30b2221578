"""Reloading a serving receiver's stations and trust store (idc/reload.py, Receiver.reload): keys issued or
revoked after start, stations added or removed, all without a restart; refused reloads change nothing."""

from __future__ import annotations

import dataclasses
import logging
import re
import signal
import subprocess
import threading

import pytest
import zmq

from gci_link.cd11 import FrameType, encode_frame
from gci_link.keys import CertificateAuthority, StationSigner
from idc.config import StationPolicy, load_config
from idc.reload import Reloader
from tests.idc.conftest import (
    REPO,
    SIGNERS,
    Running,
    Station,
    data_frame,
    end,
    idc_toml,
    ims_idc,
    make_config,
    start_idc_run,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def ca(tmp_path) -> CertificateAuthority:
    """A CA of this test alone: it issues and revokes while a receiver serves its trust store."""
    return CertificateAuthority.create(tmp_path / "netca")


def _signer(ca: CertificateAuthority, station: str) -> StationSigner:
    return StationSigner.load(ca.issue(station).bundle)


def _rejections(run: Running, expected: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    """The receiver's rejection counters once they hold ``expected``, or as they are after 5 s."""
    counters = run.counters_reaching(expected)
    return {key: n for key, n in counters.items() if key[1].startswith("rejected:")}


def _config(tmp_path, ca: CertificateAuthority):
    """Checked in this process (a round this small never goes to the workers anyway, test_verify_pool)."""
    return make_config(tmp_path / "idc", ca.trust_dir, data_endpoint=None, verify_workers=0)


def _reload(run: Running, ca: CertificateAuthority, **overrides) -> list[str]:
    config = dataclasses.replace(run.receiver.config, **overrides)
    return run.on_loop(lambda: run.receiver.reload(config, ca.trust_store()))


def test_a_key_issued_after_start_is_taken_after_a_reload(tmp_path, ca, clock, monkeypatch):
    run = Running(_config(tmp_path, ca), ca.trust_store(), clock)
    try:
        new = _signer(ca, "STA1")  # issued after the receiver loaded its trust store
        monkeypatch.setitem(SIGNERS, "STA1", new)
        sta = run.station()
        sta.send(encode_frame(data_frame(10, new)))  # an unknown key: refused
        expected = {("STA1", "rejected:frame_unknown_key"): 1}
        assert _rejections(run, expected) == expected
        assert _reload(run, ca) == []
        sta.connect()
        sta.send(encode_frame(data_frame(11, new)))
        assert sta.acknack_covering(11).highest == 11
        assert run.on_loop(run.receiver.metrics.counters)[("STA1", "frames")] == 1
        sta.close()
    finally:
        run.stop()


def test_a_revoked_key_ends_its_session_and_is_refused_from_then_on(tmp_path, ca, clock, monkeypatch):
    old, spare = _signer(ca, "STA1"), _signer(ca, "STA1")
    run = Running(_config(tmp_path, ca), ca.trust_store(), clock)
    try:
        monkeypatch.setitem(SIGNERS, "STA1", old)
        sta = run.station()
        sta.connect()
        sta.send(encode_frame(data_frame(20, old)))
        sta.acknack_covering(20)
        ca.revoke(old.key_id)
        _reload(run, ca)
        text = sta.recv_type(FrameType.ALERT).body.text
        assert text.startswith("session ended: the key of its connection request") and "revoked" in text
        assert "STA1" not in run.receiver.sessions
        sta.send(encode_frame(data_frame(21, old)))
        monkeypatch.setitem(SIGNERS, "STA1", spare)  # the station's other key still opens a session
        sta.connect()
        sta.send(encode_frame(data_frame(22, spare)))
        assert sta.acknack_covering(22).gaps == ((21, 22),)  # 21, signed with the revoked key, is missing
        expected = {("STA1", "rejected:frame_revoked"): 1}
        assert _rejections(run, expected) == expected
        sta.close()
    finally:
        run.stop()


def test_stations_added_and_removed_by_a_reload(tmp_path, ca, clock, monkeypatch):
    sta1, sta3 = _signer(ca, "STA1"), _signer(ca, "STA3")
    monkeypatch.setitem(SIGNERS, "STA1", sta1)
    monkeypatch.setitem(SIGNERS, "STA3", sta3)
    run = Running(_config(tmp_path, ca), ca.trust_store(), clock)
    try:
        one = run.station("STA1")
        one.connect()
        three = run.station("STA3")
        three.send(encode_frame(data_frame(30, sta3, creator="STA3")))
        stations = {"STA3": StationPolicy("STA3", "XX", sites=("STA3A",))}  # STA1 removed, STA3 added
        _reload(run, ca, stations=stations)
        assert "no longer configured" in one.recv_type(FrameType.ALERT).body.text
        assert "STA1" not in run.receiver.sessions
        one.send(encode_frame(data_frame(31, sta1)))
        three.connect()
        three.send(encode_frame(data_frame(32, sta3, creator="STA3")))
        assert three.acknack_covering(32).highest == 32
        expected = {("?", "rejected:unknown_station"): 2}  # STA3 before the reload, STA1 after it
        assert _rejections(run, expected) == expected
        one.close()
        three.close()
    finally:
        run.stop()


def test_a_broken_configuration_or_trust_store_is_refused_and_the_old_one_runs_on(
    tmp_path, ca, clock, monkeypatch, caplog
):
    caplog.set_level(logging.INFO)
    signer = _signer(ca, "STA1")
    monkeypatch.setitem(SIGNERS, "STA1", signer)
    path = tmp_path / "idc.toml"
    good = (f"[idc]\nroot = 'data'\ntrust_dir = '{ca.trust_dir}'\nconnection_endpoint = 'tcp://127.0.0.1:*'\n"
            "verify_workers = 0\n")
    path.write_text(good + "[stations.STA1]\nnetwork = 'XX'\nsites = ['STA1A']\n")
    run = Running(load_config(path), ca.trust_store(), clock)
    reloader = Reloader(path, tmp_path / "data", clock, threading.Event())
    try:
        sta = run.station()
        sta.connect()
        path.write_text(good + "[stations.STA1]\nnetwork = 'XX'\nsites = 'STA1A'\n")  # not a list
        outcome = run.on_loop(lambda: reloader.reload(run.receiver))
        assert not outcome.ok and "stations.STA1.sites" in outcome.detail
        path.write_text(good + "[stations.STA1]\nnetwork = 'XX'\nsites = ['STA1A']\n")
        (ca.trust_dir / "revoked.pem").write_text("garbage")
        outcome = run.on_loop(lambda: reloader.reload(run.receiver))
        assert not outcome.ok and "revoked.pem" in outcome.detail
        refused = [r for r in caplog.records if r.getMessage().startswith("reload refused")]
        assert len(refused) == 2 and refused[0].levelno == logging.ERROR
        sta.send(encode_frame(data_frame(40, signer)))  # the old configuration and keys serve on
        assert sta.acknack_covering(40).highest == 40
        sta.close()
    finally:
        run.stop()


# ---- the daemon, as operators run it ---------------------------------------------------------------


def _ims_idc_reload(config) -> subprocess.CompletedProcess[str]:
    command = ims_idc("reload", "--config", str(config))
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60)


def test_the_daemon_reloads_on_sighup_and_on_ims_idc_reload(tmp_path, ca, monkeypatch):
    """``ims idc run``: a key issued after start is taken after ``ims idc reload``; one revoked after start
    is refused after SIGHUP; a broken configuration or trust store is refused, logged and changes nothing,
    and the daemon serves on until SIGTERM."""
    first = _signer(ca, "STA1")
    config = idc_toml(tmp_path, ca.trust_dir, extra="verify_workers = 0\n")
    good = config.read_text() + "sites = ['STA1A']\n"
    config.write_text(good)
    proc, log = start_idc_run(config)
    ctx = zmq.Context()
    try:
        endpoint = re.search(r"connection_endpoint=(\S+)", log.wait_for("IDC receiver listening", 60))
        assert endpoint is not None
        log.wait_for('msg="IDC receiver ready"', 30)
        new = _signer(ca, "STA1")  # issued after the receiver loaded its trust store
        done = _ims_idc_reload(config)
        assert done.returncode == 0, done.stderr
        assert f"receiver pid {proc.pid} reloaded: stations: 1, keys: 2" in done.stdout
        log.wait_for('msg="configuration reloaded"', 10)
        monkeypatch.setitem(SIGNERS, "STA1", new)
        sta = Station(ctx, endpoint.group(1).strip('"'))
        sta.connect()
        sta.send(encode_frame(data_frame(50, new)))
        assert sta.acknack_covering(50).highest == 50

        ca.revoke(new.key_id)
        proc.send_signal(signal.SIGHUP)
        log.wait_for('msg="configuration reloaded"', 10)
        assert "revoked" in sta.recv_type(FrameType.ALERT).body.text  # its session ended
        sta.send(encode_frame(data_frame(51, new)))
        assert "kind=frame_revoked" in log.wait_for('msg="frame rejected"', 10)

        config.write_text(good.replace("network = 'XX'", "network = 'TOOLONG'"))
        proc.send_signal(signal.SIGHUP)
        line = log.wait_for('msg="reload refused; the running configuration stays"', 10)
        assert "stations.STA1.network" in line and "level=error" in line.lower()
        done = _ims_idc_reload(config)  # checks the file itself first, and signals nothing
        assert done.returncode == 2 and "stations.STA1.network" in done.stderr, done.stderr
        config.write_text(good)
        revocations = (ca.trust_dir / "revoked.pem").read_bytes()
        (ca.trust_dir / "revoked.pem").write_text("garbage")  # the receiver finds this one
        done = _ims_idc_reload(config)
        assert done.returncode == 1 and f"refused by receiver pid {proc.pid}" in done.stderr, done.stderr
        assert "revoked.pem" in done.stderr
        (ca.trust_dir / "revoked.pem").write_bytes(revocations)
        assert proc.poll() is None  # still serving, with the configuration and keys it had
        monkeypatch.setitem(SIGNERS, "STA1", first)
        sta.connect()
        sta.send(encode_frame(data_frame(52, first)))
        assert sta.acknack_covering(52).highest == 52
        sta.close()

        second = subprocess.run(ims_idc("run", "--config", str(config)), cwd=REPO, capture_output=True,
                                text=True, timeout=60)  # a second receiver on the same data root
        assert second.returncode == 2 and f"held by IDC receiver (pid {proc.pid})" in second.stderr

        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        assert proc.returncode == 0, log.text
        done = _ims_idc_reload(config)
        assert done.returncode == 1 and "no receiver is running on data root" in done.stderr
    finally:
        ctx.destroy(linger=0)
        end(proc)
