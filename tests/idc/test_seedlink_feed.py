"""The receiver feeds SeedLink: a client connected during a run gets, through ObsPy, exactly the samples
the receiver archived, and a receiver restart keeps the ring (the client resumes from its number)."""

from __future__ import annotations

import numpy as np
import pytest

from idc.config import SeedLinkConfig
from tests.idc.conftest import Running, make_config, samples_for, signed
from tests.idc.seedlink.conftest import streaming_clients, wait_until
from tests.idc.seedlink.test_obspy_client import Collector
from tests.idc.test_server import sds_samples

pytestmark = pytest.mark.timeout(90)


def _config(tmp_path, keys):
    seedlink = SeedLinkConfig(listen="127.0.0.1:0", ring=tmp_path / "seedlink.ring", ring_bytes=4 << 20)
    return make_config(tmp_path, keys.ca.trust_dir, data_endpoint=None, seedlink=seedlink)


def test_a_seedlink_client_receives_what_the_receiver_archived(tmp_path, keys, clock):
    run = Running(_config(tmp_path, keys), keys.ca.trust_store(), clock)
    try:
        server = run.receiver._seedlink
        assert server is not None
        client = Collector(server.address, "XX_STA1A", stop_after=1 << 30)
        wait_until(lambda: streaming_clients(server) == 1)
        sta = run.station()
        sta.connect()
        seqs = range(4000, 4006)
        for seq in seqs:
            sta.send(signed(seq, keys))
        sta.acknack_covering(seqs[-1])
        ring = run.receiver.seedlink_ring
        assert ring is not None and ring.newest_seq is not None
        # every record the archive wrote, and one of a later frame, so the client stops on a packet that
        # comes after it was told how many to take
        client.stop_after = ring.newest_seq - ring.oldest_seq + 2
        sta.send(signed(seqs[-1] + 1, keys))
        client.join()
        received = client.samples("STA1A", "BHZ")[: 400 * len(seqs)]
        sent = np.concatenate([samples_for(seq) for seq in seqs])
        archived = np.concatenate([sds_samples(tmp_path / "sds", seq) for seq in seqs])
        np.testing.assert_array_equal(archived, sent)
        np.testing.assert_array_equal(received, sent)
    finally:
        run.stop()


def test_the_ring_outlives_a_receiver_restart(tmp_path, keys, clock):
    config = _config(tmp_path, keys)
    run = Running(config, keys.ca.trust_store(), clock)
    try:
        sta = run.station()
        sta.connect()
        sta.send(signed(4100, keys))
        sta.acknack_covering(4100)
        first = run.receiver.seedlink_ring
        assert first is not None and first.newest_seq is not None
        newest = first.newest_seq
    finally:
        run.stop()
    run = Running(config, keys.ca.trust_store(), clock)
    try:
        ring = run.receiver.seedlink_ring
        assert ring is not None and ring.newest_seq == newest  # nothing lost, nothing re-fed at start
        sta = run.station()
        sta.connect()
        sta.send(signed(4101, keys))
        sta.acknack_covering(4101)
        assert (ring.newest_seq or 0) > newest
    finally:
        run.stop()
