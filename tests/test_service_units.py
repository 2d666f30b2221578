"""The systemd units in docs/ work when followed verbatim: each unit's ExecStart command line, started the
way systemd starts it (a notify socket, a watchdog interval, stderr as the journal stream), says READY=1,
pings the watchdog from its main loop, logs with syslog priorities and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from gci_link.keys import CertificateAuthority
from tests.conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"
INSTALLED_IMS = "/opt/ims/.venv/bin/ims"
WATCHDOG_USEC = 400_000  # pings every 0.2 s


def service_section(unit: Path) -> dict[str, str]:
    """The [Service] keys of a unit file (the last value of a key given twice)."""
    section, keys = "", {}
    for line in unit.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            keys[key.strip()] = value.strip()
    return keys


def _station_config(folder: Path, state: Path) -> Path:
    bundle = CertificateAuthority.create(folder / "ca").issue("XMPL").bundle
    text = (REPO_ROOT / "station" / "example_station.toml").read_text()
    for old, new in {'key_bundle = "keys/XMPL"': f'key_bundle = "{bundle}"',
                     'port = "/dev/ttyUSB0"': 'port = "loop://"',
                     'state_dir = "state"': f'state_dir = "{state}/state"',
                     'path = "archive"': f'path = "{state}/archive"',
                     'path = "outbox/outbox.sqlite"': f'path = "{state}/outbox/outbox.sqlite"'}.items():
        assert old in text, old
        text = text.replace(old, new)
    path = folder / "station.toml"
    path.write_text(text)
    return path


def _idc_config(folder: Path, state: Path) -> Path:
    trust = CertificateAuthority.create(folder / "ca").trust_dir
    path = folder / "idc.toml"
    path.write_text(f"[idc]\nroot = '{state}/idc'\ntrust_dir = '{trust}'\n"
                    "connection_endpoint = 'tcp://127.0.0.1:*'\nverify_workers = 0\n")
    return path


@pytest.mark.parametrize(("unit", "config_in_unit", "make_config"), [
    ("ims-station.service", "/etc/ims/station.toml", _station_config),
    ("ims-idc.service", "/etc/ims/idc.toml", _idc_config),
])
def test_a_unit_started_as_systemd_does_notifies_readiness_and_the_watchdog(unit, config_in_unit,
                                                                            make_config):
    service = service_section(DOCS / unit)
    assert service["Type"] == "notify" and service["NotifyAccess"] == "main"
    assert int(service["WatchdogSec"]) > 0
    assert service["StateDirectory"] == "ims" and service["WorkingDirectory"] == "/var/lib/ims"
    assert service["ProtectSystem"] == "strict"  # so only the state directory is writable
    argv = shlex.split(service["ExecStart"])
    assert argv[0] == INSTALLED_IMS and config_in_unit in argv
    check = shlex.split(service["ExecStartPre"])
    assert check[:3] == [INSTALLED_IMS, argv[1], "check-config"]

    with tempfile.TemporaryDirectory(dir="/tmp") as scratch:  # AF_UNIX paths are short
        folder = Path(scratch)
        state = folder / "var-lib-ims"  # what StateDirectory=ims creates
        state.mkdir()
        config = make_config(folder, state)
        command = [sys.executable, "-m", "station.ims", *[str(config) if a == config_in_unit else a
                                                          for a in argv[1:]]]
        pre = [sys.executable, "-m", "station.ims", *[str(config) if a == config_in_unit else a
                                                      for a in check[1:]]]
        env = os.environ | {"PYTHONPATH": str(REPO_ROOT)}
        assert subprocess.run(pre, env=env, capture_output=True, timeout=60).returncode == 0
        notify_path = folder / "notify"
        journal_path = folder / "journal"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify, journal_path.open("w+") as journal:
            notify.bind(str(notify_path))
            notify.settimeout(1.0)
            stat = os.fstat(journal.fileno())
            env |= {"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": str(WATCHDOG_USEC),
                    "JOURNAL_STREAM": f"{stat.st_dev}:{stat.st_ino}"}
            proc = subprocess.Popen(command, cwd=state, env=env, stdout=journal, stderr=journal)
            try:
                messages = _receive(notify, proc, until=lambda got: got.count("WATCHDOG=1") >= 3)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
            messages += _drain(notify)
            journal.seek(0)
            lines = journal.read().splitlines()
    assert proc.returncode == 0, "\n".join(lines)
    assert messages[0].startswith("READY=1"), messages
    assert messages.count("WATCHDOG=1") >= 3 and "STOPPING=1" in messages
    assert messages.index("STOPPING=1") > messages.index("WATCHDOG=1")
    assert lines and all(line[:3] in ("<3>", "<4>", "<6>", "<7>") for line in lines), lines
    assert any(line.startswith("<6>ts=") and "level=info" in line for line in lines)


def _receive(notify: socket.socket, proc: subprocess.Popen, until, timeout_s: float = 90.0) -> list[str]:
    """Notification datagrams (one entry per line) until ``until(lines)`` or the process ended."""
    got: list[str] = []
    deadline = time.monotonic() + timeout_s
    while not until(got):
        assert time.monotonic() < deadline, f"no readiness and watchdog within {timeout_s} s: {got}"
        assert proc.poll() is None, f"the daemon exited with {proc.returncode}: {got}"
        try:
            got += notify.recv(4096).decode().splitlines()
        except TimeoutError:
            continue
    return got


def _drain(notify: socket.socket) -> list[str]:
    notify.settimeout(0.2)
    got: list[str] = []
    while True:
        try:
            got += notify.recv(4096).decode().splitlines()
        except TimeoutError:
            return got
