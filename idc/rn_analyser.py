"""Analyses every SAMPLEPHD the IDC receives, beside the receiver and never in its way.

The receiver's data path does not wait for any of this: the committer stores and indexes a message
(idc/rn_store.py) and acknowledges it; once it is durable the receiver calls ``notify``, which only sets
a flag. One thread of the receiver then finds the work in the index itself, so the index is the queue:
it cannot overflow, what a crash or a stop left undone is found again by the next pass, and every start
begins with one. The analysis runs in a separate process (idc/rn_worker.py) with capped memory and a lower
priority, one job at a time with a time limit; a job that overruns is killed, and its error, like any
other failure of the analysis, is recorded as the sample's result, never raised in the receiver.

A pass, done until nothing is left:

1. PHD rows of an index older than its measurement-id columns get them from their files (``describe``);
2. each SAMPLEPHD without an analysis of its current text (a resend may have replaced it) is analysed
   with the gas and detector backgrounds its #Header references (those its method uses,
   ``rn_analysis.dispatch.backgrounds_used``): the newest stored GASBKPHD and DETBKPHD
   of the same station whose own measurement id is the one referenced (a FULL spectrum before a PREL).
   A referenced background that has not arrived yet is left out, the result's flag
   ``backgrounds_received`` says which, and the sample is analysed again when the background arrives.

The thread writes only the table ``analyses`` and the rows' PHD columns, in short transactions
(synchronous=NORMAL: an analysis lost to a power cut is simply done again), so the receiver's own writes
to the index wait at most that long.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from gci_link.clock import Clock
from gci_link.gaplist import seq_from_signed
from idc.rn_store import INDEX_NAME, PHD_COLUMNS
from idc.stores import open_wal
from rn_analysis.dispatch import backgrounds_used

log = logging.getLogger(__name__)

BATCH = 16  # rows taken per query; a pass repeats until none is left
RESCAN_S = 60.0  # an idle thread looks again this often even without a notification
STARTUP_S = 120.0  # for the analysis process to load its libraries, not counted in a job's time limit
UNREADABLE = "-"  # system type of an old row whose file could not be described: analysed, fails, recorded

_UNDESCRIBED = """SELECT id, path, sha256 FROM messages
WHERE data_type LIKE '%PHD' AND problem IS NULL AND system_type IS NULL ORDER BY id LIMIT ?"""
_BACKGROUND = """EXISTS (SELECT 1 FROM messages b WHERE b.station = m.station AND b.data_type = '{kind}'
    AND b.sample_id = m.{ref} AND b.problem IS NULL)"""
_PENDING = f"""SELECT m.station, m.seq, m.path, m.sha256, m.system_type, m.gasbk_id, m.detbk_id
FROM messages m LEFT JOIN analyses a ON a.station = m.station AND a.seq = m.seq
WHERE m.data_type = 'SAMPLEPHD' AND m.problem IS NULL AND m.system_type IS NOT NULL AND (
    a.seq IS NULL OR a.sha256 != m.sha256
    OR (a.gasbk_missing AND {_BACKGROUND.format(kind="GASBKPHD", ref="gasbk_id")})
    OR (a.detbk_missing AND {_BACKGROUND.format(kind="DETBKPHD", ref="detbk_id")}))
