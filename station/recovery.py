"""Restart without duplicates: how far each channel was already framed, and trimming what repeats it.

After a crash the digitizer driver refetches recent blocks (its startup rewind), some of which the
previous process had already framed into the outbox. Framing them again would give the IDC the same
samples under a new sequence number, so the station trims every packet to start after the end of
what its outbox already holds for that channel, until the channel's first packet that starts after it:
from then on everything is new, even a packet stamped earlier (the digitizer's clock stepped back).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable

from digitizer.packet import Packet
from gci_link.cd11 import Cd11FormatError, ChannelSubframe, DataBody, decode_frame
from gci_link.station_end.outbox import Outbox
from station.acquisition import exact_rate, offset_ns, samples_before

log = logging.getLogger(__name__)

SCAN_FRAMES = 2000  # newest frames read at start-up; covers the lateness budget many times over


def framed_until(outbox: Outbox, kind: str, scan: int = SCAN_FRAMES) -> dict[str, int]:
    """Per channel code (SITE.CHA.LO): end time of the latest samples already in the outbox."""
    until: dict[str, int] = {}
    for stored in outbox.newest(scan, kind):
        try:
            frame = decode_frame(stored.frame, check_crc=False)
        except Exception as exc:  # noqa: BLE001 - our own frame: unreadable (or a codec bug) never stops the start
            log.error("outbox frame unreadable at start-up",
                      extra={"seq": stored.seq, "error": f"{type(exc).__name__}: {exc}"},
                      exc_info=not isinstance(exc, Cd11FormatError))
            continue
        if not isinstance(frame.body, DataBody):  # a bug too, and no reason to stop either
            log.error("outbox frame of kind %s is not a data frame", kind,
                      extra={"seq": stored.seq, "frame_type": frame.header.frame_type})
            continue
        note_framed(until, frame.body.channels)
    return until


def note_framed(until: dict[str, int], subframes: Iterable[ChannelSubframe]) -> None:
    """Move each channel's framed-until time past the given subframes (never backwards)."""
    for sub in subframes:
        code = f"{sub.site}.{sub.channel}.{sub.location}"
        until[code] = max(until.get(code, sub.end_ns), sub.end_ns)


def trim_framed(packet: Packet, until_ns: int | None) -> Packet | None:
    """The part of ``packet`` after ``until_ns`` (None when all of it was framed before)."""
    if until_ns is None or packet.start_ns >= until_ns:
        return packet
    rate = exact_rate(packet.sample_rate)
    keep_from = samples_before(packet.start_ns, 0, packet.nsamp, rate, until_ns)
    if keep_from >= packet.nsamp:
        return None
    return dataclasses.replace(
        packet, start_ns=packet.start_ns + offset_ns(keep_from, rate), samples=packet.samples[keep_from:]
    )
