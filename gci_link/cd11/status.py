"""Channel status (spec §7): format 1 decoded into named flags, anything else kept as raw bytes.

The raw bytes are the single source of truth, so undefined bytes and unknown formats survive a
decode/encode round trip unchanged; the named views are computed from them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import Cd11FormatError
from .timefmt import TIME_SIZE, format_time, parse_time

FORMAT1_SIZE = 32

# flag name -> (0-based byte index in the status, bit mask); bit 1 of the spec is the LSB
FLAGS: dict[str, tuple[int, int]] = {
    "dead_sensor_channel": (1, 0x01),
    "zeroed_data": (1, 0x02),
    "clipped": (1, 0x04),
    "calibration_underway": (1, 0x08),
    "equipment_housing_open": (2, 0x01),
    "digitizing_equipment_open": (2, 0x02),
    "vault_door_opened": (2, 0x04),
    "authentication_seal_broken": (2, 0x08),
    "equipment_moved": (2, 0x10),
    "clock_differential_too_large": (3, 0x01),
    "gps_receiver_off": (3, 0x02),
    "gps_receiver_unlocked": (3, 0x04),
    "digitizer_analog_input_shorted": (3, 0x08),
    "digitizer_calibration_loop_back": (3, 0x10),
    "main_power_failure": (4, 0x01),
    "backup_power_unstable": (4, 0x02),
}
FLAG_BYTES = {1: "data_status", 2: "channel_security", 3: "miscellaneous", 4: "voltage_indicator"}


@dataclass(frozen=True, slots=True)
class ChannelStatus:
    """Status bytes of one channel subframe; named views are valid only for ``is_format1``."""

    raw: bytes = b""

    @property
    def format(self) -> int | None:
        return self.raw[0] if self.raw else None

    @property
    def is_format1(self) -> bool:
        return len(self.raw) == FORMAT1_SIZE and self.raw[0] == 1

    def _require_format1(self, what: str) -> None:
        if not self.is_format1:
            raise ValueError(f"{what} is defined only for status format 1 (32 bytes), not {self.describe()}")

    def describe(self) -> str:
        return f"format {self.format} ({len(self.raw)} bytes)" if self.raw else "no status"

    def flag(self, name: str) -> bool:
        """One named flag (see FLAGS); ValueError for an unknown name or a non-format-1 status."""
        if name not in FLAGS:
            raise ValueError(f"unknown channel status flag {name!r}")
        self._require_format1(name)
        index, mask = FLAGS[name]
        return bool(self.raw[index] & mask)

    def flags(self) -> dict[str, bool]:
        """Every named flag; empty for formats this codec does not know."""
        return {name: self.flag(name) for name in FLAGS} if self.is_format1 else {}

    @property
    def flag_bytes(self) -> dict[str, int]:
        self._require_format1("flag bytes")
        return {name: self.raw[index] for index, name in FLAG_BYTES.items()}

    @property
    def undefined_bytes(self) -> bytes:
        self._require_format1("undefined bytes")
        return self.raw[5:8]

    @property
    def last_gps_sync_raw(self) -> bytes:
        self._require_format1("last GPS sync")
        return self.raw[8 : 8 + TIME_SIZE]

    @property
    def last_gps_sync_ns(self) -> int | None:
        """Time of the last GPS synchronisation; None when the field is blank or not a valid time."""
        raw = self.last_gps_sync_raw
        if not raw.strip(b"\0 "):
            return None
        try:
            return parse_time(raw, field="last GPS sync", offset=8)
        except Cd11FormatError:
            return None

    @property
    def clock_differential_us(self) -> int:
        self._require_format1("clock differential")
        return struct.unpack(">i", self.raw[28:32])[0]

    @classmethod
    def format1(
        cls,
        *,
        last_gps_sync_ns: int | None = None,
        clock_differential_us: int = 0,
        undefined: bytes = b"\0\0\0",
        **flags: bool,
    ) -> ChannelStatus:
        """Build a format-1 status from named flags (FLAGS keys), GPS sync time and clock differential."""
        for name in flags:
            if name not in FLAGS:
                raise ValueError(f"unknown channel status flag {name!r}")
        raw = bytearray(FORMAT1_SIZE)
        raw[0] = 1
        if len(undefined) != 3:
            raise ValueError("status bytes 6-8 must be exactly 3 bytes")
        raw[5:8] = undefined
        if last_gps_sync_ns is not None:
            raw[8 : 8 + TIME_SIZE] = format_time(last_gps_sync_ns, field="last GPS sync")
        raw[28:32] = struct.pack(">i", clock_differential_us)
        return cls(bytes(raw)).with_flags(name for name, on in flags.items() if on)

    def with_flags(self, names: Iterable[str]) -> ChannelStatus:
        """This format-1 status with the named flags (FLAGS keys) set as well, every other byte kept."""
        self._require_format1("flags")
        raw = bytearray(self.raw)
        for name in names:
            if name not in FLAGS:
                raise ValueError(f"unknown channel status flag {name!r}")
            index, mask = FLAGS[name]
            raw[index] |= mask
        return ChannelStatus(bytes(raw))
