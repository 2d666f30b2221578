"""The ZeroMQ sender against a minimal fake IDC (two ROUTER sockets speaking real CD-1.1 via the codec).

Everything runs on 127.0.0.1 with real sockets; timeouts are scaled down and every wait is bounded.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import zmq
import zmq.auth

from gci_link.cd11 import (
    AcknackBody,
    CommandRequestBody,
    CommandResponseBody,
    ConnectionBody,
    Frame,
    FrameHeader,
    FrameType,
    OptionBody,
    build_data_frame,
    build_subframe,
    decode_frame,
    encode_frame,
    encode_signed_frame,
)
from gci_link.gaplist import GapList
from gci_link.keys import StationSigner
from gci_link.link_session import SessionConfig
from gci_link.station_end.outbox import Outbox
from gci_link.station_end.sender import CurveKeys, Sender
from hil.simclock import SimClock
from timeunits import NS_PER_S

pytestmark = pytest.mark.timeout(60)

STATION = "STA1"
T0 = 1_700_000_000 * NS_PER_S
LOCALHOST = 0x7F000001


def data_frame(seq: int) -> bytes:
    sub = build_subframe(list(range(seq % 50, seq % 50 + 200)), site=STATION, channel="BHZ",
                         time_ns=T0 + seq * 10 * NS_PER_S, sample_rate=20.0)
    return encode_frame(build_data_frame([sub], creator=STATION, sequence=seq,
                                         nominal_time_ns=T0 + seq * 10 * NS_PER_S))


def append(outbox: Outbox, n: int) -> list[int]:
    return [outbox.append("data", T0, data_frame) for _ in range(n)]


def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    end = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {timeout_s} s: {predicate.__doc__ or predicate}")
        time.sleep(0.01)


class FakeIdc:
    """A connection manager that redirects to a data consumer that stores, gap-lists and acknacks."""

    def __init__(self, ports: tuple[int, int] | None = None, *, gaps: GapList | None = None,
                 drop_once: frozenset[int] = frozenset(), curve_secret: bytes | None = None,
                 acknack_first: bool = True,
                 clock: Callable[[], int] = time.monotonic_ns,
                 signer: StationSigner | None = None) -> None:
        self.ctx = zmq.Context()
        self.clock = clock
        self.signer = signer  # an IDC key: frames are then stamped, tagged and signed as the IDC's are
        self.tag = 0  # of the station's last connection request
        self._stamp = 0
        self.honest_acks = True  # False: the fake acknowledges nothing (frames pushed with ``push`` still go)
        self.gaps = gaps if gaps is not None else GapList()
        self.drop_once = set(drop_once)
        self.arrivals: list[tuple[int, int, int]] = []  # (seq, clock ns, bytes)
        self.duplicates = 0
        self.connection_requests = 0
        self.option_requests: list[OptionBody] = []
        self.station_acknacks: list[AcknackBody] = []
        self.alerts: list[str] = []
        self.command_responses: list[CommandResponseBody] = []
        self.creators: set[str] = set()
        self.raw_frames: list[bytes] = []  # data frames exactly as received
        self.station = STATION  # whose frame set the acknacks report: the last connection request's
        self._peer: bytes | None = None
        self._heartbeats = acknack_first  # heartbeat from the option exchange on, or from the first data
        self._outgoing: list[bytes] = []
        self._lock = threading.Lock()
        self.connman, self.data = (self._router(curve_secret) for _ in range(2))
        if ports:
            self.connman.bind(f"tcp://127.0.0.1:{ports[0]}")
            self.data.bind(f"tcp://127.0.0.1:{ports[1]}")
            self.ports = ports
        else:
            self.ports = (self.connman.bind_to_random_port("tcp://127.0.0.1"),
                          self.data.bind_to_random_port("tcp://127.0.0.1"))
        self.endpoint = f"tcp://127.0.0.1:{self.ports[0]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _router(self, curve_secret: bytes | None) -> zmq.Socket:
        sock = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.setsockopt(zmq.LINGER, 0)
        if curve_secret is not None:
            sock.curve_server = True
            sock.curve_secretkey = curve_secret
        return sock

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.connman.close(0)
        self.data.close(0)
        self.ctx.term()

    def send_command(self, seq: int, text: str) -> None:
        body = CommandRequestBody(STATION, STATION, "BHZ", "", T0, text.encode())
        frame = Frame(FrameHeader(FrameType.COMMAND_REQUEST, "IDC", "0", seq), body)
        with self._lock:
            self._outgoing.append(encode_frame(frame))

    def push(self, raw: bytes) -> None:
        """Send ``raw`` as it is to the station's data connection (a forger on the link would)."""
        with self._lock:
            self._outgoing.append(raw)

    def received_seqs(self) -> list[int]:
        return [a[0] for a in self.arrivals]

    def _frame(self, kind: int, body: Any) -> bytes:
        if self.signer is None:
            return encode_frame(Frame(FrameHeader(kind, "IDC"), body))
        self._stamp = max(time.time_ns(), self._stamp + 1)
        frame = Frame(FrameHeader(kind, "IDC", self.station, self._stamp, self.tag), body)
        return encode_signed_frame(frame, self.signer.key_id, self.signer.sign)

    def _acknack(self) -> bytes:
        g = self.gaps
        body = AcknackBody(f"{self.station}:0", g.lowest, g.highest, tuple(g.gaps()))
        return self._frame(FrameType.ACKNACK, body)

    def _loop(self) -> None:
        poller = zmq.Poller()
        poller.register(self.connman, zmq.POLLIN)
        poller.register(self.data, zmq.POLLIN)
        next_heartbeat = time.monotonic()
        while not self._stop.is_set():
            ready = dict(poller.poll(20))
            if self.connman in ready:
                ident, raw = self.connman.recv_multipart()
                frame = decode_frame(raw)
                if frame.header.frame_type == FrameType.ALERT:  # a station stopping before it was answered
                    self.alerts.append(frame.body.text)
                    continue
                assert frame.header.frame_type == FrameType.CONNECTION_REQUEST
                self.connection_requests += 1
                self.creators.add(frame.header.creator)
                self.station = frame.header.creator
                self.tag = frame.header.series
                body = ConnectionBody(station="IDC", station_type="IDC", ip_address=LOCALHOST,
                                      port=self.ports[1])
                self._send_to(self.connman, [ident, self._frame(FrameType.CONNECTION_RESPONSE, body)])
            if self.data in ready:
                ident, raw = self.data.recv_multipart()
                self._peer = ident
                self._on_data_socket(ident, decode_frame(raw), raw)
            with self._lock:
                outgoing, self._outgoing = self._outgoing, []
            for raw in outgoing if self._peer is not None else ():
                self._send_to(self.data, [self._peer, raw])
            beating = self._peer is not None and self._heartbeats and self.honest_acks
            if beating and time.monotonic() >= next_heartbeat:
                next_heartbeat = time.monotonic() + 0.1
                self._send_to(self.data, [self._peer, self._acknack()])

    def _send_to(self, sock: zmq.Socket, parts: list) -> None:
        try:
            sock.send_multipart(parts)
        except zmq.ZMQError as exc:  # ROUTER_MANDATORY: the station closed that connection
            if exc.errno != zmq.EHOSTUNREACH:
                raise
            self._peer = None

    def _on_data_socket(self, ident: bytes, frame: Frame, raw: bytes) -> None:
        self.creators.add(frame.header.creator)
        kind, body = frame.header.frame_type, frame.body
        if kind == FrameType.OPTION_REQUEST:
            self.option_requests.append(body)
            self._send_to(self.data, [ident, self._frame(FrameType.OPTION_RESPONSE, body)])
        elif kind == FrameType.DATA:
            seq = frame.header.sequence
            if seq in self.drop_once:
                self.drop_once.discard(seq)
                return
            self._heartbeats = True
            self.arrivals.append((seq, self.clock(), len(raw)))
            self.raw_frames.append(raw)
            if not self.gaps.add(seq):
                self.duplicates += 1
            if self.honest_acks:
                self._send_to(self.data, [ident, self._acknack()])
        elif kind == FrameType.ACKNACK:
            self.station_acknacks.append(body)
        elif kind == FrameType.ALERT:
            self.alerts.append(body.text)
        elif kind == FrameType.COMMAND_RESPONSE:
            self.command_responses.append(body)


