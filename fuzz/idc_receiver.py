"""The IDC receiver's sans-I/O core (idc/protocol.py) over arbitrary sequences of messages, without sockets.

The input is a script: send a frame from a pool of real signed frames (honest ones, duplicates, replays,
forgeries, and frames breaking every admission rule), send it with bytes changed (CRC made right again or
not), send raw bytes or a multi-part message, on one of three connections; let time pass; settle the
accepted frames (the commit succeeding or failing); poll the sessions; lose a connection. The core runs
with the receiver's own frame checker (signatures really verified, in process) and an in-memory store.

Invariants (a broken one is a bug, whatever the exception):
- nothing raises out of the core, and no rejection comes from an unexpected exception;
- every rejection is counted under a configured station or the one label for strangers, never a name
  taken from the input;
- nothing forged is accepted: a frame from a station that must sign is accepted only if its signed
  content is that of a frame its key signed;
- everything accepted can be archived: every data channel passes the SDS archive's split (its day files
  inside the archive) and the miniSEED packer takes every piece (door and packer agree on the limits);
- an acknack covers only what the durable store holds (nothing acknowledged is lost in a crash).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fuzz.draw import Draw
from gci_link.cd11 import (
    AcknackBody,
    AlertBody,
    CommandRequestBody,
    CommandResponseBody,
    ConnectionBody,
    DataBody,
    Frame,
    FrameHeader,
    FrameType,
    Ims2MessageBody,
    OptionBody,
    Transformation,
    build_data_frame,
    build_subframe,
    crc64,
    decode_frame,
    encode_frame,
    sign_all_channels,
    sign_frame,
)
from gci_link.gaplist import GapList, seq_from_signed
from gci_link.io.mseed2 import header_id, pack_records
from gci_link.io.sds import SdsArchive, Segment
from gci_link.keys import CertificateAuthority, StationSigner, TrustStore
from idc.actions import CommitFailure, Peer, Reject, Send, StationBatch
from idc.checker import FrameChecker
from idc.config import DataLimits, IdcConfig, StationPolicy
from idc.protocol import ReceiverProtocol
from idc.verify import signed_content
from idc.vocabulary import ANONYMOUS
from timeunits import NS_PER_DAY, NS_PER_S

STATIONS = {
    "STA1": StationPolicy("STA1", "XX", sites=("STA1A", "STA1B")),
    "STA2": StationPolicy("STA2", "XX", sites=("STA2A",)),
    "OPEN": StationPolicy("OPEN", "XX", require_signatures=False, sites=("OPENA",)),  # anyone can send
}
LABELS = {*STATIONS, ANONYMOUS}
PEERS = tuple(Peer(f"socket {i}", bytes([i])) for i in range(3))
MAX_STEPS = 48
LAST_OP = 8  # _step's operations are 0..LAST_OP
BASE_NS = time.time_ns() // (10 * NS_PER_S) * (10 * NS_PER_S)  # the keys are valid from about now


class HeldInMemory:
    """What the stations' durable stores hold, in memory (the receiver core's tests use it too)."""

    def __init__(self) -> None:
        self.gaps: dict[str, GapList] = {}
        self.frames: dict[tuple[str, int], bytes] = {}

    def gap_list(self, station: str) -> GapList:
        return GapList(self.gaps.get(station, GapList()).intervals())

    def raw_frame(self, station: str, seq: int) -> bytes | None:
        return self.frames.get((station, seq))

    def store(self, batch: StationBatch) -> None:
        self.gaps[batch.station] = GapList(batch.gaps.intervals())
        for seq, accepted in batch.frames.items():
            self.frames[batch.station, seq] = accepted.raw


def _signers(folder: Path) -> tuple[CertificateAuthority, dict[str, StationSigner]]:
    ca = CertificateAuthority.create(folder / "net")
    signers = {name: StationSigner.load(ca.issue(name).bundle) for name in ("STA1", "STA2")}
    signers["revoked"] = StationSigner.load(ca.issue("STA1").bundle)
    ca.revoke(signers["revoked"].key_id)
    other = CertificateAuthority.create(folder / "other")
    signers["stranger"] = StationSigner.load(other.issue("STA1").bundle)
    return ca, signers


_WORK = tempfile.TemporaryDirectory(prefix="fuzz-idc-receiver-")
_CA, _SIGNERS = _signers(Path(_WORK.name))
_CONFIG = IdcConfig(
    root=Path(_WORK.name) / "idc",
    trust_dir=_CA.trust_dir,
    connection_endpoint="inproc://fuzz",
    max_frame_bytes=64 * 1024,
    max_reported_gaps=4,  # so acknacks that leave older gaps out are reached
    limits=DataLimits(max_day_files=8),
    stations=STATIONS,
    verify_workers=0,
)
_TRUST = _CA.trust_store()
_CA.revoke(_SIGNERS["STA1"].key_id)
# what a reload may bring (ims idc reload): the same again, a station removed, STA1's honest key revoked
_RELOADS = (
    (_CONFIG, _TRUST),
    (dataclasses.replace(_CONFIG, stations={k: v for k, v in STATIONS.items() if k != "STA2"}), _TRUST),
    (_CONFIG, _CA.trust_store()),
)
_ARCHIVE = SdsArchive(Path(_WORK.name) / "sds")  # split_by_day only: it writes nothing


def _data(signer: str | None, creator: str, seq: int, *, site: str, channels: int = 1, rate: float = 40.0,
          samples: np.ndarray | None = None, time_ns: int | None = None, raw_samples: bool = False,
          channel_signer: str | None = None) -> bytes:
    slot = seq % 50  # the 10 s slot after BASE_NS - 600 s, and which ramp of samples
    start = BASE_NS - 600 * NS_PER_S + slot * 10 * NS_PER_S if time_ns is None else time_ns
    x = np.arange(400, dtype=np.int32) * (slot + 1) % 5000 - 2500 if samples is None else samples
    transformation = Transformation.NONE if raw_samples else Transformation.CANADIAN_BEFORE_SIGNING
    subs = [build_subframe(x, site=site, channel=f"BH{'ZNE'[i % 3]}" if channels <= 3 else f"{i:03d}",
                           location="00", time_ns=start, sample_rate=rate, transformation=transformation)
            for i in range(channels)]
    frame = build_data_frame(subs, creator=creator, sequence=seq, nominal_time_ns=start)
    channel_signer = channel_signer or signer
    if channel_signer is not None:
        key = _SIGNERS[channel_signer]
        frame = sign_all_channels(frame, key.key_id, key.sign)
    if signer is not None:
        frame = sign_frame(frame, _SIGNERS[signer].key_id, _SIGNERS[signer].sign)
    return encode_frame(frame)


_TAG = 0x5E55  # the session tag of every pool control frame (docs/link.md, "Replay protection")
_stamps = iter(range(BASE_NS, BASE_NS + 10**6))  # control-frame stamps, rising in pool order


def _control(signer: str | None, creator: str, kind: FrameType, body) -> bytes:
    """A link-control frame stamped near BASE_NS and tagged, as a station with replay protection sends
    it, so sessions open; an IMS 2.0 message frame (data) keeps sequence number 0."""
    if kind == FrameType.IMS2_MESSAGE:
        frame = Frame(FrameHeader(kind, creator, "IDC"), body)
    else:
        frame = Frame(FrameHeader(kind, creator, "IDC", next(_stamps), _TAG), body)
    if signer is not None:
        frame = sign_frame(frame, _SIGNERS[signer].key_id, _SIGNERS[signer].sign)
    return encode_frame(frame)


def _pool() -> list[bytes]:
    """Real frames, signed once: what honest stations send, and what an attacker can make of it."""
    midnight = BASE_NS // NS_PER_DAY * NS_PER_DAY
    honest = [_data("STA1", "STA1", seq, site="STA1A") for seq in range(1, 6)]
    return [
        _control("STA1", "STA1", FrameType.CONNECTION_REQUEST, ConnectionBody(station="STA1")),
        _control("STA2", "STA2", FrameType.CONNECTION_REQUEST, ConnectionBody(station="STA2")),
        _control(None, "OPEN", FrameType.CONNECTION_REQUEST, ConnectionBody(station="OPEN")),
        _control("STA1", "STA1", FrameType.CONNECTION_REQUEST, ConnectionBody(station="STA2")),
        _control(None, "NOPE", FrameType.CONNECTION_REQUEST, ConnectionBody(station="NOPE")),
        *honest,
        _data("STA1", "STA1", 1, site="STA1A"),  # seq 1 signed again: ECDSA differs, a duplicate still
        _data("STA1", "STA1", 1, site="STA1B"),  # seq 1 with other content: a replay
        _data("STA1", "STA1", 2**63 + 5, site="STA1B", channels=3),
        _data("STA2", "STA2", 1, site="STA2A"),
        _data("STA2", "STA2", 2, site="STA2A", channels=2),
        _data(None, "OPEN", 1, site="OPENA", raw_samples=True),
        _data(None, "OPEN", 2, site="OPENA", channels=3, raw_samples=True),
        _data(None, "OPEN", 3, site="OPENA", rate=1.0, samples=np.zeros(10, np.int32), raw_samples=True),
        _data(None, "STA1", 6, site="STA1A"),  # unsigned from a station that must sign
        _data("stranger", "STA1", 7, site="STA1A"),
        _data("revoked", "STA1", 8, site="STA1A"),
        _data("STA2", "STA1", 9, site="STA1A"),  # STA2's key on a frame naming STA1
        _data("STA1", "STA1", 10, site="STA1A", channel_signer="STA2"),
        _data("STA1", "STA1", 11, site="../.."),
        _data("STA1", "STA1", 12, site="STA2A"),
        _data("STA1", "STA1", 13, site="STA1A", time_ns=9_225_000_000 * NS_PER_S),
        _data("STA1", "STA1", 14, site="STA1A", time_ns=-3600 * NS_PER_S),
        _data("STA1", "STA1", 15, site="STA1A", rate=40_000.0),
        _data("STA1", "STA1", 16, site="STA1A", samples=np.array([0, 1 << 30] * 50, dtype=np.int32)),
        _data("STA1", "STA1", 17, site="STA1A", rate=1e-4, samples=np.zeros(10, dtype=np.int32),
              time_ns=BASE_NS - 3 * NS_PER_DAY),  # 27.8 hours
        _data("STA1", "STA1", 18, site="STA1A", channels=5, time_ns=midnight - 5 * NS_PER_S),
        _data(None, "NOPE", 1, site="NOPEA"),
        _control("STA1", "STA1", FrameType.IMS2_MESSAGE, Ims2MessageBody(b"BEGIN IMS2.0\nSTOP\n")),
        _control("STA1", "STA1", FrameType.OPTION_REQUEST, OptionBody(((1, b"1.1"),))),
        _control("STA1", "STA1", FrameType.ACKNACK, AcknackBody("STA1:0", 0, -1, ())),
        _control("STA2", "STA2", FrameType.ALERT, AlertBody(b"bye")),
        _control("STA1", "STA1", FrameType.COMMAND_RESPONSE,
                 CommandResponseBody("STA1", "STA1A", "BHZ", "00", BASE_NS, b"req", b"ok")),
        _control("STA1", "STA1", FrameType.COMMAND_REQUEST,  # not sent to an IDC
                 CommandRequestBody("STA1", "STA1A", "BHZ", "00", BASE_NS, b"req")),
        # last, so stamped above every other: STA1 connecting again after its first request was used
        _control("STA1", "STA1", FrameType.CONNECTION_REQUEST, ConnectionBody(station="STA1")),
    ]


POOL = _pool()
_SIGNED_BY_KEY = {  # signed content of every pool frame a station's own key signed, per station
    station: {signed_content(decode_frame(raw)) for raw in POOL
              if decode_frame(raw).header.creator == station and decode_frame(raw).trailer.auth_key_id
              == _SIGNERS[station].key_id}
    for station in ("STA1", "STA2")
}


class _Run:
    """One script's receiver core and what it has done, checked after every step."""

    def __init__(self) -> None:
        self.held = HeldInMemory()
        self.trust = _TRUST
        self.checker = FrameChecker(_TRUST, STATIONS, workers=0, limits=_CONFIG.limits)
        self.core = ReceiverProtocol(_CONFIG, self.checker.submit, self.held)
        self.now = BASE_NS + 60 * NS_PER_S

    def receive(self, message: list[bytes], peer: Peer) -> None:
        self.check_actions(self.core.receive(peer, message, self.now))

    def reload(self, config: IdcConfig, trust: TrustStore) -> None:
        """What the adapter does on a reload: settle, then the checker and the core take the new ones."""
        self.settle(commit_succeeds=True)
        self.checker.reconfigure(trust, config.stations)
        self.trust = trust
        self.check_actions(self.core.reconfigure(config, trust, self.now))
        assert set(self.core.sessions) <= set(config.stations), "a removed station's session lives on"

    def settle(self, commit_succeeds: bool) -> None:
        batches = self.core.take_batches()
        for batch in batches:
            _check_accepted(batch, self.trust, self.now)
        if commit_succeeds:
            for batch in batches:
                self.held.store(batch)
            actions = self.core.settled(batches, [])
        else:
            failures = [CommitFailure(b, self.held.gap_list(b.station), "fuzz") for b in batches]
            actions = self.core.settled([], failures)
        self.check_actions(actions)
        self.check_actions(self.core.poll(self.now))  # acknacks only once everything accepted is settled

    def check_actions(self, actions: list) -> None:
        for action in actions:
            if isinstance(action, Reject):
                assert action.error is None, f"unexpected exception: {action.error!r}"
                assert action.rejection.station in LABELS, f"label {action.rejection.station!r} from input"
            elif isinstance(action, Send):
                frame = decode_frame(action.frame)
                if isinstance(frame.body, AcknackBody):
                    self._check_acknack(action.station, frame.body)

    def _check_acknack(self, station: str, ack: AcknackBody) -> None:
        """Everything the acknack says was received is in the durable store."""
        lowest, highest = seq_from_signed(ack.lowest), seq_from_signed(ack.highest)
        if ack.highest < ack.lowest:
            return
        held = self.held.gap_list(station).intervals()
        start = lowest
        for gap_start, gap_end in sorted((seq_from_signed(a), seq_from_signed(b)) for a, b in ack.gaps):
            _assert_held(station, start, gap_start, held)
            start = max(start, gap_end)
        _assert_held(station, start, highest + 1, held)


