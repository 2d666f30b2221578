"""Bodies of the non-data frame types (spec §5) and of the project's IMS 2.0 message extension.

Each body class knows its frame type codes and reads/writes itself; the data body lives in data.py.
Variable-length values keep their declared bytes verbatim so decoding then encoding is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TypedDict

from .errors import Cd11FormatError
from .wire import Reader, Writer

# The largest IMS 2.0 message one type-100 frame carries (docs/cd11.md). A 256 x 256 beta-gamma
# histogram with large counts, or a high-resolution HPGe spectrum, runs past 1 MB of text; the bound
# keeps what a station sends and what a receiver must buffer for one frame finite, and both ends share it.
MAX_IMS2_MESSAGE_BYTES = 16 * 1024 * 1024
# header, size field, padding, trailer and the largest signature value, around the largest message
MAX_IMS2_FRAME_BYTES = MAX_IMS2_MESSAGE_BYTES + 1024


class FrameType(IntEnum):
    CONNECTION_REQUEST = 1
    CONNECTION_RESPONSE = 2
    OPTION_REQUEST = 3
    OPTION_RESPONSE = 4
    DATA = 5
    ACKNACK = 6
    ALERT = 7
    COMMAND_REQUEST = 8
    COMMAND_RESPONSE = 9
    CD1_ENCAPSULATION = 13
    IMS2_MESSAGE = 100  # project extension, see docs/cd11.md


@dataclass(frozen=True, slots=True)
class ConnectionBody:
    """Connection request (station -> well-known port) or response (names the data consumer endpoint)."""

    station: str
    station_type: str = "IMS"
    service_type: str = "TCP"
    ip_address: int = 0  # IPv4 as an unsigned 32-bit number
    port: int = 0
    major_version: int = 1
    minor_version: int = 1
    second_ip_address: int = 0
    second_port: int = 0

    FRAME_TYPES = (FrameType.CONNECTION_REQUEST, FrameType.CONNECTION_RESPONSE)

    @classmethod
    def read(cls, r: Reader) -> ConnectionBody:
        major, minor = r.i16("major version"), r.i16("minor version")
        return cls(
            major_version=major,
            minor_version=minor,
            station=r.text(8, "station name"),
            station_type=r.text(4, "station type"),
            service_type=r.text(4, "service type"),
            ip_address=r.u32("IP address"),
            port=r.u16("port"),
            second_ip_address=r.u32("second IP address"),
            second_port=r.u16("second port"),
        )

    def write(self, w: Writer) -> None:
        w.i16(self.major_version, "major version")
        w.i16(self.minor_version, "minor version")
        w.text(self.station, 8, "station name")
        w.text(self.station_type, 4, "station type")
        w.text(self.service_type, 4, "service type")
        w.u32(self.ip_address, "IP address")
        w.u16(self.port, "port")
        w.u32(self.second_ip_address, "second IP address")
        w.u16(self.second_port, "second port")


@dataclass(frozen=True, slots=True)
class OptionBody:
    """Option request/response: (option type, value bytes) pairs; type 1 = connection establishment."""

    options: tuple[tuple[int, bytes], ...] = ((1, b""),)

    FRAME_TYPES = (FrameType.OPTION_REQUEST, FrameType.OPTION_RESPONSE)

    @classmethod
    def read(cls, r: Reader) -> OptionBody:
        at = r.pos
        count = r.i32("option count")
        if count < 0 or count * 8 > r.end - r.pos:
            raise Cd11FormatError(
                f"{count} options cannot fit in {r.end - r.pos} bytes", field="option count", offset=at
            )
        options = []
        for i in range(count):
            kind = r.i32(f"option {i} type")
            options.append((kind, r.sized(f"option {i} value")))
        return cls(tuple(options))

    def write(self, w: Writer) -> None:
        w.i32(len(self.options), "option count")
        for i, (kind, value) in enumerate(self.options):
            w.i32(kind, f"option {i} type")
            w.sized(bytes(value), f"option {i} value")


@dataclass(frozen=True, slots=True)
class AcknackBody:
    """What a receiver holds of a frame set: lowest..highest (inclusive) minus [start, end) gaps."""

    frame_set: str
    lowest: int = 0
    highest: int = -1
    gaps: tuple[tuple[int, int], ...] = ()

    FRAME_TYPES = (FrameType.ACKNACK,)

    @classmethod
    def read(cls, r: Reader) -> AcknackBody:
        frame_set = r.text(20, "frame set")
        lowest, highest = r.i64("lowest sequence"), r.i64("highest sequence")
        at = r.pos
        count = r.i32("gap count")
        if count < 0 or count * 16 != r.end - r.pos:
            raise Cd11FormatError(
                f"{count} gaps need {count * 16} bytes but {r.end - r.pos} follow",
                field="gap count",
                offset=at,
            )
        gaps = tuple((r.i64(f"gap {i} start"), r.i64(f"gap {i} end")) for i in range(count))
        return cls(frame_set, lowest, highest, gaps)

    def write(self, w: Writer) -> None:
        w.text(self.frame_set, 20, "frame set")
        w.i64(self.lowest, "lowest sequence")
        w.i64(self.highest, "highest sequence")
        w.i32(len(self.gaps), "gap count")
        for i, (start, end) in enumerate(self.gaps):
            w.i64(start, f"gap {i} start")
            w.i64(end, f"gap {i} end")


@dataclass(frozen=True, slots=True)
class AlertBody:
    """Orderly-shutdown notice; ``message`` keeps the declared bytes (some senders count the padding)."""

    message: bytes

    FRAME_TYPES = (FrameType.ALERT,)

    @property
    def text(self) -> str:
        return self.message.rstrip(b"\0").decode("latin-1")

    @classmethod
    def read(cls, r: Reader) -> AlertBody:
        return cls(r.sized("alert message"))

    def write(self, w: Writer) -> None:
        w.sized(bytes(self.message), "alert message")


class _Addressee(TypedDict):
    """The fields that open both command bodies."""

    station: str
    site: str
    channel: str
    location: str
    time_ns: int


def _read_addressee(r: Reader) -> _Addressee:
    station = r.text(8, "station")
    site = r.text(5, "site")
    channel = r.text(3, "channel")
    location = r.text(2, "location")
    r.nul(2, "reserved")
    time_ns = r.time("command time stamp")
    return _Addressee(station=station, site=site, channel=channel, location=location, time_ns=time_ns)


def _write_addressee(body: CommandRequestBody | CommandResponseBody, w: Writer) -> None:
    w.text(body.station, 8, "station")
    w.text(body.site, 5, "site")
    w.text(body.channel, 3, "channel")
    w.text(body.location, 2, "location")
    w.raw(b"\0\0")
    w.time(body.time_ns, "command time stamp")


@dataclass(frozen=True, slots=True)
class CommandRequestBody:
    """A command for a station (e.g. start a calibration); messages are padded to 4 bytes."""

    station: str
    site: str
    channel: str
    location: str
    time_ns: int
    command: bytes

    FRAME_TYPES = (FrameType.COMMAND_REQUEST,)

    @classmethod
    def read(cls, r: Reader) -> CommandRequestBody:
        return cls(**_read_addressee(r), command=r.sized("command message"))

    def write(self, w: Writer) -> None:
        _write_addressee(self, w)
        w.sized(bytes(self.command), "command message")


@dataclass(frozen=True, slots=True)
class CommandResponseBody:
    """A station's answer: the request it answers and its response text."""

    station: str
    site: str
    channel: str
    location: str
    time_ns: int
    request: bytes
    response: bytes

    FRAME_TYPES = (FrameType.COMMAND_RESPONSE,)

    @classmethod
    def read(cls, r: Reader) -> CommandResponseBody:
        fields = _read_addressee(r)
        return cls(**fields, request=r.sized("request message"), response=r.sized("response message"))

    def write(self, w: Writer) -> None:
        _write_addressee(self, w)
        w.sized(bytes(self.request), "request message")
        w.sized(bytes(self.response), "response message")


@dataclass(frozen=True, slots=True)
class Ims2MessageBody:
    """Project extension: one IMS 2.0 message (e.g. a radionuclide PHD) carried as bytes."""

    message: bytes

    FRAME_TYPES = (FrameType.IMS2_MESSAGE,)

    @classmethod
    def read(cls, r: Reader) -> Ims2MessageBody:
        at = r.pos
        message = r.sized("IMS 2.0 message")
        _check_message_size(len(message), at)
        return cls(message)

    def write(self, w: Writer) -> None:
        _check_message_size(len(self.message), w.pos)
        w.sized(bytes(self.message), "IMS 2.0 message")


def _check_message_size(size: int, offset: int) -> None:
    if size > MAX_IMS2_MESSAGE_BYTES:
        raise Cd11FormatError(
            f"IMS 2.0 message of {size} bytes exceeds the {MAX_IMS2_MESSAGE_BYTES}-byte carrier limit",
            field="IMS 2.0 message size",
            offset=offset,
        )
