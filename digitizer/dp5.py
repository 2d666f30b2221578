"""Amptek DP5 packet protocol (DP5, PX5, PX5-HPGe, DP5G, MCA8000D) as a sans-I/O core.

Bytes in, decoded messages and events out; nothing here reads a port, a clock or logs. The host side
encodes requests and parses responses (``PacketParser.for_host``); the device side, for simulated
firmware, parses requests (``PacketParser.for_device``) and encodes status, spectrum, read-back and
acknowledgement packets.

Where the facts come from (read for facts only; no code or prose copied):

- *DP5 Programmer's Guide* (Amptek, Rev A4 and B0), §4 "Packet Format": a packet is ``F5 FA``,
  PID1, PID2, a 16-bit big-endian data length, the data, and a 16-bit checksum that is the two's
  complement of the 16-bit sum of every byte before it (so every byte of a good packet, checksum
  included, sums to 0 mod 65536). Its worked request examples ("Request Netfinder Packet" ends
  ``FE 07``; "Autoset Input Offset" ends ``FD 1C``) are our checksum test vectors. §4.1: every
  request is answered by its response or by an acknowledgement packet; a malformed request gets the
  sync/PID/LEN/checksum ACK errors instead.
- Amptek's own SDK as published in EPICS ``mca`` (``mcaApp/AmptekSrc``): ``DP5Protocol.h`` for the
  PID1/PID2 values of every request and response used here, the 12 spectrum PID2 variants (odd:
  spectrum, even: spectrum plus status; 256 to 8192 channels), the ACK codes 0x00-0x11, response
  data below 32768 bytes, request data buffers of 512 bytes and the RS-232 time-out of 2.5 s (an
  8k spectrum takes about 2.2 s at 115200 baud); ``DP5Status.cpp`` for the 64-byte status layout
  (counts and times little-endian; accumulation time = byte 12 in ms + bytes 13-15 in 100 ms; real
  time bytes 20-23 in ms; a live-time field, bytes 16-19 in ms, only on the MCA8000D with firmware
  6.07 and later; firmware/FPGA version nibbles; serial number; HV big-endian signed, 0.5 V/count;
  detector temperature 12 bits, 0.1 K/count; board temperature signed °C; flag bytes 35, 36, 38, 42;
  device type byte 39); ``ParsePacket.cpp`` for the ACK packets that carry the offending command text.
- The MX beamline-control driver (``libMx/i_amptek_dp5.c``, ``d_amptek_dp5_mca.c``) and the Python
  ``dp5io``/``pids`` modules of ``dreames21/blcontrol``: the same framing, 24-bit little-endian channel
  counts (3 bytes per channel), the status appended after the counts in a spectrum-plus-status
  packet, text configuration ``NAME=value;`` (PID 0x20/0x02) and its read-back (0x20/0x03, answered
  by 0x82/0x07 with ``NAME=value;`` text). MX decodes the accumulation time as a plain 32-bit ms count;
  we follow Amptek's SDK (above), which agrees with ``dp5io``.

Live time: the DP5 family has no live-time clock (only the MCA8000D reports one). Its accumulation
time is the time the MCA counted, not corrected for dead time. ``Status.live_time_s`` is therefore the
reported live time where there is one, else accumulation time x slow/fast count (the fraction of
input pulses the slow channel processed); ``Status.live_time_basis`` says which. That estimate is our
convention, not Amptek's.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

SYNC = b"\xf5\xfa"
HEADER_SIZE = 6  # sync, PID1, PID2, length
OVERHEAD = 8  # header + checksum
MAX_REQUEST_DATA = 512
MAX_RESPONSE_DATA = 32767  # the length's top bit is never set
STATUS_SIZE = 64
BYTES_PER_CHANNEL = 3

# requests (PID1, PID2)
REQ_STATUS = (0x01, 0x01)
REQ_SPECTRUM = (0x02, 0x01)
REQ_SPECTRUM_CLEAR = (0x02, 0x02)
REQ_SPECTRUM_STATUS = (0x02, 0x03)
REQ_SPECTRUM_STATUS_CLEAR = (0x02, 0x04)
REQ_TEXT_CONFIG = (0x20, 0x02)
REQ_TEXT_READBACK = (0x20, 0x03)
REQ_CLEAR_SPECTRUM = (0xF0, 0x01)
REQ_ENABLE_MCA = (0xF0, 0x02)
REQ_DISABLE_MCA = (0xF0, 0x03)
REQUEST_PID1 = frozenset({0x01, 0x02, 0x03, 0x04, 0x20, 0x30, 0xF0, 0xF1})

# responses
RSP_STATUS = (0x80, 0x01)
RSP_SPECTRUM_PID1 = 0x81
RSP_CONFIG_READBACK = (0x82, 0x07)
ACK_PID1 = 0xFF
RESPONSE_PID1 = frozenset({0x80, 0x81, 0x82, 0x83, 0x8F, ACK_PID1})

# spectrum response PID2 -> (channels, with status)
SPECTRUM_PID2 = {2 * i + 1 + s: (256 << i, bool(s)) for i in range(6) for s in (0, 1)}
CHANNEL_COUNTS = tuple(256 << i for i in range(6))
MAX_COUNT = (1 << 24) - 1

DEVICE_TYPES = {0: "DP5", 1: "PX5", 2: "DP5G", 3: "MCA8000D", 4: "TB5", 5: "DP5-X"}
PX5_OPTION_HPGE_HVPS = 1

_SETTING_NAME = re.compile(r"[A-Z0-9]{4}")
_UNKNOWN_DEVICE = re.compile(r"unknown\(([0-9]{1,3})\)")


class AckCode(enum.IntEnum):
    """PID2 of an acknowledgement packet (PID1 0xFF)."""

    OK = 0x00
    SYNC_ERROR = 0x01
    PID_ERROR = 0x02
    LEN_ERROR = 0x03
    CHECKSUM_ERROR = 0x04
    BAD_PARAMETER = 0x05
    BAD_HEX_RECORD = 0x06
    UNRECOGNIZED_COMMAND = 0x07
    FPGA_ERROR = 0x08
    CP2201_NOT_FOUND = 0x09  # no Ethernet controller
    SCOPE_DATA_NOT_AVAILABLE = 0x0A
    PC5_NOT_PRESENT = 0x0B
    OK_SHARING_REQUEST = 0x0C  # OK, and another interface asks to share the unit
    BUSY_OTHER_INTERFACE = 0x0D  # another interface (Ethernet) holds the unit
    I2C_ERROR = 0x0E
    OK_FPGA_UPLOAD_ADDRESS = 0x0F
    FEATURE_NOT_SUPPORTED_BY_FPGA = 0x10
    CALIBRATION_DATA_NOT_PRESENT = 0x11


ACK_OK_CODES = frozenset({AckCode.OK, AckCode.OK_SHARING_REQUEST, AckCode.OK_FPGA_UPLOAD_ADDRESS})
# the unit received our request damaged: sending it again may work
ACK_TRANSPORT_ERRORS = frozenset({AckCode.SYNC_ERROR, AckCode.PID_ERROR, AckCode.LEN_ERROR,
                                  AckCode.CHECKSUM_ERROR})


class Dp5FormatError(ValueError):
    """A packet or field that does not follow the DP5 protocol (says which and why)."""


# --------------------------------------------------------------------------------------------------
# framing


def checksum(data: bytes | bytearray | memoryview) -> int:
    """Two's complement of the 16-bit byte sum: appended, it makes the packet sum to 0 mod 65536."""
    return -sum(data) & 0xFFFF


