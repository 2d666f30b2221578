"""Everything the IDC checks before it believes a frame: CRC, structure, signatures, creator.

``check_frame`` either returns a decoded frame with the authentication outcome of every channel, or
raises ``Rejection`` whose ``kind`` (a RejectionKind) labels counters and whose message says what failed
and where. Policy (see docs/idc-receiver.md): a failed frame signature, a failed channel signature or
a missing signature where the station must sign rejects the whole frame, so nothing of it is archived.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator, Mapping
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
from gci_link.keys import Reason, SignatureError, TrustStore, VerifyResult
from idc.admission import data_problem
from idc.config import DataLimits, StationPolicy
from idc.vocabulary import ANONYMOUS, ChannelOutcome, RejectionKind


@dataclass(frozen=True)
class ChannelCheck:
    channel: str  # SITE.CHAN.LOC
    outcome: ChannelOutcome
    detail: str = ""
    key_id: int = 0  # of an UNVERIFIED channel's signature


class Rejection(Exception):
    """A frame the receiver refuses; ``kind`` labels counters, the message explains."""

    def __init__(
        self,
        kind: RejectionKind,
        detail: str,
        station: str = ANONYMOUS,
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
    # key ids the trust store does not know, taken by the station's ``unverified = "archive"`` policy
    unverified_keys: tuple[int, ...] = ()


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
        kind = RejectionKind.CRC if exc.field == "comm verification" else RejectionKind.FORMAT
        # unreadable input names no station: one label for it all, never a name taken from its bytes
        raise Rejection(kind, str(exc), station=ANONYMOUS) from None


_FRAME_SIGNATURE_KINDS = {
    Reason.BAD_SIGNATURE: RejectionKind.FRAME_SIGNATURE,
    Reason.UNKNOWN_KEY: RejectionKind.FRAME_UNKNOWN_KEY,
    Reason.REVOKED: RejectionKind.FRAME_REVOKED,
    Reason.EXPIRED: RejectionKind.FRAME_EXPIRED,
    Reason.NOT_YET_VALID: RejectionKind.FRAME_NOT_YET_VALID,
    Reason.UNSIGNED: RejectionKind.FRAME_UNSIGNED,
}


@dataclass(frozen=True)
class Decoded:
    """A decoded frame from a configured station and the signatures it carries, not yet checked."""

    frame: Frame
    station: StationPolicy
    jobs: tuple[tuple[int, bytes, bytes], ...]  # (key id, signed bytes, value): frame first, then channels


Outcome = VerifyResult | SignatureError


def decode_for_checking(
    raw: bytes, stations: Mapping[str, StationPolicy], now_ns: int, limits: DataLimits
) -> Decoded:
    """Decode, name the station, check the data's admission rules (idc/admission.py) and list the
    signatures to verify; rejects what fails before any is verified."""
    frame = decode(raw)
    creator = frame.header.creator
    station = stations.get(creator)
    if station is None:  # a stranger's claimed name is no label: counted under ANONYMOUS, named in the reason
        raise Rejection(
            RejectionKind.UNKNOWN_STATION,
            f"creator {creator!r} is not a configured station",
            ANONYMOUS,
            frame.header.sequence,
        )
    if isinstance(frame.body, DataBody):
        problem = data_problem(frame.body, station, now_ns, limits)
        if problem is not None:
            raise Rejection(*problem, creator, frame.header.sequence)
    key_id = frame.trailer.auth_key_id
    if key_id == 0 and station.require_signatures:  # control frames too: a forged alert or connection
        # request would otherwise close or take over the real station's session
        raise Rejection(
            RejectionKind.FRAME_UNSIGNED,
            "frame carries no signature but the station must sign",
            creator,
            frame.header.sequence,
        )
    jobs = [(key_id, frame_signed_bytes(raw), frame.trailer.auth_value)] if key_id else []
    if isinstance(frame.body, DataBody):
        jobs += [
            (sub.auth_key_id, channel_signed_bytes(sub), sub.auth_value)
            for sub in frame.body.channels
            if sub.auth_key_id
        ]
    return Decoded(frame, station, tuple(jobs))


def _verify_all(trust: TrustStore, jobs: tuple[tuple[int, bytes, bytes], ...], now_ns: int) -> list[Outcome]:
    """Every signature's outcome, in order, checked here and now (check_frame's path)."""
    outcomes: list[Outcome] = []
    for key_id, data, value in jobs:
        try:
            outcomes.append(trust.verify(key_id, data, value, at_ns=now_ns))
        except SignatureError as exc:
            outcomes.append(exc)
    return outcomes


def conclude(decoded: Decoded, outcomes: list[Outcome]) -> CheckedFrame:
    """Apply the rejection policy to the signature outcomes, frame signature first."""
    frame, station = decoded.frame, decoded.station
    creator, seq = frame.header.creator, frame.header.sequence
    results = iter(outcomes)
    unverified: list[int] = []
    if frame.trailer.auth_key_id:
        outcome = next(results)
        if _unverified_taken(outcome, station):
            unverified.append(frame.trailer.auth_key_id)
        elif isinstance(outcome, SignatureError):
            raise Rejection(_FRAME_SIGNATURE_KINDS[outcome.reason], str(outcome), creator, seq)
        elif outcome.station != creator:
            raise Rejection(
                RejectionKind.CREATOR_MISMATCH,
                f"frame creator {creator!r} but key id {outcome.key_id} is the certificate of "
                f"{outcome.station!r}",
                creator,
                seq,
            )
    channels = _channel_checks(frame.body, station, results) if isinstance(frame.body, DataBody) else ()
    failed = [c for c in channels if c.outcome is ChannelOutcome.FAILED]
    if failed:
        first = failed[0]
        raise Rejection(
            RejectionKind.CHANNEL_SIGNATURE,
            f"channel {first.channel}: {first.detail}"
            + (f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""),
            creator,
            seq,
            channels,
        )
    unverified += [c.key_id for c in channels if c.outcome is ChannelOutcome.UNVERIFIED]
    return CheckedFrame(frame, creator, channels, tuple(dict.fromkeys(unverified)))


def _unverified_taken(outcome: Outcome, station: StationPolicy) -> bool:
    """Whether a signature is taken unverified: its key is unknown, and the station's policy archives
    such frames (for a migration period: never the default). Any other failure still rejects."""
    return (
        isinstance(outcome, SignatureError)
        and outcome.reason is Reason.UNKNOWN_KEY
        and station.archive_unverified
    )


def _channel_checks(
    body: DataBody, station: StationPolicy, outcomes: Iterator[Outcome]
) -> tuple[ChannelCheck, ...]:
    checks = []
    for sub in body.channels:
        if sub.auth_key_id == 0:
            label = channel_label(sub.site, sub.channel, sub.location)
            if station.require_signatures:
                checks.append(
                    ChannelCheck(label, ChannelOutcome.FAILED, "unsigned but the station must sign")
                )
            else:
                checks.append(ChannelCheck(label, ChannelOutcome.UNSIGNED))
            continue
        outcome = next(outcomes)
        if isinstance(outcome, VerifyResult) and outcome.station == station.name:
            checks.append(_authenticated(sub.site, sub.channel, sub.location))
            continue
        label = channel_label(sub.site, sub.channel, sub.location)
        if _unverified_taken(outcome, station):
            checks.append(ChannelCheck(label, ChannelOutcome.UNVERIFIED, str(outcome), sub.auth_key_id))
        elif isinstance(outcome, SignatureError):
            checks.append(ChannelCheck(label, ChannelOutcome.FAILED, str(outcome)))
        else:
            checks.append(
                ChannelCheck(
                    label,
                    ChannelOutcome.FAILED,
                    f"key id {sub.auth_key_id} is the certificate of {outcome.station!r}",
                )
            )
    return tuple(checks)


@functools.lru_cache(maxsize=65_536)
def _authenticated(site: str, channel: str, location: str) -> ChannelCheck:
    """The (immutable, so shared) outcome of an authenticated channel: the common case, made once."""
    return ChannelCheck(channel_label(site, channel, location), ChannelOutcome.AUTHENTICATED)


def check_frame(
    raw: bytes,
    trust: TrustStore,
    stations: Mapping[str, StationPolicy],
    now_ns: int,
    limits: DataLimits | None = None,
) -> CheckedFrame:
    """Decode and authenticate one received frame from a configured station."""
    decoded = decode_for_checking(raw, stations, now_ns, limits or DataLimits())
    return conclude(decoded, _verify_all(trust, decoded.jobs, now_ns))
