"""check_frame for a whole poll round, with the signature mathematics on the verifier worker processes.

Frames are decoded and their keys admitted on the caller's thread as they are submitted; ``dispatch``
sends the values submitted since to the workers (idc/verify_pool.py) as one round, so the caller can do
other work while they verify. Results are taken in arrival order and concluded by the same policy as
``check_frame`` (idc/verify.py), so policy and order are as if each frame had been checked alone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from gci_link.keys import SignatureError, TrustStore, VerifyResult
from gci_link.keys.trust import bad_signature
from idc.config import DataLimits, StationPolicy
from idc.verify import CheckedFrame, Decoded, Outcome, conclude, decode_for_checking
from idc.verify_pool import Value, VerifierPool


class PendingCheck:
    """A frame being checked by :class:`FrameChecker`; ``result`` waits and gives what check_frame would."""

    def __init__(self, checker: FrameChecker, decoded: Decoded | Exception) -> None:
        self._checker = checker
        self._decoded = decoded
        jobs = decoded.jobs if isinstance(decoded, Decoded) else ()
        self.outcomes: list[Outcome | None] = [None] * len(jobs)  # None: the mathematics is awaited
        self.awaiting = 0

    def result(self) -> CheckedFrame:
        if isinstance(self._decoded, Exception):
            raise self._decoded
        if self.awaiting:
            self._checker.complete(self)
        return conclude(self._decoded, self.outcomes)  # type: ignore[arg-type]


_Job = tuple[PendingCheck, int, VerifyResult, Value]  # (check, index of its outcome, result if valid, value)


class FrameChecker:
    """Checks the frames of poll rounds; ``submit`` each frame, ``dispatch`` once per round."""

    def __init__(
        self,
        trust: TrustStore,
        stations: Mapping[str, StationPolicy],
        workers: int = 2,
        limits: DataLimits | None = None,
    ) -> None:
        self.trust = trust
        self.stations = stations
        self.limits = limits or DataLimits()
        self._pool = VerifierPool({key.key_id: key.public_key for key in trust.keys}, workers)
        self._queued: list[_Job] = []  # submitted, not yet dispatched
        self._in_flight: deque[list[_Job]] = deque()  # dispatched rounds, oldest first

    def submit(self, raw: bytes, now_ns: int) -> PendingCheck:
        """Decode ``raw`` and admit its keys now; never raises (see PendingCheck)."""
        try:
            decoded = decode_for_checking(raw, self.stations, now_ns, self.limits)
        except Exception as exc:  # a Rejection, or a bug: either is raised by result(), in order
            return PendingCheck(self, exc)
        check = PendingCheck(self, decoded)
        for index, (key_id, data, value) in enumerate(decoded.jobs):
            try:
                admitted = self.trust.admit(key_id, now_ns)
            except SignatureError as exc:
                check.outcomes[index] = exc
            else:
                self._queued.append((check, index, admitted, (key_id, data, value)))
                check.awaiting += 1
        return check

    def reconfigure(self, trust: TrustStore, stations: Mapping[str, StationPolicy]) -> None:
        """Check frames submitted from now on against a reloaded trust store and station list. Call it
        when every submitted frame has had its result: their verdicts are made with the old keys, which
        every round still in flight is finished with first."""
        self.dispatch()
        while self._in_flight:
            self._finish_round()
        self.trust = trust
        self.stations = stations
        self._pool.set_keys({key.key_id: key.public_key for key in trust.keys})

    def dispatch(self) -> None:
        """Start verifying every value submitted since the last dispatch, as one round."""
        if self._queued:
            self._in_flight.append(self._queued)
            self._pool.start([value for *_, value in self._queued])
            self._queued = []

    def complete(self, check: PendingCheck) -> None:
        """Wait until every signature of ``check`` has been verified (rounds complete oldest first)."""
        while check.awaiting:
            if not self._in_flight:
                self.dispatch()
            self._finish_round()

    def _finish_round(self) -> None:
        jobs = self._in_flight.popleft()
        for job, failure in zip(jobs, self._pool.finish(), strict=True):
            job_check, index, admitted, (key_id, _, _) = job
            job_check.outcomes[index] = admitted if failure is None else bad_signature(key_id, failure)
            job_check.awaiting -= 1

    @property
    def worker_pids(self) -> list[int | None]:
        return self._pool.worker_pids

    def close(self) -> None:
        self._pool.close()
