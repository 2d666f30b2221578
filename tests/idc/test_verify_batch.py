"""A whole batch handled at once: signatures verified on worker processes, outcomes still in arrival order."""

from __future__ import annotations

import numpy as np
import pytest
from obspy import read

from gci_link.cd11 import encode_frame
from idc.checker import FrameChecker
from idc.server import Receiver
from idc.verify import Rejection, check_frame
from tests.idc.conftest import connection_request, data_frame, make_config, samples_for, signed
from tests.idc.test_server import _hostile, sds_samples

pytestmark = pytest.mark.timeout(60)


class _Sink:
    """Stands in for the ROUTER socket: keeps what the receiver sends."""

    def __init__(self) -> None:
        self.sent: list[list[bytes]] = []

    def send_multipart(self, parts: list[bytes], flags: int = 0) -> None:
        self.sent.append(parts)


def _bad_frames(keys) -> list[tuple[str, bytes]]:
    """Three of the server tests' hostile frames (slot 500) and two of this file's own."""
    forged = [
        (kind, raw) for kind, raw in _hostile(keys) if kind in ("channel_signature", "crc", "frame_signature")
    ]
    return forged + [
        ("frame_unknown_key", encode_frame(data_frame(901, keys.stranger))),
        ("unknown_station", encode_frame(data_frame(902, keys.sta1, creator="NOSTA"))),
    ]


def test_pool_gives_what_check_frame_gives_in_order(tmp_path, keys, clock):
    config = make_config(tmp_path, keys.ca.trust_dir)
    trust = keys.ca.trust_store()
    frames = [signed(10, keys)] + [raw for _, raw in _bad_frames(keys)] + [signed(11, keys)]
    checker = FrameChecker(trust, config.stations, workers=2)
    try:
        pending = [checker.submit(raw, clock()) for raw in frames]
        for raw, check in zip(frames, pending, strict=True):
            try:
                expected = check_frame(raw, trust, config.stations, clock())
            except Rejection as exc:
                with pytest.raises(Rejection) as got:
                    check.result()
                assert (got.value.kind, str(got.value)) == (exc.kind, str(exc))
                assert got.value.channels == exc.channels
            else:
                assert check.result() == expected
                assert [c.outcome for c in expected.channels] == ["authenticated"]
    finally:
        checker.close()


def test_one_batch_mixing_honest_and_failing_frames(tmp_path, keys, clock):
    """Frames whose signatures fail are quarantined whole, in order; the honest ones around them are
    archived and acknowledged only once the batch is durable."""
    receiver = Receiver(make_config(tmp_path, keys.ca.trust_dir), keys.ca.trust_store(), clock)
    sink = _Sink()
    try:
        bad = _bad_frames(keys)
        batch = [[b"id", connection_request("STA1")]]
        for seq, (_, raw) in enumerate(bad, start=20):
            batch += [[b"id", signed(seq, keys)], [b"id", raw]]
        receiver.handle(sink, batch)  # type: ignore[arg-type]
        reasons = [reason.split(":")[0] for _, _, _, reason, _ in receiver.quarantine.entries()]
        assert reasons == [kind for kind, _ in bad]
        assert [frame for *_, frame in receiver.quarantine.entries()] == [raw for _, raw in bad]
        honest = list(range(20, 20 + len(bad)))
        assert receiver.sessions["STA1"].gaps.intervals() == [(20, 20 + len(bad))]
        for seq in honest:
            np.testing.assert_array_equal(sds_samples(tmp_path / "sds", seq), samples_for(seq))
        for seq in (500, 901, 902):
            assert len(sds_samples(tmp_path / "sds", seq)) == 0
        assert receiver.metrics.counters()[("STA1", "frames")] == len(honest)
    finally:
        receiver.close()


def test_archive_catches_up_after_a_full_disk_without_duplicates(tmp_path, keys, clock, monkeypatch):
    """While the SDS disk refuses writes (a torn write first), frames are still stored raw and
    acknowledged; once it accepts them again the journal is replayed, on the receiver's clock, and every
    frame is archived once."""
    from gci_link.io.sds import archive as sds

    receiver = Receiver(make_config(tmp_path, keys.ca.trust_dir), keys.ca.trust_store(), clock)
    sink = _Sink()
    real_append = sds._append_to

    def full_disk(fd, data, fsync):
        real_append(fd, data[: len(data) // 3], fsync)  # part of the write lands, then ENOSPC
        raise OSError(28, "No space left on device", "day file")

    try:
        receiver.handle(sink, [[b"id", connection_request("STA1")], [b"id", signed(1, keys)]])  # type: ignore[arg-type]
        monkeypatch.setattr(sds, "_append_to", full_disk)
        for seq in (2, 3, 4):
            receiver.handle(sink, [[b"id", signed(seq, keys)]])  # type: ignore[arg-type]
        assert receiver.sessions["STA1"].gaps.intervals() == [(1, 5)]  # raw-durable, so acknowledged
        (day_file,) = (tmp_path / "sds").rglob("XX.STA1A.00.BHZ.D.*")
        torn_size = day_file.stat().st_size
        monkeypatch.setattr(sds, "_append_to", real_append)
        receiver.handle(sink, [[b"id", signed(5, keys)]])  # type: ignore[arg-type]
        assert day_file.stat().st_size == torn_size  # the journal is replayed only every 30 s
        clock.advance(30)
        receiver.handle(sink, [[b"id", signed(6, keys)]])  # type: ignore[arg-type]
    finally:
        receiver.close()
    for seq in range(1, 7):
        np.testing.assert_array_equal(sds_samples(tmp_path / "sds", seq), samples_for(seq))
    # every sample once: the frame whose commit triggered the replay is not appended a second time
    assert sum(trace.stats.npts for trace in read(str(day_file))) == 6 * len(samples_for(1))