ORDER BY m.id LIMIT ?"""
_FIND_BACKGROUND = """SELECT seq, path, sha256 FROM messages
WHERE station = ? AND data_type = ? AND sample_id = ? AND problem IS NULL
ORDER BY qualifier = 'FULL' DESC, id DESC LIMIT 1"""


class JobFailed(Exception):
    """The analysis process gave no answer: it overran its time or ended."""


class WorkerProcess:
    """The analysis process (idc/rn_worker.py): started for the first job and again after it ended."""

    def __init__(self, memory_bytes: int) -> None:
        self.memory_bytes = memory_bytes
        self._proc: subprocess.Popen[bytes] | None = None

    def ask(self, job: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """The answer to ``job``; JobFailed after ``timeout_s`` (the process is killed) or if it ends. The
        time limit is the job's: a process started for it has said it is ready first."""
        proc = self._running()
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps(job).encode() + b"\n")
            proc.stdin.flush()
        except BrokenPipeError:
            raise JobFailed(self._ended(proc)) from None
        line = self._line(proc, timeout_s)
        if line is None:
            self.close()
            raise JobFailed(f"the analysis took longer than {timeout_s:g} s and was stopped")
        return dict(json.loads(line))

    def _line(self, proc: subprocess.Popen[bytes], timeout_s: float) -> bytes | None:
        """One line from the process, or None after ``timeout_s``; JobFailed if it ends."""
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        fd = proc.stdout.fileno()
        received = bytearray()
        while not received.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise JobFailed(self._ended(proc))
            received += chunk
        return bytes(received)

    def _running(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        # one thread for the numerical libraries: the receiver has the other cores
        env = os.environ | {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                            "NUMBA_NUM_THREADS": "1"}
        self._proc = proc = subprocess.Popen(
            [sys.executable, "-m", "idc.rn_worker", str(self.memory_bytes), str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        if self._line(proc, STARTUP_S) is None:
            self.close()
            raise JobFailed(f"the analysis process was not ready within {STARTUP_S:g} s")
        return proc

    def _ended(self, proc: subprocess.Popen[bytes]) -> str:
        code = proc.wait()
        self.close()
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        return f"the analysis process ended ({how}) without an answer"

    def kill(self) -> None:
        """Kill the process but leave it to the thread using it to notice (``close`` reaps it)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                pipe.close()


class RnAnalyser:
    """The receiver's analysis thread; ``start`` it after the index exists, ``notify`` it after a commit
    that stored IMS 2.0 messages, ``close`` it before the receiver's stores close."""

    def __init__(self, root: Path, clock: Clock, timeout_s: float, memory_bytes: int) -> None:
        self.root = root
        self.clock = clock
        self.timeout_s = timeout_s
        self._worker = WorkerProcess(memory_bytes)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rn-analysis", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        self._wake.set()

    def close(self) -> None:
        """Stop at once: an analysis under way is killed and done again at the next start."""
        self._stop.set()
        self._wake.set()
        self._worker.kill()
        if self._thread is not None:
            self._thread.join(30)
            if self._thread.is_alive():
                log.error("radionuclide analysis thread did not stop")
        self._worker.close()

    def _run(self) -> None:
        db = open_wal(self.root / INDEX_NAME, "NORMAL")
        try:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    busy = self.step(db)
                except Exception:  # e.g. the index is locked or the disk full: try again later
                    log.exception("radionuclide analysis pass failed; tried again later")
                    busy = False
                if not busy:
                    self._wake.wait(RESCAN_S)
        finally:
            db.close()

    def step(self, db: Any) -> bool:
        """One batch of step 1 or 2 of a pass; False when there was nothing to do."""
        undescribed = db.execute(_UNDESCRIBED, (BATCH,)).fetchall()
        for row_id, path, sha256 in undescribed:
            if self._stop.is_set():
                return False
            self._describe(db, row_id, path, sha256)
        if undescribed:
            return True
        pending = db.execute(_PENDING, (BATCH,)).fetchall()
        for station, seq, path, sha256, system_type, gasbk_id, detbk_id in pending:
            if self._stop.is_set():
                return False
            used = backgrounds_used(system_type)
            refs = {kind: ref for kind, ref in (("GASBKPHD", gasbk_id), ("DETBKPHD", detbk_id))
                    if kind in used}
            self._analyse(db, station, seq, path, sha256, refs)
        return bool(pending)

    def _describe(self, db: Any, row_id: int, path: str, sha256: str) -> None:
        try:
            answer = self._worker.ask({"describe": str(self.root / path), "sha256": sha256}, self.timeout_s)
        except JobFailed as exc:
            answer = {"error": str(exc)}
        if self._stop.is_set():
            return
        fields = answer.get("fields") or {}
        if fields.get("system_type") is None:  # marked, or it would be described again on every pass
            log.warning("cannot read a stored PHD message's ids",
                        extra={"path": path, "reason": answer.get("error", "it no longer parses")})
            fields = dict.fromkeys(PHD_COLUMNS) | {"system_type": UNREADABLE}
        assignments = ", ".join(f"{name} = ?" for name in PHD_COLUMNS)
        db.execute(f"UPDATE messages SET {assignments} WHERE id = ? AND sha256 = ?",
                   (*(fields[name] for name in PHD_COLUMNS), row_id, sha256))

    def _analyse(self, db: Any, station: str, seq: int, path: str, sha256: str,
                 refs: dict[str, str | None]) -> None:
        """Analyse one sample with the backgrounds ``refs`` names (by data type) and record the outcome."""
        found = {kind: self._background(db, station, kind, refs.get(kind))
                 for kind in ("GASBKPHD", "DETBKPHD")}
        missing = {kind: ref for kind, ref in refs.items() if ref is not None and found[kind] is None}
        job = {
            "analyse": {"sample": [str(self.root / path), sha256],
                        "gasbk": None if found["GASBKPHD"] is None else found["GASBKPHD"][1:],
                        "detbk": None if found["DETBKPHD"] is None else found["DETBKPHD"][1:]},
            "missing": [f"{kind} {ref} referenced by the sample has not been received: analysed without it, "
                        "and again when it arrives" for kind, ref in missing.items()],
        }
        try:
            answer = self._worker.ask(job, self.timeout_s)
        except JobFailed as exc:
            if self._stop.is_set():
                return  # killed by close(): no analysis recorded, so the next start does it again
            answer = {"error": str(exc)}
        error = answer.get("error")
        extra = {"station": station, "seq": seq_from_signed(seq)}
        if error is not None:
            log.warning("radionuclide analysis failed", extra=extra | {"reason": error})
        else:
            identified = [n["name"] for n in answer["result"]["nuclides"] if n["identified"]]
            log.info("radionuclide sample analysed", extra=extra | {"identified": identified,
                                                                    "missing": list(missing)})
        db.execute(
            "INSERT OR REPLACE INTO analyses (station, seq, sha256, analysed_ns, result, error, gasbk_seq, "
            "detbk_seq, gasbk_missing, detbk_missing) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (station, seq, sha256, self.clock(), None if error else json.dumps(answer["result"]), error,
             None if found["GASBKPHD"] is None else found["GASBKPHD"][0],
             None if found["DETBKPHD"] is None else found["DETBKPHD"][0],
             "GASBKPHD" in missing, "DETBKPHD" in missing),
        )

    def _background(self, db: Any, station: str, kind: str, ref: str | None) -> tuple[int, str, str] | None:
        """(seq as stored, absolute path, SHA-256) of the background ``ref`` names, if stored."""
        if ref is None:
            return None
        row = db.execute(_FIND_BACKGROUND, (station, kind, ref)).fetchone()
        return None if row is None else (row[0], str(self.root / row[1]), row[2])
