"""One request/response serial line for an instrument driver: open, reopen with back-off, time-outs,
retries, counters, and one log line per incident.

``SerialLink.transact`` writes a request and feeds whatever comes back to the caller's sans-I/O
parser until the caller's ``on_data`` says the answer is complete, the answer is refused, or the
time-out passes; a time-out, a garbled answer and a failed or vanished port are retried, the port
reopened as needed, and ``InstrumentUnavailable`` raised once the attempts are spent. The protocol
cores (``dp5``, ``mca``) decide what an answer is; this module only moves bytes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Generic, TypeVar

import serial

log = logging.getLogger(__name__)

T = TypeVar("T")


class InstrumentUnavailable(RuntimeError):
    """No good answer after every attempt: the instrument is silent, its line garbles, or it vanished."""


class Retry(Exception):
    """Raised by ``on_data`` when the answer is unusable but asking again may help (says why)."""


@dataclass
class LinkCounters:
    """Everything unusual the link met (each increment is logged once, where it happened)."""

    transactions: int = 0
    retries: int = 0
    failures: int = 0  # transactions given up (InstrumentUnavailable)
    timeouts: int = 0
    garbled: int = 0  # answers refused by the protocol core (checksum, truncation, form)
    resyncs: int = 0  # bytes skipped before a good answer
    opens: int = 0
    open_failures: int = 0
    port_errors: int = 0  # reads or writes that failed (cable pulled, device gone)
    device_errors: int = 0  # the instrument refused a command (not retried)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class LinkConfig:
    port: str  # device path or pyserial URL
    baudrate: int = 115200
    attempts: int = 4  # per transaction
    base_timeout_s: float = 1.0  # plus the wire time of the expected answer, x1.5
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 2.0
    read_chunk_s: float = 0.02


@dataclass
class Pending(Generic[T]):
    """What ``on_data`` returns while the answer is incomplete (``done`` False) or with it."""

    done: bool = False
    value: T | None = None


class SerialLink:
    """The port of one instrument; not thread-safe (one caller at a time, as a request/response line)."""

    def __init__(self, config: LinkConfig, name: str, *, monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if config.attempts < 1 or config.baudrate <= 0:
            raise ValueError(f"{name}: attempts ({config.attempts}) and baudrate ({config.baudrate}) "
                             "must be > 0")
        self.config = config
        self.name = name
        self.counters = LinkCounters()
        self._monotonic = monotonic
        self._sleep = sleep
        self._port: serial.SerialBase | None = None
        self._backoff = config.backoff_initial_s
        self._lost = False  # an outage is under way (logged once when it starts and once when it ends)

    # -- port ------------------------------------------------------------------------------------
    def _open(self) -> serial.SerialBase:
        if self._port is not None:
            return self._port
        try:
            port = serial.serial_for_url(self.config.port, baudrate=self.config.baudrate,
                                         timeout=self.config.read_chunk_s, write_timeout=2.0)
        except (serial.SerialException, OSError) as exc:
            self.counters.open_failures += 1
            self._mark_lost(f"cannot open port: {exc}")
            raise
        self.counters.opens += 1
        log.info("instrument port open", extra={"instrument": self.name, "port": self.config.port})
        self._port = port
        return port

    def close(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            except (serial.SerialException, OSError):
                pass
            self._port = None

    def _mark_lost(self, why: str) -> None:
        if not self._lost:
            self._lost = True
            log.warning("instrument unreachable; retrying", extra={"instrument": self.name, "error": why})

    def _mark_found(self) -> None:
        self._backoff = self.config.backoff_initial_s
        if self._lost:
            self._lost = False
            log.info("instrument answering again", extra={"instrument": self.name})

    # -- transactions ----------------------------------------------------------------------------
    def wire_seconds(self, nbytes: int) -> float:
        return 10.0 * nbytes / self.config.baudrate

    def transact(self, request: bytes, on_data: Callable[[bytes], Pending[T]], *, expect_bytes: int,
                 on_timeout: Callable[[], None], what: str) -> T:
        """Send ``request`` and return the value ``on_data`` completes with.

        ``on_data`` gets each piece read and returns ``Pending`` (or raises ``Retry`` for a garbled
        answer; any other exception, e.g. the instrument refusing the command, ends the transaction
        at once). ``on_timeout`` lets the caller flush its parser. Raises ``InstrumentUnavailable``.
        """
        self.counters.transactions += 1
        timeout = self.config.base_timeout_s + 1.5 * self.wire_seconds(expect_bytes + len(request))
        last_problem = "no attempt made"
        for attempt in range(self.config.attempts):
            if attempt:
                self.counters.retries += 1
            try:
                port = self._open()
                port.reset_input_buffer()
                port.write(request)
                result = self._await(port, on_data, timeout)
            except Retry as exc:
                self.counters.garbled += 1
                last_problem = f"garbled answer: {exc}"
                log.warning("garbled answer; asking again", extra={"instrument": self.name, "request": what,
                                                                   "error": str(exc)})
                on_timeout()
                continue
            except (serial.SerialException, OSError) as exc:
                if self._port is not None:
                    self.counters.port_errors += 1
                    self._mark_lost(f"port failed: {exc}")
                self.close()
                on_timeout()
                last_problem = f"port: {exc}"
                self._sleep(self._backoff)
                self._backoff = min(2 * self._backoff, self.config.backoff_max_s)
                continue
            if result.done:
                self._mark_found()
                return result.value  # type: ignore[return-value]
            self.counters.timeouts += 1
            last_problem = f"no complete answer within {timeout:.2f} s"
            log.warning("instrument answer timed out; asking again",
                        extra={"instrument": self.name, "request": what, "timeout_s": round(timeout, 2)})
            on_timeout()
        self.counters.failures += 1
        self._mark_lost(last_problem)
        raise InstrumentUnavailable(f"{self.name}: {what} failed after {self.config.attempts} attempts "
                                    f"({last_problem})")

    def _await(self, port: serial.SerialBase, on_data: Callable[[bytes], Pending[T]],
               timeout: float) -> Pending[T]:
        deadline = self._monotonic() + timeout
        while self._monotonic() < deadline:
            data = port.read(max(1, port.in_waiting))
            if not data:
                continue
            result = on_data(data)
            if result.done:
                return result
        return Pending()
