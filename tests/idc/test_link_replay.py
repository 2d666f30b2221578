"""Replayed link-control frames against a station and the receiver, joined in memory (issue 11, defect 2).

An eavesdropper on the GCI records a station's signed frames and sends them again from its own
connection while the station delivers a 60-frame run, one frame every 0.75 s. Whatever it replays,
every frame must be delivered and acknowledged within the 45 s of the run, and nothing of a session may
go to the attacker's connections (an acknack sent there is one the station never gets). All an attacker
may get is the untagged "no open session" alert, which answers any authentic frame on a connection
that has no session.
"""

from __future__ import annotations

import threading
import time

import pytest

from gci_link.cd11 import FrameType, decode_frame
from gci_link.keys import Role, TrustStore
from gci_link.link_session import SessionConfig
from gci_link.station_end.outbox import Outbox
from gci_link.station_end.sender import Sender
from idc.actions import Peer
from tests.idc.conftest import Running, make_config, signed
from tests.idc.in_memory_link import Link, seconds
from timeunits import NS_PER_S

FRAMES = 60
EVERY_NS = seconds(0.75)
REPLAY_EVERY_NS = seconds(0.5)
RUN_NS = seconds(45)


def station_config() -> SessionConfig:
    return SessionConfig(station="STA1", endpoints=("tcp://idc.example:8041",))


def captured(link: Link) -> None:
    """An earlier session of the station, recorded on the wire: connect, deliver, say goodbye."""
    station = link.start_station(station_config(), first_seq=1000, idc_keys=link.idc_keys)
    for _ in range(3):
        station.append()
    link.run(seconds(5))
    assert station.acked == {1000, 1001, 1002}
    station.session.shutdown(link.now)
    link.run(seconds(1))


def delivered_under(link: Link, replayed: bytes | None) -> int:
    """Frames of a 60-frame run acknowledged within 45 s while ``replayed`` arrives every 0.5 s, each
    time from another connection of the attacker (so no per-connection limit slows it down)."""
    station = link.start_station(station_config(), first_seq=2000, idc_keys=link.idc_keys)
    start = link.now
    replays = 0

    def tick(now: int) -> None:
        nonlocal replays
        elapsed = now - start
        if elapsed % EVERY_NS == 0 and station.next_seq < 2000 + FRAMES:
            station.append()
        if replayed is not None and elapsed % REPLAY_EVERY_NS == 0:
            replays += 1
            link.inject(Peer("router", f"attacker-{replays}".encode()), replayed)

    link.run(RUN_NS, tick)
    assert station.next_seq == 2000 + FRAMES
    assert station.session.counters.idc_frames_refused == 0  # every frame of the IDC believed
    return len(station.acked & set(range(2000, 2000 + FRAMES)))


def stolen(link: Link) -> list[tuple[str, int]]:
    """(type, session tag) of every frame the IDC sent the attacker but the untagged alert."""
    headers = [decode_frame(raw).header for raw in link.to_attacker]
    kinds = [(FrameType(h.frame_type).name, h.series) for h in headers]
    return [k for k in kinds if k != ("ALERT", 0)]


@pytest.fixture(params=[False, True], ids=["one-endpoint", "redirected"])
def link(request, keys, clock) -> Link:
    link = Link(keys, clock(), idc_signer=keys.idc)  # the IDC signs; the station checks (link.idc_keys)
    if request.param:
        link.idc.data_address = (0x7F000001, 8100)  # the station moves to a data connection
    captured(link)
    return link


def test_without_attack_every_frame_is_delivered(link):
    assert (delivered_under(link, None), link.to_attacker) == (FRAMES, [])


REPLAYED = [
    FrameType.ALERT, FrameType.CONNECTION_REQUEST, FrameType.OPTION_REQUEST, FrameType.ACKNACK, FrameType.DATA
]


@pytest.mark.parametrize("kind", REPLAYED, ids=lambda kind: kind.name.lower())
def test_replayed_frame_does_not_cut_the_station_off(link, kind):
    delivered = delivered_under(link, link.tap.last(kind))
    assert (delivered, stolen(link)) == (FRAMES, [])


# ---- the same attack over real sockets ------------------------------------------------------------


class TappedSender(Sender):
    """A station's sender whose every outgoing frame an eavesdropper also records."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tap: list[bytes] = []

    def _send(self, data: bytes, now: int, seq: int | None = None) -> bool:
        self.tap.append(data)
        return super()._send(data, now, seq)


def socket_station(run: Running, outbox: Outbox, keys) -> TappedSender:
    config = SessionConfig(station="STA1", endpoints=(run.receiver.connection_endpoint,),
                           backoff_base_ns=NS_PER_S // 10, backoff_cap_ns=NS_PER_S // 2)
    idc_keys = TrustStore.load(keys.ca.trust_dir, role=Role.IDC)
    return TappedSender(config, outbox, signer=keys.sta1, idc_keys=idc_keys, poll_interval_s=0.02)


@pytest.mark.timeout(60)
def test_replayed_alert_over_real_sockets_does_not_cut_the_station_off(tmp_path, keys):
    config = make_config(tmp_path / "idc", keys.ca.trust_dir, key_bundle=keys.idc_bundle)
    run = Running(config, keys.ca.trust_store(), time.time_ns)
    try:
        with Outbox(tmp_path / "earlier.db", 10**8, first_sequence=1000) as outbox:
            outbox.append("data", 0, lambda seq: signed(seq, keys))
            earlier = socket_station(run, outbox, keys)
            assert earlier.run_until_drained(20 * NS_PER_S)
        alert = next(raw for raw in reversed(earlier.tap) if raw[:4] == FrameType.ALERT.to_bytes(4, "big"))
        with Outbox(tmp_path / "outbox.db", 10**8, first_sequence=2000) as outbox:
            for _ in range(FRAMES):
                outbox.append("data", 0, lambda seq: signed(seq, keys))
            stop = threading.Event()
            attacker = threading.Thread(target=_replay_until, args=(run, alert, stop), daemon=True)
            attacker.start()
            try:
                station = socket_station(run, outbox, keys)
                station.run_until_drained(10 * NS_PER_S)
            finally:
                stop.set()
                attacker.join(5)
            assert outbox.stats().unacked_frames == 0
            assert station.counters.reconnects == 0
    finally:
        run.stop()


def _replay_until(run: Running, raw: bytes, stop: threading.Event) -> None:
    """Send ``raw`` every 50 ms, each time on a new connection to both of the receiver's sockets."""
    while not stop.wait(0.05):
        for endpoint in (run.receiver.connection_endpoint, run.receiver.data_endpoint):
            attacker = run.station(endpoint=endpoint)
            attacker.send(raw)
            attacker.close()
