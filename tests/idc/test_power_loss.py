"""A power loss, not just a SIGKILL: every write the receiver had not synced is lost.

A SIGKILL keeps the page cache, so in tests/idc/test_crash.py every write survives and the order of the
receiver's syncs (the two barriers of idc/committer.py) is never put to the test. Here the receiver runs
under tests/idc/crashfs.c, an LD_PRELOAD shim that copies each file under the data root as it is at
every fsync/fdatasync of it and at every syncfs/sync; after the SIGKILL each file is put back to its
last copy (emptied if it never had one) before the restart.

What this exercises: file contents lost back to their last sync, at the commit path's worst instants,
with three stations writing to shared day files; a deliberately broken receiver (no barrier 1) is caught.
What it does not: directory entries are taken as durable at once (a created, renamed or unlinked file
is never undone), and unsynced writes are all lost, never a part of them (a torn append is what
test_crash's mid_append point writes).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.idc.test_crash import (
    POINTS,
    SHARED_PLAN,
    _held,
    acknowledged,
    crash,
    lost_or_duplicated,
    restart,
    shared_writers,
)

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the shim is for Linux (glibc)"),
]

SHIM_SOURCE = Path(__file__).with_name("crashfs.c")


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """crashfs.so, built from its source for this run."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is needed to build the crashfs shim")
    library = tmp_path_factory.mktemp("crashfs") / "crashfs.so"
    flags = ["-Wall", "-Wextra", "-Werror", "-shared", "-fPIC", "-O2"]
    command = [gcc, *flags, "-o", str(library), str(SHIM_SOURCE), "-ldl"]
    subprocess.run(command, check=True, capture_output=True)
    return library


def shim_env(shim: Path, root: Path, shadow: Path) -> dict[str, str]:
    shadow.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "LD_PRELOAD": str(shim),
        "CRASHFS_ROOT": str(root.resolve()),
        "CRASHFS_SHADOW": str(shadow.resolve()),
    }


def lose_unsynced_writes(root: Path, shadow: Path) -> int:
    """Put every file under ``root`` back to its content at its last sync (nothing if never synced), as
    a power loss would leave it; returns how many bytes were lost (those after the first that differs)."""
    lost = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        st = path.stat()
        copy = shadow / f"{st.st_dev}-{st.st_ino}"
        durable = copy.read_bytes() if copy.exists() else b""
        current = path.read_bytes()
        if current != durable:
            n = min(len(current), len(durable))
            same = np.frombuffer(current[:n], np.uint8) == np.frombuffer(durable[:n], np.uint8)
            differ = np.flatnonzero(~same)
            lost += len(current) - (int(differ[0]) if len(differ) else n)
            with path.open("r+b") as fh:
                fh.truncate(0)
                fh.write(durable)
    return lost


def test_the_shim_loses_exactly_what_was_not_synced(shim, tmp_path):
    root, shadow = tmp_path / "data", tmp_path / "shadow"
    env = shim_env(shim, root, shadow)
    script = textwrap.dedent(
        f"""
        import ctypes, os, signal
        root = {str(root)!r}
        def write(name, data, mode="wb"):
            f = open(os.path.join(root, name), mode); f.write(data); f.flush(); return f
        g = write("synced_by_syncfs", b"d" * 100)
        fd = os.open(root, os.O_RDONLY); ctypes.CDLL(None, use_errno=True).syncfs(fd)
        g.write(b"e" * 10); g.flush()
        write("never_synced", b"a" * 100)
        f = write("fsynced_then_grown", b"b" * 100); os.fsync(f.fileno()); f.write(b"c" * 50); f.flush()
        os.rename(os.path.join(root, "fsynced_then_grown"), os.path.join(root, "renamed"))
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=30)
    assert done.returncode == -9, done.stderr.decode()
    assert lose_unsynced_writes(root, shadow) == 100 + 50 + 10
    assert (root / "never_synced").read_bytes() == b""
    assert (root / "renamed").read_bytes() == b"b" * 100  # the copy follows the inode
    assert (root / "synced_by_syncfs").read_bytes() == b"d" * 100


@pytest.mark.parametrize("point", [*POINTS, "after_ack"])
def test_power_loss_while_settling_loses_nothing_acknowledged(shim, tmp_path, keys, point):
    """Three stations on shared day files; power lost at a worst instant of the last batch's settling
    (or right after its acknacks): after the restart every acknowledged frame is in its raw store and
    every kept frame's samples are in the SDS archive exactly once (read with ObsPy)."""
    root, shadow = tmp_path / "data", tmp_path / "shadow"
    config, batches = shared_writers(root, keys)
    acks = crash(tmp_path, config, keys.ca.trust_dir, batches, point, env=shim_env(shim, root, shadow))
    lost = lose_unsynced_writes(root, shadow)
    restart(config, keys.ca.trust_dir)
    acked = acknowledged(acks)
    assert all(seq in acked[station] for batch in SHARED_PLAN[:-1] for station, seq in batch)
    assert lost_or_duplicated(root, acked) == []
    last = SHARED_PLAN[-1]
    if point == "after_commit":  # its transactions were written but never synced: the batch is gone
        assert lost > 0 and not any(seq in _held(root, station) for station, seq in last)
    if point == "mid_append":  # the journal was synced, the torn append was not (it is lost)
        assert lost > 0 and all(seq in _held(root, station) for station, seq in last)
    if point == "after_ack":
        assert all(seq in acked[station] for station, seq in last)


def test_a_receiver_acknowledging_before_barrier_1_is_caught(shim, tmp_path, keys):
    """The test's own check: without barrier 1 (the raw stores' syncfs) the last batch is acknowledged
    while its transactions sit unsynced, and the power loss takes acknowledged frames away."""
    root, shadow = tmp_path / "data", tmp_path / "shadow"
    config, batches = shared_writers(root, keys)
    env = shim_env(shim, root, shadow)
    acks = crash(tmp_path, config, keys.ca.trust_dir, batches, "unsynced_raw_stores", env=env)
    assert lose_unsynced_writes(root, shadow) > 0
    restart(config, keys.ca.trust_dir)
    problems = lost_or_duplicated(root, acknowledged(acks))
    assert [p for p in problems if "acknowledged but not in the raw store" in p] == [
        f"{station} frame {seq} acknowledged but not in the raw store" for station, seq in SHARED_PLAN[-1]
    ]
