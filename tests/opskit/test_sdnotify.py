"""sd_notify without systemd: what goes to $NOTIFY_SOCKET, and nothing at all outside systemd."""

from __future__ import annotations

import os
import socket

from opskit.sdnotify import Notifier


def _received(listener: socket.socket) -> list[bytes]:
    listener.settimeout(0.1)
    got = []
    while True:
        try:
            got.append(listener.recv(100))
        except TimeoutError:
            return got


def test_watchdog_pings_at_half_the_interval_and_only_for_this_process():
    name = f"@ims-test-{os.getpid()}"
    env = {"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid())}
    now = [0]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name[1:])  # an abstract socket, as systemd may give
        notifier = Notifier(name, 1_000_000_000, monotonic_ns=lambda: now[0])
        notifier.ready("up")
        for t_ms in (100, 400, 499, 500, 900, 1000):
            now[0] = t_ms * 1_000_000
            notifier.ping()
        assert _received(listener) == [b"READY=1\nSTATUS=up", b"WATCHDOG=1", b"WATCHDOG=1"]  # 500, 1000 ms
        notifier.close()
    assert Notifier.from_env(env).watchdog_ns == 1_000_000_000
    other_pid = Notifier.from_env(env | {"WATCHDOG_PID": "1"})
    assert other_pid.enabled and other_pid.watchdog_ns is None  # the watchdog is another process's


def test_outside_systemd_nothing_is_sent():
    notifier = Notifier.from_env({})
    assert not notifier.enabled and not notifier.notify("READY=1")
    notifier.ping()
    assert not Notifier.from_env({"NOTIFY_SOCKET": "relative"}).enabled
