"""A station against a hostile IDC, without sockets: frames from the IDC must be authentic, fresh and of
this session before the link session believes them; above all no acknack the station cannot
authenticate may mark a frame delivered (issue 11).

Frames come through ``link_frames.receive``, the path the sender takes for every frame from the IDC, into
a real ``LinkSession`` that has frames in flight.
"""

from __future__ import annotations

import random
import time

import pytest

from gci_link.cd11 import (
    AcknackBody,
    AlertBody,
    ConnectionBody,
    Frame,
    FrameHeader,
    FrameType,
    OptionBody,
    crc64,
    encode_frame,
    encode_signed_frame,
)
from gci_link.keys import CertificateAuthority, Role, StationSigner, TrustStore
from gci_link.link_session import (
    Acknowledge,
    Disconnect,
    EventKind,
    LinkSession,
    SendConnectionRequest,
    SendData,
    SessionConfig,
    State,
)
from gci_link.station_end.link_frames import receive
from gci_link.station_end.outbox import Outbox
from gci_link.station_end.sender import Sender
from tests.gci_link.station_end.test_sender import FakeIdc, Running, append, link_config, wait_for
from timeunits import NS_PER_S

S = NS_PER_S
NOW = time.time_ns() // S * S  # the station's clock at the start of each test (certificates are valid)
IN_FLIGHT = list(range(500, 510))
COVER_ALL = AcknackBody("STA1:0", 0, 10**12, ())  # what a forger claims: everything is delivered


class Network:
    """A CA with the IDC's key, a station's key, and an IDC key of a CA the station does not trust."""

    def __init__(self, root) -> None:
        ca = CertificateAuthority.create(root / "net")
        self.idc = StationSigner.load(ca.issue_idc().bundle)
        self.station = StationSigner.load(ca.issue("STA1").bundle)
        self.impostor = StationSigner.load(ca.issue("IDC").bundle)  # a *station* certificate named IDC
        other = CertificateAuthority.create(root / "other")
        self.stranger = StationSigner.load(other.issue_idc().bundle)
        self.idc_keys = TrustStore.load(ca.trust_dir, role=Role.IDC)


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> Network:
    return Network(tmp_path_factory.mktemp("keys"))


def idc_frame(kind: FrameType, body, *, tag: int, stamp: int, signer: StationSigner | None,
              creator: str = "IDC", destination: str = "STA1") -> bytes:
    """A frame as an IDC sends it: stamped, tagged and signed (or not, or by whoever ``signer`` is)."""
    frame = Frame(FrameHeader(kind, creator, destination, stamp, tag), body)
    return encode_frame(frame) if signer is None else encode_signed_frame(frame, signer.key_id, signer.sign)


class Station:
    """A link session that checks the IDC's frames, connected and with ``IN_FLIGHT`` frames sent."""

    def __init__(self, net: Network) -> None:
        self.net = net
        self.session = LinkSession(SessionConfig("STA1", ("tcp://idc:8041",)), NOW, rng=random.Random(5))
        self.session.start(NOW)
        self.poll(NOW)
        self.tag = self.session.control_header(NOW).tag  # what its connection request carried
        self.stamp = NOW  # the IDC's clock, stamping its frames
        self.give(FrameType.CONNECTION_RESPONSE, ConnectionBody("IDC", "IDC"))
        self.give(FrameType.OPTION_RESPONSE, OptionBody(((1, b"STA1"),)))
        assert self.session.state is State.DATA
        self.session.offer(IN_FLIGHT)
        sent = [a.seq for a in self.poll(NOW + 3 * S) if isinstance(a, SendData)]
        assert sent == IN_FLIGHT

    def poll(self, now: int) -> list:
        out = []
        while actions := self.session.poll(now):
            out += actions
            if not any(isinstance(a, SendData) for a in actions):
                break
        return out

    def honest(self, kind: FrameType, body, tag: int | None = None) -> bytes:
        self.stamp += S
        return idc_frame(kind, body, tag=self.tag if tag is None else tag, stamp=self.stamp,
                         signer=self.net.idc)

    def give(self, kind: FrameType, body) -> None:
        receive(self.session, self.honest(kind, body), self.stamp, self.net.idc_keys)

    def deliver(self, raw: bytes, now: int) -> list:
        receive(self.session, raw, now, self.net.idc_keys)
        return self.poll(now)


