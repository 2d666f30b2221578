"""docs/keys.md, "Rotating a key without downtime", run as written against a real receiver (``ims idc run``):
each step's commands go to a shell with only the paths moved into a temporary folder, ``NEW`` and ``OLD``
replaced by the key ids, ``ims`` by this checkout's, the station daemon's user by the test's, and
``systemctl restart ims-station`` by what the restart does (the station signs with the bundle in its key
folder, which it must be able to read)."""

from __future__ import annotations

import getpass
import os
import re
import shlex
import stat
import subprocess
import sys

import pytest
import zmq

from gci_link.cd11 import encode_frame
from gci_link.keys import StationSigner
from tests.conftest import REPO_ROOT
from tests.idc.conftest import SIGNERS, Station, data_frame, end, start_idc_run

pytestmark = pytest.mark.timeout(120)

STATION_RESTART = "systemctl restart ims-station"


def rotation_steps() -> list[list[str]]:
    """The commands of each numbered step of the rotation section, in order."""
    text = (REPO_ROOT / "docs" / "keys.md").read_text()
    section = text.split("## Rotating a key without downtime", 1)[1].split("\n## ", 1)[0]
    steps = re.split(r"^\d\. ", section, flags=re.MULTILINE)[1:]
    # commands are the code blocks inside the list items: indented 7 spaces
    return [[line.strip() for line in step.splitlines() if line.startswith(" " * 7)] for step in steps]


def test_the_rotation_section_has_the_steps_this_test_expects():
    steps = rotation_steps()
    assert [len(commands) for commands in steps] == [1, 2, 3, 3], steps
    assert steps[2][2] == STATION_RESTART


def _shell(command: str, tmp_path, ids: dict[str, int]) -> str:
    """Run one documented command in the moved paths; returns its output, fails on a non-zero exit."""
    command = command.replace("/secure/", f"{tmp_path}/secure/").replace("/etc/ims", f"{tmp_path}/etc/ims")
    for word, key_id in ids.items():
        command = re.sub(rf"\b{word}\b", str(key_id), command)
    command = command.replace("chown -R ims:", f"chown -R {getpass.getuser()}:")
    if command.startswith("ims "):
        command = f"{shlex.quote(sys.executable)} -m station.ims {command[4:]}"
    done = subprocess.run(command, shell=True, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_documented_rotation_works_verbatim(tmp_path, monkeypatch):
    steps = rotation_steps()
    ids: dict[str, int] = {}
    # what the section assumes: a CA, a receiver using a copy of its trust store, station LBTB's bundle
    etc = tmp_path / "etc" / "ims"
    _shell("ims keys ca-init /secure/netca", tmp_path, ids)
    ids["OLD"] = int(re.findall(r"issued key id (\d+)", _shell("ims keys issue /secure/netca LBTB", tmp_path,
                                                                  ids))[0])
    _shell("mkdir -p /etc/ims/keys && cp -a /secure/netca/trust /etc/ims/trust", tmp_path, ids)
    _shell("cp -a /secure/netca/issued/LBTB-OLD /etc/ims/keys/LBTB", tmp_path, ids)
    (etc / "idc.toml").write_text(
        f"[idc]\nroot = '{etc / 'data'}'\ntrust_dir = '{etc / 'trust'}'\n"
        "connection_endpoint = 'tcp://127.0.0.1:*'\nverify_workers = 0\n"
        "[stations.LBTB]\nnetwork = 'XX'\nsites = ['LBTBA']\n"
    )
    station_key = StationSigner.load(etc / "keys" / "LBTB")
    assert station_key.key_id == ids["OLD"]
    proc, log = start_idc_run(etc / "idc.toml")
    ctx = zmq.Context()
    seq = iter(range(100, 200))

    def deliver(signer: StationSigner) -> None:
        """A data frame signed by ``signer``, on a session it opened, is acknowledged (else this fails)."""
        monkeypatch.setitem(SIGNERS, "LBTB", signer)
        n = next(seq)
        sta.connect()
        sta.send(encode_frame(data_frame(n, signer, creator="LBTB")))
        assert sta.acknack_covering(n).gaps == ()

    try:
        endpoint = re.search(r"connection_endpoint=(\S+)", log.wait_for("IDC receiver listening", 60))
        assert endpoint is not None
        log.wait_for('msg="IDC receiver ready"', 30)
        sta = Station(ctx, endpoint.group(1).strip('"'), "LBTB")
        deliver(station_key)

        (issue,) = steps[0]
        ids["NEW"] = int(re.findall(r"issued key id (\d+)", _shell(issue, tmp_path, ids))[0])
        new_key = StationSigner.load(tmp_path / "secure" / "netca" / "issued" / f"LBTB-{ids['NEW']}")

        for command in steps[1]:
            out = _shell(command, tmp_path, ids)
        assert "reloaded: stations: 1, keys: 2" in out
        deliver(new_key)
        deliver(station_key)

        copy, chown, restart = steps[2]
        _shell(copy, tmp_path, ids)
        _shell(chown, tmp_path, ids)
        assert restart == STATION_RESTART
        key_file = etc / "keys" / "LBTB" / "key.pem"
        assert (key_file.stat().st_uid, stat.S_IMODE(key_file.stat().st_mode)) == (os.getuid(), 0o600)
        station_key = StationSigner.load(etc / "keys" / "LBTB")  # what the restarted station signs with
        assert station_key.key_id == ids["NEW"]
        deliver(station_key)

        for command in steps[3]:
            out = _shell(command, tmp_path, ids)
        assert "reloaded: stations: 1, keys: 2" in out
        deliver(station_key)
        old_key = StationSigner.load(tmp_path / "secure" / "netca" / "issued" / f"LBTB-{ids['OLD']}")
        monkeypatch.setitem(SIGNERS, "LBTB", station_key)
        sta.send(encode_frame(data_frame(next(seq), old_key, creator="LBTB")))
        assert "kind=frame_revoked" in log.wait_for('msg="frame rejected"', 10)
        sta.close()
    finally:
        ctx.destroy(linger=0)
        end(proc)
