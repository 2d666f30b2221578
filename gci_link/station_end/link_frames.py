"""Frames of the station end without sockets: the link-control frames the session asks for, encoded and
signed, and frames from the IDC turned into session inputs.

Apart from the ZeroMQ adapter (``sender.py``) so that a test or a simulation can run a whole conversation
in memory: the station's session, the receiver's core, and whatever an attacker puts between them.
"""

from __future__ import annotations

from gci_link.cd11 import (
    AcknackBody,
    AlertBody,
    CommandRequestBody,
    CommandResponseBody,
    ConnectionBody,
    Frame,
    FrameHeader,
    FrameType,
    OptionBody,
    encode_frame,
    encode_signed_frame,
)
from gci_link.cd11.frame import Body
from gci_link.keys import StationSigner
from gci_link.link_session import (
    Action,
    LinkSession,
    SendAcknack,
    SendAlert,
    SendCommandResponse,
    SendConnectionRequest,
    SendOptionRequest,
)


def control_frame(action: Action, station: str, now_ns: int, signer: StationSigner | None) -> bytes:
    """The bytes of the link-control frame ``action`` asks for, signed when there is a signer."""
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
        body = CommandResponseBody(station, req.site, req.channel, req.location, now_ns, req.command,
                                   action.text.encode("utf-8"))
    else:
        raise TypeError(f"link session produced an unknown action {action!r}")
    frame = Frame(FrameHeader(kind, creator=station), body)
    if signer is None:
        return encode_frame(frame)
    return encode_signed_frame(frame, signer.key_id, signer.sign)


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
