"""CD-1.1 channel status as miniSEED 2 header flags and blockette 1001 timing quality.

CD-1.1 (format 1) reports what happened to a subframe's data and clock; miniSEED has fixed places for
the same facts, which ObsPy's ``get_flags`` and every SEED reader show. The mapping:

| CD-1.1 status (format 1)                         | miniSEED 2                                        |
|---|---|
| calibration underway                             | activity bit 0, calibration signals present       |
| clipped                                          | data quality bit 1, digitizer clipping            |
| zeroed data                                      | data quality bit 4, missing or padded data        |
| neither GPS receiver off nor unlocked            | I/O and clock bit 5, clock locked                 |
| clock differential too large                     | data quality bit 7, time tag questionable         |
| GPS state and clock differential                 | blockette 1001 timing quality, see below          |

Timing quality is vendor-defined in SEED; this project's convention, documented in docs/cd11.md: 100
with the GPS locked, 50 unlocked, 10 with the receiver off, less one point per millisecond of clock
differential, at most 10 when the station flags the differential as too large, never below 0. A
subframe without a format-1 status gets no flags and no timing quality (nothing is claimed).
"""

from __future__ import annotations

from dataclasses import dataclass

from gci_link.cd11 import ChannelStatus

ACTIVITY_CALIBRATION = 0x01
CLOCK_LOCKED = 0x20
QUALITY_CLIPPING = 0x02
QUALITY_PADDED = 0x10
QUALITY_TIME_QUESTIONABLE = 0x80

_QUALITY_LOCKED, _QUALITY_UNLOCKED, _QUALITY_OFF, _QUALITY_DIFF_TOO_LARGE = 100, 50, 10, 10


@dataclass(frozen=True, slots=True)
class SeedFlags:
    """The three flag bytes of a miniSEED 2 fixed header and the timing quality (-1: unknown)."""

    activity: int = 0
    io_clock: int = 0
    quality: int = 0
    timing_quality: int = -1

    @property
    def header_bytes(self) -> bytes:
        return bytes((self.activity, self.io_clock, self.quality))


NO_FLAGS = SeedFlags()


def seed_flags(status: ChannelStatus) -> SeedFlags:
    """What ``status`` says, in miniSEED's terms (NO_FLAGS for anything but format 1)."""
    if not status.is_format1:
        return NO_FLAGS
    flags = status.flags()
    gps_off, unlocked = flags["gps_receiver_off"], flags["gps_receiver_unlocked"]
    too_large = flags["clock_differential_too_large"]
    base = _QUALITY_OFF if gps_off else _QUALITY_UNLOCKED if unlocked else _QUALITY_LOCKED
    timing = max(0, base - abs(status.clock_differential_us) // 1000)
    if too_large:
        timing = min(timing, _QUALITY_DIFF_TOO_LARGE)
    return SeedFlags(
        activity=ACTIVITY_CALIBRATION if flags["calibration_underway"] else 0,
        io_clock=0 if gps_off or unlocked else CLOCK_LOCKED,
        quality=(QUALITY_CLIPPING if flags["clipped"] else 0)
        | (QUALITY_PADDED if flags["zeroed_data"] else 0)
        | (QUALITY_TIME_QUESTIONABLE if too_large else 0),
        timing_quality=timing,
    )
