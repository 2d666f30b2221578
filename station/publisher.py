"""Turns a framer draft, or an IMS 2.0 message, into a signed CD-1.1 frame inside the outbox, under one
sequence number.

The sequence is allocated inside the outbox transaction and the frame is built and signed with it, so
a crash leaves either a complete signed frame or nothing, and no number is ever used twice.
"""

from __future__ import annotations

from gci_link.cd11 import (
    Frame,
    FrameHeader,
    FrameType,
    Ims2MessageBody,
    build_data_frame,
    encode_frame,
    encode_signed_frame,
    sign_all_channels,
)
from gci_link.keys import StationSigner
from gci_link.station_end.outbox import Outbox
from station.framer import FrameDraft

DATA_KIND = "data"


def publish(outbox: Outbox, draft: FrameDraft, *, creator: str, destination: str,
            signer: StationSigner | None) -> int:
    """Sign every channel and the frame (when a signer is given), store it, return its sequence."""

    def build(sequence: int) -> bytes:
        frame = build_data_frame(
            draft.subframes, creator=creator, destination=destination, sequence=sequence,
            nominal_time_ns=draft.nominal_time_ns, frame_time_length_ms=draft.frame_time_length_ms,
        )
        if signer is None:
            return encode_frame(frame)
        frame = sign_all_channels(frame, signer.key_id, signer.sign)
        return encode_signed_frame(frame, signer.key_id, signer.sign)

    return outbox.append(DATA_KIND, draft.nominal_time_ns, build)


def publish_message(outbox: Outbox, kind: str, nominal_time_ns: int, message: bytes, *, creator: str,
                    destination: str, signer: StationSigner | None) -> int:
    """Store one IMS 2.0 message as a (signed) type-100 frame under ``kind``; return its sequence."""

    def build(sequence: int) -> bytes:
        frame = Frame(FrameHeader(FrameType.IMS2_MESSAGE, creator, destination, sequence),
                      Ims2MessageBody(message))
        if signer is None:
            return encode_frame(frame)
        return encode_signed_frame(frame, signer.key_id, signer.sign)

    return outbox.append(kind, nominal_time_ns, build)
