"""Labels the receiver's modules, its log lines, its metrics and docs/idc-receiver.md must spell alike.

They are ``StrEnum``s, so a member is its string everywhere a string goes (log fields, SQLite rows,
Prometheus labels) and a typo is an AttributeError instead of a counter nobody reads.
"""

from __future__ import annotations

from enum import StrEnum


class RejectionKind(StrEnum):
    """Why a message was refused; one ``rejected:KIND`` counter and quarantine row per rejection."""

    FORMAT = "format"  # structure the codec cannot read, or values outside what the receiver takes
    CRC = "crc"
    OVERSIZED = "oversized"
    MULTIPART = "multipart"
    UNKNOWN_STATION = "unknown_station"
    BAD_CODE = "bad_code"  # a site, channel or location code outside the SEED alphabet or lengths
    FOREIGN_SITE = "foreign_site"  # a site the authenticated station is not configured to send
    TIME_WINDOW = "time_window"  # data dated too far in the past or the future of the receiver's clock
    DATA_LIMITS = "data_limits"  # a rate, span or day-file count the archive will not take
    FRAME_UNSIGNED = "frame_unsigned"
    FRAME_SIGNATURE = "frame_signature"
    FRAME_UNKNOWN_KEY = "frame_unknown_key"
    FRAME_REVOKED = "frame_revoked"
    FRAME_EXPIRED = "frame_expired"
    FRAME_NOT_YET_VALID = "frame_not_yet_valid"
    CREATOR_MISMATCH = "creator_mismatch"
    CHANNEL_SIGNATURE = "channel_signature"
    REPLAY = "replay"
    CONTROL_FRESHNESS = "control_freshness"  # a control frame not of the open session, or not stamped fresh
    NO_SESSION = "no_session"
    UNEXPECTED_TYPE = "unexpected_type"
    INTERNAL = "internal"  # an unexpected exception while handling the message, or its commit failed


class ChannelOutcome(StrEnum):
    """What verification concluded about one channel subframe's signature."""

    AUTHENTICATED = "authenticated"
    FAILED = "failed"
    UNSIGNED = "unsigned"
    UNVERIFIED = "unverified"  # signed with a key the trust store does not know, archived by the station's
    # ``unverified = "archive"`` policy (docs/keys.md); counted with the unsigned ones: not authenticated


class StationCounter(StrEnum):
    """Per-station event counters (``ims idc status``; one Prometheus family each, idc/metrics.py
    EVENT_FAMILIES); rejections are counted under :func:`rejected`."""

    FRAMES = "frames"  # data and IMS 2.0 frames made durable
    DUPLICATES = "duplicates"
    CONNECTIONS = "connections"
    CONNECT_RATE_LIMITED = "connect_rate_limited"
    COMMAND_RESPONSES = "command_responses"
    SEND_FAILED = "send_failed"
    SYNC_FAILED = "sync_failed"
    REJECTION_UNRECORDED = "rejection_unrecorded"  # a rejection the quarantine (or its log) refused
    UNVERIFIED_ARCHIVED = "unverified_archived"  # frames archived with a key the trust store does not know


class HandshakeFailure(StrEnum):
    """Why ZeroMQ refused a connection before any message (idc/handshakes.py); one
    ``handshake_failed:REASON`` counter each, under the ANONYMOUS station: the peer is not known yet."""

    CRYPTOGRAPHIC = "cryptographic"  # a CurveZMQ box did not open: the client has another server key
    MECHANISM_MISMATCH = "mechanism_mismatch"  # one side speaks CurveZMQ, the other plaintext
    AUTH = "auth"  # the ZAP handler refused the client key (it logs the key)
    PROTOCOL = "protocol"  # any other ZMTP violation
    NO_DETAIL = "no_detail"  # a system error during the handshake


def handshake_failed(reason: HandshakeFailure) -> str:
    """The counter of failed handshakes for one reason."""
    return f"handshake_failed:{reason}"


STATUS_FLAG_PREFIX = "status:"


def status_flag(name: str) -> str:
    """The counter of archived frames in which any channel carried the CD-1.1 status flag ``name``."""
    return f"{STATUS_FLAG_PREFIX}{name}"


def rejected(kind: RejectionKind) -> str:
    """The counter of rejections of one kind."""
    return f"rejected:{kind}"


ANONYMOUS = "?"  # the station label of input that names no station the receiver could read
