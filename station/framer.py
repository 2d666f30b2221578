"""Framer: channel buffers in, unsigned CD-1.1 data frames out, cut on the UTC grid by data time.

A window [w, w + L) is cut when every channel that has data is complete past its end, or when the
station's leading channel is a lateness budget past it (a dead channel must not hold the others back).
A channel still in its start-up hold with data for the window counts as not complete: cutting without it
would only frame its samples again later (after every start, channels leave the hold one by one); when
the lateness budget runs out it is started there and then, so its data still goes in this frame.
Whatever each channel holds inside the window becomes one subframe per contiguous segment: a gap gives
a shorter subframe or a second one, never invented samples. Data that turns up for a window already
cut (after a backward time tear) is framed again for that window, on its own, rather than dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from gci_link.cd11 import ChannelStatus, ChannelSubframe, build_subframe
from station.acquisition import ChannelBuffer, SampleRun
from station.config import ChannelConfig
from timeunits import NS_PER_S

log = logging.getLogger(__name__)

UNLOCKED_FLAG = "gps_receiver_unlocked"
CALIBRATION_FLAG = "calibration_underway"


class CalibrationView(Protocol):
    """Calibrations by data time (``station.calibration_state.CalibrationState``)."""

    def underway(self, code: str, start_ns: int, end_ns: int) -> bool: ...

    def calib(self, channel: ChannelConfig, start_ns: int) -> tuple[float, float]: ...


@dataclass(frozen=True, slots=True)
class FrameDraft:
    """The content of one data frame before it gets a sequence number and signatures."""

    nominal_time_ns: int
    frame_time_length_ms: int
    subframes: tuple[ChannelSubframe, ...]

    @property
    def nsamp(self) -> int:
        return sum(sub.nsamp for sub in self.subframes)


class Framer:
    """Cuts frames from the acquisition's channel buffers; pure data-time logic, no I/O."""

    def __init__(
        self,
        channels: Iterable[ChannelConfig],
        buffers: Mapping[str, ChannelBuffer],
        *,
        frame_length_s: int,
        lateness_budget_s: float,
        status_for: Callable[[ChannelConfig], ChannelStatus],
        calibrations: CalibrationView | None = None,
    ) -> None:
        """``calibrations`` (optional) sets the "calibration underway" bit on subframes that overlap a
        calibration of their channel, and their calib/calper once one was accepted."""
        self.channels = tuple(channels)
        self.buffers = buffers
        self.length_ns = frame_length_s * NS_PER_S
        self.lateness_ns = round(lateness_budget_s * NS_PER_S)
        self.status_for = status_for
        self.calibrations = calibrations
        self.refills = 0  # frames cut for windows that had been cut before (time tears, late data)
        self._cut_until_ns: int | None = None

    def cut(self, *, final: bool = False) -> list[FrameDraft]:
        """Every frame whose window is ready now; ``final`` (shutdown) cuts everything held."""
        if final:
            for buffer in self.buffers.values():
                buffer.flush()
        drafts = []
        while (window := self._first_held_window()) is not None and (final or self._ready(window)):
            draft = self._cut_window(window)
            if draft.subframes:
                drafts.append(draft)
        return drafts

    def _first_held_window(self) -> int | None:
        oldest = [b.oldest_ns for b in self.buffers.values() if b.oldest_ns is not None]
        oldest += [start for b in self._holding() if (start := b.first_pending_ns) is not None]
        return None if not oldest else min(oldest) // self.length_ns * self.length_ns

    def _holding(self, before_ns: int | None = None) -> list[ChannelBuffer]:
        """Channels in their start-up hold (packets held, none committed), with data before ``before_ns``."""
        return [b for b in self.buffers.values() if b.complete_until_ns is None and b.first_pending_ns
                is not None and (before_ns is None or b.first_pending_ns < before_ns)]

    def _ready(self, window_ns: int) -> bool:
        end_ns = window_ns + self.length_ns
        complete = [b.complete_until_ns for b in self.buffers.values() if b.complete_until_ns is not None]
        if not complete:
            return False  # every channel is in its start-up hold, which ends by data time alone
        holding = self._holding(end_ns)
        if not holding and all(c >= end_ns for c in complete):
            return True
        if max(complete) < end_ns + self.lateness_ns:
            return False
        for buffer in holding:
            buffer.end_start_hold()
        return True

    def _cut_window(self, window_ns: int) -> FrameDraft:
        end_ns = window_ns + self.length_ns
        subframes = []
        for channel in self.channels:
            segments = self.buffers[channel.code].extract(window_ns, end_ns)
            if segments:
                status = self.status_for(channel)
                subframes += [self._subframe(channel, segment, status) for segment in segments]
        if self._cut_until_ns is not None and window_ns < self._cut_until_ns and subframes:
            self.refills += 1
            log.warning("frame window cut again for late data", extra={"nominal_time_ns": window_ns})
        self._cut_until_ns = max(end_ns, self._cut_until_ns or end_ns)
        return FrameDraft(window_ns, self.length_ns // 1_000_000, tuple(subframes))

    def _subframe(self, channel: ChannelConfig, segment: SampleRun, status: ChannelStatus) -> ChannelSubframe:
        if segment.clock_locked is False and not status.flag(UNLOCKED_FLAG):
            status = status.with_flags([UNLOCKED_FLAG])
        calib, calper = channel.calib, channel.calper
        if self.calibrations is not None:
            if self.calibrations.underway(channel.code, segment.start_ns, segment.end_ns):
                status = status.with_flags([CALIBRATION_FLAG])
            calib, calper = self.calibrations.calib(channel, segment.start_ns)
        return build_subframe(
            segment.samples,
            site=channel.site,
            channel=channel.channel,
            location=channel.location,
            time_ns=segment.start_ns,
            sample_rate=segment.sample_rate,
            calib=calib,
            calper=calper,
            sensor_type=channel.sensor_type_code,
            status=status,
        )
