"""The daemon as operators run it: ``ims idc run`` serves, then exits 0 on SIGTERM and logs in logfmt."""

from __future__ import annotations

import signal
import socket
import subprocess

import pytest

from tests.idc.conftest import REPO, end, idc_toml, ims_idc, start_idc_run

pytestmark = pytest.mark.timeout(60)


def test_run_exits_cleanly_on_sigterm(tmp_path, keys):
    proc, log = start_idc_run(idc_toml(tmp_path, keys.ca.trust_dir))
    try:
        log.wait_for('msg="IDC receiver ready"', timeout_s=60)  # logged once the handlers are in place
        proc.send_signal(signal.SIGTERM)
        log.wait_for('msg="IDC receiver stopped"', timeout_s=20)
        proc.wait(timeout=20)
    finally:
        end(proc)
    assert proc.returncode == 0, log.text
    assert 'msg="IDC receiver listening"' in log.text


# what [idc] needs for each listening port of the receiver to be PORT
PORT_SETTINGS = {
    "connection": "connection_endpoint = 'tcp://127.0.0.1:{port}'\n",
    "data": "connection_endpoint = 'tcp://127.0.0.1:*'\ndata_endpoint = 'tcp://127.0.0.1:{port}'\n",
    "prometheus": "connection_endpoint = 'tcp://127.0.0.1:*'\nprometheus_port = {port}\n",
    "seedlink": "connection_endpoint = 'tcp://127.0.0.1:*'\n[idc.seedlink]\nlisten = '127.0.0.1:{port}'\n",
    "console": "connection_endpoint = 'tcp://127.0.0.1:*'\n[idc.console]\nbind = '127.0.0.1:{port}'\n",
}


@pytest.mark.parametrize("which", sorted(PORT_SETTINGS))
def test_run_exits_at_once_when_a_port_is_taken(tmp_path, keys, which):
    """A port in use is a one-line error and a non-zero exit, not a hang; it is found before the receiver
    creates its data root or starts a verifier worker."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "idc.toml"
        config.write_text(
            f"[idc]\nroot = 'data'\ntrust_dir = '{keys.ca.trust_dir}'\n"
            + PORT_SETTINGS[which].format(port=port)
            + "[stations.STA1]\nnetwork = 'XX'\n"
        )
        done = subprocess.run(
            ims_idc("run", "--config", str(config)), cwd=REPO, capture_output=True, text=True, timeout=40
        )
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("ims idc:")]
    assert len(errors) == 1 and errors[0].startswith("ims idc: cannot start: "), done.stderr
    assert "in use" in errors[0] and str(port) in errors[0], errors
    assert "Traceback" not in done.stderr and "verifier worker started" not in done.stderr
    assert not (tmp_path / "data").exists()
