"""The link session core without sockets: every decision of the station end, driven by fake time."""

from __future__ import annotations

import random

import pytest

from gci_link.link_session import (
    REJECTION_NOTICE,
    Acknowledge,
    Connect,
    Disconnect,
    EventKind,
    LinkSession,
    SendAcknack,
    SendAlert,
    SendConnectionRequest,
    SendData,
    SendOptionRequest,
    SessionConfig,
    State,
    data_endpoint,
)
from gci_link.pacing import Backoff, TokenBucket
from timeunits import NS_PER_S

S = NS_PER_S
WELL_KNOWN = "tcp://10.0.0.1:8041"


def config(**kw) -> SessionConfig:
    base = dict(station="STA1", endpoints=(WELL_KNOWN,), window=4, resend_after_ns=5 * S, backlog_hold_ns=0)
    base.update(kw)
    return SessionConfig(**base)


def of(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


def data_seqs(actions) -> list[int]:
    return [a.seq for a in of(actions, SendData)]


def drain(session: LinkSession, now: int, frame_bytes: int = 100) -> list:
    """Poll until the session releases no more data at ``now``, reporting each frame's bytes."""
    out = []
    while True:
        actions = session.poll(now)
        out += actions
        sent = of(actions, SendData)
        for _ in sent:
            session.sent_bytes(frame_bytes, now)
        if not sent:
            return out


def connected(cfg: SessionConfig | None = None, now: int = 0, **kw) -> LinkSession:
    session = LinkSession(cfg or config(**kw), now, rng=random.Random(1))
    session.start(now)
    session.poll(now)
    session.on_connection_response(0x0A000002, 8100, "IDC:0", now)
    session.poll(now)
    session.on_option_response(now)
    assert session.state is State.DATA
    return session


def test_handshake_follows_redirect_and_exchanges_options():
    session = LinkSession(config(), 0)
    session.start(0)
    first = session.poll(0)
    assert first == [Connect(WELL_KNOWN), SendConnectionRequest()]
    session.on_connection_response(0x0A000002, 8100, "IDC:0", 1)
    second = session.poll(1)
    assert second[:2] == [Connect("tcp://10.0.0.2:8100"), SendOptionRequest("STA1")]
    assert session.state is State.NEGOTIATING
    session.on_option_response(2)
    third = session.poll(2)
    assert session.state is State.DATA
    assert of(third, SendAcknack) == [SendAcknack("IDC:0", 0, -1, ())]  # empty set: lowest 0, highest -1


def test_data_endpoint_rules():
    assert data_endpoint(WELL_KNOWN, 0x7F000001, 9000) == "tcp://127.0.0.1:9000"
    assert data_endpoint("tcp://idc.example:8041", 0, 9000) == "tcp://idc.example:9000"
    assert data_endpoint(WELL_KNOWN, 0, 0) is None
    with pytest.raises(ValueError, match="not a usable TCP port"):
        data_endpoint(WELL_KNOWN, 0x7F000001, 0)
    with pytest.raises(ValueError, match="not tcp://"):
        data_endpoint("ipc:///tmp/x", 0, 9000)


def test_connect_timeout_backs_off_and_rotates_endpoints():
    cfg = config(endpoints=("tcp://a:1", "tcp://b:1"), connect_timeout_ns=10 * S, backoff_base_ns=2 * S)
    session = LinkSession(cfg, 0, rng=random.Random(7))
    session.start(0)
    session.poll(0)
    assert session.poll(10 * S - 1) == []
    lost = session.poll(10 * S)
    assert of(lost, Disconnect)[0].reason == "no connection response within 10 s"
    assert session.state is State.BACKOFF and session.counters.reconnects == 1
    wake = session.next_wakeup_ns(10 * S)
    assert 11 * S <= wake <= 12 * S  # first delay in [base/2, base]
    assert session.poll(wake - 1) == []
    assert session.poll(wake)[0] == Connect("tcp://b:1")


def test_window_limits_frames_in_flight_and_acks_advance_it():
    session = connected()
    session.offer(range(100, 110))
    out = drain(session, 1)
    assert data_seqs(out) == [100, 101, 102, 103]  # window of 4
    session.on_acknack("STA1:0", 100, 101, (), 2)
    out = drain(session, 2)
    assert of(out, Acknowledge) == [Acknowledge((100, 101))]
    assert data_seqs(out) == [104, 105]
    assert session.counters.frames_acked == 2 and session.pending == 8


def test_last_ack_latency_is_send_to_acknowledgement_of_the_newest_frame_acknowledged():
    session = connected()
    assert session.counters.last_ack_latency_ns is None
    session.offer([1, 2, 3])
    drain(session, 1 * S)  # all three handed to the socket at 1 s
    session.on_acknack("STA1:0", 1, 2, (), 3 * S)
    assert session.counters.last_ack_latency_ns == 2 * S
    session.on_acknack("STA1:0", 1, 2, (), 4 * S)  # nothing new acknowledged: the figure stays
    assert session.counters.last_ack_latency_ns == 2 * S
    session.on_acknack("STA1:0", 1, 3, (), 4 * S + 500_000_000)
    assert session.counters.last_ack_latency_ns == 3 * S + 500_000_000


def test_gap_is_resent_once_it_has_been_in_flight_long_enough():
    session = connected(resend_after_ns=5 * S)
    session.offer([1, 2, 3])
    drain(session, 0)
    # frame 2 missing at the IDC; too soon to call it lost
    session.on_acknack("STA1:0", 1, 3, ((2, 3),), 1 * S)
    assert data_seqs(drain(session, 1 * S)) == []
    session.on_acknack("STA1:0", 1, 3, ((2, 3),), 6 * S)
    out = drain(session, 6 * S)
    assert out == [SendData(2, resend=True)]
    assert session.counters.frames_resent == 1
    session.on_acknack("STA1:0", 1, 3, (), 7 * S)
    assert of(session.poll(7 * S), Acknowledge) == [Acknowledge((2,))]
    assert session.pending == 0


def test_acknack_for_another_station_changes_nothing():
    session = connected()
    session.offer([1])
    drain(session, 0)
    session.on_acknack("OTHER:0", 0, 10, (), 1)
    assert of(session.poll(1), Acknowledge) == [] and session.pending == 1


def test_duplicate_acknacks_are_idempotent():
    session = connected()
    session.offer([5, 6])
    drain(session, 0)
    session.on_acknack("STA1:0", 5, 6, (), 1)
    session.on_acknack("STA1:0", 5, 6, (), 2)
    acks = of(session.poll(2), Acknowledge)
    assert acks == [Acknowledge((5, 6))] and session.counters.frames_acked == 2


def test_live_frames_go_before_backlog_after_reconnect():
    session = LinkSession(config(window=100), 0, rng=random.Random(3))
    session.offer([1, 2, 3])  # waiting in the outbox at start-up: backlog
    session.start(0)
    session.poll(0)
    session.on_connection_response(0, 0, "IDC:0", 0)
    session.on_option_response(0)
    session.offer([4])  # made while the link is up: live
    assert data_seqs(drain(session, 0)) == [4, 1, 2, 3]


def test_backlog_waits_for_the_idcs_first_acknack_or_the_hold():
    session = LinkSession(config(window=100, backlog_hold_ns=2 * S), 0)
    session.offer([1, 2, 3])
    session.start(0)
    session.on_connection_response(0, 0, "IDC:0", 0)
    session.on_option_response(0)
    session.offer([4])
    assert data_seqs(drain(session, 0)) == [4]  # live goes at once
    assert session.next_wakeup_ns(0) == 2 * S
    session.on_acknack("STA1:0", 1, 2, (), 1 * S)  # the IDC already holds 1 and 2: no resend needed
    out = drain(session, 1 * S)
    assert of(out, Acknowledge) == [Acknowledge((1, 2))] and data_seqs(out) == [3]
    quiet = LinkSession(config(backlog_hold_ns=2 * S), 0)
    quiet.offer([1])
    quiet.start(0)
    quiet.on_connection_response(0, 0, "IDC:0", 0)
    quiet.on_option_response(0)
    assert data_seqs(drain(quiet, 2 * S - 1)) == []
    assert data_seqs(drain(quiet, 2 * S)) == [1]  # a silent IDC gets the backlog after the hold


def test_dead_link_requeues_unacked_frames_and_backs_off():
    session = connected(response_timeout_ns=30 * S, backoff_base_ns=1 * S)
    session.offer([10, 11])
    drain(session, 0)
    session.on_acknack("STA1:0", 10, 10, (), 1 * S)
    assert not of(session.poll(30 * S), Disconnect)  # 11 still in flight: a later acknack may cover it
    session.on_acknack("STA1:0", 10, 11, (), 2 * S)
    assert not of(session.poll(1 * S + 30 * S), Disconnect)  # all answered; nothing unanswered since
    session.offer([12, 14])
    assert data_seqs(drain(session, 40 * S)) == [12, 14]
    out = session.poll(70 * S)
    assert of(out, Disconnect)[0].reason == "no acknack within 30 s of sending data"
    # back in business: 12 and 14 are backlog, 13 arrives live and goes first
    wake = session.next_wakeup_ns(70 * S)
    session.poll(wake)
    session.on_connection_response(0, 0, "IDC:0", wake)
    session.on_option_response(wake)
    session.offer([13])
    assert data_seqs(drain(session, wake)) == [13, 12, 14]
    assert session.counters.frames_resent == 2


def test_idle_timeout_without_any_idc_frame():
    session = connected(idle_timeout_ns=130 * S, heartbeat_ns=55 * S)
    assert of(session.poll(55 * S), SendAcknack)  # heartbeat
    session.received_bytes(40, 100 * S)  # bytes alone prove nothing: garbage, or a refused frame
    session.on_acknack("STA1:0", 0, -1, (), 99 * S)  # a frame the session accepted does
    assert not of(session.poll(228 * S), Disconnect)
    assert of(session.poll(229 * S), Disconnect)[0].reason == "nothing received from the IDC for 130 s"


def test_heartbeat_at_least_once_a_minute():
    session = connected(heartbeat_ns=55 * S, idle_timeout_ns=10_000 * S)
    times = []
    for t in range(0, 600):
        session.received_bytes(1, t * S)
        if of(session.poll(t * S), SendAcknack):
            times.append(t)
    assert all(b - a <= 60 for a, b in zip(times, times[1:], strict=False)) and len(times) >= 10


def test_bandwidth_cap_holds_over_simulated_time():
    rate = 2_000  # bytes/s, a slow VSAT share
    session = connected(bandwidth_bytes_per_s=rate, burst_bytes=1_000, window=10_000)
    session.offer(range(1000))
    sent_bytes = 0
    frame = 700
    t = 0
    end = 600 * S
    while t < end:
        for a in session.poll(t):
            if isinstance(a, SendData):
                session.sent_bytes(frame, t)
                sent_bytes += frame
        session.received_bytes(1, t)  # keep the link alive
        session.on_acknack("STA1:0", 0, -1, (), t)
        t = max(t + 1, min(session.next_wakeup_ns(t), end))
    assert sent_bytes <= 1_000 + rate * 600 + frame
    assert sent_bytes >= rate * 600 * 0.95  # the cap is used, not just respected


def test_a_large_message_on_a_thin_link_is_not_resent_or_given_up_while_it_is_still_leaving():
    rate = 8_000  # bytes/s: a 64 kbit/s share, on which a 1 MB message takes about 125 s
    session = connected(bandwidth_bytes_per_s=rate, burst_bytes=1_000, resend_after_ns=20 * S,
                        response_timeout_ns=60 * S)

    def acknack(t: int, lowest: int = 0, highest: int = -1) -> list:
        session.received_bytes(60, t * S)
        session.on_acknack("STA1:0", lowest, highest, (), t * S)
        return session.poll(t * S)

    session.offer([7])
    (send,) = of(session.poll(0), SendData)
    session.data_sent(send.seq, 1_000_000, 0)
    for t in (30, 55, 110):  # the IDC's acknacks while the message is on its way: not covered yet
        assert data_seqs(acknack(t)) == [] and session.state is State.DATA
    assert of(acknack(126, 7, 7), Acknowledge) == [Acknowledge((7,))]
    session.offer([8])  # lost on the way this time: sent again 20 s after its last byte left
    (send,) = of(session.poll(130 * S), SendData)
    session.data_sent(send.seq, 1_000_000, 130 * S)
    assert data_seqs(acknack(180, 7, 7) + acknack(240, 7, 7)) == []
    assert of(acknack(276, 7, 7), SendData) == [SendData(8, True)]


def test_large_frames_in_flight_are_bounded_in_bytes_as_well_as_in_number():
    session = connected(window=64, window_bytes=3_000_000)
    session.offer(range(10, 16))
    sent = []
    for _ in range(10):
        for action in of(session.poll(0), SendData):
            session.data_sent(action.seq, 1_200_000, 0)
            sent.append(action.seq)
    assert sent == [10, 11, 12]  # 3.6 MB in flight: the next waits though 61 frames of window are left
    session.received_bytes(60, S)
    session.on_acknack("STA1:0", 10, 11, (), S)
    assert data_seqs(session.poll(S)) == [13]
    with pytest.raises(ValueError, match="byte window"):
        config(window_bytes=0)


def test_shutdown_sends_alert_then_closes():
    session = connected()
    session.shutdown(5, "maintenance")
    out = session.poll(5)
    assert out == [SendAlert("maintenance"), Disconnect("maintenance", graceful=True)]
    assert session.state is State.STOPPED and session.poll(10**12) == []


def test_idc_alert_triggers_reconnect():
    session = connected()
    session.on_alert("receiver restarting", 3)
    assert of(session.poll(3), Disconnect)[0].reason == "IDC sent alert: receiver restarting"
    assert session.state is State.BACKOFF


def test_a_rejection_notice_is_noted_and_counted_and_keeps_the_link():
    session = connected()
    session.on_alert(REJECTION_NOTICE + "STA1 data #7: frame_revoked", 3)
    assert of(session.poll(3), Disconnect) == [] and session.state is State.DATA
    assert list(session.rejections_by_idc) == ["STA1 data #7: frame_revoked"]
    assert session.counters.frames_rejected_by_idc == 1
    (event,) = [e for e in session.take_events() if e.kind is EventKind.REJECTED_BY_IDC]
    assert event.fields["reason"] == "STA1 data #7: frame_revoked"
    session.on_alert("receiver restarting", 4)  # any other alert still ends the connection
    session.poll(4)
    assert session.last_link_problem == "IDC sent alert: receiver restarting"


def test_backoff_grows_with_jitter_and_resets():
    b = Backoff(1 * S, 8 * S, random.Random(0))
    delays = [b.next_delay_ns() for _ in range(6)]
    ceilings = [1, 2, 4, 8, 8, 8]
    for d, c in zip(delays, ceilings, strict=True):
        assert c * S / 2 <= d <= c * S
    assert len(set(delays)) == len(delays)  # jittered
    b.reset()
    assert b.next_delay_ns() <= 1 * S


def test_token_bucket_debt_mode():
    bucket = TokenBucket(1000, 500, 0)
    assert bucket.ready_at(0) == 0
    bucket.charge(1500, 0)  # one big frame may overdraw
    ready = bucket.ready_at(0)
    assert S - 10 <= ready <= S + 10  # 1000 bytes of debt at 1000 B/s
    assert bucket.ready_at(ready) == ready
    with pytest.raises(ValueError, match="bandwidth cap"):
        TokenBucket(0, 1, 0)


def test_control_frames_are_stamped_increasing_and_tagged_per_connection():
    session = connected(now=5 * S)
    first, second, third = (session.control_header(t) for t in (10 * S, 10 * S, 9 * S))
    assert (first.stamp, second.stamp, third.stamp) == (10 * S, 10 * S + 1, 10 * S + 2)  # never twice
    assert 0 < first.tag < 1 << 31 and first.tag == second.tag == third.tag
    session.on_alert("bye", 11 * S)
    session.poll(100 * S)  # back-off over: a new connection request, with a new tag
    assert session.state is State.CONNECTING
    assert session.control_header(100 * S).tag not in (0, first.tag)