def _assert_held(station: str, start: int, end: int, held: list[tuple[int, int]]) -> None:
    if start < end:
        assert any(a <= start and end <= b for a, b in held), (
            f"{station}: acknack covers [{start}, {end}) but the store holds {held}")


def _check_accepted(batch: StationBatch, trust: TrustStore, now_ns: int) -> None:
    for accepted in batch.frames.values():
        frame = accepted.checked.frame
        if STATIONS[batch.station].require_signatures:
            assert signed_content(frame) in _SIGNED_BY_KEY[batch.station], "a forged frame was accepted"
            trust.admit(frame.trailer.auth_key_id, now_ns)  # SignatureError: a revoked key's frame accepted
        if not isinstance(frame.body, DataBody):
            continue
        for sub in frame.body.channels:
            segment = Segment(
                "XX", sub.site, sub.location, sub.channel, sub.time_ns, sub.sample_rate, sub.samples
            )
            for path, piece in _ARCHIVE.split_by_day(segment):  # ValueError here: door and archive disagree
                assert os.path.commonpath([_ARCHIVE.root, path]) == str(_ARCHIVE.root), path
                ids = np.frombuffer(header_id(piece.network, piece.station, piece.location, piece.channel),
                                    dtype=np.uint8).reshape(1, 12)
                pack_records(piece.samples, np.array([0, len(piece.samples)]), np.array([piece.start_ns]),
                             np.array([piece.rate]), ids)


