"""SIGKILL at the worst instants of the per-batch commit path: a restart loses no acknowledged frame and
the SDS archive holds every frame's samples exactly once (read back with ObsPy)."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gci_link.keys import TrustStore
from idc.server import Receiver
from idc.stores import StationStore
from tests.idc.conftest import connection_request, make_config, samples_for, signed
from tests.idc.test_server import sds_samples

pytestmark = pytest.mark.timeout(60)

# Runs a receiver in a child process: settles frames 1-3, then dies by SIGKILL at ``point`` while
# settling the batch holding frames 4 and 5 (none of which was acknowledged).
CHILD = """
import os, pickle, signal, sys
from gci_link import durable
from gci_link.io.sds import archive as sds
from gci_link.keys import TrustStore
from idc import stores
from idc.server import Receiver
config, trust_dir, frames, point = pickle.load(open(sys.argv[1], "rb"))
receiver = Receiver(config, TrustStore.load(trust_dir))

class Sink:
    def send_multipart(self, parts, flags=0):
        pass

sink = Sink()
receiver.handle(sink, [[b"id", frames[0]]])
receiver.handle(sink, [[b"id", raw] for raw in frames[1:4]])
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
append = sds._append_to
if point == "after_commit":  # transactions written (synchronous=NORMAL), before the raw-store syncfs
    durable.FilesystemSync.sync = lambda self: die()
elif point == "mid_append":  # journal durable, half of a day file's records written
    def torn(fd, data, fsync):
        append(fd, data[: len(data) // 2 + 100], fsync)
        die()
    sds._append_to = torn
elif point == "after_archive_sync":  # records durable, journal rows not yet released
    stores.StationStore.archived = lambda self, seqs: die()
receiver.handle(sink, [[b"id", raw] for raw in frames[4:]])
sys.exit(3)  # not reached: the kill must have happened
"""


@pytest.mark.parametrize("point", ["after_commit", "mid_append", "after_archive_sync"])
def test_sigkill_while_settling_a_batch(tmp_path, keys, point):
    config = make_config(tmp_path, keys.ca.trust_dir, data_endpoint=None)
    frames = [connection_request("STA1")] + [signed(seq, keys) for seq in (1, 2, 3, 4, 5)]
    args = tmp_path / "args.pickle"
    args.write_bytes(pickle.dumps((config, keys.ca.trust_dir, frames, point)))
    repo = Path(__file__).resolve().parents[2]
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(args)], cwd=repo, capture_output=True, timeout=50
    )
    assert child.returncode == -9, child.stderr.decode()

    receiver = Receiver(config, TrustStore.load(keys.ca.trust_dir))
    receiver.start()  # recovery: truncate half-done appends and redo them from the raw frames
    receiver.close()
    store = StationStore(tmp_path / "raw" / "STA1.sqlite")
    held = store.gap_list()
    store.close()
    assert all(seq in held for seq in (1, 2, 3))  # acknowledged before the crash: never lost
    for seq in (1, 2, 3, 4, 5):
        expected = samples_for(seq) if seq in held else np.array([], dtype=np.int32)
        np.testing.assert_array_equal(sds_samples(tmp_path / "sds", seq), expected)
    if point != "after_commit":  # the journal was durable: the batch is kept and archived once
        assert 4 in held and 5 in held
