"""Framer: UTC-grid frames cut by data time, gaps as short or second subframes, late data re-framed."""

from __future__ import annotations

import numpy as np
import pytest

from digitizer.packet import Packet
from gci_link.cd11 import ChannelStatus, channel_signed_bytes, decode_frame, frame_signed_bytes
from gci_link.keys import CertificateAuthority, StationSigner
from gci_link.station_end.outbox import Outbox
from station.acquisition import ChannelBuffer
from station.config import ChannelConfig
from station.framer import Framer
from station.publisher import publish
from timeunits import NS_PER_S

T0 = 1_700_000_000 * NS_PER_S  # on the 10-s grid
L = 10 * NS_PER_S


def _channel(name: str, rate: float) -> ChannelConfig:
    return ChannelConfig(digitizer="d", stream_id=name, site="TST", channel=name, location="",
                         sensor_type="seismic", calib=0.5, calper=1.0, sample_rate=rate)


def _packet(stream: str, start_ns: int, rate: float, values: np.ndarray, locked: bool = True) -> Packet:
    return Packet("SYS", stream, start_ns, rate, values.astype(np.int32), clock_locked=locked)


def _setup(rates: dict[str, float], lateness_s: float = 30.0):
    channels = [_channel(n, r) for n, r in rates.items()]
    buffers = {c.code: ChannelBuffer(c.code, lateness_budget_s=lateness_s) for c in channels}
    framer = Framer(channels, buffers, frame_length_s=10, lateness_budget_s=lateness_s,
                    status_for=lambda c: ChannelStatus.format1())
    return channels, buffers, framer


def _feed_seconds(buffer: ChannelBuffer, stream: str, rate: float, start_s: int, stop_s: int,
                  locked: bool = True) -> np.ndarray:
    """One packet per second; values encode the sample index since T0 so any loss is visible."""
    fed = []
    for s in range(start_s, stop_s):
        n = int(rate)
        values = np.arange(s * n, (s + 1) * n)
        buffer.ingest(_packet(stream, T0 + s * NS_PER_S, rate, values, locked))
        fed.append(values)
    return np.concatenate(fed)


def test_frames_on_grid_with_exact_samples_for_mixed_rates():
    channels, buffers, framer = _setup({"BHZ": 40.0, "HHZ": 100.0, "LHZ": 1.0})
    truth = {c.code: _feed_seconds(buffers[c.code], c.channel, c.sample_rate, 0, 35) for c in channels}
    drafts = framer.cut()
    assert [d.nominal_time_ns for d in drafts] == [T0, T0 + L, T0 + 2 * L]  # last window not complete
    for draft in drafts:
        assert {s.time_ns for s in draft.subframes} == {draft.nominal_time_ns}
        assert [s.time_length_ms for s in draft.subframes] == [10_000] * 3
    got = {c.code: np.concatenate([s.samples for d in drafts for s in d.subframes if s.channel == c.channel])
           for c in channels}
    for c in channels:
        assert np.array_equal(got[c.code], truth[c.code][: int(30 * c.sample_rate)])
    rest = framer.cut(final=True)
    assert [d.nominal_time_ns for d in rest] == [T0 + 3 * L]
    assert all(s.nsamp == 5 * s.sample_rate for s in rest[0].subframes)


def test_gap_gives_two_subframes_and_no_invented_samples():
    channels, buffers, framer = _setup({"BHZ": 20.0}, lateness_s=2.0)
    buffer = buffers["TST.BHZ."]
    _feed_seconds(buffer, "BHZ", 20.0, 0, 3)
    _feed_seconds(buffer, "BHZ", 20.0, 6, 25)  # seconds 3-5 never arrive
    (first, second) = framer.cut()[:2]
    subs = first.subframes
    assert [(s.time_ns, s.nsamp) for s in subs] == [(T0, 60), (T0 + 6 * NS_PER_S, 80)]
    assert subs[1].samples[0] == 6 * 20
    assert second.subframes[0].nsamp == 200


def test_dead_channel_does_not_hold_frames_beyond_lateness():
    channels, buffers, framer = _setup({"BHZ": 10.0, "BHN": 10.0}, lateness_s=5.0)
    _feed_seconds(buffers["TST.BHZ."], "BHZ", 10.0, 0, 40)
    _feed_seconds(buffers["TST.BHN."], "BHN", 10.0, 0, 12)  # stops at 12 s
    drafts = framer.cut()
    # window 2 (20-30 s) needs BHZ complete to 35 s; window 3 would need 45 s
    assert [d.nominal_time_ns for d in drafts] == [T0, T0 + L, T0 + 2 * L]
    assert [s.channel for s in drafts[1].subframes] == ["BHZ", "BHN"]
    assert drafts[1].subframes[1].nsamp == 20
    assert [s.channel for s in drafts[2].subframes] == ["BHZ"]


def test_channels_leaving_the_start_hold_one_by_one_give_one_frame_per_window():
    """At a start every channel holds its first packets for the lateness budget; interleaved blocks
    make the first channel leave the hold a block before the last. Cutting a window then without the
    channels still held would frame their samples again later ('cut again'), two frames per window."""
    rates = {"BHZ": 10.0, "BHN": 10.0, "BHE": 10.0}
    channels, buffers, framer = _setup(rates, lateness_s=30.0)  # BHZ starts with 31 s held: 3 windows
    drafts = []
    for s in range(0, 50):
        for name in rates:
            values = np.arange(s * 10, s * 10 + 10)
            buffers[f"TST.{name}."].ingest(_packet(name, T0 + s * NS_PER_S, 10.0, values))
            drafts += framer.cut()
    assert [d.nominal_time_ns for d in drafts] == [T0 + k * L for k in range(5)]
    for draft in drafts:
        assert [s.channel for s in draft.subframes] == ["BHZ", "BHN", "BHE"]
        assert all(s.nsamp == 100 for s in draft.subframes)
    assert framer.refills == 0


