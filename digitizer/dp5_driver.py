"""Driver for an Amptek DP5-protocol MCA (PX5-HPGe, DP5) on a serial port: ``digitizer.dp5`` over a
``SerialLink``.

Every call is one request and its answer, retried on a time-out, a bad checksum, a truncated packet,
an ACK saying our request arrived damaged, or a port that failed or vanished (reopened with back-off);
``InstrumentUnavailable`` when the attempts are spent. An ACK refusing the command itself (bad
parameter, unknown command) raises ``Dp5CommandError`` at once: repeating it cannot help.

A spectrum arrives as one checksummed packet, so it is whole or not at all. ``read_spectrum`` never
uses the read-and-clear request: if its answer were lost, a retry would return an emptied MCA. Clear
with ``clear()`` once the spectrum is safely kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from digitizer import dp5
from digitizer.serial_link import InstrumentUnavailable, LinkConfig, LinkCounters, Pending, Retry, SerialLink

log = logging.getLogger(__name__)

__all__ = ["Dp5CommandError", "Dp5Driver", "InstrumentUnavailable", "LinkConfig"]

RETRYABLE_ACKS = dp5.ACK_TRANSPORT_ERRORS | {dp5.AckCode.BUSY_OTHER_INTERFACE}
_STATUS_PACKET = dp5.OVERHEAD + dp5.STATUS_SIZE
M = TypeVar("M", dp5.Status, dp5.Spectrum, dp5.Ack, dp5.ConfigReadback)


class Dp5CommandError(RuntimeError):
    """The unit refused a command with an ACK error (``ack.name`` says which)."""

    def __init__(self, what: str, ack: dp5.Ack):
        super().__init__(f"{what}: DP5 answered {ack.name}" + (f" ({ack.detail})" if ack.detail else ""))
        self.ack = ack


class Dp5Driver:
    """``status()``, ``read_spectrum()``, ``configure()``, ``read_configuration()``, ``start()``,
    ``stop()``, ``clear()``; ``counters`` and ``close()``."""

    def __init__(self, config: LinkConfig, *, name: str = "dp5", max_channels: int = 8192,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.link = SerialLink(config, name, monotonic=monotonic, sleep=sleep)
        self.max_channels = max_channels
        self._parser = dp5.PacketParser.for_host()

    @property
    def counters(self) -> LinkCounters:
        return self.link.counters

    def close(self) -> None:
        self.link.close()

    # -- API -------------------------------------------------------------------------------------
    def status(self) -> dp5.Status:
        return self._request(dp5.request_status(), dp5.Status, _STATUS_PACKET, "status")

    def read_spectrum(self) -> dp5.Spectrum:
        """The whole spectrum with the status of the same instant (never clears it)."""
        size = dp5.OVERHEAD + self.max_channels * dp5.BYTES_PER_CHANNEL + dp5.STATUS_SIZE
        spectrum = self._request(dp5.request_spectrum(with_status=True), dp5.Spectrum, size, "spectrum")
        if spectrum.status is None:  # cannot happen with the request we send; guards the contract
            raise InstrumentUnavailable(f"{self.link.name}: spectrum arrived without its status")
        return spectrum

    def configure(self, settings: Mapping[str, object]) -> None:
        """Send ASCII settings (``{"MCAC": 8192, "PRET": 86400}``); raises ``Dp5CommandError`` if refused."""
        request = dp5.request_text_configuration(settings)
        self._expect_ok(request, "configure " + dp5.format_settings(settings))

    def read_configuration(self, names: Iterable[str]) -> dict[str, str]:
        names = list(names)
        reply = self._request(dp5.request_text_readback(names), dp5.ConfigReadback,
                              dp5.OVERHEAD + 16 * len(names), "configuration read-back")
        return reply.settings

    def start(self) -> None:
        self._expect_ok(dp5.request_enable_mca(), "enable MCA")

    def stop(self) -> None:
        self._expect_ok(dp5.request_disable_mca(), "disable MCA")

    def clear(self) -> None:
        self._expect_ok(dp5.request_clear_spectrum(), "clear spectrum")

    # -- transactions ----------------------------------------------------------------------------
    def _expect_ok(self, request: bytes, what: str) -> None:
        ack = self._request(request, dp5.Ack, dp5.OVERHEAD + 64, what)
        if not ack.ok:  # _request raised for retryable codes; the rest are real refusals
            self.counters.device_errors += 1
            log.error("DP5 refused a command", extra={"instrument": self.link.name, "request": what,
                                                      "ack": ack.name, "detail": ack.detail})
            raise Dp5CommandError(what, ack)

    def _request(self, request: bytes, kind: type[M], expect_bytes: int, what: str) -> M:
        def on_data(data: bytes) -> Pending[M]:
            for event in self._parser.feed(data):
                value = self._on_event(event, kind, what)
                if value is not None:
                    return Pending(True, value)
            return Pending()

        def on_timeout() -> None:
            for event in self._parser.flush():
                self._on_event(event, kind, what, raise_retry=False)

        self._parser.flush()
        return self.link.transact(request, on_data, expect_bytes=expect_bytes, on_timeout=on_timeout,
                                  what=what)

    def _on_event(
        self, event: dp5.Event, kind: type[M], what: str, *, raise_retry: bool = True
    ) -> M | None:
        """The awaited message, or None; raises ``Retry`` for an answer that came garbled."""
        problem = None
        if isinstance(event, dp5.Resync):
            self.counters.resyncs += 1
            log.warning("DP5 bytes skipped before a packet", extra={"instrument": self.link.name,
                                                                    "skipped": event.skipped})
        elif isinstance(event, dp5.BadChecksum):
            problem = f"checksum {event.received:#06x} != {event.computed:#06x} in packet " \
                      f"{event.pid1:#04x}/{event.pid2:#04x}"
        elif isinstance(event, dp5.Truncated):
            problem = f"packet {event.pid1:#04x}/{event.pid2:#04x} truncated after {event.got} bytes"
        elif isinstance(event, dp5.Malformed):
            problem = f"packet {event.pid1:#04x}/{event.pid2:#04x} malformed: {event.error}"
        elif isinstance(event, dp5.Received):
            message = event.message
            if isinstance(message, dp5.Ack) and message.code in RETRYABLE_ACKS:
                problem = f"DP5 answered {message.name}"
            elif isinstance(message, dp5.Ack) and kind is not dp5.Ack:  # refused instead of answered
                self.counters.device_errors += 1
                log.error("DP5 refused a request", extra={"instrument": self.link.name, "request": what,
                                                          "ack": message.name, "detail": message.detail})
                raise Dp5CommandError(what, message)
            elif isinstance(message, kind):
                return message
            else:
                log.warning("DP5 packet not the one awaited; ignored",
                            extra={"instrument": self.link.name, "request": what,
                                   "got": type(message).__name__})
        if problem is not None:
            if raise_retry:
                raise Retry(problem)
            self.counters.garbled += 1
            log.warning("DP5 answer incomplete at time-out", extra={"instrument": self.link.name,
                                                                    "request": what, "error": problem})
        return None