def _mutated(d: Draw) -> bytes:
    raw = bytearray(d.choice(POOL))
    for _ in range(d.int_in(1, 4)):
        raw[d.uint(2) % len(raw)] ^= d.uint(1) or 1
    if d.flag():  # make the CRC right again, so the change reaches the decoder and the rules
        raw[-8:] = crc64(bytes(raw[:-8])).to_bytes(8, "big")
    return bytes(raw)


def _step(run: _Run, d: Draw) -> None:
    op = d.int_in(0, LAST_OP)
    if op <= 3:
        peer = d.choice(PEERS)
        if op == 0:
            message = [d.choice(POOL)]
        elif op == 1:
            message = [_mutated(d)]
        elif op == 2:
            message = [d.bytes(d.int_in(0, 300))]
        else:
            message = [d.choice(POOL) for _ in range(d.int_in(0, 4))]
        run.receive(message, peer)
    elif op == 4:
        run.now += d.int_in(0, 300) * NS_PER_S + d.uint(2) * 1_000_000
    elif op == 5:
        run.settle(commit_succeeds=d.int_in(0, 3) > 0)
    elif op == 6:
        run.core.unreachable(d.choice(tuple(STATIONS)))
    elif op == 7:  # what the adapter does at shutdown
        run.settle(commit_succeeds=True)
        run.check_actions(run.core.close(run.now))
    else:
        run.reload(*d.choice(_RELOADS))