def encode_packet(pid1: int, pid2: int, data: bytes = b"", *, max_data: int = MAX_RESPONSE_DATA) -> bytes:
    """One framed packet; raises ``Dp5FormatError`` for PIDs outside a byte or data above ``max_data``."""
    if not (0 <= pid1 <= 0xFF and 0 <= pid2 <= 0xFF):
        raise Dp5FormatError(f"PID {pid1:#x}/{pid2:#x} does not fit a byte")
    if len(data) > max_data:
        raise Dp5FormatError(f"packet data of {len(data)} bytes exceeds {max_data}")
    head = SYNC + bytes((pid1, pid2)) + len(data).to_bytes(2, "big") + data
    return head + checksum(head).to_bytes(2, "big")


def encode_request(pid: tuple[int, int], data: bytes = b"") -> bytes:
    return encode_packet(pid[0], pid[1], data, max_data=MAX_REQUEST_DATA)


def request_status() -> bytes:
    return encode_request(REQ_STATUS)


def request_spectrum(*, with_status: bool = True, clear: bool = False) -> bytes:
    """Spectrum (and status, read in the same instant) request; ``clear`` empties the MCA after reading."""
    pid = {(False, False): REQ_SPECTRUM, (False, True): REQ_SPECTRUM_CLEAR,
           (True, False): REQ_SPECTRUM_STATUS, (True, True): REQ_SPECTRUM_STATUS_CLEAR}[(with_status, clear)]
    return encode_request(pid)


