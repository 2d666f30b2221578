"""The daemon as operators run it: ``ims idc run`` serves, then exits 0 on SIGTERM and logs in logfmt."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)


def test_run_exits_cleanly_on_sigterm(tmp_path, keys):
    config = tmp_path / "idc.toml"
    config.write_text(
        f"[idc]\nroot = 'data'\ntrust_dir = '{keys.ca.trust_dir}'\n"
        "connection_endpoint = 'tcp://127.0.0.1:*'\n[stations.STA1]\nnetwork = 'XX'\n"
    )
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "station.ims", "idc", "run", "--config", str(config)],
        cwd=repo,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "data" / "metrics.sqlite").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert 'msg="IDC receiver listening"' in err and 'msg="IDC receiver stopped"' in err