def test_channel_still_in_its_start_hold_goes_into_the_frame_when_lateness_expires():
    channels, buffers, framer = _setup({"BHZ": 10.0, "BHN": 10.0}, lateness_s=5.0)
    _feed_seconds(buffers["TST.BHN."], "BHN", 10.0, 0, 3)  # then silent: never leaves the hold by itself
    assert framer.cut() == []
    _feed_seconds(buffers["TST.BHZ."], "BHZ", 10.0, 0, 14)
    assert framer.cut() == []  # BHZ complete to 14 s, the budget runs to 15 s
    _feed_seconds(buffers["TST.BHZ."], "BHZ", 10.0, 14, 16)
    drafts = framer.cut()
    assert [d.nominal_time_ns for d in drafts] == [T0]
    assert [(s.channel, s.nsamp) for s in drafts[0].subframes] == [("BHZ", 100), ("BHN", 30)]


def test_backward_time_tear_is_framed_again_not_dropped():
    channels, buffers, framer = _setup({"BHZ": 10.0}, lateness_s=1.0)
    buffer = buffers["TST.BHZ."]
    _feed_seconds(buffer, "BHZ", 10.0, 0, 25)
    assert len(framer.cut()) == 2
    # GPS re-lock moves the digitizer clock back 12 s: new data stamped 13 s .. 40 s
    for s in range(13, 40):
        values = np.full(10, 7000 + s)
        buffer.ingest(_packet("BHZ", T0 + s * NS_PER_S, 10.0, values))
    drafts = framer.cut(final=True)
    nominal = [d.nominal_time_ns for d in drafts]
    assert nominal[0] == T0 + L  # the 10-20 s window again, for the re-stamped data
    assert framer.refills >= 1
    total = sum(d.nsamp for d in drafts)
    assert total == 5 * 10 + 27 * 10  # the 20-25 s tail of the old timeline plus every new sample


def test_unlocked_clock_sets_status_flag():
    channels, buffers, framer = _setup({"BHZ": 10.0}, lateness_s=1.0)
    _feed_seconds(buffers["TST.BHZ."], "BHZ", 10.0, 0, 20, locked=False)
    drafts = framer.cut(final=True)
    assert all(s.status.flag("gps_receiver_unlocked") for d in drafts for s in d.subframes)


@pytest.mark.parametrize("crossing", ["2023-12-31T23:59:50", "2024-02-29T23:59:50"])
def test_frames_across_midnight_and_year_end_decode_back(tmp_path, crossing):
    start = int(np.datetime64(crossing, "ns").astype(np.int64))
    channels = [_channel("BHZ", 40.0)]
    buffers = {channels[0].code: ChannelBuffer(channels[0].code, lateness_budget_s=1.0)}
    framer = Framer(channels, buffers, frame_length_s=10, lateness_budget_s=1.0,
                    status_for=lambda c: ChannelStatus.format1())
    for s in range(20):
        buffers[channels[0].code].ingest(_packet("BHZ", start + s * NS_PER_S, 40.0, np.arange(40) + 40 * s))
    drafts = framer.cut(final=True)
    assert [d.nominal_time_ns - start for d in drafts] == [0, L]

    ca = CertificateAuthority.create(tmp_path / "ca", "TEST-NET")
    issued = ca.issue("TST")
    signer = StationSigner.load(issued.bundle)
    trust = ca.trust_store()
    outbox = Outbox(tmp_path / "outbox.sqlite", 10_000_000)
    seqs = [publish(outbox, d, creator="TST", destination="0", signer=signer) for d in drafts]
    frames = [decode_frame(outbox.get(seq).frame) for seq in seqs]
    assert [f.header.sequence for f in frames] == seqs
    assert [f.body.nominal_time_ns for f in frames] == [start, start + L]
    samples = np.concatenate([f.body.channels[0].samples for f in frames])
    assert np.array_equal(samples, np.arange(800))
    for seq, frame in zip(seqs, frames, strict=True):
        raw = outbox.get(seq).frame
        trust.verify(frame.trailer.auth_key_id, frame_signed_bytes(raw), frame.trailer.auth_value)
        for sub in frame.body.channels:
            trust.verify(sub.auth_key_id, channel_signed_bytes(sub), sub.auth_value)


def test_rate_change_mid_window_gives_one_subframe_per_rate():
    channels, buffers, framer = _setup({"BHZ": 40.0}, lateness_s=1.0)
    buffer = buffers["TST.BHZ."]
    _feed_seconds(buffer, "BHZ", 40.0, 0, 4)
    for s in range(4, 25):  # the digitizer is reconfigured to 20 sps at 4 s
        buffer.ingest(_packet("BHZ", T0 + s * NS_PER_S, 20.0, np.full(20, s)))
    first = framer.cut(final=True)[0]
    assert [(s.time_ns - T0, s.sample_rate, s.nsamp) for s in first.subframes] == [
        (0, 40.0, 160), (4 * NS_PER_S, 20.0, 120)]
    assert [s.time_length_ms for s in first.subframes] == [4000, 6000]
