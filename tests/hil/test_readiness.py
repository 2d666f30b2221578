"""The harness hears each daemon's READY=1 through the same notifier the daemons use under systemd."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hil.readiness import ReadinessListener

NOTIFY = "import time; from opskit.sdnotify import Notifier; time.sleep({delay}); Notifier.from_env().ready()"


def _daemon(listener: ReadinessListener, code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], env=os.environ | listener.env())


def test_waits_for_every_daemon_and_tells_them_apart_by_pid():
    listener = ReadinessListener()
    try:
        early = _daemon(listener, NOTIFY.format(delay=0) + "; time.sleep(30)")
        late = _daemon(listener, NOTIFY.format(delay=3) + "; time.sleep(30)")
        listener.wait({"early": early}, timeout_s=60)
        with pytest.raises(RuntimeError, match="not ready after 0.3 s: late"):  # early's READY is not late's
            listener.wait({"early": early, "late": late}, timeout_s=0.3)
        assert listener.ready(early.pid) and not listener.ready(late.pid)  # asked without waiting
        listener.wait({"early": early, "late": late}, timeout_s=60)
        assert listener.ready(late.pid) and late.poll() is None
    finally:
        for proc in (early, late):
            proc.kill()
            proc.wait()
        listener.close()


def test_a_daemon_that_exits_or_stays_silent_is_named():
    listener = ReadinessListener()
    dead = _daemon(listener, "raise SystemExit(3)")
    silent = _daemon(listener, "import time; time.sleep(30)")
    try:
        with pytest.raises(RuntimeError, match="dead exited with 3 before it was ready"):
            listener.wait({"dead": dead}, timeout_s=60)
        with pytest.raises(RuntimeError, match="not ready after 0.5 s: silent"):
            listener.wait({"silent": silent}, timeout_s=0.5)
    finally:
        silent.kill()
        silent.wait()
        listener.close()
