"""``ims idc run`` refuses a start it cannot make good in one line, with a non-zero exit, before it creates
or touches anything under the data root (a port already taken: tests/idc/test_sigterm.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gci_link.keys import CertificateAuthority
from tests.cli_run import ims, tree
from tests.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def trust(tmp_path_factory) -> Path:
    return CertificateAuthority.create(tmp_path_factory.mktemp("ca") / "net").trust_dir


def _config(folder: Path, trust: Path, extra: str = "", endpoint: str = "tcp://127.0.0.1:*") -> Path:
    path = folder / "idc.toml"
    path.write_text(f"[idc]\nroot = 'data'\ntrust_dir = '{trust}'\nconnection_endpoint = '{endpoint}'\n"
                    f"verify_workers = 0\n{extra}")
    return path


def _refused(folder: Path, live: str = "") -> str:
    """The one line refusing the start; ``live``: a suffix of files that a running receiver changes."""

    def files() -> dict[str, tuple[int, int]]:
        return {name: stat for name, stat in tree(folder).items() if not (live and live in name)}

    before = files()
    result = ims("idc", "run", "--config", "idc.toml", cwd=folder)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert files() == before, "a refused start created or changed files"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_an_endpoint_without_tcp_is_refused(tmp_path, trust):
    _config(tmp_path, trust, endpoint="127.0.0.1:8041")
    line = _refused(tmp_path)
    assert line == ("ims idc: idc.toml: idc.connection_endpoint: must look like tcp://host:port "
                    "(port * for any), got '127.0.0.1:8041'")


def test_a_second_receiver_on_one_data_root_is_refused(tmp_path, trust):
    _config(tmp_path, trust)
    first = subprocess.Popen([sys.executable, "-m", "station.ims", "idc", "run", "--config", "idc.toml"],
                             cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                             env=os.environ | {"PYTHONPATH": str(REPO_ROOT)})
    try:
        assert first.stderr is not None
        for line in first.stderr:
            if "IDC receiver ready" in line:
                break
        else:
            pytest.fail(f"the first receiver did not start (exit {first.wait()})")
        line = _refused(tmp_path, live=".sqlite")  # the first one keeps its metrics database
        assert line == (f"ims idc: cannot start: data root {tmp_path}/data is in use: "
                        f"{tmp_path}/data/receiver.lock: held by IDC receiver (pid {first.pid})")
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
    assert first.returncode == 0
