"""ObsPy's SeedLink clients (SLClient, EasySeedLinkClient, basic_client.Client) against the server:
every sample the SDS archive holds arrives, selections and time windows hold, and a client resumes
without gap or duplicate after it disconnects and after the server restarts with its ring reopened."""

from __future__ import annotations

import contextlib
import threading

import numpy as np
from obspy import Stream, UTCDateTime
from obspy.clients.filesystem.sds import Client as SdsClient
from obspy.clients.seedlink.basic_client import Client as WindowClient
from obspy.clients.seedlink.easyseedlink import EasySeedLinkClient
from obspy.clients.seedlink.slclient import SLClient
from obspy.clients.seedlink.slpacket import SLPacket

from gci_link.io.sds import SdsArchive, Segment
from idc.seedlink.ring import Ring
from tests.idc.seedlink.conftest import T0, records, streaming_clients, wait_until, walk
from timeunits import NS_PER_S

RUN = [("STA1", "BHZ", 40.0), ("STA1", "BHN", 40.0), ("STA1", "HHZ", 100.0), ("STA2", "BHZ", 40.0)]


class Collector(SLClient):
    """ObsPy's SLClient on a thread, keeping (sequence number, trace) of each data packet.

    ObsPy refuses a station without a selector, so an unqualified station gets ``???`` (all channels).
    """

    def __init__(self, address, multiselect: str, statefile=None, stop_after=None, begin=None, end=None):
        super().__init__(timeout=20)
        self.slconn.set_sl_address(f"{address[0]}:{address[1]}")
        self.slconn.netto = 20
        self.multiselect = multiselect
        self.selectors = "???"
        self.statefile = None if statefile is None else str(statefile)
        self.begin_time, self.end_time = begin, end
        self.stop_after = stop_after
        self.packets: list = []
        self.initialize()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def packet_handler(self, count, slpack):
        if slpack is None or slpack in (SLPacket.SLNOPACKET, SLPacket.SLERROR):
            return False
        if slpack.get_type() in (SLPacket.TYPE_SLINF, SLPacket.TYPE_SLINFT):
            return False
        self.packets.append((slpack.get_sequence_number(), slpack.get_trace()))
        return self.stop_after is not None and len(self.packets) >= self.stop_after

    def join(self) -> None:
        self.thread.join(30)
        assert not self.thread.is_alive(), "the client did not finish"

    def samples(self, station: str, channel: str) -> np.ndarray:
        st = Stream(
            [tr for _, tr in self.packets if tr.stats.station == station and tr.stats.channel == channel]
        )
        st.merge(method=-1)
        assert len(st) == 1, st
        return st[0].data


def _frame(k: int) -> list[Segment]:
    """Frame k (10 s) of the simulated run: every channel's known samples."""
    return [
        Segment("XX", sta, "00", cha, T0 + k * 10 * NS_PER_S, rate, walk(100 * k + i, int(10 * rate)))
        for i, (sta, cha, rate) in enumerate(RUN)
    ]


