"""``ims station run`` refuses a start it cannot make good in one line, with a non-zero exit, before it
creates anything (outbox, archive, state folder); ``check-config`` finds the same key problems."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from gci_link.keys import CertificateAuthority
from tests.cli_run import ims, tree

EXAMPLE = Path(__file__).resolve().parents[2] / "station" / "example_station.toml"


def _station(folder: Path, **edits: str) -> Path:
    text = EXAMPLE.read_text()
    for old, new in edits.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    path = folder / "station.toml"
    path.write_text(text)
    return path


def _refused(folder: Path, *args: str) -> str:
    before = tree(folder)
    result = ims(*args, cwd=folder)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert tree(folder) == before, "a refused start created or changed files"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_missing_key_bundle_is_refused_by_check_config_and_run(tmp_path):
    _station(tmp_path)
    line = _refused(tmp_path, "station", "run", "--config", "station.toml")
    assert line == (f"ims station: cannot start: station.toml: link.key_bundle: "
                    f"{tmp_path}/keys/XMPL/key.pem: cannot read private key: No such file or directory")
    check = ims("station", "check-config", "station.toml", cwd=tmp_path)
    assert check.returncode == 2 and "link.key_bundle" in check.stderr and "key.pem" in check.stderr


def test_an_idc_key_is_no_station_key(tmp_path):
    bundle = CertificateAuthority.create(tmp_path / "ca").issue_idc().bundle
    _station(tmp_path, **{'key_bundle = "keys/XMPL"': f'key_bundle = "{bundle}"'})
    line = _refused(tmp_path, "station", "run", "--config", "station.toml")
    assert line.endswith("an IDC's key, not a station's ('ims keys issue')")


def test_another_stations_key_is_refused(tmp_path):
    bundle = CertificateAuthority.create(tmp_path / "ca").issue("OTHER").bundle
    _station(tmp_path, **{'key_bundle = "keys/XMPL"': f'key_bundle = "{bundle}"'})
    line = _refused(tmp_path, "station", "run", "--config", "station.toml")
    assert line.endswith("certificate of station 'OTHER', but the frames are created as 'XMPL'")


def test_an_endpoint_without_tcp_is_refused(tmp_path):
    _station(tmp_path, **{'"tcp://127.0.0.1:8041"': '"127.0.0.1:8041"'})
    line = _refused(tmp_path, "station", "run", "--config", "station.toml")
    assert line == ("ims station: station.toml: link.endpoints[0]: must look like tcp://host:port, "
                    "got '127.0.0.1:8041'")


@pytest.fixture
def taken_port():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_a_metrics_port_in_use_is_refused(tmp_path, taken_port):
    bundle = CertificateAuthority.create(tmp_path / "ca").issue("XMPL").bundle
    _station(tmp_path, **{'key_bundle = "keys/XMPL"': f'key_bundle = "{bundle}"',
                          "metrics_port = 0": f"metrics_port = {taken_port}"})
    line = _refused(tmp_path, "station", "run", "--config", "station.toml")
    assert line == f"ims station: cannot start: metrics port 127.0.0.1:{taken_port}: Address already in use"