def check(data: bytes) -> None:
    d = Draw(data)
    run = _Run()
    for _ in range(MAX_STEPS):
        if d.pos >= len(data):
            break
        _step(run, d)
    run.settle(commit_succeeds=True)


# ---- seeds -------------------------------------------------------------------------------------------


class _Script:
    """Writes the bytes that ``Draw`` reads back as the given choices (the seeds' encoder)."""

    def __init__(self) -> None:
        self.out = bytearray()

    def int_in(self, value: int, low: int, high: int) -> _Script:
        span = high - low + 1
        self.out += (value - low).to_bytes(max(1, (span.bit_length() + 7) // 8 + 1), "big")
        return self

    def send(self, frame: int, peer: int = 0) -> _Script:
        return self.int_in(0, 0, LAST_OP).int_in(peer, 0, len(PEERS) - 1).int_in(frame, 0, len(POOL) - 1)

    def settle(self, commit_succeeds: bool = True) -> _Script:
        return self.int_in(5, 0, LAST_OP).int_in(1 if commit_succeeds else 0, 0, 3)

    def wait(self, seconds: int) -> _Script:
        return self.int_in(4, 0, LAST_OP).int_in(seconds, 0, 300).int_in(0, 0, 65535)

    def reload(self, variant: int) -> _Script:
        return self.int_in(LAST_OP, 0, LAST_OP).int_in(variant, 0, len(_RELOADS) - 1)


def _index(predicate: Callable[[Frame], bool]) -> list[int]:
    return [i for i, raw in enumerate(POOL) if predicate(decode_frame(raw))]


def seeds() -> list[bytes]:
    """Each station connecting and sending everything the pool has for it, settled after each frame;
    then the whole pool on one connection; then silence long enough to close every session."""
    out = []
    for station in STATIONS:
        connect = _index(lambda f, s=station: f.header.creator == s and f.header.frame_type
                         == FrameType.CONNECTION_REQUEST)[0]
        script = _Script().send(connect, peer=len(out) % len(PEERS))
        for i in _index(lambda f, s=station: f.header.creator == s):
            script.send(i, peer=len(out) % len(PEERS)).settle()
        out.append(bytes(script.out))
    everything = _Script().send(0).send(1).send(2)
    for i in range(len(POOL)):
        everything.send(i, peer=i % len(PEERS))
    out.append(bytes(everything.settle().wait(300).settle().out))
    # reloads: STA2 removed while connected, STA1's key revoked under an open session, then both back
    honest = _index(lambda f: f.header.creator == "STA1" and f.header.frame_type == FrameType.DATA)
    sta2 = _index(lambda f: f.header.creator == "STA2" and f.header.frame_type == FrameType.DATA)
    reloads = _Script().send(0).send(1, peer=1).send(honest[0]).send(sta2[0], peer=1).settle().reload(1)
    reloads.send(sta2[1], peer=1).reload(2).send(honest[1]).send(len(POOL) - 1).send(honest[2]).settle()
    out.append(bytes(reloads.reload(0).send(honest[3]).settle().out))
    return out


DICTIONARY: list[bytes] = []
