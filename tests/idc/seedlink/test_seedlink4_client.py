"""EarthScope's seedlink-client, a SeedLink 3 and 4 client, against the server: it negotiates protocol 4
(the server advertises SLPROTO:4.0), gets SE packets with 64-bit numbers and NET_STA station IDs,
resumes from its state file, reads INFO in JSON; pinned to protocol 3 it resumes with libslink's
sequence-number-and-time form."""

from __future__ import annotations

import io
import threading

import numpy as np
import obspy
import pytest
from seedlink_client import SeedLink
from seedlink_client.protocol import Protocol

from idc.seedlink.ring import Ring
from tests.idc.seedlink.conftest import T0, records, streaming_clients, wait_until, walk
from timeunits import NS_PER_S


def _batch(ring: Ring, k: int) -> range:
    """Batch k: one record (5 s) for each of STA1 and STA2, BHZ and BHN, in that order."""
    pairs = [(sta, cha) for sta in ("STA1", "STA2") for cha in ("BHZ", "BHN")]
    seqs = ring.append_batch(
        [
            (
                "XX",
                sta,
                "00",
                cha,
                records("XX", sta, "00", cha, T0 + k * 5 * NS_PER_S, walk(k * 100 + i, 200)),
            )
            for i, (sta, cha) in enumerate(pairs)
        ]
    )
    assert len(seqs) == 4
    return seqs


class Receiver:
    """seedlink-client's collect() on a thread, keeping its packets until ``count`` have come."""

    def __init__(self, client: SeedLink, count: int) -> None:
        self.client, self.count, self.packets = client, count, []
        client.connect()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for packet in self.client.collect(reconnect=False):
            self.packets.append(packet)
            if len(self.packets) >= self.count:
                break

    def join(self) -> list:
        self.thread.join(20)
        assert not self.thread.is_alive(), f"{len(self.packets)} of {self.count} packets"
        return self.packets


def test_protocol_4_real_time_with_selection_and_resume(tmp_path, ring, serve):
    server = serve(ring)
    host, port = server.address
    state = str(tmp_path / "v4.state")
    client = SeedLink(host, port, timeout=10)
    client.add_stream("XX_STA1", "00_B_H_Z")
    client.add_stream("XX_STA2")
    got = Receiver(client, 6)  # 3 of each batch's 4 records are selected
    wait_until(lambda: streaming_clients(server) == 1)
    assert client.protocol is Protocol.V4
    sent = [_batch(ring, k) for k in range(2)]
    packets = got.join()
    client.save_state(state)
    client.close()
    held = {r.seq: r for r in ring.read_from(0)}

    def selected(seqs: range) -> list[int]:
        return [s for s in seqs if held[s].station == "STA2" or held[s].channel == "BHZ"]

    want = selected(sent[0]) + selected(sent[1])
    assert [p.seqnum for p in packets] == want
    assert [p.station_id for p in packets] == [f"XX_{held[s].station}" for s in want]
    assert [p.payload for p in packets] == [held[s].record for s in want]
    assert packets[0].record().sourceid == "FDSN:XX_STA1_00_B_H_Z"
    np.testing.assert_array_equal(obspy.read(io.BytesIO(packets[0].payload))[0].data, walk(0, 200))

    missed = _batch(ring, 2)  # while the client is away
    held.update((r.seq, r) for r in ring.read_from(missed.start))
    again = SeedLink(host, port, timeout=10)
    again.add_stream("XX_STA1", "00_B_H_Z")
    again.add_stream("XX_STA2")
    again.recover_state(state)
    packets = Receiver(again, 3).join()
    again.close()
    assert [p.seqnum for p in packets] == selected(missed)


def test_protocol_4_time_window_and_info(ring, serve):
    for k in range(6):
        _batch(ring, k)
    server = serve(ring)
    host, port = server.address
    info = SeedLink(host, port, timeout=10)
    info.connect()
    doc = info.info_dict("STREAMS")
    info.close()
    assert [s["id"] for s in doc["station"]] == ["XX_STA1", "XX_STA2"]
    assert {x["id"] for x in doc["station"][0]["stream"]} == {"00_B_H_Z", "00_B_H_N"}
    window = SeedLink(host, port, timeout=10, dialup=True)
    window.add_stream("XX_STA2", "*_B_H_N")
    window.set_timewindow("2023-11-14T22:13:30Z", "2023-11-14T22:13:40Z")
    window.connect()
    packets = list(window.collect(reconnect=False))  # ends at the server's END
    window.close()
    want = [
        r.seq
        for r in ring.read_from(0)
        if r.station == "STA2"
        and r.channel == "BHN"
        and r.end_ns > T0 + 10 * NS_PER_S
        and r.start_ns < T0 + 20 * NS_PER_S
    ]
    assert [p.seqnum for p in packets] == want and len(want) >= 2


@pytest.mark.parametrize("batch", [False, True])
def test_protocol_3_resume_with_the_time_of_the_last_record(tmp_path, ring, serve, batch):
    server = serve(ring)
    host, port = server.address
    state = str(tmp_path / "v3.state")
    first = SeedLink(host, port, timeout=10, protocol=Protocol.V3, batch=batch)
    first.add_stream("XX_STA1", "BHZ")
    got = Receiver(first, 2)
    wait_until(lambda: streaming_clients(server) == 1)
    assert first.protocol is Protocol.V3
    sent = [_batch(ring, k) for k in range(2)]
    assert [p.seqnum for p in got.join()] == [sent[0][0], sent[1][0]]
    first.save_state(state)
    first.close()
    missed = [_batch(ring, k) for k in (2, 3)]
    again = SeedLink(host, port, timeout=10, protocol=Protocol.V3, batch=batch)
    again.add_stream("XX_STA1", "BHZ")
    again.recover_state(state)  # sends DATA <next seq, hex> <start of its last record>
    packets = Receiver(again, 2).join()
    again.close()
    assert [p.seqnum for p in packets] == [missed[0][0], missed[1][0]]