def request_clear_spectrum() -> bytes:
    return encode_request(REQ_CLEAR_SPECTRUM)


def request_enable_mca() -> bytes:
    return encode_request(REQ_ENABLE_MCA)


def request_disable_mca() -> bytes:
    return encode_request(REQ_DISABLE_MCA)


def format_settings(settings: Mapping[str, object]) -> str:
    """``{"MCAC": 8192, "PRET": 3600}`` -> ``"MCAC=8192;PRET=3600;"``, each name and value checked."""
    parts = []
    for name, value in settings.items():
        if not _SETTING_NAME.fullmatch(name):
            raise Dp5FormatError(f"setting name {name!r} is not 4 upper-case letters or digits")
        text = "OFF" if value is None else str(value)
        if not text or any(c in text for c in ";=") or not text.isascii() or not text.isprintable():
            raise Dp5FormatError(f"setting {name} has a value {text!r} that cannot be sent")
        parts.append(f"{name}={text};")
    return "".join(parts)


def request_text_configuration(settings: Mapping[str, object]) -> bytes:
    """Set ASCII parameters (``MCAC=8192;PRET=3600;`` ...); answered by an ACK."""
    return encode_request(REQ_TEXT_CONFIG, format_settings(settings).encode("ascii"))


def request_text_readback(names: Iterable[str]) -> bytes:
    """Ask for the current values of ASCII parameters (``MCAC;PRET;``); answered by a read-back packet."""
    names = list(names)
    for name in names:
        if not _SETTING_NAME.fullmatch(name):
            raise Dp5FormatError(f"setting name {name!r} is not 4 upper-case letters or digits")
    return encode_request(REQ_TEXT_READBACK, "".join(f"{n};" for n in names).encode("ascii"))


def parse_settings(text: str) -> dict[str, str]:
    """``"MCAC=8192;PRET=OFF;"`` -> ``{"MCAC": "8192", "PRET": "OFF"}``; a part without '=' is an error."""
    out: dict[str, str] = {}
    for part in text.replace("\r", "").replace("\n", "").split(";"):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep or not name:
            raise Dp5FormatError(f"setting {part!r} has no NAME=value form")
        out[name.strip().upper()] = value.strip()
    return out


# --------------------------------------------------------------------------------------------------
# decoded messages


@dataclass(frozen=True, slots=True)
class Status:
    """The 64-byte status, decoded; ``raw`` keeps the bytes."""

    fast_count: int
    slow_count: int
    gp_count: int
    accumulation_time_s: float
    real_time_s: float
    reported_live_time_s: float | None  # MCA8000D (firmware >= 6.07) only
    firmware: str  # "6.07"
    firmware_build: int
    fpga: str
    serial_number: int | None
    high_voltage_v: float
    detector_temperature_k: float
    board_temperature_c: int
    preset_real_time_reached: bool
    mca_enabled: bool
    preset_count_reached: bool
    configured: bool
    first_since_reboot: bool
    device_type: str
    hpge_hv_inhibited: bool | None  # PX5 with the HPGe high-voltage option only
    raw: bytes = field(repr=False, default=b"")

    @property
    def live_time_s(self) -> float:
        """Reported live time, else accumulation time x slow/fast count (see the module docstring)."""
        if self.reported_live_time_s is not None:
            return self.reported_live_time_s
        if self.fast_count <= 0:
            return self.accumulation_time_s
        return self.accumulation_time_s * min(1.0, self.slow_count / self.fast_count)

    @property
    def live_time_basis(self) -> str:
        if self.reported_live_time_s is not None:
            return "reported"
        return "accumulation" if self.fast_count <= 0 else "accumulation*slow/fast"

    @property
    def dead_time_fraction(self) -> float:
        return 0.0 if self.fast_count <= 0 else max(0.0, 1.0 - self.slow_count / self.fast_count)


