"""Reloading a running receiver's stations and trust store: on SIGHUP, as seedlink and ringserver reload
theirs, and on ``ims idc reload``, which signals the receiver that holds the data root's lock.

The signal handler only sets a flag; the receiver loop does the reload between two poll rounds
(:class:`Reloader`), so it never runs in the middle of a frame. A configuration or trust store that does
not load is refused with its error logged, and the running one goes on: a reload never stops the daemon.
Each attempt's outcome is written to ``ROOT/reload.json``, which ``ims idc reload`` waits for, so the
operator sees the same error in the terminal as in the log, and a refused reload exits non-zero.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gci_link.clock import Clock
from gci_link.durable import write_atomically
from gci_link.keys import KeyMaterialError, TrustStore
from idc.config import IdcConfigError, load_config
from idc.health import ROOT_LOCK
from opskit.lock import live_holder

if TYPE_CHECKING:
    from idc.server import Receiver

log = logging.getLogger(__name__)

OUTCOME_NAME = "reload.json"  # under the data root: the last reload's outcome
REPLY_TIMEOUT_S = 30.0  # how long ``ims idc reload`` waits for the receiver's answer


@dataclass(frozen=True)
class Outcome:
    """One reload attempt, as written to ``reload.json``."""

    pid: int
    attempt: int  # 1, 2, ... in this receiver process
    at_ns: int
    ok: bool
    detail: str  # the error of a refused reload; what changed of one taken
    kept: list[str] = field(default_factory=list)  # differing settings that take a restart


class Reloader:
    """Between two poll rounds, reloads ``config_path`` into ``receiver`` if SIGHUP asked for it."""

    def __init__(self, config_path: Path, root: Path, clock: Clock, requested: threading.Event) -> None:
        self.config_path = config_path
        self.root = root
        self.clock = clock
        self.requested = requested  # set by the SIGHUP handler (ask_on_sighup)
        self.attempts = 0

    def __call__(self, receiver: Receiver) -> None:
        if self.requested.is_set():
            self.requested.clear()
            self.reload(receiver)

    def reload(self, receiver: Receiver) -> Outcome:
        self.attempts += 1
        try:
            config = load_config(self.config_path)
            trust = TrustStore.load(config.trust_dir, clock=self.clock)
        except (IdcConfigError, KeyMaterialError, ValueError) as exc:
            log.error("reload refused; the running configuration stays", extra={"reason": str(exc)})
            outcome = self._outcome(False, str(exc))
        else:
            try:
                kept = receiver.reload(config, trust)
            except Exception as exc:  # a bug must not end the daemon: say so, serve on
                log.exception("reload failed", extra={"reason": f"{type(exc).__name__}: {exc}"})
                outcome = self._outcome(False, f"reload failed: {type(exc).__name__}: {exc}")
            else:
                serving = f"stations: {len(config.stations)}, keys: {len(trust.keys)}"
                outcome = self._outcome(True, serving, kept)
        try:
            write_atomically(self.root / OUTCOME_NAME, json.dumps(asdict(outcome)).encode() + b"\n", 0o644)
        except OSError as exc:  # the reload stands; only ``ims idc reload`` will not hear of it
            log.error("cannot write the reload outcome", extra={"path": str(self.root / OUTCOME_NAME),
                                                              "reason": exc.strerror})
        return outcome

    def _outcome(self, ok: bool, detail: str, kept: list[str] | None = None) -> Outcome:
        return Outcome(os.getpid(), self.attempts, self.clock(), ok, detail, kept or [])


def ask_on_sighup() -> threading.Event:
    """Make SIGHUP ask for a reload instead of ending the process (its default); the event is set when
    one is asked for. Install it first thing, so a SIGHUP while the receiver starts is a reload too."""
    requested = threading.Event()
    signal.signal(signal.SIGHUP, lambda _signum, _frame: requested.set())
    return requested


def read_outcome(root: Path) -> Outcome | None:
    try:
        return Outcome(**json.loads((root / OUTCOME_NAME).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def request_reload(root: Path, timeout_s: float = REPLY_TIMEOUT_S) -> Outcome:
    """Signal the receiver running on data root ``root`` and wait for its outcome.

    Raises LookupError when no receiver holds the root's lock, TimeoutError when it does not answer."""
    holder = live_holder(root / ROOT_LOCK)
    pid = None if holder is None else holder.get("pid")
    if not isinstance(pid, int):
        raise LookupError(f"no receiver is running on data root {root} (no process holds {root / ROOT_LOCK})")
    before = read_outcome(root)
    os.kill(pid, signal.SIGHUP)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        outcome = read_outcome(root)
        if outcome is not None and outcome != before and outcome.pid == pid:
            return outcome
        time.sleep(0.05)
    raise TimeoutError(f"receiver pid {pid} did not answer within {timeout_s:g} s; see its log")
