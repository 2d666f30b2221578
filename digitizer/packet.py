"""What every digitizer driver yields: ``Packet`` (samples of one stream) and ``Status`` (health).

These two types are the contract between instrument drivers and the station; they carry integer
nanoseconds (UTC since 1970) and never the wall clock, so the chain runs unchanged in simulated time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from timeunits import NS_PER_S


@dataclass(frozen=True, slots=True)
class Packet:
    """Consecutive samples of one stream, as one digitizer block delivered them."""

    system_id: str  # digitizer identity (e.g. GCF system id)
    stream_id: str  # stream within that digitizer (e.g. GCF stream id "ABCDZ2")
    start_ns: int  # time of the first sample, UTC ns since 1970
    sample_rate: float  # samples per second (may be fractional, e.g. 0.1)
    samples: np.ndarray  # int32 counts
    clock_locked: bool | None = None  # digitizer clock disciplined by GPS when the block was stamped
    sequence: int | None = None  # transport sequence number (BRP), for diagnostics

    @property
    def nsamp(self) -> int:
        return int(self.samples.shape[0])

    def sample_time_ns(self, index: int) -> int:
        """Time of sample ``index`` (exact for integer rates, rounded to the ns otherwise)."""
        return self.start_ns + round(index * NS_PER_S / self.sample_rate)

    @property
    def end_ns(self) -> int:
        """Time just after the last sample (start of the next contiguous packet)."""
        return self.sample_time_ns(self.nsamp)


@dataclass(frozen=True, slots=True)
class Status:
    """A state-of-health reading from an instrument; fields it does not report stay None."""

    system_id: str
    time_ns: int
    gps_locked: bool | None = None
    gps_fix: str | None = None  # e.g. "3D", "2D", "none"
    satellites: int | None = None
    clock_offset_ns: int | None = None  # digitizer clock minus GPS time
    last_gps_sync_ns: int | None = None
    supply_volts: float | None = None
    temperature_c: float | None = None
    mass_positions: tuple[float, ...] = ()  # fraction of full scale, one per component
    calibration_active: bool | None = None
    text: str | None = None  # raw status text the instrument sent, when it was text
    extra: dict[str, str] = field(default_factory=dict)