@dataclass(frozen=True, slots=True)
class Spectrum:
    """Channel counts (uint32 array) and, for spectrum-plus-status packets, the status of that instant."""

    counts: np.ndarray = field(repr=False)
    status: Status | None

    @property
    def channels(self) -> int:
        return int(self.counts.shape[0])


@dataclass(frozen=True, slots=True)
class Ack:
    """An acknowledgement; ``detail`` is the text the unit sent with it (e.g. the offending command)."""

    code: int
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.code in ACK_OK_CODES

    @property
    def name(self) -> str:
        try:
            return AckCode(self.code).name
        except ValueError:
            return f"UNKNOWN_{self.code:#04x}"


@dataclass(frozen=True, slots=True)
class ConfigReadback:
    settings: dict[str, str]
    text: str


@dataclass(frozen=True, slots=True)
class OtherPacket:
    """A well-formed packet of a kind this core does not decode (scope data, diagnostics, ...)."""

    pid1: int
    pid2: int
    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Request:
    """A request as the device sees it (device-side parser)."""

    pid1: int
    pid2: int
    data: bytes = b""

    @property
    def pid(self) -> tuple[int, int]:
        return (self.pid1, self.pid2)


Message = Status | Spectrum | Ack | ConfigReadback | OtherPacket


def _u32(raw: bytes, at: int) -> int:
    return int.from_bytes(raw[at:at + 4], "little")


def _version(byte: int) -> str:
    return f"{byte >> 4}.{byte & 0x0F:02d}"


def decode_status(raw: bytes) -> Status:
    """Decode the 64 status bytes (``Dp5FormatError`` for any other length)."""
    if len(raw) != STATUS_SIZE:
        raise Dp5FormatError(f"status is {len(raw)} bytes, expected {STATUS_SIZE}")
    device_id = raw[39]
    firmware = raw[24]
    live = _u32(raw, 16) / 1000.0 if device_id == 3 and firmware >= 0x67 else None
    options = raw[42] & 0x0F
    hv_inhibited = not raw[42] & 0x20 if device_id == 1 and options == PX5_OPTION_HPGE_HVPS else None
    return Status(
        fast_count=_u32(raw, 0),
        slow_count=_u32(raw, 4),
        gp_count=_u32(raw, 8),
        accumulation_time_s=(raw[12] + 100 * int.from_bytes(raw[13:16], "little")) / 1000,
        real_time_s=_u32(raw, 20) / 1000.0,
        reported_live_time_s=live,
        firmware=_version(firmware),
        firmware_build=raw[37] & 0x0F if firmware > 0x65 else 0,
        fpga=_version(raw[25]),
        serial_number=_u32(raw, 26) if raw[29] < 0x80 else None,
        high_voltage_v=int.from_bytes(raw[30:32], "big", signed=True) * 0.5,
        detector_temperature_k=((raw[32] & 0x0F) << 8 | raw[33]) / 10,
        board_temperature_c=int.from_bytes(raw[34:35], "big", signed=True),
        preset_real_time_reached=bool(raw[35] & 0x80),
        mca_enabled=bool(raw[35] & 0x20),
        preset_count_reached=bool(raw[35] & 0x10),
        configured=bool(raw[35] & 0x02),
        first_since_reboot=bool(raw[36] & 0x20) if firmware >= 0x65 else False,
        device_type=DEVICE_TYPES.get(device_id, f"unknown({device_id})"),
        hpge_hv_inhibited=hv_inhibited,
        raw=bytes(raw),
    )


def decode_counts(data: bytes, channels: int) -> np.ndarray:
    """``channels`` 24-bit little-endian counts -> uint32 array."""
    if len(data) != channels * BYTES_PER_CHANNEL:
        raise Dp5FormatError(f"{len(data)} bytes cannot hold {channels} 3-byte channels")
    b = np.frombuffer(data, dtype=np.uint8).reshape(channels, 3).astype(np.uint32)
    return b[:, 0] | b[:, 1] << 8 | b[:, 2] << 16


