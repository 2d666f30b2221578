"""CD-1.1 codec: frames of every type, channel status, Canadian compression, CRC-64, signature scopes.

Decoding lets only Cd11FormatError out; encoding a decoded frame reproduces its bytes exactly.
"""

from __future__ import annotations

from .bodies import (
    MAX_IMS2_FRAME_BYTES,
    MAX_IMS2_MESSAGE_BYTES,
    AcknackBody,
    AlertBody,
    CommandRequestBody,
    CommandResponseBody,
    ConnectionBody,
    FrameType,
    Ims2MessageBody,
    OptionBody,
)
from .crc import crc64
from .data import AuthOffsetConvention, ChannelSubframe, DataBody, Transformation, build_subframe
from .errors import Cd11FormatError
from .frame import (
    Frame,
    FrameHeader,
    FrameTrailer,
    build_data_frame,
    decode_frame,
    encode_frame,
    frame_length,
)
from .signing import (
    channel_signed_bytes,
    encode_signed_frame,
    frame_signed_bytes,
    sign_all_channels,
    sign_channel,
    sign_frame,
)
from .status import ChannelStatus
from .timefmt import format_time, parse_time

__all__ = [
    "MAX_IMS2_FRAME_BYTES",
    "MAX_IMS2_MESSAGE_BYTES",
    "AcknackBody",
    "AlertBody",
    "AuthOffsetConvention",
    "Cd11FormatError",
    "ChannelStatus",
    "ChannelSubframe",
    "CommandRequestBody",
    "CommandResponseBody",
    "ConnectionBody",
    "DataBody",
    "Frame",
    "FrameHeader",
    "FrameTrailer",
    "FrameType",
    "Ims2MessageBody",
    "OptionBody",
    "Transformation",
    "build_data_frame",
    "build_subframe",
    "channel_signed_bytes",
    "crc64",
    "decode_frame",
    "encode_frame",
    "encode_signed_frame",
    "format_time",
    "frame_length",
    "frame_signed_bytes",
    "parse_time",
    "sign_all_channels",
    "sign_channel",
    "sign_frame",
]