@pytest.fixture
def station(net) -> Station:
    return Station(net)


def acknowledged(actions: list) -> list[int]:
    return [seq for a in actions if isinstance(a, Acknowledge) for seq in a.seqs]


def refusals(session: LinkSession) -> list[str]:
    return [str(e.fields["reason"]) for e in session.take_events() if e.kind is EventKind.IDC_FRAME_REFUSED]


def forgeries(net: Network, tag: int, stamp: int) -> dict[str, bytes]:
    """Acknacks claiming every frame delivered, none of which a station whose session has ``tag`` can
    believe."""
    ack = FrameType.ACKNACK
    return {
        "unsigned": idc_frame(ack, COVER_ALL, tag=tag, stamp=stamp, signer=None),
        "signed by a station key": idc_frame(ack, COVER_ALL, tag=tag, stamp=stamp, signer=net.station,
                                             creator="STA1"),
        "station key named IDC": idc_frame(ack, COVER_ALL, tag=tag, stamp=stamp, signer=net.impostor),
        "IDC key of another CA": idc_frame(ack, COVER_ALL, tag=tag, stamp=stamp, signer=net.stranger),
        "tampered after signing": _raise_highest(
            idc_frame(ack, AcknackBody("STA1:0", 0, 499, ()), tag=tag, stamp=stamp, signer=net.idc)
        ),
        "for another station": idc_frame(ack, COVER_ALL, tag=tag, stamp=stamp, signer=net.idc,
                                         destination="STA2"),
        "of another session": idc_frame(ack, COVER_ALL, tag=tag ^ 1, stamp=stamp, signer=net.idc),
        "with no session": idc_frame(ack, COVER_ALL, tag=0, stamp=stamp, signer=net.idc),
    }


def _raise_highest(raw: bytes) -> bytes:
    """The acknack with ``highest`` raised by 2**31 after it was signed (the CRC made right again)."""
    frame = bytearray(raw)
    frame[36 + 20 + 8 + 4] ^= 0x80  # body start, frame set, lowest; then the 5th byte of highest
    frame[-8:] = crc64(bytes(frame[:-8])).to_bytes(8, "big")
    return bytes(frame)


@pytest.mark.parametrize(
    "name",
    ["unsigned", "signed by a station key", "station key named IDC", "IDC key of another CA",
     "tampered after signing", "for another station", "of another session", "with no session"],
)
def test_a_forged_acknack_marks_nothing_delivered(net, station, name):
    raw = forgeries(net, station.tag, station.stamp + 60 * S)[name]
    assert acknowledged(station.deliver(raw, station.stamp + 60 * S)) == []
    assert station.session.counters.idc_frames_refused == 1
    assert station.session.pending == len(IN_FLIGHT)
    (reason,) = refusals(station.session)
    expected = {
        "unsigned": "not signed",
        "signed by a station key": "unknown key",
        "station key named IDC": "unknown key",
        "IDC key of another CA": "unknown key",
        "tampered after signing": "bad signature",
        "for another station": "addressed to 'STA2'",
        "of another session": "belongs to another session",
        "with no session": "belongs to another session",
    }[name]
    assert expected in reason
    honest = station.honest(FrameType.ACKNACK, AcknackBody("STA1:0", 500, 509, ()))
    assert acknowledged(station.deliver(honest, station.stamp)) == IN_FLIGHT


