"""Whole frames: header, typed body, trailer; decode, encode, and cutting frames out of a stream.

``decode_frame`` reports malformed bytes only as Cd11FormatError (field and offset named), so a receiver
can quarantine a bad frame and carry on; it has no catch-all, so a parser bug surfaces as itself.
``encode_frame`` always recomputes the trailer offset and the CRC.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .bodies import (
    AcknackBody,
    AlertBody,
    CommandRequestBody,
    CommandResponseBody,
    ConnectionBody,
    FrameType,
    Ims2MessageBody,
    OptionBody,
)
from .crc import CRC_SIZE, crc64
from .data import DataBody
from .errors import Cd11FormatError
from .wire import Reader, Writer, pad4

HEADER_SIZE = 36
MAX_FRAME_SIZE = 64 * 1024 * 1024  # far above any real frame; bounds what a stream cutter will buffer

Body = (
    ConnectionBody
    | OptionBody
    | DataBody
    | AcknackBody
    | AlertBody
    | CommandRequestBody
    | CommandResponseBody
    | Ims2MessageBody
)

BODY_CLASSES: dict[int, type[Body]] = {
    code: cls
    for cls in (
        ConnectionBody,
        OptionBody,
        AcknackBody,
        AlertBody,
        CommandRequestBody,
        CommandResponseBody,
        Ims2MessageBody,
    )
    for code in cls.FRAME_TYPES
}
BODY_CLASSES[FrameType.DATA] = DataBody
BODY_CLASSES[FrameType.CD1_ENCAPSULATION] = DataBody


@dataclass(frozen=True, slots=True)
class FrameHeader:
    frame_type: int
    creator: str
    destination: str = "0"
    sequence: int = 0  # unsigned 64-bit; undefined in acknacks
    series: int = 0


@dataclass(frozen=True, slots=True)
class FrameTrailer:
    auth_key_id: int = 0  # 0 = frame not signed
    auth_value: bytes = b""
    crc: int = 0  # as received; encode_frame recomputes it


@dataclass(frozen=True, slots=True)
class Frame:
    header: FrameHeader
    body: Body
    trailer: FrameTrailer = field(default_factory=FrameTrailer)


def frame_length(buf: bytes | bytearray | memoryview) -> int | None:
    """Total length of the frame starting at ``buf[0]``, or None while too few bytes arrived to tell.

    Raises Cd11FormatError when the header or trailer sizes are impossible (the stream is lost).
    """
    if len(buf) < HEADER_SIZE:
        return None
    trailer = struct.unpack_from(">i", buf, 4)[0]
    if trailer < HEADER_SIZE or trailer > MAX_FRAME_SIZE:
        raise Cd11FormatError(
            f"trailer offset {trailer} outside [{HEADER_SIZE}, {MAX_FRAME_SIZE}]",
            field="trailer offset",
            offset=4,
        )
    if len(buf) < trailer + 8:
        return None
    auth_size = struct.unpack_from(">i", buf, trailer + 4)[0]
    total = trailer + 8 + pad4(max(auth_size, 0)) + CRC_SIZE
    if auth_size < 0 or total > MAX_FRAME_SIZE:
        raise Cd11FormatError(
            f"impossible authentication size {auth_size}",
            field="frame authentication size",
            offset=trailer + 4,
        )
    return total


def decode_frame(buf: bytes | bytearray | memoryview, *, check_crc: bool = True) -> Frame:
    """Parse one complete frame (exactly ``len(buf)`` bytes).

    Malformed bytes raise Cd11FormatError naming the field and offset. Any other exception is a bug in
    this codec and is deliberately not disguised as a format error, so fuzzing can find it; a daemon that
    faces the network guards against it at its own edge.
    """
    if isinstance(buf, memoryview):
        buf = buf.cast("B")
    total = frame_length(buf)
    if total is None or total > len(buf):
        raise Cd11FormatError(
            f"frame truncated: {len(buf)} bytes, frame needs {total or 'more'}",
            field="frame length",
            offset=len(buf),
        )
    if total != len(buf):
        raise Cd11FormatError(
            f"{len(buf) - total} bytes after the end of the frame", field="frame length", offset=total
        )
    crc_stored = int.from_bytes(buf[total - CRC_SIZE :], "big")
    if check_crc:
        crc_computed = crc64(memoryview(buf)[: total - CRC_SIZE])
        if crc_computed != crc_stored:
            raise Cd11FormatError(
                f"CRC-64 mismatch: stored {crc_stored:016x}, computed {crc_computed:016x}",
                field="comm verification",
                offset=total - CRC_SIZE,
            )
    r = Reader(buf, 0, HEADER_SIZE)
    frame_type = r.i32("frame type")
    trailer_offset = r.i32("trailer offset")
    header = FrameHeader(
        frame_type=frame_type,
        creator=r.text(8, "frame creator"),
        destination=r.text(8, "frame destination"),
        sequence=r.u64("sequence number"),
        series=r.i32("series"),
    )
    body_class = BODY_CLASSES.get(frame_type)
    if body_class is None:
        raise Cd11FormatError(f"unknown frame type {frame_type}", field="frame type", offset=0)
    body_reader = Reader(buf, HEADER_SIZE, trailer_offset)
    body = body_class.read(body_reader)
    body_reader.expect_end("frame body")
    t = Reader(buf, trailer_offset, total - CRC_SIZE)
    auth_key_id = t.u32("frame authentication key id")
    auth_value = t.sized("frame authentication value")
    return Frame(header, body, FrameTrailer(auth_key_id, auth_value, crc_stored))


def encode_signed_part(frame: Frame) -> bytes:
    """Header and body: bytes [0, trailer offset), which the frame signature covers."""
    body_class = BODY_CLASSES.get(frame.header.frame_type)
    if body_class is None or not isinstance(frame.body, body_class):
        raise Cd11FormatError(
            f"frame type {frame.header.frame_type} cannot carry a {type(frame.body).__name__}",
            field="frame type",
            offset=0,
        )
    body = Writer(HEADER_SIZE)
    frame.body.write(body)
    h = frame.header
    w = Writer()
    w.i32(h.frame_type, "frame type")
    w.i32(HEADER_SIZE + len(body.out), "trailer offset")
    w.text(h.creator, 8, "frame creator")
    w.text(h.destination, 8, "frame destination")
    w.u64(h.sequence, "sequence number")
    w.i32(h.series, "series")
    w.raw(body.out)
    return bytes(w.out)


def encode_frame(frame: Frame) -> bytes:
    """The frame's bytes with a freshly computed CRC-64 (the trailer's ``crc`` is ignored)."""
    return append_trailer(encode_signed_part(frame), frame.trailer.auth_key_id, frame.trailer.auth_value)


def append_trailer(signed_part: bytes, auth_key_id: int, auth_value: bytes) -> bytes:
    """A whole frame from its encoded header and body: the authentication fields, then the CRC-64.

    Apart from ``encode_frame`` so a signer can sign the very bytes it encoded without encoding twice.
    """
    w = Writer()
    w.raw(signed_part)
    w.u32(auth_key_id, "frame authentication key id")
    w.sized(bytes(auth_value), "frame authentication value")
    w.u64(crc64(w.out), "comm verification")
    return bytes(w.out)


def build_data_frame(
    channels: list | tuple,
    *,
    creator: str,
    sequence: int,
    nominal_time_ns: int,
    frame_time_length_ms: int = 10_000,
    destination: str = "0",
    series: int = 0,
) -> Frame:
    """An unsigned data frame from subframes (see data.build_subframe); the trailer is left empty."""
    header = FrameHeader(FrameType.DATA, creator, destination, sequence, series)
    return Frame(header, DataBody(nominal_time_ns, tuple(channels), frame_time_length_ms))
