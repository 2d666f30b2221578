"""Exactly which bytes channel- and frame-level signatures cover (spec §9), and filling them in.

The keys module signs and verifies through these functions without knowing the frame layout.
Channel scope: description through subframe count, padding included, as transmitted. For
transformation 2 (compressed after signing) the channel data in the scope is the uncompressed
samples in the subframe's data format, with the data size counting those bytes [inferred].
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from .data import ChannelSubframe, DataBody, Transformation, raw_bytes, write_signed_part
from .frame import Frame, append_trailer, encode_signed_part
from .wire import Writer


def channel_signed_bytes(sub: ChannelSubframe) -> bytes:
    """The bytes a channel signature covers (from subframe offset 8 up to the auth key id).

    A decoded subframe already holds them as received; one built or modified in memory is encoded.
    """
    if sub.signed_span is not None:
        return sub.signed_span
    w = Writer(8)
    after_signing = sub.transformation == Transformation.CANADIAN_AFTER_SIGNING
    data = raw_bytes(sub.samples, sub.data_format) if after_signing else None
    write_signed_part(w, sub, data)
    return bytes(w.out)


def frame_signed_bytes(frame: Frame | bytes | bytearray | memoryview) -> bytes:
    """The bytes a frame signature covers: [0, trailer offset), from a Frame or from received bytes."""
    if isinstance(frame, Frame):
        return encode_signed_part(frame)
    trailer = int.from_bytes(frame[4:8], "big", signed=True)
    if not 36 <= trailer <= len(frame):
        raise ValueError(f"trailer offset {trailer} outside a {len(frame)}-byte frame")
    return bytes(frame[:trailer])


def sign_channel(sub: ChannelSubframe, key_id: int, sign: Callable[[bytes], bytes]) -> ChannelSubframe:
    """A copy of ``sub`` marked signed, with ``sign(channel_signed_bytes)`` as its auth value."""
    marked = dataclasses.replace(sub, authentication=1, auth_key_id=key_id, auth_value=b"")
    return dataclasses.replace(marked, auth_value=bytes(sign(channel_signed_bytes(marked))))


def sign_frame(frame: Frame, key_id: int, sign: Callable[[bytes], bytes]) -> Frame:
    """A copy of ``frame`` with a frame-level signature (sign channels first: the frame covers them)."""
    value = bytes(sign(frame_signed_bytes(frame)))
    return dataclasses.replace(
        frame, trailer=dataclasses.replace(frame.trailer, auth_key_id=key_id, auth_value=value)
    )


def encode_signed_frame(frame: Frame, key_id: int, sign: Callable[[bytes], bytes]) -> bytes:
    """The bytes of ``frame`` with a frame-level signature: what ``encode_frame(sign_frame(...))`` gives,
    with the header and body encoded once and the signature taken over those very bytes."""
    signed_part = encode_signed_part(frame)
    return append_trailer(signed_part, key_id, bytes(sign(signed_part)))


def sign_all_channels(frame: Frame, key_id: int, sign: Callable[[bytes], bytes]) -> Frame:
    """A data frame whose every channel is signed with one key."""
    if not isinstance(frame.body, DataBody):
        raise TypeError("only data frames have channel signatures")
    channels = tuple(sign_channel(c, key_id, sign) for c in frame.body.channels)
    return dataclasses.replace(frame, body=dataclasses.replace(frame.body, channels=channels))
