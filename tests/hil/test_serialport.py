"""The simulated serial line: pyserial opens it, bytes are paced, faults are seeded, unplug is visible."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import serial

from hil.faults import FaultInjector, LineFaults
from hil.serialport import PtyLine

CONTROL_BYTES = bytes([0x13, 0x11, 0x1B, 0x0D, 0x0A, 0x00, 0xFF, 0x03, 0x04, 0x1A, 0x7F])


def _read_exactly(port: serial.Serial, n: int, timeout: float = 3.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < n and time.monotonic() < deadline:
        data += port.read(n - len(data))
    return data


def test_fault_positions_do_not_depend_on_chunking():
    data = np.random.default_rng(5).integers(0, 256, 20000, dtype=np.uint8).tobytes()
    faults = LineFaults(bit_error_rate=1e-3, drop_rate=1e-3)
    whole = FaultInjector(faults, 42).apply(data)
    pieces = FaultInjector(faults, 42)
    cuts = [0, 1, 7, 500, 501, 9000, 20000]
    chunked = b"".join(pieces.apply(data[a:b]) for a, b in zip(cuts, cuts[1:], strict=False))
    assert chunked == whole
    assert FaultInjector(faults, 43).apply(data) != whole
    # 160 000 bits at 1e-3 → ~160 flips, 20 000 bytes at 1e-3 → ~20 drops (generous 5-sigma bounds)
    assert 100 < pieces.bit_errors < 230 and 2 < pieces.bytes_dropped < 45
    assert len(whole) == len(data) - pieces.bytes_dropped


def test_no_faults_is_identity_and_rates_are_validated():
    inj = FaultInjector(LineFaults(), 1)
    assert inj.apply(b"GCF\x00\xff") == b"GCF\x00\xff"
    with pytest.raises(ValueError, match="bit_error_rate"):
        LineFaults(bit_error_rate=1.5)


@pytest.mark.pty
@pytest.mark.timeout(20)
def test_pyserial_sees_paced_raw_bytes_both_ways():
    with PtyLine(baudrate=38400) as line:
        port = serial.Serial(line.path, 38400, timeout=0.2)
        payload = CONTROL_BYTES * 100  # 1100 bytes = 0.286 s at 38400 Bd
        started = time.monotonic()
        line.write(payload)
        elapsed = time.monotonic() - started
        assert elapsed >= 0.9 * 10 * len(payload) / 38400
        assert _read_exactly(port, len(payload)) == payload
        port.write(CONTROL_BYTES)
        got = b""
        deadline = time.monotonic() + 3
        while len(got) < len(CONTROL_BYTES) and time.monotonic() < deadline:
            got += line.read(timeout=0.1)
        assert got == CONTROL_BYTES
        port.close()


@pytest.mark.pty
@pytest.mark.timeout(20)
def test_unplug_makes_port_vanish_and_replug_brings_it_back():
    with PtyLine(baudrate=115200) as line:
        port = serial.Serial(line.path, 115200, timeout=0.2)
        first_tty = line.tty_path
        line.unplug()
        assert not os.path.exists(line.path)
        with pytest.raises(serial.SerialException):
            for _ in range(10):
                port.read(1)
        port.close()
        with pytest.raises(serial.SerialException):
            serial.Serial(line.path, 115200)
        line.write(b"lost while unplugged")
        line.replug()
        assert os.path.exists(line.path) and line.tty_path
        port = serial.Serial(line.path, 115200, timeout=0.2)
        line.write(b"hello again")
        assert _read_exactly(port, 11) == b"hello again"
        assert first_tty and line.replugs == 2
        port.close()


@pytest.mark.pty
@pytest.mark.timeout(20)
def test_stall_delays_but_keeps_bytes():
    with PtyLine(baudrate=115200) as line:
        port = serial.Serial(line.path, 115200, timeout=0.05)
        line.stall(0.3)
        started = time.monotonic()
        line.write(b"after the stall")
        assert time.monotonic() - started >= 0.25
        assert _read_exactly(port, 15) == b"after the stall"
        port.close()
