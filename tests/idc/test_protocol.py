"""The receiver's protocol core driven with byte sequences alone: no sockets, no files, no clock.

Frames are real CD-1.1 frames signed with the test network's keys and checked by the receiver's own
FrameChecker (with no worker processes); what the stores hold is a dictionary.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.idc_receiver import HeldInMemory
from gci_link.cd11 import (
    AcknackBody,
    AlertBody,
    CommandRequestBody,
    ConnectionBody,
    Frame,
    FrameHeader,
    FrameType,
    Ims2MessageBody,
    OptionBody,
    decode_frame,
    encode_frame,
    frame_signed_bytes,
    sign_frame,
)
from gci_link.gaplist import GapList
from gci_link.keys import Role, StationSigner, TrustStore
from idc.actions import (
    CommitFailure,
    ConnectRateLimited,
    DuplicateReceived,
    Peer,
    Reject,
    Send,
    SessionClosedByStation,
    SessionEndedByReload,
    SessionOpened,
    SessionSilent,
)
from idc.checker import FrameChecker
from idc.config import StationPolicy
from idc.protocol import NOTICE_INTERVAL_S, ReceiverProtocol
from idc.vocabulary import RejectionKind
from tests.idc.conftest import (
    SIGNERS,
    TAG,
    connection_request,
    control,
    data_frame,
    make_config,
    samples_for,
    signed,
)
from tests.idc.test_server import _hostile
from timeunits import NS_PER_S

STATION_PEER = Peer("socket A", b"sta1")
OTHER_PEER = Peer("socket B", b"sta1-again")


class Driver:
    """The core as the adapter drives it, with every commit succeeding at once."""

    def __init__(self, keys, now_ns: int, signer: StationSigner | None = None, **config) -> None:
        self.config = make_config(Path("unused"), keys.ca.trust_dir, **config)
        self.held = HeldInMemory()
        self.checker = FrameChecker(
            keys.ca.trust_store(), self.config.stations, workers=0, limits=self.config.limits
        )
        self.core = ReceiverProtocol(self.config, self.checker.submit, self.held, signer)
        self.now = now_ns

    def receive(self, raw: bytes | list[bytes], peer: Peer = STATION_PEER) -> list:
        return self.core.receive(peer, raw if isinstance(raw, list) else [raw], self.now)

    def settle(self) -> list:
        batches = self.core.take_batches()
        for batch in batches:
            self.held.store(batch)
        return self.core.settled(batches, []) + self.core.poll(self.now)

    def connect(self, peer: Peer = STATION_PEER, station: str = "STA1") -> None:
        opened, response = self.receive(connection_request(station), peer)
        assert isinstance(opened, SessionOpened) and isinstance(response, Send)
        assert decode_frame(response.frame).header.frame_type == FrameType.CONNECTION_RESPONSE


def acknacks(actions: list) -> list[tuple[Peer, AcknackBody]]:
    return [
        (a.peer, decode_frame(a.frame).body)
        for a in actions
        if isinstance(a, Send) and a.kind == FrameType.ACKNACK
    ]


def rejected(actions: list) -> list[RejectionKind]:
    return [a.rejection.kind for a in actions if isinstance(a, Reject)]


def signed_control(keys, kind: FrameType, body) -> bytes:
    """A fresh control frame of STA1's session (``keys`` only says the test network's keys are loaded)."""
    return control("STA1", kind, body)


@pytest.fixture
def driver(keys, clock) -> Driver:
    return Driver(keys, clock())


def test_honest_session_is_answered_accepted_and_acknowledged_only_after_its_commit(driver, keys):
    opened, response = driver.receive(connection_request("STA1"))
    assert opened == SessionOpened("STA1", STATION_PEER.label, 0, -1)
    body = decode_frame(response.frame).body
    assert (response.peer, body.station, body.station_type, body.port) == (STATION_PEER, "IDC", "IDC", 0)
    assert acknacks(driver.core.poll(driver.now)) == [(STATION_PEER, AcknackBody("STA1:0", 0, -1, ()))]
    for seq in (1, 2, 4):
        assert driver.receive(signed(seq, keys)) == []
    assert driver.core.unsettled == 3 and driver.core.pending
    batch = driver.core.take_batches()[0]
    assert (batch.station, sorted(batch.frames)) == ("STA1", [1, 2, 4])
    assert [a.checked.channels[0].outcome for a in batch.frames.values()] == ["authenticated"] * 3
    driver.held.store(batch)
    assert driver.core.settled([batch], []) == []
    assert acknacks(driver.core.poll(driver.now)) == [(STATION_PEER, AcknackBody("STA1:0", 1, 4, ((3, 4),)))]
    assert driver.core.poll(driver.now) == []  # nothing new: the next acknack is the heartbeat


def test_connection_response_names_the_data_socket(driver):
    driver.core.data_address = (0x7F000001, 9000)
    _, response = driver.receive(connection_request("STA1"))
    body = decode_frame(response.frame).body
    assert (body.ip_address, body.port) == (0x7F000001, 9000)


def test_resend_is_a_duplicate_and_different_content_is_a_replay(driver, keys):
    driver.connect()
    driver.receive(signed(7, keys))
    assert driver.receive(signed(7, keys)) == [DuplicateReceived("STA1")]  # re-signed, still a duplicate
    assert rejected(driver.receive(signed(7, keys, samples=samples_for(99)))) == [RejectionKind.REPLAY]
    driver.settle()
    assert driver.receive(signed(7, keys)) == [DuplicateReceived("STA1")]  # now held by the store
    assert acknacks(driver.core.poll(driver.now))  # a duplicate means the station missed an acknack
    out = driver.receive(signed(7, keys, samples=samples_for(98)))
    reject, notice = out
    assert reject.rejection.kind == RejectionKind.REPLAY and reject.rejection.seq == 7
    assert decode_frame(notice.frame).body.text == "frame rejected: STA1 data #7: replay"
    assert [batch.frames for batch in driver.core.take_batches()] == [{}]  # nothing accepted


def test_every_hostile_frame_is_one_rejection_carrying_its_bytes(driver, keys):
    driver.connect()
    driver.receive(signed(2000, keys))  # held, so that a different frame 2000 is a replay
    driver.settle()
    for expected, raw in _hostile(keys):
        out = driver.receive(raw)
        assert [(a.rejection.kind, a.raw) for a in out if isinstance(a, Reject)] == [(expected, raw)]
        assert all(isinstance(a, Send) and a.kind is FrameType.ALERT for a in out[1:])  # notices, if any
        driver.now += 20 * NS_PER_S  # past the notices' rate limit
    assert driver.core.unsettled == 0
    assert driver.core.sessions["STA1"].gaps.intervals() == [(2000, 2001)]


def test_the_sender_of_a_refused_frame_hears_why_and_nothing_more(driver, keys):
    """A rejection notice (docs/link.md): an alert to the connection the frame came on, naming the frame and
    the kind of rejection, never its detail; tagged for the session when that is the session's connection;
    none for input naming no configured station; rationed per station."""
    driver.connect()
    other_ca_frame = encode_frame(data_frame(503, keys.stranger))  # STA1's name, another network's key
    reject, notice = driver.receive(other_ca_frame, OTHER_PEER)
    assert reject.rejection.kind == RejectionKind.FRAME_UNKNOWN_KEY
    assert (notice.peer, notice.station, notice.session) == (OTHER_PEER, "STA1", False)
    alert = decode_frame(notice.frame)
    assert alert.body.text == "frame rejected: STA1 data #503: frame_unknown_key"
    assert alert.header.series == 0  # not the session's connection: untagged
    reject, notice = driver.receive(encode_frame(data_frame(504, keys.revoked)))
    assert decode_frame(notice.frame).header.series == TAG  # on the session's own connection: its tag
    assert decode_frame(notice.frame).body.text == "frame rejected: STA1 data #504: frame_revoked"
    assert [type(a) for a in driver.receive(encode_frame(data_frame(505, keys.revoked)))] == [Reject, Send]
    rationed = driver.receive(encode_frame(data_frame(506, keys.revoked)))
    assert [type(a) for a in rationed] == [Reject]
    driver.now += int(NOTICE_INTERVAL_S * NS_PER_S)
    assert [type(a) for a in driver.receive(encode_frame(data_frame(507, keys.revoked)))] == [Reject, Send]
    stranger = driver.receive(encode_frame(data_frame(1, keys.sta1, creator="NOPE")))
    assert rejected(stranger) == [RejectionKind.UNKNOWN_STATION] and len(stranger) == 1


def test_unknown_station_gets_no_answer_and_no_session(driver):
    out = driver.receive(connection_request("NOPE"))
    assert rejected(out) == [RejectionKind.UNKNOWN_STATION] and not any(isinstance(a, Send) for a in out)
    assert "NOPE" not in driver.core.sessions


def test_frame_without_session_is_rejected_and_the_peer_told_to_reconnect(driver, keys):
    reject, alert = driver.receive(signed(1, keys))
    assert reject.rejection.kind == RejectionKind.NO_SESSION
    assert (alert.peer, alert.session) == (STATION_PEER, False)
    assert b"no open session" in decode_frame(alert.frame).body.message


def test_multipart_and_oversized_messages_are_refused_unread(driver, keys):
    raw = signed(1, keys)
    assert driver.core.frame_to_check([raw, raw]) is None
    (reject,) = driver.receive([raw[:10], raw[10:]])
    assert reject.rejection.kind == RejectionKind.MULTIPART
    assert reject.raw == raw[:10] + raw[10:74]  # the first 64 bytes of each part are quarantined
    assert rejected(driver.receive(bytes(driver.config.max_frame_bytes + 1))) == [RejectionKind.OVERSIZED]
    assert rejected(driver.receive([])) == [RejectionKind.MULTIPART]


def test_connection_requests_are_rate_limited_per_identity(driver):
    outcomes = [driver.receive(connection_request("STA1")) for _ in range(20)]
    admitted = [out for out in outcomes if isinstance(out[0], SessionOpened)]
    # the bucket runs in debt mode (gci_link.pacing): the burst, and one more that takes it below zero
    assert len(admitted) == driver.config.connect_burst + 1
    assert outcomes[len(admitted) :] == [[ConnectRateLimited(STATION_PEER.label)]] * (20 - len(admitted))
    assert isinstance(driver.receive(connection_request("STA1"), OTHER_PEER)[0], SessionOpened)
    driver.now += 2 * NS_PER_S  # the debt of one token paid back, and one token more
    assert isinstance(driver.receive(connection_request("STA1"))[0], SessionOpened)


def test_option_request_is_echoed_and_alert_closes_the_session(driver, keys):
    driver.connect()
    option = OptionBody(((1, b"STA1"),))
    (echo,) = driver.receive(signed_control(keys, FrameType.OPTION_REQUEST, option))
    assert echo.kind == FrameType.OPTION_RESPONSE and decode_frame(echo.frame).body == option
    assert driver.receive(signed_control(keys, FrameType.ALERT, AlertBody(b"bye"))) == [
        SessionClosedByStation("STA1", "bye")
    ]
    assert driver.core.sessions == {}
    assert rejected(driver.receive(signed(1, keys))) == [RejectionKind.NO_SESSION]


def test_unsigned_control_frames_of_a_signing_station_cannot_touch_its_session(driver):
    driver.connect()
    forged_alert = encode_frame(Frame(FrameHeader(FrameType.ALERT, "STA1"), AlertBody(b"bye")))
    assert rejected(driver.receive(forged_alert, OTHER_PEER)) == [RejectionKind.FRAME_UNSIGNED]
    forged_connect = encode_frame(
        Frame(FrameHeader(FrameType.CONNECTION_REQUEST, "STA1"), ConnectionBody(station="STA1"))
    )
    assert rejected(driver.receive(forged_connect, OTHER_PEER)) == [RejectionKind.FRAME_UNSIGNED]
    assert [peer for peer, _ in acknacks(driver.core.poll(driver.now))] == [STATION_PEER]


def test_acknacks_follow_the_connection_of_the_latest_fresh_control_frame(driver, keys):
    driver.connect()
    driver.settle()
    reject, alert = driver.receive(signed(1, keys), OTHER_PEER)  # data on a connection without the session
    assert (reject.rejection.kind, alert.peer, alert.session) == (RejectionKind.NO_SESSION, OTHER_PEER, False)
    assert decode_frame(alert.frame).header.series == 0  # untagged: no session is known for that connection
    driver.receive(signed_control(keys, FrameType.ACKNACK, AcknackBody("IDC:STA1")), OTHER_PEER)
    assert driver.receive(signed(1, keys), OTHER_PEER) == []  # the station moved its session there
    assert [peer for peer, _ in acknacks(driver.settle())] == [OTHER_PEER]
    driver.core.unreachable("STA1")  # the adapter could not deliver to OTHER_PEER
    driver.now += 55 * NS_PER_S  # a heartbeat is due, but nothing goes there until the station is heard
    assert acknacks(driver.core.poll(driver.now)) == []
    driver.receive(signed(2, keys), OTHER_PEER)
    assert [peer for peer, _ in acknacks(driver.settle())] == [OTHER_PEER]


def test_frames_to_the_station_are_stamped_tagged_and_signed_with_the_idc_key(keys, clock):
    driver = Driver(keys, clock(), signer=keys.idc)
    idc_keys = TrustStore.load(keys.ca.trust_dir, role=Role.IDC)
    _, response = driver.receive(connection_request("STA1"))
    (acknack,) = driver.core.poll(driver.now)
    stamps = []
    for raw in (response.frame, acknack.frame):
        frame = decode_frame(raw)
        assert (frame.header.creator, frame.header.destination, frame.header.series) == ("IDC", "STA1", TAG)
        assert idc_keys.verify(frame.trailer.auth_key_id, frame_signed_bytes(raw), frame.trailer.auth_value)
        stamps.append(frame.header.sequence)
    assert driver.now <= stamps[0] < stamps[1]


def test_replayed_or_foreign_control_frames_change_nothing(driver, keys):
    driver.connect()
    option = OptionBody(((1, b"STA1"),))
    request = signed_control(keys, FrameType.OPTION_REQUEST, option)
    assert [a.kind for a in driver.receive(request)] == [FrameType.OPTION_RESPONSE]
    assert rejected(driver.receive(request, OTHER_PEER)) == [RejectionKind.CONTROL_FRESHNESS]  # replayed
    other_session = control("STA1", FrameType.ALERT, AlertBody(b"bye"), tag=TAG + 1)
    (reject,) = driver.receive(other_session, OTHER_PEER)
    assert reject.rejection.kind == RejectionKind.CONTROL_FRESHNESS
    assert "control frame of another session" in reject.rejection.detail
    assert driver.receive(signed(1, keys)) == []  # the session is still there, on its connection
    assert [peer for peer, _ in acknacks(driver.settle())] == [STATION_PEER]


def test_connection_requests_must_be_stamped_fresh_and_tagged(driver, keys):
    request = connection_request("STA1")
    assert isinstance(driver.receive(request)[0], SessionOpened)
    assert rejected(driver.receive(request, OTHER_PEER)) == [RejectionKind.CONTROL_FRESHNESS]  # replayed
    driver.now += 301 * NS_PER_S  # the station's clock is now 301 s behind the receiver's
    alert, reject = driver.receive(connection_request("STA1", tag=77), OTHER_PEER)
    assert reject.rejection.kind == RejectionKind.CONTROL_FRESHNESS
    answer = decode_frame(alert.frame)
    assert (alert.peer, answer.header.series) == (OTHER_PEER, 77)  # tagged, so that station believes it
    assert b"-301 s from the IDC clock, outside \xc2\xb1300 s" in answer.body.message
    unstamped = encode_frame(sign_frame(
        Frame(FrameHeader(FrameType.CONNECTION_REQUEST, "STA1"), ConnectionBody(station="STA1")),
        keys.sta1.key_id, keys.sta1.sign,
    ))
    alert, reject = driver.receive(unstamped, OTHER_PEER)
    assert b"no session tag and stamp" in decode_frame(alert.frame).body.message
    assert driver.core.sessions["STA1"].tag == TAG  # still the first session


def test_a_station_without_fresh_control_keeps_the_older_rules(keys, clock):
    policy = StationPolicy("STA1", "XX", fresh_control=False, sites=("STA1A",))
    driver = Driver(keys, clock(), stations={"STA1": policy})
    unstamped = encode_frame(sign_frame(
        Frame(FrameHeader(FrameType.CONNECTION_REQUEST, "STA1"), ConnectionBody(station="STA1")),
        keys.sta1.key_id, keys.sta1.sign,
    ))
    assert isinstance(driver.receive(unstamped)[0], SessionOpened)
    assert driver.receive(signed(1, keys), OTHER_PEER) == []  # data moves the route, as before
    assert [peer for peer, _ in acknacks(driver.settle())] == [OTHER_PEER]


def test_silence_closes_the_session_with_an_alert(driver, keys):
    driver.connect()
    driver.settle()
    driver.now += 119 * NS_PER_S
    assert [kind for kind in (a.kind for a in driver.core.poll(driver.now))] == [
        FrameType.ACKNACK
    ]  # heartbeat
    driver.now += NS_PER_S
    silent, alert = driver.core.poll(driver.now)
    assert silent == SessionSilent("STA1", 120.0)
    assert alert.kind == FrameType.ALERT and b"120 s" in decode_frame(alert.frame).body.message
    assert driver.core.sessions == {}


def test_failed_commit_rejects_the_batch_and_takes_the_resend(driver, keys):
    driver.connect()
    driver.receive(signed(1, keys))
    driver.settle()
    raws = {seq: signed(seq, keys) for seq in (2, 3)}
    for raw in raws.values():
        driver.receive(raw)
    (batch,) = driver.core.take_batches()
    out = driver.core.settled([], [CommitFailure(batch, driver.held.gap_list("STA1"), "commit failed: disk")])
    assert [(a.rejection.kind, a.rejection.seq, a.raw) for a in out] == [
        (RejectionKind.INTERNAL, seq, raw) for seq, raw in raws.items()
    ]
    assert driver.core.sessions["STA1"].gaps.intervals() == [(1, 2)]
    assert driver.receive(raws[2]) == []  # the resend is new again
    assert driver.core.unsettled == 1


def test_a_closed_sessions_unsettled_frames_count_as_held_when_it_reconnects(driver, keys):
    driver.connect()
    driver.receive(signed(5, keys))
    driver.receive(signed_control(keys, FrameType.ALERT, AlertBody(b"bye")))
    opened, _ = driver.receive(connection_request("STA1"))
    assert (opened.lowest, opened.highest) == (5, 5)
    assert driver.receive(signed(5, keys)) == [DuplicateReceived("STA1")]
    assert acknacks(driver.settle())[0][1] == AcknackBody("STA1:0", 5, 5, ())


def test_ims2_message_frames_are_accepted_like_data(driver, keys):
    driver.connect()
    frame = Frame(FrameHeader(FrameType.IMS2_MESSAGE, "STA1", sequence=9), Ims2MessageBody(b"BEGIN IMS2.0\n"))
    assert driver.receive(encode_frame(sign_frame(frame, keys.sta1.key_id, keys.sta1.sign))) == []
    (batch,) = driver.core.take_batches()
    assert list(batch.frames) == [9]


def test_a_bug_becomes_an_internal_rejection_not_an_exception(keys, clock):
    def broken(raw: bytes, now_ns: int):
        raise KeyError("boom")

    core = ReceiverProtocol(make_config(Path("unused"), keys.ca.trust_dir), broken, HeldInMemory())
    (reject,) = core.receive(STATION_PEER, [connection_request("STA1")], clock())
    assert reject.rejection.kind == RejectionKind.INTERNAL and isinstance(reject.error, KeyError)


def test_close_alerts_every_open_session(driver):
    driver.connect()
    driver.connect(OTHER_PEER, "STA2")
    alerts = driver.core.close(driver.now)
    assert [(a.station, a.peer, a.kind) for a in alerts] == [
        ("STA1", STATION_PEER, FrameType.ALERT),
        ("STA2", OTHER_PEER, FrameType.ALERT),
    ]


# ---- arbitrary message sequences -----------------------------------------------------------------

HONEST = range(1, 7)


@pytest.fixture(scope="module")
def messages(keys) -> dict[str, bytes]:
    """The pool sequences are drawn from: honest frames, resends, replays, damage and garbage."""
    pool = {f"connect {n}": connection_request("STA1") for n in range(3)}  # each stamped later
    pool["connect_other"] = connection_request("STA2")
    for seq in HONEST:
        pool[f"frame {seq}"] = signed(seq, keys)
        pool[f"resend {seq}"] = signed(seq, keys)  # ECDSA: other signature values, same content
        pool[f"replay {seq}"] = signed(seq, keys, samples=samples_for(seq + 1000))
    good = pool["frame 1"]
    pool["flipped"] = good[:100] + bytes([good[100] ^ 1]) + good[101:]
    pool["truncated"] = good[: len(good) // 2]
    pool["garbage"] = np.random.default_rng(3).bytes(200)
    pool["alert"] = signed_control(keys, FrameType.ALERT, AlertBody(b"bye"))
    forged = data_frame(3, keys.sta1)
    pool["forged"] = encode_frame(
        dataclasses.replace(forged, trailer=dataclasses.replace(forged.trailer, auth_value=bytes(64)))
    )
    return pool


def covered(body: AcknackBody) -> set[int]:
    """Sequence numbers an acknack reports as held."""
    if body.highest < body.lowest:
        return set()
    missing = {seq for start, end in body.gaps for seq in range(start, end)}
    return set(range(body.lowest, body.highest + 1)) - missing


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_arbitrary_sequences_never_raise_and_acknowledge_only_what_is_held(keys, clock, messages, data):
    """Whatever arrives in whatever order: every rejection carries its message's bytes, an acknack covers
    only frames the store holds, the store holds only authentic frames of STA1 and never changes one,
    and the stored gap list names exactly the stored frames."""
    driver = Driver(keys, clock())
    names = sorted(messages)
    authentic = {seq: {messages[f"{what} {seq}"] for what in ("frame", "resend", "replay")} for seq in HONEST}
    # sessions open and batches settle often enough for sequences to reach past the first checks
    choices = [*names, "settle", "settle", "settle", "later"]
    steps = ["connect 0", *data.draw(st.lists(st.sampled_from(choices), min_size=1, max_size=40))]
    held: dict[int, bytes] = {}
    for step in [*steps, "settle"]:
        if step == "later":
            driver.now += 30 * NS_PER_S
            continue
        if step == "settle":
            out = driver.settle()
            stored = {seq: raw for (station, seq), raw in driver.held.frames.items() if station == "STA1"}
            assert held.items() <= stored.items()  # what was stored stays as it was
            held = stored
        else:
            out = driver.receive(messages[step], data.draw(st.sampled_from([STATION_PEER, OTHER_PEER])))
            assert all(action.raw == messages[step] for action in out if isinstance(action, Reject))
        for _, body in acknacks(out):
            assert covered(body) <= held.keys()
    assert set(driver.held.frames) <= {("STA1", seq) for seq in HONEST}
    for seq, raw in held.items():
        assert raw in authentic[seq]
    gaps = driver.held.gaps.get("STA1", GapList())
    assert {seq for start, end in gaps.intervals() for seq in range(start, end)} == held.keys()


def test_a_reload_ends_exactly_the_sessions_the_new_configuration_no_longer_allows(keys, clock, monkeypatch):
    """``reconfigure``: sessions opened with a key that is now unknown survive only where the station
    archives unverified frames; an unsigned session only where the station need not sign."""
    stations = {
        "STA1": StationPolicy("STA1", "XX", sites=("STA1A",), unverified="archive"),
        "STA3": StationPolicy("STA3", "XX", require_signatures=False, sites=("STA3A",)),
    }
    driver = Driver(keys, clock(), stations=stations)
    monkeypatch.setitem(SIGNERS, "STA1", keys.stranger)  # a key this trust store does not know
    driver.connect()
    driver.connect(OTHER_PEER, "STA3")  # in no SIGNERS: unsigned
    trust = keys.ca.trust_store()
    assert driver.core.reconfigure(driver.config, trust, driver.now) == []
    strict = {
        "STA1": dataclasses.replace(stations["STA1"], unverified="reject"),
        "STA3": dataclasses.replace(stations["STA3"], require_signatures=True),
    }
    out = driver.core.reconfigure(dataclasses.replace(driver.config, stations=strict), trust, driver.now)
    ended = {a.station: a.reason for a in out if isinstance(a, SessionEndedByReload)}
    assert ended == {
        "STA1": f"the key of its connection request: key id {keys.stranger.key_id}: unknown key "
                "(no certificate in the trust store)",
        "STA3": "the station must sign",
    }
    alerts = {a.station: (a.peer, decode_frame(a.frame).body.text) for a in out if isinstance(a, Send)}
    assert alerts["STA1"] == (STATION_PEER, "session ended: " + ended["STA1"])
    assert alerts["STA3"] == (OTHER_PEER, "session ended: the station must sign")
    assert driver.core.sessions == {}


def test_a_command_waits_until_the_station_is_heard_on_its_sessions_connection(driver):
    """Right after a Connection Request the station may be moving to the data endpoint: a command sent on
    the connection it came from would be lost, marked sent and never answered (seen under load)."""
    driver.core.data_address = (0x7F000001, 9000)
    driver.receive(connection_request("STA1"))
    request = CommandRequestBody("STA1", "", "", "", driver.now, b"status")
    assert driver.core.command_request("STA1", request, driver.now) is None
    driver.receive(control("STA1", FrameType.OPTION_REQUEST, OptionBody(((1, b"STA1"),))), OTHER_PEER)
    made = driver.core.command_request("STA1", request, driver.now)
    assert made is not None and made[1].peer == OTHER_PEER  # on the connection the station was heard on
    driver.receive(connection_request("STA1"))  # a new session: wait for the station again
    assert driver.core.command_request("STA1", request, driver.now) is None