def link_config(idc: FakeIdc, **kw) -> SessionConfig:
    base = dict(station=STATION, endpoints=(idc.endpoint,), window=8, connect_timeout_ns=NS_PER_S // 2,
                response_timeout_ns=NS_PER_S, resend_after_ns=NS_PER_S // 5,
                backoff_base_ns=NS_PER_S // 10, backoff_cap_ns=NS_PER_S // 2, backlog_hold_ns=NS_PER_S // 5)
    base.update(kw)
    return SessionConfig(**base)


class Running:
    """A sender in its own thread; leaving the block stops it and waits for it."""

    def __init__(self, sender: Sender) -> None:
        self.sender = sender
        self.thread = threading.Thread(target=sender.run, daemon=True)

    def __enter__(self) -> Sender:
        self.thread.start()
        return self.sender

    def __exit__(self, *exc: object) -> None:
        self.sender.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def outbox(tmp_path):
    with Outbox(tmp_path / "outbox.db", 10**8, first_sequence=9720700) as box:
        yield box


@pytest.fixture
def idc():
    fake = FakeIdc()
    yield fake
    fake.close()


def test_handshake_redirect_data_and_acks(idc, outbox):
    seqs = append(outbox, 20)
    sender = Sender(link_config(idc), outbox, poll_interval_s=0.02)
    with Running(sender):
        wait_for(lambda: outbox.stats().unacked_frames == 0)
        assert sender.session.endpoint == f"tcp://127.0.0.1:{idc.ports[1]}"  # followed the redirect
    assert idc.connection_requests == 1
    assert idc.option_requests == [OptionBody(((1, STATION.encode()),))]
    assert sorted(idc.received_seqs()) == seqs and idc.duplicates == 0
    assert sender.counters.frames_acked == 20 and sender.counters.frames_sent == 20
    assert sender.counters.bytes_sent > sum(a[2] for a in idc.arrivals)  # data plus control frames
    assert idc.creators == {STATION}
    assert idc.station_acknacks[0] == AcknackBody("IDC:0", 0, -1, ())
    # the sender keeps one poller: sockets it closed (here the one the redirect replaced) leave it
    assert [item for item, _ in sender._poller.sockets] == [sender._wake_r]


def test_appended_frame_leaves_without_waiting_for_the_poll(idc, outbox):
    sender = Sender(link_config(idc), outbox, poll_interval_s=3600)  # the poll alone would never find it
    with Running(sender):
        wait_for(lambda: idc.station_acknacks)  # link up, sender idle in its hour-long wait
        seq = append(outbox, 1)[0]  # the outbox wakes the sender
        wait_for(lambda: outbox.stats().unacked_frames == 0)
    assert idc.received_seqs() == [seq]


def test_acknack_gap_triggers_a_resend(outbox):
    seqs = append(outbox, 6)
    idc = FakeIdc(drop_once=frozenset({seqs[2]}))
    try:
        sender = Sender(link_config(idc), outbox, poll_interval_s=0.02)
        with Running(sender):
            wait_for(lambda: outbox.stats().unacked_frames == 0)
        got = idc.received_seqs()
        assert sorted(got) == seqs and got[-1] == seqs[2]  # arrived last: the resend
        assert sender.counters.frames_resent == 1 and sender.counters.reconnects == 0
    finally:
        idc.close()


def test_shutdown_sends_alert(idc, outbox):
    sender = Sender(link_config(idc), outbox, poll_interval_s=0.02)
    with Running(sender):
        wait_for(lambda: idc.station_acknacks)
    wait_for(lambda: idc.alerts)
    assert idc.alerts == ["station shutting down"]


def test_command_request_answered_and_acknowledged(idc, outbox):
    seen = []

    def handler(request: CommandRequestBody) -> str:
        seen.append(request.command)
        return "calibration started"

    sender = Sender(link_config(idc), outbox, command_handler=handler, poll_interval_s=0.02)
    with Running(sender):
        wait_for(lambda: idc.station_acknacks)
        idc.send_command(41, "start calibration sine 1Hz")
        wait_for(lambda: idc.command_responses)
        wait_for(lambda: any(a.highest == 41 for a in idc.station_acknacks))
    (resp,) = idc.command_responses
    assert seen == [b"start calibration sine 1Hz"]
    assert resp.response == b"calibration started" and resp.request == b"start calibration sine 1Hz"
    assert resp.station == STATION and resp.channel == "BHZ"
    assert AcknackBody("IDC:0", 41, 41, ()) in idc.station_acknacks


def test_outage_backoff_backlog_drains_live_first_and_duplicates_are_harmless(outbox):
    clock = SimClock(T0, speed=10.0)
    idc = FakeIdc(clock=clock.now_ns)
    ports, gaps = idc.ports, idc.gaps
    # a cap so the backlog takes a while: 1000 B/s of link time is under 2 frames/s, 17/s of real time
    cfg = link_config(idc, bandwidth_bytes_per_s=1000, burst_bytes=600, window=4,
                      response_timeout_ns=2 * NS_PER_S, connect_timeout_ns=2 * NS_PER_S,
                      backoff_base_ns=2 * NS_PER_S, backoff_cap_ns=4 * NS_PER_S)
    sender = Sender(cfg, outbox, clock=clock.now_ns, poll_interval_s=0.02)
    first = append(outbox, 3)
    with Running(sender):
        wait_for(lambda: outbox.stats().unacked_frames == 0)
        idc.close()  # the IDC goes away; its gap list (its durable state) survives
        backlog = append(outbox, 12)
        wait_for(lambda: sender.counters.reconnects >= 2)  # dead link noticed, retried with back-off
        idc = FakeIdc(ports, gaps=gaps, clock=clock.now_ns)
        wait_for(lambda: idc.station_acknacks)  # link is up again
        live = append(outbox, 1)
        wait_for(lambda: outbox.stats().unacked_frames == 0, timeout_s=20)
    try:
        got = idc.received_seqs()
        assert sorted(got) == backlog + live and first[-1] < backlog[0]
        assert got.index(live[0]) <= 4  # new data overtakes the backlog
        backlog_order = [s for s in got if s in backlog]
        assert backlog_order == sorted(backlog_order)
        assert sender.counters.frames_acked == 16
        assert gaps.intervals() == [(first[0], live[0] + 1)]  # all 16, each stored once
        assert outbox.check() == []
    finally:
        idc.close()


@pytest.mark.parametrize("acknack_first", [True, False])
def test_duplicates_after_reconnect_are_harmless(outbox, acknack_first):
    idc = FakeIdc(acknack_first=acknack_first)
    seqs = append(outbox, 5)
    # the IDC stored everything before, but its acknacks were lost: a new connection starts with all
    # five unacknowledged. An IDC that announces its gap list first saves the resend; one that waits
    # for data gets five duplicates, which must change nothing.
    for s in seqs:
        idc.gaps.add(s)
    try:
        sender = Sender(link_config(idc), outbox, poll_interval_s=0.02)
        with Running(sender):
            wait_for(lambda: outbox.stats().unacked_frames == 0)
        assert sender.counters.frames_acked == 5
        # held backlog: the opening acknack saves all resends; a silent IDC gets duplicates until its
        # first acknack (which covers all five) reaches the station
        assert (idc.duplicates == 0) if acknack_first else (idc.duplicates >= 1)
        assert sender.counters.frames_sent == idc.duplicates
        assert idc.gaps.intervals() == [(seqs[0], seqs[-1] + 1)]
        assert outbox.ack(seqs) == 0  # already acknowledged exactly once, nothing left to change
    finally:
        idc.close()


def test_bandwidth_cap_measured_on_injected_time(outbox):
    clock = SimClock(T0, speed=5.0)  # a loaded machine's wake-up delays, stretched 20x, ate the cap
    idc = FakeIdc(clock=clock.now_ns)
    rate, burst = 3000, 700
    try:
        seqs = append(outbox, 40)
        frame_size = len(outbox.get(seqs[0]).frame)
        cfg = link_config(idc, bandwidth_bytes_per_s=rate, burst_bytes=burst, window=40,
                          response_timeout_ns=30 * NS_PER_S, connect_timeout_ns=10 * NS_PER_S)
        sender = Sender(cfg, outbox, clock=clock.now_ns, poll_interval_s=0.01)
        with Running(sender):
            wait_for(lambda: len(idc.arrivals) >= 30, timeout_s=30)
        arrivals = idc.arrivals[:30]
        span_s = (arrivals[-1][1] - arrivals[0][1]) / NS_PER_S
        total = sum(a[2] for a in arrivals[1:])
        # everything after the first frame fits the cap (one frame of debt allowed, one of jitter)
        assert total <= burst + rate * span_s + 2 * frame_size
        assert total >= 0.8 * rate * span_s  # and the cap is actually used
    finally:
        idc.close()


def test_wrong_curve_server_key_is_reported(tmp_path, outbox, caplog):
    keys = tmp_path / "keys"
    keys.mkdir()
    _, server_secret_file = zmq.auth.create_certificates(keys, "idc")
    wrong_public_file, _ = zmq.auth.create_certificates(keys, "impostor")
    _, station_secret_file = zmq.auth.create_certificates(keys, "station")
    _, server_secret = zmq.auth.load_certificate(server_secret_file)
    idc = FakeIdc(curve_secret=server_secret)
    try:
        curve = CurveKeys(station_secret_file, wrong_public_file)
        sender = Sender(link_config(idc), outbox, curve=curve, poll_interval_s=0.02)
        with caplog.at_level(logging.WARNING, logger="gci_link"), Running(sender):
            wait_for(lambda: sender.counters.reconnects >= 1)
        assert idc.connection_requests == 0
        failures = [r for r in caplog.records if "handshake never completed" in r.getMessage()]
        assert failures and "IDC server key" in failures[0].reason
        first = next(r for r in caplog.records if "handshake with the IDC failed" in r.getMessage())
        assert (first.station, first.endpoint) == (STATION, idc.endpoint)  # the session's log extras
    finally:
        idc.close()


def test_right_curve_keys_carry_data(tmp_path, outbox):
    keys = tmp_path / "keys"
    keys.mkdir()
    server_public_file, server_secret_file = zmq.auth.create_certificates(keys, "idc")
    _, station_secret_file = zmq.auth.create_certificates(keys, "station")
    _, server_secret = zmq.auth.load_certificate(server_secret_file)
    idc = FakeIdc(curve_secret=server_secret)
    try:
        seqs = append(outbox, 3)
        sender = Sender(link_config(idc), outbox, curve=CurveKeys(station_secret_file, server_public_file),
                        poll_interval_s=0.02)
        with Running(sender):
            wait_for(lambda: outbox.stats().unacked_frames == 0)
        assert sorted(idc.received_seqs()) == seqs
    finally:
        idc.close()



def test_a_decoder_bug_on_an_idc_frame_is_logged_and_ignored(idc, outbox, monkeypatch, caplog):
    """decode_frame has no catch-all any more (a parser bug surfaces in fuzzing); the sender's edge keeps the
    link alive whatever the IDC sends."""
    from gci_link.station_end import link_frames
    from gci_link.station_end import sender as sender_module

    def parser_bug(raw: bytes):
        raise IndexError("planted parser bug")

    sender = Sender(link_config(idc), outbox, poll_interval_s=0.02)
    monkeypatch.setattr(link_frames, "decode_frame", parser_bug)
    with caplog.at_level(logging.ERROR, logger=sender_module.__name__):
        sender._receive(b"\x00" * 64)
    assert "decoder bug" in caplog.text and "planted parser bug" in caplog.text


def test_a_huge_message_from_the_idc_never_reaches_the_station(idc, outbox):
    """A peer posing as the IDC (plaintext GCI) sends 4 MiB: ZeroMQ cuts that connection before the
    station holds the bytes, and the link comes back and delivers."""
    sender = Sender(link_config(idc), outbox, poll_interval_s=0.02)
    sizes: list[int] = []
    receive = sender._receive
    sender._receive = lambda raw: (sizes.append(len(raw)), receive(raw))[1]  # type: ignore[method-assign]
    with Running(sender):
        wait_for(lambda: idc.station_acknacks)
        idc.push(bytes(4 << 20))
        seqs = append(outbox, 3)
        wait_for(lambda: outbox.stats().unacked_frames == 0)
    assert set(seqs) <= set(idc.received_seqs())
    assert sizes and max(sizes) < 1 << 20, sizes


def test_an_outbox_refusing_acknowledgements_does_not_end_the_link(idc, outbox, monkeypatch, caplog):
    """A full station disk refused the commit of an acknowledgement; the exception ended the sender thread,
    and the link with it, while the daemon ran on (found by the full-disk field-fault test under load)."""
    real_ack = outbox.ack
    refused: list[object] = []

    def ack_on_a_full_disk(acked):
        if len(refused) < 3:
            refused.append(acked)
            raise sqlite3.OperationalError("database or disk is full")
        return real_ack(acked)

    monkeypatch.setattr(outbox, "ack", ack_on_a_full_disk)
    caplog.set_level(logging.INFO, logger="gci_link.station_end.sender")
    first = append(outbox, 5)
    sender = Sender(link_config(idc), outbox, poll_interval_s=0.02)
    with Running(sender):
        wait_for(lambda: len(refused) == 3)
        later = append(outbox, 5)
        wait_for(lambda: set(later) <= set(idc.received_seqs()))  # the link went on
        wait_for(lambda: outbox.stats().unacked_frames == 0)  # the refused ones recorded once it could
    assert sorted(idc.received_seqs()) == first + later and idc.duplicates == 0
    errors = [r for r in caplog.records if "acknowledgement not recorded" in r.getMessage()]
    assert len(errors) == 1 and errors[0].exc_info is None  # once per episode, no traceback
    assert any("recorded in the outbox again" in r.getMessage() for r in caplog.records)


def test_an_unexpected_error_in_a_sender_step_is_logged_and_the_link_goes_on(idc, outbox, monkeypatch,
                                                                               caplog):
    sender = Sender(link_config(idc), outbox, poll_interval_s=0.02)
    real_poll, failures = sender.session.poll, []

    def poll_with_a_bug(now_ns):
        if not failures:
            failures.append(now_ns)
            raise RuntimeError("a bug met by some input")
        return real_poll(now_ns)

    monkeypatch.setattr(sender.session, "poll", poll_with_a_bug)
    seqs = append(outbox, 5)
    with Running(sender):
        wait_for(lambda: outbox.stats().unacked_frames == 0)
    assert sorted(idc.received_seqs()) == seqs and sender.counters.loop_errors == 1
    assert any("sender step failed" in r.getMessage() and r.exc_info for r in caplog.records)