def decode_spectrum(pid2: int, data: bytes) -> Spectrum:
    kind = SPECTRUM_PID2.get(pid2)
    if kind is None:
        raise Dp5FormatError(f"spectrum PID2 {pid2:#x} is not one of 1-12")
    channels, with_status = kind
    expected = channels * BYTES_PER_CHANNEL + (STATUS_SIZE if with_status else 0)
    if len(data) != expected:
        what = f"{channels} channels" + (" + status" if with_status else "")
        raise Dp5FormatError(f"spectrum PID2 {pid2} ({what}) carries {len(data)} bytes, expected {expected}")
    counts = decode_counts(data[:channels * BYTES_PER_CHANNEL], channels)
    status = decode_status(data[channels * BYTES_PER_CHANNEL:]) if with_status else None
    return Spectrum(counts, status)


def decode_response(pid1: int, pid2: int, data: bytes) -> Message:
    """A checksum-verified response packet as a message (``Dp5FormatError`` when its body is wrong)."""
    if (pid1, pid2) == RSP_STATUS:
        return decode_status(data)
    if pid1 == RSP_SPECTRUM_PID1:
        return decode_spectrum(pid2, data)
    if pid1 == ACK_PID1:
        return Ack(pid2, data.decode("ascii", "replace"))
    if (pid1, pid2) == RSP_CONFIG_READBACK:
        text = data.decode("ascii", "replace")
        return ConfigReadback(parse_settings(text), text)
    return OtherPacket(pid1, pid2, bytes(data))


# --------------------------------------------------------------------------------------------------
# stream parser


@dataclass(frozen=True, slots=True)
class Received:
    """A good packet: a decoded response (host side) or a ``Request`` (device side)."""

    message: Message | Request
    offset: int


@dataclass(frozen=True, slots=True)
class BadChecksum:
    pid1: int
    pid2: int
    length: int
    offset: int
    computed: int
    received: int


@dataclass(frozen=True, slots=True)
class Truncated:
    """A packet that stopped early: the next packet began inside it, or the caller flushed (time-out)."""

    pid1: int
    pid2: int
    length: int  # the data length its header claimed
    got: int  # bytes of it that arrived (header included)
    offset: int


@dataclass(frozen=True, slots=True)
class Malformed:
    """A packet with a good checksum whose body does not decode (e.g. a spectrum of the wrong size)."""

    pid1: int
    pid2: int
    offset: int
    error: str


@dataclass(frozen=True, slots=True)
class Resync:
    """A good packet came after ``skipped`` bytes that belonged to no packet (noise, partial packets)."""

    skipped: int
    offset: int


Event = Received | BadChecksum | Truncated | Malformed | Resync


