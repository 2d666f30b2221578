"""The daemon as operators run it: ``ims idc run`` serves, then exits 0 on SIGTERM and logs in logfmt."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from tests.idc.conftest import process_running

pytestmark = pytest.mark.timeout(60)


class _Lines:
    """The daemon's log lines, read on a thread so every wait for one is bounded."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in iter(stream.readline, ""):
            self._lines.put(line)

    def wait_for(self, text: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                self.seen.append(self._lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
            if text in self.seen[-1]:
                return
        raise AssertionError(f"no {text!r} within {timeout_s} s:\n" + "".join(self.seen))


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
        assert proc.stderr is not None
        lines = _Lines(proc.stderr)
        lines.wait_for('msg="IDC receiver ready"', timeout_s=60)
        proc.send_signal(signal.SIGTERM)
        lines.wait_for('msg="IDC receiver stopped"', timeout_s=20)
        proc.wait(timeout=20)
        err = "".join(lines.seen)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert 'msg="IDC receiver listening"' in err and 'msg="IDC receiver stopped"' in err


def test_run_exits_at_once_when_its_port_is_taken(tmp_path, keys):
    """A port in use is a one-line error and a non-zero exit, not a hang, and no worker is left behind."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "idc.toml"
        config.write_text(
            f"[idc]\nroot = 'data'\ntrust_dir = '{keys.ca.trust_dir}'\n"
            f"connection_endpoint = 'tcp://127.0.0.1:{port}'\n[stations.STA1]\nnetwork = 'XX'\n"
        )
        done = subprocess.run(
            [sys.executable, "-m", "station.ims", "idc", "run", "--config", str(config)],
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=40,
        )
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("ims idc:")]
    assert errors == [f"ims idc: cannot start: Address already in use (addr='tcp://127.0.0.1:{port}')"]
    started = re.findall(r'msg="verifier worker started" worker=\d+ pid=(\d+)', done.stderr)
    workers = [int(pid) for pid in started]
    assert workers and not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


def test_sigkilled_receiver_leaves_no_verifier_worker(tmp_path, keys):
    """Under Restart=always every crash would otherwise leave more orphaned workers behind (defect 11)."""
    config = tmp_path / "idc.toml"
    config.write_text(
        f"[idc]\nroot = 'data'\ntrust_dir = '{keys.ca.trust_dir}'\nverify_workers = 2\n"
        "connection_endpoint = 'tcp://127.0.0.1:*'\n[stations.STA1]\nnetwork = 'XX'\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "station.ims", "idc", "run", "--config", str(config)],
        cwd=Path(__file__).resolve().parents[2],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        lines = _Lines(proc.stderr)
        lines.wait_for('msg="IDC receiver ready"', timeout_s=60)
        workers = _children(proc.pid, "idc.verify_pool")
        assert len(workers) == 2, "".join(lines.seen)
        proc.kill()
        proc.wait(timeout=20)
        deadline = time.monotonic() + 10  # bounded wait for the kernel to stop them, not a speed target
        while (left := [pid for pid in workers if process_running(pid)]) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
    for pid in left:  # never leave one behind, whatever the verdict
        os.kill(pid, signal.SIGKILL)
    assert not left, f"verifier workers {left} outlived the SIGKILLed receiver"


def _children(parent: int, marker: str) -> list[int]:
    """Pids of ``parent``'s children whose command line holds ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (FileNotFoundError, ProcessLookupError):  # it ended meanwhile
            continue
        if ppid == parent and marker in cmdline:
            found.append(int(proc.name))
    return found
