"""Everything the IDC checks before it believes a frame: CRC, structure, signatures, creator.

``check_frame`` either returns a decoded frame with the authentication outcome of every channel, or
raises ``Rejection`` whose ``kind`` is a short label for counters and whose message says what failed
and where. Policy (see docs/idc-receiver.md): a failed frame signature, a failed channel signature or
a missing signature where the station must sign rejects the whole frame, so nothing of it is archived.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from gci_link.cd11 import (
    Cd11FormatError,
    DataBody,
    Frame,
    FrameTrailer,
    channel_signed_bytes,
    decode_frame,
    frame_signed_bytes,
)
from gci_link.keys import Reason, SignatureError, TrustStore
from gci_link.receiver.config import StationConfig

AUTHENTICATED, FAILED, UNSIGNED = "authenticated", "failed", "unsigned"


@dataclass(frozen=True)
class ChannelCheck:
    channel: str  # SITE.CHAN.LOC
    outcome: str  # AUTHENTICATED, FAILED or UNSIGNED
    detail: str = ""


class Rejection(Exception):
    """A frame the receiver refuses; ``kind`` labels counters, the message explains."""

    def __init__(
        self,
        kind: str,
        detail: str,
        station: str = "?",
        seq: int | None = None,
        channels: tuple[ChannelCheck, ...] = (),
    ) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.station = station
        self.seq = seq
        self.channels = channels  # per-channel outcomes when channel signatures decided the rejection


@dataclass(frozen=True)
class CheckedFrame:
    frame: Frame
    station: str
    channels: tuple[ChannelCheck, ...]  # empty for non-data frames


def channel_label(site: str, channel: str, location: str) -> str:
    return f"{site}.{channel}.{location}"


def signed_content(frame: Frame) -> Frame:
    """The frame with every signature value blanked: ECDSA values differ each time the same data is
    signed, so an honest station that re-signs a resend must still count as a duplicate, not a replay."""
    body = frame.body
    if isinstance(body, DataBody):
        body = dataclasses.replace(
            body, channels=tuple(dataclasses.replace(c, auth_value=b"") for c in body.channels)
        )
    return dataclasses.replace(frame, body=body, trailer=FrameTrailer(frame.trailer.auth_key_id))


def decode(raw: bytes) -> Frame:
    """Decode with the CRC checked; any malformation becomes a Rejection naming field and offset."""
    try:
        return decode_frame(raw)
    except Cd11FormatError as exc:
        kind = "crc" if exc.field == "comm verification" else "format"
        creator = raw[8:16].rstrip(b"\0").decode("latin-1", "replace") if len(raw) >= 16 else "?"
        raise Rejection(kind, str(exc), station=creator or "?") from None


def _signature_kind(scope: str, exc: SignatureError) -> str:
    label = {
        Reason.BAD_SIGNATURE: "signature",
        Reason.UNKNOWN_KEY: "unknown_key",
        Reason.REVOKED: "revoked",
        Reason.EXPIRED: "expired",
        Reason.NOT_YET_VALID: "not_yet_valid",
        Reason.UNSIGNED: "unsigned",
    }
    return f"{scope}_{label[exc.reason]}"


def check_frame(
    raw: bytes, trust: TrustStore, stations: Mapping[str, StationConfig], now_ns: int
) -> CheckedFrame:
    """Decode and authenticate one received frame from a configured station."""
    frame = decode(raw)
    creator = frame.header.creator
    seq = frame.header.sequence
    station = stations.get(creator)
    if station is None:
        raise Rejection("unknown_station", f"creator {creator!r} is not a configured station", creator, seq)
    key_id = frame.trailer.auth_key_id
    if key_id == 0:
        if station.require_signatures and isinstance(frame.body, DataBody):
            raise Rejection(
                "frame_unsigned", "frame carries no signature but the station must sign", creator, seq
            )
    else:
        try:
            signer = trust.verify(
                key_id, frame_signed_bytes(raw), frame.trailer.auth_value, at_ns=now_ns
            ).station
        except SignatureError as exc:
            raise Rejection(_signature_kind("frame", exc), str(exc), creator, seq) from None
        if signer != creator:
            raise Rejection(
                "creator_mismatch",
                f"frame creator {creator!r} but key id {key_id} is the certificate of {signer!r}",
                creator,
                seq,
            )
    channels = _check_channels(frame, trust, station, now_ns) if isinstance(frame.body, DataBody) else ()
    failed = [c for c in channels if c.outcome == FAILED]
    if failed:
        first = failed[0]
        raise Rejection(
            "channel_signature",
            f"channel {first.channel}: {first.detail}"
            + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""),
            creator,
            seq,
            channels,
        )
    return CheckedFrame(frame, creator, channels)


def _check_channels(
    frame: Frame, trust: TrustStore, station: StationConfig, now_ns: int
) -> tuple[ChannelCheck, ...]:
    checks = []
    assert isinstance(frame.body, DataBody)
    for sub in frame.body.channels:
        label = channel_label(sub.site, sub.channel, sub.location)
        if sub.auth_key_id == 0:
            if station.require_signatures:
                checks.append(ChannelCheck(label, FAILED, "unsigned but the station must sign"))
            else:
                checks.append(ChannelCheck(label, UNSIGNED))
            continue
        try:
            signer = trust.verify(
                sub.auth_key_id, channel_signed_bytes(sub), sub.auth_value, at_ns=now_ns
            ).station
        except SignatureError as exc:
            checks.append(ChannelCheck(label, FAILED, str(exc)))
            continue
        if signer != station.name:
            checks.append(
                ChannelCheck(label, FAILED, f"key id {sub.auth_key_id} is the certificate of {signer!r}")
            )
        else:
            checks.append(ChannelCheck(label, AUTHENTICATED))
    return tuple(checks)