def test_a_client_connected_during_a_run_receives_every_sample_the_archive_holds(tmp_path, ring, serve):
    server = serve(ring)
    client = Collector(server.address, "XX_STA1,XX_STA2")
    wait_until(lambda: streaming_clients(server) == 1)
    sds = SdsArchive(tmp_path / "sds")
    frames, expected = 8, 0
    for k in range(frames):
        # the receiver's path: archive the frame, then feed the ring exactly the records written
        written = sds.append([p for seg in _frame(k) for p in sds.split_by_day(seg)])
        expected += sum(len(w[4]) // 512 for w in written)
        ring.append_batch(written)
    sds.close()
    wait_until(lambda: len(client.packets) >= expected, 20)
    client.stop_after = expected + 1  # one more record wakes the client's loop so it sees it is done
    ring.append(
        "XX", "STA2", "00", "BHZ", records("XX", "STA2", "00", "BHZ", T0 + 900 * NS_PER_S, walk(1, 40))
    )
    client.join()
    del client.packets[expected:]
    assert [seq for seq, _ in client.packets] == list(range(1, expected + 1))  # nothing lost, nothing twice
    archive = SdsClient(str(tmp_path / "sds"))
    for sta, cha, _ in RUN:
        held = archive.get_waveforms(
            "XX", sta, "00", cha, UTCDateTime(ns=T0), UTCDateTime(ns=T0 + 3600 * NS_PER_S)
        )
        held.merge(method=-1)
        np.testing.assert_array_equal(client.samples(sta, cha), held[0].data)
        known = [
            seg.samples
            for k in range(frames)
            for seg in _frame(k)
            if (seg.station, seg.channel) == (sta, cha)
        ]
        np.testing.assert_array_equal(held[0].data, np.concatenate(known))


def test_station_and_stream_selection_in_real_time(ring, serve):
    server = serve(ring)
    got = []

    class Done(Exception):
        pass

    class Easy(EasySeedLinkClient):
        def on_data(self, trace):
            got.append(trace.id)
            if trace.stats.station == "END":
                raise Done  # (terminate() would be undone by the next collect() call)

    def run() -> None:
        with contextlib.suppress(Done):
            easy.run()
        easy.close()

    easy = Easy("{}:{}".format(*server.address), autoconnect=False)
    easy.conn.timeout = 20  # ObsPy 1.5's connect() needs a timeout to check the socket with
    easy.connect()
    easy.select_stream("XX", "STA1", "BH?")  # EasySeedLinkClient checks INFO CAPABILITIES first
    easy.select_stream("XX", "STA2", "00HHZ")
    easy.select_stream("XX", "END", "???")
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_until(lambda: streaming_clients(server) == 1)
    for k, (sta, cha) in enumerate(
        [("STA1", "BHZ"), ("STA1", "HHZ"), ("STA2", "BHZ"), ("STA2", "HHZ"), ("STA3", "BHZ"), ("STA1", "BHE")]
    ):
        ring.append("XX", sta, "00", cha, records("XX", sta, "00", cha, T0, walk(k, 400))[:512])
    ring.append("XX", "END", "00", "LOG", records("XX", "END", "00", "LOG", T0, walk(9, 10))[:512])
    thread.join(20)
    assert not thread.is_alive(), got
    assert got == ["XX.STA1.00.BHZ", "XX.STA2.00.HHZ", "XX.STA1.00.BHE", "XX.END.00.LOG"]


def test_a_time_window_returns_exactly_its_samples(ring, serve):
    samples = walk(3, 40 * 120)
    for sta in ("STA1", "STA2"):
        ring.append_batch([("XX", sta, "00", "BHZ", records("XX", sta, "00", "BHZ", T0, samples))])
    server = serve(ring)
    host, port = server.address
    t1, t2 = UTCDateTime(ns=T0 + 30 * NS_PER_S), UTCDateTime(ns=T0 + 45 * NS_PER_S)
    st = WindowClient(host, port, timeout=20).get_waveforms("XX", "STA1", "00", "BHZ", t1, t2)
    assert [tr.id for tr in st] == ["XX.STA1.00.BHZ"]
    np.testing.assert_array_equal(st[0].data, samples[30 * 40 : 45 * 40 + 1])
    # the server sent only the records overlapping the window, then END
    client = Collector(server.address, "XX_STA1:00BHZ", begin=t1, end=t2)
    client.join()
    held = [r for r in ring.read_from(0) if r.station == "STA1"]
    want = [r.seq for r in held if r.end_ns > t1.ns and r.start_ns < t2.ns]
    assert [seq for seq, _ in client.packets] == want


def _batch(ring: Ring, k: int) -> range:
    """Append batch k: one 10 s record set for two stations; returns its sequence numbers."""
    entries = [
        (
            "XX",
            sta,
            "00",
            "BHZ",
            records("XX", sta, "00", "BHZ", T0 + k * 10 * NS_PER_S, walk(10 * k + i, 400)),
        )
        for i, sta in enumerate(("STA1", "STA2"))
    ]
    return ring.append_batch(entries)


def test_resume_after_the_client_and_then_the_server_restart(tmp_path, serve):
    path, state = tmp_path / "seedlink.ring", tmp_path / "client.state"
    ring = Ring.open(path, records=1024)
    server = serve(ring)
    port = server.address[1]
    seen: list[int] = []

    def session(expected: range, append=None) -> None:
        client = Collector(("127.0.0.1", port), "XX_STA1,XX_STA2", statefile=state, stop_after=len(expected))
        if append is not None:
            wait_until(lambda: streaming_clients(server) == 1)
            expected = append()
        client.join()
        assert [seq for seq, _ in client.packets] == list(expected)
        held = {r.seq: r.record for r in ring.read_from(0)}
        assert all(tr.data.size and held[seq] for seq, tr in client.packets)
        seen.extend(seq for seq, _ in client.packets)

    first = _batch(ring, 0)  # before any client: not asked for (real time starts at the next record)
    session(range(first.stop, first.stop + len(first)), append=lambda: _batch(ring, 1))
    missed = _batch(ring, 2)  # while the client is away
    session(missed)
    server.stop()
    ring.close()
    ring = Ring.open(path, records=1024)  # the receiver restarts: same file, same numbers
    while_down = _batch(ring, 3)
    server = serve(ring, port=port)
    session(while_down)
    assert seen == list(range(seen[0], seen[-1] + 1))  # one run of numbers: no gap, no duplicate
    ring.close()
