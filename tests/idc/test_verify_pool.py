"""Signature values checked on worker processes: the same verdicts as in-process, whatever a worker does."""

from __future__ import annotations

import os
import signal

import pytest

from gci_link.keys import CertificateAuthority, StationSigner
from gci_link.keys.algorithms import raw_verifier
from idc.verify_pool import MIN_POOL_VALUES, VerifierPool, check_values

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
