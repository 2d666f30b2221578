"""Frames of the station end without sockets: the link-control frames the session asks for, encoded and
signed, and frames from the IDC checked and turned into session inputs.

Apart from the ZeroMQ adapter (``sender.py``) so that a test or a simulation can run a whole conversation
in memory: the station's session, the receiver's core, and whatever an attacker puts between them.
"""

from __future__ import annotations

from gci_link.cd11 import (
    AcknackBody,
    AlertBody,
    Cd11FormatError,
    CommandRequestBody,
    CommandResponseBody,
    ConnectionBody,
    Frame,
    FrameHeader,
    FrameType,
    OptionBody,
    decode_frame,
    encode_frame,
    encode_signed_frame,
    frame_signed_bytes,
)
from gci_link.cd11.frame import Body
from gci_link.keys import SignatureError, StationSigner, TrustStore
from gci_link.link_session import (
    Action,
    ControlHeader,
    LinkSession,
    SendAcknack,
    SendAlert,
    SendCommandResponse,
    SendConnectionRequest,
    SendOptionRequest,
)


def control_frame(action: Action, station: str, header: ControlHeader, signer: StationSigner | None) -> bytes:
    """The bytes of the link-control frame ``action`` asks for: stamped and tagged by ``header`` (in the
    header's sequence number and series, which the signature covers), signed when there is a signer."""
    kind: FrameType
    body: Body
    if isinstance(action, SendConnectionRequest):
        kind, body = FrameType.CONNECTION_REQUEST, ConnectionBody(station=station)
    elif isinstance(action, SendOptionRequest):
        kind, body = FrameType.OPTION_REQUEST, OptionBody(((1, action.value.encode("latin-1")),))
    elif isinstance(action, SendAcknack):
        kind = FrameType.ACKNACK
        body = AcknackBody(action.frame_set, action.lowest, action.highest, action.gaps)
    elif isinstance(action, SendAlert):
        kind, body = FrameType.ALERT, AlertBody(action.text.encode("latin-1", "replace"))
    elif isinstance(action, SendCommandResponse):
        req = action.request
        kind = FrameType.COMMAND_RESPONSE
        body = CommandResponseBody(station, req.site, req.channel, req.location, header.stamp, req.command,
                                   action.text.encode("utf-8"))
    else:
        raise TypeError(f"link session produced an unknown action {action!r}")
    frame = Frame(FrameHeader(kind, station, "0", header.stamp, header.tag), body)
    if signer is None:
        return encode_frame(frame)
    return encode_signed_frame(frame, signer.key_id, signer.sign)


def receive(session: LinkSession, raw: bytes, now_ns: int, idc_keys: TrustStore | None) -> None:
    """A frame from the IDC, start to end: decoded; when the station holds the IDC keys (``idc_keys``,
    the trust store's IDC certificates) authenticated and admitted by the session as fresh and of this
    session; then handed to the session. A frame refused anywhere is reported by the session (an
    ``IDC_FRAME_REFUSED`` event, counted) and changes nothing else: above all no acknack it carries
    marks a frame delivered."""
    session.received_bytes(len(raw), now_ns)
    try:
        frame = decode_frame(raw)
    except Cd11FormatError as exc:
        session.refuse_idc_frame(f"undecodable: {exc}")
        return
    if idc_keys is not None:
        problem = unauthentic(frame, raw, idc_keys, session.config.station, now_ns)
        if problem is not None:
            session.refuse_idc_frame(problem)
            return
        header = ControlHeader(frame.header.sequence, frame.header.series)
        if not session.admit(frame.header.frame_type, header, now_ns):
            return
    if not deliver(session, frame, now_ns):
        session.refuse_idc_frame(f"frame type {frame.header.frame_type} is not one an IDC sends a station")


def unauthentic(frame: Frame, raw: bytes, idc_keys: TrustStore, station: str, now_ns: int) -> str | None:
    """Why ``frame`` cannot be believed to come from an IDC of this network for ``station``, or None: it
    must name the station as destination and carry a valid signature by the key of an IDC certificate
    whose name is the frame's creator."""
    header = frame.header
    if header.destination != station:
        return f"addressed to {header.destination!r}, not to {station!r}"
    key_id = frame.trailer.auth_key_id
    if key_id == 0:
        return "not signed"
    try:
        signer = idc_keys.verify(key_id, frame_signed_bytes(raw), frame.trailer.auth_value, at_ns=now_ns)
    except SignatureError as exc:
        return f"signature: {exc}"
    if signer.station != header.creator:
        return f"signed with the key of IDC {signer.station!r} but its creator is {header.creator!r}"
    return None


def deliver(session: LinkSession, frame: Frame, now_ns: int) -> bool:
    """Hand a frame from the IDC to the session; False if no station expects a frame of its type."""
    body, kind = frame.body, frame.header.frame_type
    if kind == FrameType.CONNECTION_RESPONSE and isinstance(body, ConnectionBody):
        peer_set = f"{frame.header.creator}:{frame.header.destination}"
        session.on_connection_response(body.ip_address, body.port, peer_set, now_ns)
    elif kind == FrameType.OPTION_RESPONSE:
        session.on_option_response(now_ns)
    elif isinstance(body, AcknackBody):
        session.on_acknack(body.frame_set, body.lowest, body.highest, body.gaps, now_ns)
    elif isinstance(body, AlertBody):
        session.on_alert(body.text, now_ns)
    elif isinstance(body, CommandRequestBody):
        session.on_command_request(frame.header.sequence, body, now_ns)
    else:
        return False
    return True
