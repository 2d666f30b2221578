"""Issue 11, defect 6, behind the door: even data the admission rules missed cannot hold up another
station's archive. Such frames are handed to the committer directly, in the same commits as an honest
station's, and the honest station's samples must be appended in each of those commits."""

from __future__ import annotations

import numpy as np
import pytest

from gci_link.cd11 import decode_frame
from gci_link.gaplist import GapList
from gci_link.io.sds import SdsArchive
from idc.actions import Accepted, StationBatch
from idc.committer import BatchCommitter
from idc.config import StationPolicy
from idc.stores import MessageStore, Quarantine, RawStores
from idc.verify import CheckedFrame
from tests.adversarial.conftest import AppendCounter, signed_data
from tests.idc.conftest import T0

STATIONS = {
    "STA1": StationPolicy("STA1", "XX", sites=("STA1A",)),
    "STA2": StationPolicy("STA2", "XX", sites=("HONES",)),
}
REFUSED_BY_THE_PACKER = {
    "rate_over_32767": dict(site="STA1A", rate=40_000.0),
    "steim2_too_wide": dict(site="STA1A", samples=np.array([0, 1 << 30] * 200, dtype=np.int32)),
    "before_1970": dict(site="STA1A", time_ns=-10**12),
    "path_site": dict(site="../.."),
}


def _batch(station: str, seq: int, raw: bytes) -> StationBatch:
    frame = decode_frame(raw)
    gaps = GapList()
    gaps.add(seq)
    return StationBatch(station, gaps, {seq: Accepted(CheckedFrame(frame, station, ()), raw, T0, "peer")})


@pytest.fixture
def committer(tmp_path):
    sds = SdsArchive(tmp_path / "sds")
    raw = RawStores(tmp_path / "raw")
    quarantine = Quarantine(tmp_path / "quarantine.sqlite", max_bytes=1 << 20, max_item_bytes=1 << 20,
                            max_rows=100)
    committer = BatchCommitter(STATIONS, raw, sds, MessageStore(tmp_path / "ims2"), quarantine, lambda: T0)
    committer.start()
    yield committer, AppendCounter(sds)
    raw.close()
    sds.close()
    quarantine.close()


def test_data_the_packer_refuses_fails_only_its_own_stations_commit(committer, keys):
    committer, appended = committer
    for seq, (name, attack) in enumerate(REFUSED_BY_THE_PACKER.items(), start=1):
        outcome = committer.commit([
            _batch("STA1", seq, signed_data(keys.sta1, "STA1", seq, **attack)),
            _batch("STA2", seq, signed_data(keys.sta2, "STA2", seq, site="HONES")),
        ])
        assert [f.batch.station for f in outcome.failed] == ["STA1"], name
        assert [b.station for b in outcome.durable] == ["STA2"] and outcome.synced, name
        assert appended.samples == {"HONES": 400 * seq}, name  # appended in this very commit