class PacketParser:
    """Splits a byte stream into packets; resynchronises on ``F5 FA`` after garbage.

    A header is a candidate only when its PID1 is one this side can receive and its length fits
    ``max_data``. A checksum failure is reported and the scan resumes one byte later (the length may
    be the corrupt field and hide a good packet). If a complete good packet starts inside another one
    (failed, pending, or even with a good checksum of its own: a device restarted mid-packet), the
    earlier one is reported ``Truncated`` and the inner one read. While a plausible header inside is
    still incomplete, that decision waits for it: the events depend on the bytes only, never on how they
    were cut into reads. The buffer never holds more than two largest packets (one starting inside the
    other) plus one ``feed``; ``flush`` (call it on a read time-out) reports a pending partial packet as
    truncated and drops it.
    """

    def __init__(self, accept_pid1: frozenset[int], max_data: int, *, decode: bool) -> None:
        self.accept_pid1 = accept_pid1
        self.max_data = max_data
        self._decode = decode
        self._buf = bytearray()
        self._offset = 0  # stream offset of _buf[0]
        self._skipped = 0

    @classmethod
    def for_host(cls) -> PacketParser:
        return cls(RESPONSE_PID1, MAX_RESPONSE_DATA, decode=True)

    @classmethod
    def for_device(cls) -> PacketParser:
        return cls(REQUEST_PID1, MAX_REQUEST_DATA, decode=False)

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        step = self.max_data + OVERHEAD
        for start in range(0, len(data), step):
            self._buf += data[start:start + step]
            self._scan(events, final=False)
        return events

    def flush(self) -> list[Event]:
        """End of the stream for now (time-out): report what is pending and clear the buffer."""
        events: list[Event] = []
        self._scan(events, final=True)
        self._offset += len(self._buf)
        self._buf.clear()
        self._skipped = 0
        return events

    def _header_at(self, j: int) -> tuple[int, int, int] | None:
        """(pid1, pid2, length) when a plausible header starts at ``j`` (needs 6 bytes)."""
        buf = self._buf
        pid1, pid2 = buf[j + 2], buf[j + 3]
        length = buf[j + 4] << 8 | buf[j + 5]
        if pid1 not in self.accept_pid1 or length > self.max_data:
            return None
        return pid1, pid2, length

    def _superseded_at(self, j: int, end: int, final: bool) -> int | None:
        """Where a complete good packet starts inside the one whose header is at ``j`` (claimed to end at
        ``end``): the first plausible header in between whose packet is complete and good; -1 if there is
        none. None (not ``final``) while a header before it is incomplete: it may still prove good, so the
        answer, and the events, would depend on how the bytes arrived."""
        buf = self._buf
        stop = min(end, len(buf))
        k = buf.find(SYNC, j + 1, stop)
        while k >= 0:
            if len(buf) - k < HEADER_SIZE:  # a header not yet whole
                if not final:
                    return None
            elif (head := self._header_at(k)) is not None:
                inner_end = k + OVERHEAD + head[2]
                if inner_end > len(buf):
                    if not final:
                        return None
                elif checksum(memoryview(buf)[k:inner_end - 2]) == _u16_at(buf, inner_end - 2):
                    return k
            k = buf.find(SYNC, k + 1, stop)
        return -1

    def _scan(self, events: list[Event], *, final: bool) -> None:
        buf = self._buf
        i = 0
        while True:
            j = buf.find(SYNC, i)
            if j < 0:
                keep = 1 if buf[-1:] == SYNC[:1] else 0  # a sync split across feeds
                self._skipped += len(buf) - i - keep
                i = len(buf) - keep
                break
            self._skipped += j - i
            if len(buf) - j < HEADER_SIZE:
                i = j
                break
            head = self._header_at(j)
            if head is None:
                self._skipped += 1
                i = j + 1
                continue
            pid1, pid2, length = head
            end = j + OVERHEAD + length
            k = self._superseded_at(j, end, final)
            if k is None or (k < 0 and end > len(buf) and not final):
                i = j  # wait for more bytes
                break
            if k >= 0 or end > len(buf):
                got = (k if k >= 0 else len(buf)) - j
                events.append(Truncated(pid1, pid2, length, got, self._offset + j))
                self._skipped += 2
                i = j + 2
                continue
            received = _u16_at(buf, end - 2)
            computed = checksum(memoryview(buf)[j:end - 2])
            if received != computed:
                events.append(BadChecksum(pid1, pid2, length, self._offset + j, computed, received))
                self._skipped += 2
                i = j + 2
                continue
            if self._skipped:
                events.append(Resync(self._skipped, self._offset + j))
                self._skipped = 0
            self._deliver(pid1, pid2, bytes(buf[j + HEADER_SIZE:end - 2]), self._offset + j, events)
            i = end
        del buf[:i]
        self._offset += i

    def _deliver(self, pid1: int, pid2: int, data: bytes, offset: int, events: list[Event]) -> None:
        if not self._decode:
            events.append(Received(Request(pid1, pid2, data), offset))
            return
        try:
            events.append(Received(decode_response(pid1, pid2, data), offset))
        except Dp5FormatError as exc:
            events.append(Malformed(pid1, pid2, offset, str(exc)))


def _u16_at(buf: bytearray, at: int) -> int:
    return buf[at] << 8 | buf[at + 1]


# --------------------------------------------------------------------------------------------------
# device side (simulated firmware)


