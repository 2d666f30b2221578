"""Signature mathematics on worker processes, so OpenSSL runs beside the receiver loop, not under its GIL.

Verifier threads looked enough (cryptography releases the GIL inside OpenSSL) but are not: each value
hands the GIL over twice, and while the loop thread runs Python a verifier waits up to the interpreter's
switch interval (5 ms) to get it back. Measured on the IMS-sized replay, two verifier threads left the
loop thread waiting for the GIL about 40 % of its time and kept 1.3 of 2 cores busy. A worker process
gets one message per poll round holding its share of the round's values and answers with one message, so
the loop pays a few system calls per round instead of two GIL hand-offs per value.

Only the mathematics runs in a worker: whether a key id is known, revoked or valid at arrival is decided
by the receiver's TrustStore before a value is sent (see idc/checker.py), and the data is hashed before it
is sent (SHA-256 with the CPU's instructions costs ~1.5 us per channel; moving the data cost more). The
public keys a worker needs travel with the first round that uses them. Workers are started with
``python -m`` on a socket pair, so they import nothing of the program that started them. A worker that
fails (killed, crashed, garbled) is logged and stopped, its share is verified in the receiver's own
process, and the next round starts a new one: a broken worker costs time, never a verdict.

A worker never outlives the receiver (under systemd's ``Restart=always`` every crash would otherwise
leave more of them): it exits at end of file on its socket, which the kernel gives it when the receiver
dies, and on Linux it also asks for SIGTERM when its parent dies (``PR_SET_PDEATHSIG``), which holds even
when another process inherited the receiver's end of the socket (a fork) and keeps it open. Linux sends
that signal when the *thread* that started the worker ends, so the pool is driven by one long-lived
thread (the receiver loop's); a worker lost to another thread's end is restarted like any failed one.
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import cast

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key

from gci_link.keys.algorithms import InvalidSignatureValue, PublicKey, digest_function, raw_verifier

log = logging.getLogger(__name__)

Value = tuple[int, bytes, bytes]  # (key id, signed bytes, raw signature value)
STOP_TIMEOUT_S = 5.0
# The receiver loop is the one thread that cannot be parallelised: workers yield the CPU to it, and take
# what it leaves (measured on the IMS-sized replay: at equal priority the loop got 2/3 of a core).
WORKER_NICENESS = 10
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
MIN_POOL_VALUES = 8  # a smaller round is checked in the receiver: a round trip costs more than it saves


def check_values(verifiers: dict, values: Sequence[Value]) -> list[str | None]:
    """Per value None if it verifies, else why not; ``verifiers`` maps key id -> raw_verifier check
    (prehashed ones take values whose data is already the digest)."""
    failures: list[str | None] = []
    for key_id, data, value in values:
        try:
            verifiers[key_id](data, value)
        except InvalidSignatureValue as exc:
            failures.append(str(exc))
        else:
            failures.append(None)
    return failures


class _Worker:
    """One verifier process and the key ids it has been given."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(theirs.fileno()), str(os.getpid())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self.connection = Connection(ours.detach())
        self.known: set[int] = set()

    def send(self, keys: dict[int, PublicKey], values: Sequence[Value]) -> None:
        new = {
            key_id: keys[key_id].public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
            for key_id in {key_id for key_id, _, _ in values} - self.known
        }
        self.connection.send((new, list(values)))
        self.known |= new.keys()

    def receive(self, count: int) -> list[str | None]:
        failures = self.connection.recv()
        if not isinstance(failures, list) or len(failures) != count:
            raise ValueError(f"worker answered {type(failures).__name__} for {count} values")
        return failures

    def stop(self) -> None:
        self.connection.close()  # the worker sees end of file and exits
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class VerifierPool:
    """Checks rounds of values on ``workers`` processes: ``start`` sends one, ``finish`` collects the oldest.

    Several rounds may be in flight, so a worker finishing one finds the next already waiting. ``keys``
    maps every key id that may appear to its public key. With no workers, or a round too small to be
    worth a round trip, the values are checked in ``finish``, in this process.
    """

    def __init__(self, keys: dict[int, PublicKey], workers: int) -> None:
        self._keys = keys
        self._digests = {key_id: digest_function(key) for key_id, key in keys.items()}
        self._size = workers
        self._workers: list[_Worker | None] = [None] * workers
        self._local: dict | None = None  # raw_verifier checks for the fallback, built when first needed
        # per round in flight, oldest first: its shares as (worker index, or -1 if not sent, values)
        self._rounds: deque[list[tuple[int, Sequence[Value]]]] = deque()
        for index in range(workers):  # now, so their start-up (importing cryptography) is not a first
            try:  # frame's delay; one that cannot start now is tried again with the next round
                self._spawn(index)
            except OSError as exc:
                self._fail(index, "cannot start verifier worker", exc)

    def start(self, values: Sequence[Value]) -> None:
        """Send each worker its share of ``values`` (contiguous, in order), the data hashed here: a
        worker gets 32 bytes per value instead of a channel's data, which made sending cost more than
        verifying."""
        digests = self._digests
        values = [(key_id, digests[key_id](data), value) for key_id, data, value in values]
        shares: list[tuple[int, Sequence[Value]]] = []
        self._rounds.append(shares)
        if not self._size or len(values) < MIN_POOL_VALUES:
            shares.append((-1, values))
            return
        share = -(-len(values) // self._size)
        for index in range(self._size):
            part = values[index * share : (index + 1) * share]
            if not part:
                break
            try:
                worker = self._workers[index] or self._spawn(index)
                worker.send(self._keys, part)
            except Exception as exc:  # noqa: BLE001 - any failure: this share is checked here instead
                self._fail(index, "cannot send to verifier worker", exc)
                index = -1
            shares.append((index, part))

    def finish(self) -> list[str | None]:
        """Per value of the oldest round in flight, in order: None if it verifies, else why not."""
        failures: list[str | None] = []
        for index, part in self._rounds.popleft():
            worker = self._workers[index] if index >= 0 else None
            if worker is not None:
                try:
                    failures += worker.receive(len(part))
                    continue
                except Exception as exc:  # noqa: BLE001 - see start
                    self._fail(index, "verifier worker failed", exc)
            failures += check_values(self._local_verifiers(), part)
        return failures

    def set_keys(self, keys: dict[int, PublicKey]) -> None:
        """Verify with ``keys`` from the next round on (a reloaded trust store). Workers are sent every key
        again as rounds use it, so a key id that now names another key (a re-imported legacy key) is never
        checked with the old one. Call it with no round in flight."""
        if self._rounds:
            raise RuntimeError("set_keys with rounds in flight")
        self._keys = keys
        self._digests = {key_id: digest_function(key) for key_id, key in keys.items()}
        self._local = None
        for worker in self._workers:
            if worker is not None:
                worker.known.clear()

    @property
    def worker_pids(self) -> list[int | None]:
        """Process id of each worker (None: not running now), for monitoring and tests."""
        return [worker.process.pid if worker else None for worker in self._workers]

    def close(self) -> None:
        for index, worker in enumerate(self._workers):
            if worker is not None:
                worker.stop()
                self._workers[index] = None

    def _spawn(self, index: int) -> _Worker:
        worker = self._workers[index] = _Worker()
        log.info("verifier worker started", extra={"worker": index, "pid": worker.process.pid})
        return worker

    def _fail(self, index: int, what: str, exc: Exception) -> None:
        worker = self._workers[index]
        log.error(
            what,
            extra={
                "worker": index,
                "pid": worker.process.pid if worker else None,
                "reason": f"{type(exc).__name__}: {exc}",
            },
        )
        if worker is not None:
            worker.process.kill()
            worker.stop()
            self._workers[index] = None
            for shares in self._rounds:  # its answers to later rounds are lost with it: check those here
                shares[:] = [(-1 if i == index else i, part) for i, part in shares]

    def _local_verifiers(self) -> dict:
        if self._local is None:
            self._local = {key_id: raw_verifier(key, prehashed=True) for key_id, key in self._keys.items()}
        return self._local


def _serve(connection: Connection) -> None:
    """Worker loop: (new public keys, values) in, failures out, until the receiver closes the socket.

    A thread reads rounds as they come, so the receiver never blocks sending one while this process is
    still verifying the one before (rounds in flight, Ed25519 ones above all, which travel with their data,
    can exceed the socket's buffer).
    """
    rounds: queue.SimpleQueue = queue.SimpleQueue()

    def read() -> None:
        try:
            while True:
                rounds.put(connection.recv())
        except (EOFError, OSError):  # a receiver that died with our answers unread: ECONNRESET, not EOF
            rounds.put(None)

    threading.Thread(target=read, daemon=True).start()
    verifiers: dict = {}
    while (round_ := rounds.get()) is not None:
        new, values = round_
        for key_id, der in new.items():
            verifiers[key_id] = raw_verifier(cast(PublicKey, load_der_public_key(der)), prehashed=True)
        try:
            connection.send(check_values(verifiers, values))
        except OSError:  # the receiver is gone
            return


def _die_with_parent(parent: int) -> None:
    """Ask Linux to send SIGTERM when the receiver dies, even if its end of our socket stays open (a child
    of it that inherited the descriptor); end of file on the socket is the fallback elsewhere. The kernel
    watches the thread that started us: a worker started by a thread that ends is stopped then too, which
    costs the pool a restart, never a verdict."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            log.warning("cannot set parent-death signal", extra={"errno": ctypes.get_errno()})
    if os.getppid() != parent:  # it died before the signal was set
        sys.exit(0)


if __name__ == "__main__":
    _die_with_parent(int(sys.argv[2]))
    os.dup2(2, 1)  # nothing a worker prints may mix with anything else
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the receiver stops us
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # so does a hangup, which the receiver takes as "reload"
    os.nice(WORKER_NICENESS)
    _serve(Connection(int(sys.argv[1])))