def test_a_replayed_acknack_advances_nothing(net, station):
    """The IDC's acknack of an earlier session (captured, and kept from the station) covers frames still
    in flight, yet marks none; an acknack of this session sent again is refused too, and neither proves
    the link alive."""
    earlier = idc_frame(FrameType.ACKNACK, AcknackBody("STA1:0", 500, 509, ()), tag=station.tag ^ 0x40,
                        stamp=station.stamp + S, signer=net.idc)
    assert acknowledged(station.deliver(earlier, station.stamp + S)) == []
    first = station.honest(FrameType.ACKNACK, AcknackBody("STA1:0", 500, 504, ()))
    assert acknowledged(station.deliver(first, station.stamp)) == [500, 501, 502, 503, 504]
    heard = station.stamp
    assert acknowledged(station.deliver(first, heard + S)) == []
    reasons = refusals(station.session)
    assert reasons[0].startswith("belongs to another session") and reasons[1].startswith("replayed: stamp")
    idle = station.session.config.idle_timeout_ns
    assert any(isinstance(a, Disconnect) for a in station.poll(heard + idle))
    assert station.session.pending == 5


def test_idc_alerts_must_be_of_this_session_or_fresh(net, station):
    """A tagged alert ends the session; an untagged one (the IDC lost its session, e.g. it restarted)
    only if stamped within the window of the station's clock and after every IDC frame seen."""
    now = station.stamp

    def untagged(stamp: int) -> bytes:
        return idc_frame(FrameType.ALERT, AlertBody(b"no open session"), tag=0, stamp=stamp, signer=net.idc)

    for raw in (untagged(now - 301 * S), untagged(now - S)):  # out of the window; older than seen
        assert not any(isinstance(a, Disconnect) for a in station.deliver(raw, now))
    reasons = refusals(station.session)
    assert "outside the 300 s window" in reasons[0] and reasons[1].startswith("replayed: alert stamp")
    (lost,) = [a for a in station.deliver(untagged(now + S), now + S) if isinstance(a, Disconnect)]
    assert lost.reason == "IDC sent alert: no open session"


def test_a_connection_response_must_answer_this_request(net):
    session = LinkSession(SessionConfig("STA1", ("tcp://idc:8041",)), NOW, rng=random.Random(9))
    session.start(NOW)
    assert SendConnectionRequest() in session.poll(NOW)
    tag = session.control_header(NOW).tag
    body = ConnectionBody("IDC", "IDC")
    for other in (tag ^ 1, 0):
        raw = idc_frame(FrameType.CONNECTION_RESPONSE, body, tag=other, stamp=NOW, signer=net.idc)
        receive(session, raw, NOW, net.idc_keys)
        assert session.state is State.CONNECTING
    receive(session, idc_frame(FrameType.CONNECTION_RESPONSE, body, tag=tag, stamp=NOW, signer=net.idc),
            NOW, net.idc_keys)
    assert session.state is State.NEGOTIATING
    assert session.counters.idc_frames_refused == 2


# ---- the same over real sockets: a sender with a real outbox ------------------------------------------


def test_forged_acknacks_over_the_link_leave_the_outbox_unacknowledged(net, tmp_path):
    """An IDC that signs its frames (a fake one holding the IDC key) gets the frames but acknowledges
    none; forged acknacks pushed down the station's connection claim them all. The outbox must keep
    every frame unacknowledged until the honest acknack comes, and then have none left."""
    idc = FakeIdc(signer=net.idc)
    idc.honest_acks = False
    try:
        with Outbox(tmp_path / "outbox.db", 10**8, first_sequence=9720700) as outbox:
            seqs = append(outbox, 10)
            config = link_config(idc, window=16, response_timeout_ns=60 * S)  # all in flight, no reconnect
            sender = Sender(config, outbox, idc_keys=net.idc_keys, poll_interval_s=0.02)
            with Running(sender):
                wait_for(lambda: set(idc.received_seqs()) == set(seqs))
                forged = forgeries(net, idc.tag, time.time_ns())
                for raw in forged.values():
                    idc.push(raw)
                wait_for(lambda: sender.counters.idc_frames_refused == len(forged))
                assert outbox.stats().unacked_frames == len(seqs)
                idc.honest_acks = True
                wait_for(lambda: outbox.stats().unacked_frames == 0)
    finally:
        idc.close()