def encode_status(s: Status) -> bytes:
    """The 64 status bytes for ``s`` (times and HV quantised as the firmware does)."""
    raw = bytearray(s.raw) if len(s.raw) == STATUS_SIZE else bytearray(STATUS_SIZE)
    raw[0:4] = (s.fast_count & 0xFFFFFFFF).to_bytes(4, "little")
    raw[4:8] = (s.slow_count & 0xFFFFFFFF).to_bytes(4, "little")
    raw[8:12] = (s.gp_count & 0xFFFFFFFF).to_bytes(4, "little")
    acc_ms = max(0, round(s.accumulation_time_s * 1000))
    tenths = min(acc_ms // 100, 0xFFFFFF)
    raw[12] = min(acc_ms - 100 * tenths, 0xFF)  # the ms byte takes the rest when the 100 ms count is full
    raw[13:16] = tenths.to_bytes(3, "little")
    live = s.reported_live_time_s
    raw[16:20] = (round(live * 1000) if live is not None else 0).to_bytes(4, "little")
    raw[20:24] = min(round(s.real_time_s * 1000), 0xFFFFFFFF).to_bytes(4, "little")
    raw[24] = _version_byte(s.firmware)
    raw[25] = _version_byte(s.fpga)
    raw[26:30] = (s.serial_number if s.serial_number is not None else 0xFFFFFFFF).to_bytes(4, "little")
    raw[30:32] = max(-32768, min(32767, round(s.high_voltage_v * 2))).to_bytes(2, "big", signed=True)
    temp = max(0, min(0xFFF, round(s.detector_temperature_k * 10)))
    raw[32] = (raw[32] & 0xF0) | temp >> 8
    raw[33] = temp & 0xFF
    raw[34] = s.board_temperature_c & 0xFF
    raw[35] = (0x80 * s.preset_real_time_reached | 0x20 * s.mca_enabled | 0x10 * s.preset_count_reached
               | 0x02 * s.configured)
    raw[36] = (raw[36] & ~0x20 & 0xFF) | 0x20 * s.first_since_reboot
    raw[37] = (raw[37] & 0xF0) | (s.firmware_build & 0x0F)
    raw[39] = _device_id(s.device_type)
    if s.hpge_hv_inhibited is not None:
        raw[42] = (raw[42] & 0xC0) | PX5_OPTION_HPGE_HVPS | (0 if s.hpge_hv_inhibited else 0x20)
    return bytes(raw)


def _device_id(device_type: str) -> int:
    """Byte 39 for a device type name, also for the ``unknown(N)`` that ``decode_status`` names others."""
    for k, v in DEVICE_TYPES.items():
        if v == device_type:
            return k
    unknown = _UNKNOWN_DEVICE.fullmatch(device_type)
    if unknown is None or int(unknown[1]) > 0xFF:
        raise Dp5FormatError(f"device type {device_type!r} is not one of {sorted(DEVICE_TYPES.values())}")
    return int(unknown[1])


def _version_byte(text: str) -> int:
    major, _, minor = text.partition(".")
    return (int(major) & 0x0F) << 4 | (int(minor or 0) & 0x0F)


def encode_counts(counts: np.ndarray) -> bytes:
    """uint counts -> 3 bytes each, little-endian; counts above 2^24-1 saturate (as a full channel does)."""
    c = np.minimum(np.asarray(counts, dtype=np.int64), MAX_COUNT).astype(np.uint32)
    out = np.empty((c.shape[0], 3), dtype=np.uint8)
    out[:, 0] = c & 0xFF
    out[:, 1] = c >> 8 & 0xFF
    out[:, 2] = c >> 16 & 0xFF
    return out.tobytes()


def encode_spectrum_response(counts: np.ndarray, status: Status | None) -> bytes:
    channels = int(np.asarray(counts).shape[0])
    if channels not in CHANNEL_COUNTS:
        raise Dp5FormatError(f"{channels} channels is not one of {CHANNEL_COUNTS}")
    pid2 = 2 * CHANNEL_COUNTS.index(channels) + 1 + (status is not None)
    data = encode_counts(counts) + (encode_status(status) if status is not None else b"")
    return encode_packet(RSP_SPECTRUM_PID1, pid2, data)


def encode_status_response(status: Status) -> bytes:
    return encode_packet(*RSP_STATUS, encode_status(status))


def encode_ack(code: int, detail: str = "") -> bytes:
    return encode_packet(ACK_PID1, code, detail.encode("ascii", "replace"))


def encode_config_readback(settings: Mapping[str, object]) -> bytes:
    return encode_packet(*RSP_CONFIG_READBACK, format_settings(settings).encode("ascii"))
