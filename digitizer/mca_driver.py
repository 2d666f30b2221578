"""Driver for a radionuclide instrument speaking the project's line protocol (``digitizer.mca``,
``docs/mca-protocol.md``): beta-gamma analyser, air sampler, xenon processing unit.

Each command gets a fresh tag; a reply with another tag (late, from an abandoned command) is ignored.
Time-outs, lines failing their CRC, an instrument saying our line arrived damaged (-361) and a failed
or vanished port are retried through ``SerialLink`` (every command is idempotent, so repeating one is
safe); other ``ERR`` replies raise ``InstrumentError`` at once. ``read_spectrum`` latches a snapshot
and reads every chunk of it, retrying a chunk that fails its CRC; if the snapshot goes stale (the
instrument was reset) it starts over. It returns the arrays only when all chunks of one snapshot
arrived intact, and otherwise raises: a spectrum is never half read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from digitizer import mca
from digitizer.serial_link import InstrumentUnavailable, LinkConfig, LinkCounters, Pending, Retry, SerialLink

log = logging.getLogger(__name__)

__all__ = ["InstrumentUnavailable", "LinkConfig", "McaDriver"]

T = TypeVar("T")
RETRYABLE_ERRORS = frozenset({mca.E_LINE_CHECKSUM, mca.E_INPUT_OVERRUN})
_CHUNK_REPLY_BYTES = 200 + mca.CHUNK_CELLS * 4 * 4 // 3


class McaDriver:
    """``identify()``, ``reset()``, ``set_presets()``, ``presets()``, ``start()``, ``stop()``,
    ``clear()``, ``acquisition_status()``, ``soh()``, ``read_spectrum()``; ``counters``, ``close()``."""

    def __init__(self, config: LinkConfig, *, name: str = "mca", readout_attempts: int = 3,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.link = SerialLink(config, name, monotonic=monotonic, sleep=sleep)
        self.readout_attempts = readout_attempts
        self.readout_restarts = 0  # snapshots that went stale during a readout
        self._parser = mca.ReplyParser()
        self._tag = 0

    @property
    def counters(self) -> LinkCounters:
        return self.link.counters

    def close(self) -> None:
        self.link.close()

    # -- API -------------------------------------------------------------------------------------
    def identify(self) -> mca.Identity:
        return self._call(mca.IDN, (), mca.parse_identity)

    def reset(self) -> None:
        self._call(mca.RST, (), _no_payload)

    def set_presets(self, *, real_s: float = 0.0, live_s: float = 0.0) -> None:
        """Stop after ``real_s`` real or ``live_s`` live seconds (0: no such preset)."""
        for command, value in ((mca.PRESET_REAL, real_s), (mca.PRESET_LIVE, live_s)):
            if not value >= 0:
                raise ValueError(f"{command} {value} is not a duration >= 0 s")
            self._call(command, (f"{value:.3f}",), _no_payload)

    def presets(self) -> mca.Presets:
        return self._call(mca.PRESETS, (), mca.parse_presets)

    def start(self) -> None:
        self._call(mca.START, (), _no_payload)

    def stop(self) -> None:
        self._call(mca.STOP, (), _no_payload)

    def clear(self) -> None:
        self._call(mca.CLEAR, (), _no_payload)

    def acquisition_status(self) -> mca.AcquisitionStatus:
        return self._call(mca.ACQ_STATUS, (), mca.parse_acquisition_status)

    def soh(self) -> mca.Soh:
        return self._call(mca.SOH, (), mca.parse_soh)

    def read_spectrum(self) -> mca.Readout:
        """Every array of one snapshot (histogram, singles), each chunk verified; or an exception."""
        for _ in range(self.readout_attempts):
            info = self._call(mca.SNAP, (), mca.parse_snapshot)
            assembler = mca.ReadoutAssembler(info)
            try:
                for array, index in assembler.wanted():
                    def take(payload: str, asm: mca.ReadoutAssembler = assembler) -> None:
                        asm.add(mca.parse_chunk(payload))

                    self._call(mca.CHUNK, (info.snap_id, array, index), take,
                               expect_bytes=_CHUNK_REPLY_BYTES)
            except mca.InstrumentError as exc:
                if exc.code != mca.E_STALE_DATA:
                    raise
                self.readout_restarts += 1
                log.warning("snapshot went stale during readout; starting over",
                            extra={"instrument": self.link.name, "snap": info.snap_id})
                continue
            return assembler.result()
        raise InstrumentUnavailable(f"{self.link.name}: snapshot went stale {self.readout_attempts} times")

    # -- transactions ----------------------------------------------------------------------------
    def _next_tag(self) -> int:
        self._tag = self._tag % mca.MAX_TAG + 1
        return self._tag

    def _call(self, command: str, args: tuple[object, ...], parse: Callable[[str], T], *,
              expect_bytes: int = 256) -> T:
        tag = self._next_tag()
        request = mca.encode_command(tag, command, *args)
        what = " ".join([command, *map(str, args)])

        def on_data(data: bytes) -> Pending[T]:
            for event in self._parser.feed(data):
                if isinstance(event, mca.BadLine):
                    raise Retry(event.reason)
                reply = event.reply
                if reply.tag != tag:
                    log.info("reply to an earlier command ignored",
                             extra={"instrument": self.link.name, "tag": reply.tag, "awaited": tag})
                    continue
                if not reply.ok:
                    if reply.code in RETRYABLE_ERRORS:
                        raise Retry(f"instrument: {reply.code} {reply.message}")
                    self.counters.device_errors += 1
                    log.error("instrument refused a command", extra={
                        "instrument": self.link.name, "request": what, "code": reply.code,
                        "detail": reply.message})
                    raise mca.InstrumentError(what, reply.code, reply.message)
                try:
                    return Pending(True, parse(reply.payload))
                except mca.McaProtocolError as exc:
                    raise Retry(f"reply to {command}: {exc}") from None
            return Pending()

        def on_timeout() -> None:
            dropped = self._parser.lines.flush()
            if dropped:
                log.warning("partial line dropped", extra={"instrument": self.link.name, "bytes": dropped})

        self._parser.lines.flush()
        return self.link.transact(request, on_data, expect_bytes=expect_bytes, on_timeout=on_timeout,
                                  what=what)


def _no_payload(payload: str) -> None:
    if payload:
        raise mca.McaProtocolError(f"unexpected payload {payload[:40]!r}")
