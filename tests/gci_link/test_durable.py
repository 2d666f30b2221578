"""Atomic durable file replacement, and the IDC's IMS 2.0 message store that writes through it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gci_link import durable
from gci_link.durable import write_atomically
from idc.stores import MessageStore


@pytest.fixture
def umask_077():
    old = os.umask(0o077)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_replaces_the_file_and_leaves_no_temporary_behind(tmp_path):
    path = tmp_path / "cert.pem"
    write_atomically(path, b"first")
    write_atomically(path, b"second, longer")
    assert path.read_bytes() == b"second, longer"
    assert [p.name for p in tmp_path.iterdir()] == ["cert.pem"]


def test_mode_is_exact_whatever_the_umask_and_the_old_file(tmp_path, umask_077):
    path = tmp_path / "key.pem"
    path.write_bytes(b"old")
    path.chmod(0o600)
    write_atomically(path, b"public", 0o644)
    assert _mode(path) == 0o644
    write_atomically(path, b"secret", 0o600)
    assert _mode(path) == 0o600
    write_atomically(tmp_path / "plain", b"x")  # no mode: the umask decides
    assert _mode(tmp_path / "plain") == 0o600


def test_directory_entry_is_synced_after_the_rename(tmp_path, monkeypatch):
    synced: list[tuple[Path, bool]] = []
    monkeypatch.setattr(durable, "fsync_path", lambda p: synced.append((p, (tmp_path / "f").exists())))
    write_atomically(tmp_path / "f", b"data")
    assert synced == [(tmp_path, True)]


def test_message_store_writes_one_file_per_message_under_station_year_day(tmp_path):
    store = MessageStore(tmp_path)
    received_ns = 1_704_153_600 * 10**9  # 2024-01-02
    path = store.write("STA1", 42, received_ns, b"BEGIN IMS2.0\nSTOP\n")
    assert path == tmp_path / "STA1" / "2024" / "002" / "STA1-42.msg"
    assert store.path_for("STA1", 42, received_ns) == path
    assert path.read_bytes() == b"BEGIN IMS2.0\nSTOP\n"
    assert store.write("STA1", 42, received_ns, b"resent") == path  # a resend replaces it whole
    assert path.read_bytes() == b"resent"
    assert [p.name for p in path.parent.iterdir()] == ["STA1-42.msg"]
