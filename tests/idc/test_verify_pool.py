"""Signature values checked on worker processes: the same verdicts as in-process, whatever a worker does;
and no worker outlives the receiver that started it (issue 11, defect 11)."""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gci_link.keys import CertificateAuthority, StationSigner
from gci_link.keys.algorithms import raw_verifier
from idc.verify_pool import MIN_POOL_VALUES, VerifierPool, check_values
from tests import processes
from tests.idc.conftest import REPO, end, idc_toml, process_running, start_idc_run

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def signers(tmp_path_factory):
    ca = CertificateAuthority.create(tmp_path_factory.mktemp("ca"))
    ecdsa = StationSigner.load(ca.issue("STA1").bundle)
    ed25519 = StationSigner.load(ca.issue("STA2", algorithm="ed25519").bundle)
    return ca.trust_store(), [ecdsa, ed25519]


def _values(signers, n: int) -> list[tuple[int, bytes, bytes]]:
    """``n`` values alternating between the two keys; every third one forged (a bit flipped)."""
    values = []
    for i in range(n):
        signer = signers[i % 2]
        data = f"channel {i}".encode() * 40
        value = signer.sign(data)
        if i % 3 == 2:
            value = bytes([value[0] ^ 1]) + value[1:]
        values.append((signer.key_id, data, value))
    return values


def _expected(values) -> list[bool]:
    return [i % 3 != 2 for i in range(len(values))]


def test_workers_give_the_in_process_verdicts_round_after_round(signers):
    trust, keys = signers
    pool = VerifierPool({k.key_id: k.public_key for k in trust.keys}, workers=2)
    rounds = [_values(keys, n) for n in (MIN_POOL_VALUES * 4, MIN_POOL_VALUES, 3 * MIN_POOL_VALUES + 1)]
    try:
        for values in rounds:  # all in flight at once
            pool.start(values)
        for values in rounds:
            failures = pool.finish()
            assert [f is None for f in failures] == _expected(values)
            assert all("does not match" in f for f in failures if f is not None)
        assert None not in pool.worker_pids
    finally:
        pool.close()


def test_a_killed_worker_costs_time_not_verdicts(signers, caplog):
    trust, keys = signers
    pool = VerifierPool({k.key_id: k.public_key for k in trust.keys}, workers=2)
    values = _values(keys, MIN_POOL_VALUES * 6)
    try:
        pool.start(values)
        assert [f is None for f in pool.finish()] == _expected(values)
        victim = pool.worker_pids[1]
        os.kill(victim, signal.SIGKILL)
        pool.start(values)  # the dead worker's share is checked in this process
        pool.start(values)
        for _ in range(2):
            assert [f is None for f in pool.finish()] == _expected(values)
        assert "verifier worker" in caplog.text
        pool.start(values)  # and a new worker takes over the next round
        assert [f is None for f in pool.finish()] == _expected(values)
        assert pool.worker_pids[1] not in (None, victim)
    finally:
        pool.close()
    assert pool.worker_pids == [None, None]


def test_small_rounds_and_no_workers_are_checked_here(signers):
    trust, keys = signers
    verifiers = {k.key_id: raw_verifier(k.public_key) for k in trust.keys}
    values = _values(keys, MIN_POOL_VALUES * 2)
    assert [f is None for f in check_values(verifiers, values)] == _expected(values)
    for workers, n in ((0, len(values)), (2, MIN_POOL_VALUES - 1)):
        pool = VerifierPool({k.key_id: k.public_key for k in trust.keys}, workers)
        try:
            pool.start(values[:n])
            assert [f is None for f in pool.finish()] == _expected(values[:n])
            assert len(pool.worker_pids) == workers
        finally:
            pool.close()


