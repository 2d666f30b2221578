"""Sans-I/O CD-1.1 session of one station at the IDC: frames in, acknack/alert bodies out.

The session owns the station's gap list and decides when to acknowledge: promptly after a batch of data
is committed (the receiver core polls it once per settled batch, which coalesces), and at least every
``acknack_interval_ns`` as a heartbeat. After ``silence_ns`` without any frame it emits an alert and
closes. It never touches sockets or disks and does not log (the receiver core reports what happened),
so tests drive it with a fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from gci_link.cd11.bodies import AcknackBody, AlertBody
from gci_link.gaplist import GapList, seq_to_signed
from timeunits import NS_PER_S


@dataclass(frozen=True)
class SessionTimings:
    acknack_interval_ns: int = 55 * NS_PER_S
    silence_ns: int = 120 * NS_PER_S
    max_reported_gaps: int = 1000


class StationSession:
    """Link state of one station; the caller archives frames and reports them with ``committed``."""

    def __init__(
        self,
        station: str,
        gaps: GapList,
        now_ns: int,
        timings: SessionTimings,
        destination: str = "0",
        tag: int = 0,
    ) -> None:
        self.station = station
        self.gaps = gaps
        self.timings = timings
        self.destination = destination
        self.tag = tag  # chosen by the station in its connection request; its control frames carry it
        self.closed = False
        self.last_heard_ns = now_ns
        self._last_ack_ns: int | None = None
        self._ack_due = True  # answer a new session with the current gap list straight away

    def frame_received(self, now_ns: int) -> None:
        """Any frame from the station (data, acknack, alert...) proves it is alive."""
        self.last_heard_ns = now_ns

    def is_duplicate(self, seq: int) -> bool:
        return seq in self.gaps

    def committed(self, seq: int) -> None:
        """``seq`` is durable (the caller already added it to ``gaps`` for its commit); ack it soon."""
        if seq not in self.gaps:
            raise ValueError(f"{self.station}: sequence {seq} reported committed but not in the gap list")
        self._ack_due = True

    def duplicate_seen(self) -> None:
        """A resend of something we hold: the station evidently missed an acknack, so repeat it."""
        self._ack_due = True

    def peer_alert(self) -> None:
        """The station said goodbye with an alert."""
        self.closed = True

    def acknack(self) -> AcknackBody:
        """What we hold, in CD-1.1 form (signed 64-bit on the wire); gap list capped at the newest N.

        When older gaps are left out, ``lowest`` moves up past them: everything from lowest to highest
        outside the listed gaps must really be here, or the station would drop frames we never got.
        """
        every_gap = self.gaps.gaps()
        listed = every_gap[max(0, len(every_gap) - self.timings.max_reported_gaps) :]
        omitted = every_gap[: len(every_gap) - len(listed)]
        if self.gaps.highest < 0:
            lowest, highest = 0, -1
        else:
            first = omitted[-1][1] if omitted else self.gaps.lowest
            lowest, highest = seq_to_signed(first), seq_to_signed(self.gaps.highest)
        gaps = listed
        return AcknackBody(
            frame_set=f"{self.station}:{self.destination}"[:20],
            lowest=lowest,
            highest=highest,
            gaps=tuple((seq_to_signed(a), seq_to_signed(b)) for a, b in gaps),
        )

    def poll(self, now_ns: int) -> list[AcknackBody | AlertBody]:
        """Bodies to send now: an acknack when one is due, or an alert (and close) after silence."""
        if self.closed:
            return []
        if now_ns - self.last_heard_ns >= self.timings.silence_ns:
            self.closed = True
            seconds = (now_ns - self.last_heard_ns) / NS_PER_S
            return [AlertBody(f"no frame from {self.station} for {seconds:.0f} s; closing".encode())]
        last_ack = self._last_ack_ns
        if self._ack_due or last_ack is None or now_ns - last_ack >= self.timings.acknack_interval_ns:
            self._ack_due = False
            self._last_ack_ns = now_ns
            return [self.acknack()]
        return []