# A receiver stand-in that starts two workers, lets them answer a round it never reads, then dies by
# SIGKILL. With "held", a sleeping child of its own keeps its end of every socket pair open, so the workers
# see no end of file and only the parent-death signal can stop them.
ORPHANING_PARENT = """
import os, pickle, signal, sys, time
from cryptography.hazmat.primitives.serialization import load_der_public_key
from tests.idc.conftest import process_running
from idc.verify_pool import VerifierPool
ders, values, mode = pickle.load(open(sys.argv[1], "rb"))
pool = VerifierPool({key_id: load_der_public_key(der) for key_id, der in ders.items()}, workers=2)
pool.start(values)
for worker in pool._workers:
    assert worker is not None and worker.connection.poll(30)  # its answer waits, unread
print(*pool.worker_pids, flush=True)
if mode == "held":
    holder = os.fork()
    if holder == 0:
        time.sleep(60)
        os._exit(0)
    print(holder, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _wait_gone(pids: list[int], timeout_s: float = 10.0) -> list[int]:
    """The pids still running after up to ``timeout_s`` (bounded polling, not a speed threshold)."""
    deadline = time.monotonic() + timeout_s
    while (left := [pid for pid in pids if process_running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


@pytest.mark.parametrize("mode", ["unread", "held"])
def test_workers_exit_when_their_receiver_is_killed(signers, tmp_path, mode):
    trust, keys = signers
    ders = {
        k.key_id: k.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        for k in trust.keys
    }
    args = tmp_path / "args.pickle"
    args.write_bytes(pickle.dumps((ders, _values(keys, MIN_POOL_VALUES * 4), mode)))
    repo = Path(__file__).resolve().parents[2]
    out, err = tmp_path / "out", tmp_path / "err"  # files, not pipes: the workers inherit stderr
    with out.open("w") as stdout, err.open("w") as stderr:
        returncode = subprocess.run(
            [sys.executable, "-c", ORPHANING_PARENT, str(args)],
            cwd=repo,
            stdout=stdout,
            stderr=stderr,
            timeout=50,
        ).returncode
    assert returncode == -signal.SIGKILL, err.read_text()
    workers, *holder = (line.split() for line in out.read_text().splitlines())
    assert len(workers) == 2
    left = _wait_gone([int(pid) for pid in workers])
    if holder:
        os.kill(int(holder[0][0]), signal.SIGKILL)
    for pid in left:  # never leave one behind, whatever the verdict
        os.kill(pid, signal.SIGKILL)
    assert not left, f"verifier workers {left} outlived their receiver ({mode})"


def _worker_pids(log_text: str) -> list[int]:
    return [int(pid) for pid in re.findall(r'msg="verifier worker started" worker=\d+ pid=(\d+)', log_text)]


def test_a_worker_exits_at_end_of_file_on_its_socket():
    """The portable way out: the worker sees end of file when the receiver's end closes (as it does
    when the receiver dies) and exits 0 by itself."""
    ours, theirs = socket.socketpair()
    worker = subprocess.Popen(
        [sys.executable, "-m", "idc.verify_pool", str(theirs.fileno()), str(os.getpid())],
        pass_fds=(theirs.fileno(),),
        cwd=REPO,
    )
    theirs.close()
    try:
        ours.close()
        assert worker.wait(timeout=30) == 0
    finally:
        end(worker)


def test_workers_end_when_the_receiver_is_killed(tmp_path, keys):
    """SIGKILL of ``ims idc run`` (verify_workers=2): its workers are gone within a bounded wait."""
    proc, log = start_idc_run(idc_toml(tmp_path, keys.ca.trust_dir, extra="verify_workers = 2\n"))
    try:
        log.wait_for('msg="IDC receiver ready"', timeout_s=60)
        workers = _worker_pids(log.text)
        assert len(workers) == 2 and all(processes.running(pid) for pid in workers), log.text
        assert set(workers) <= processes.children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)
        assert processes.wait_gone(workers, timeout_s=10) == set()
    finally:
        end(proc)


# A receiver's verifier pool, then a fork that holds every descriptor of the receiver (its ends of the
# workers' sockets too) open for a while: the workers see no end of file when the receiver dies.
HOLDER = """
import json, os, sys, time
from idc.verify_pool import VerifierPool
pool = VerifierPool({}, workers=2)
holder = os.fork()
if holder == 0:
    time.sleep(float(sys.argv[1]))
    os._exit(0)
print(json.dumps({"workers": pool.worker_pids, "holder": holder}), flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_workers_die_with_the_receiver_even_while_their_socket_is_held_open():
    hold_s = 30.0
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(hold_s)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    holder = None
    try:
        assert proc.stdout is not None
        started = json.loads(proc.stdout.readline())
        workers, holder = started["workers"], started["holder"]
        assert all(processes.running(pid) for pid in workers)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=20)
        assert processes.wait_gone(workers, timeout_s=10) == set()
        assert processes.running(holder)  # so it was not the end of file that ended the workers
    finally:
        end(proc)
        if holder is not None and processes.running(holder):
            os.kill(holder, signal.SIGKILL)


def test_new_keys_reach_the_workers_and_a_key_id_that_names_another_key_is_never_checked_with_the_old(
    signers,
):
    """A reload (idc/reload.py) hands the pool a new key set: keys issued since are checked on the
    workers, and an id the new set maps to another public key is checked with that one."""
    trust, (ecdsa, ed25519) = signers
    before = {ecdsa.key_id: ecdsa.certificate.public_key()}
    after = {ecdsa.key_id: ed25519.certificate.public_key(), ed25519.key_id: ed25519.certificate.public_key()}
    data = [f"channel {i}".encode() for i in range(MIN_POOL_VALUES * 2)]
    pool = VerifierPool(before, workers=2)
    try:
        pool.start([(ecdsa.key_id, d, ecdsa.sign(d)) for d in data])
        assert pool.finish() == [None] * len(data)
        pool.set_keys(after)
        # ed25519 values under both ids: the reused id must now mean the ed25519 key, on every worker
        pool.start([(key_id, d, ed25519.sign(d)) for d in data for key_id in (ecdsa.key_id, ed25519.key_id)])
        assert pool.finish() == [None] * (2 * len(data))
        assert all(pool.worker_pids)  # checked on the workers, none failed over to the receiver
    finally:
        pool.close()
