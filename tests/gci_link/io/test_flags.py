"""CD-1.1 channel status reaches miniSEED: header flags and blockette 1001 timing quality, read back by
ObsPy's ``get_flags`` from the SDS archive, on a real station's frame and on made-up statuses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from obspy.io.mseed.util import get_flags

from gci_link.cd11 import ChannelStatus, decode_frame
from gci_link.io.mseed2.flags import NO_FLAGS, seed_flags
from gci_link.io.sds import SdsArchive, Segment
from tests.conftest import shared_fixture_dir
from timeunits import NS_PER_S

T0 = 1_800_000_000 * NS_PER_S


def _archive(tmp_path: Path, segments: list[Segment]) -> dict[str, dict]:
    """get_flags of each channel's day file, keyed by station.channel."""
    archive = SdsArchive(tmp_path)
    archive.append([piece for seg in segments for piece in archive.split_by_day(seg)])
    archive.close()
    return {
        ".".join(path.name.split(".")[1:4:2]): get_flags(str(path))
        for path in sorted(tmp_path.rglob("*.D.*"))
        if path.is_file()
    }


def test_a_real_frame_with_a_lost_clock_is_archived_as_such(tmp_path: Path) -> None:
    """GERES: GED5 reports GPS off and unlocked, a 544,601 us clock differential flagged too large; the
    other sites report a locked clock (fixtures/cd11/MANIFEST.md)."""
    frame = decode_frame((shared_fixture_dir("cd11") / "GERES-1508852201870062.cd11").read_bytes())
    segments = [
        Segment("IM", s.site, s.location, s.channel, s.time_ns, s.sample_rate, s.samples, flags)
        for s in frame.body.channels
        for flags in [seed_flags(s.status)]
    ]
    flags = _archive(tmp_path, segments)
    ged5 = flags["GED5.SHZ"]
    assert ged5["io_and_clock_flags_counts"]["clock_locked"] == 0
    assert ged5["data_quality_flags_counts"]["suspect_time_tag"] == ged5["record_count"] > 0
    assert ged5["timing_quality"]["max"] == 0
    locked = [key for key, f in flags.items() if f["io_and_clock_flags_counts"]["clock_locked"]]
    assert sorted(locked) == sorted(key for key in flags if key != "GED5.SHZ")
    assert all(flags[key]["timing_quality"]["min"] == 100 for key in locked)


@pytest.mark.parametrize(
    ("status", "activity", "quality", "locked", "timing"),
    [
        (ChannelStatus.format1(), 0, set(), True, 100),
        (ChannelStatus.format1(gps_receiver_unlocked=True, clock_differential_us=12_400),
         0, set(), False, 38),
        (ChannelStatus.format1(calibration_underway=True), 1, set(), True, 100),
        (
            ChannelStatus.format1(clipped=True, zeroed_data=True),
            0,
            {"digitizer_clipping", "missing_padded_data"},
            True,
            100,
        ),
        (ChannelStatus.format1(clock_differential_too_large=True), 0, {"suspect_time_tag"}, True, 10),
    ],
)
def test_status_flags_map_to_the_seed_flags(tmp_path, status, activity, quality, locked, timing) -> None:
    segment = Segment("IM", "STA1", "", "BHZ", T0, 40.0, np.arange(400, dtype=np.int32), seed_flags(status))
    (flags,) = _archive(tmp_path, [segment]).values()
    records = flags["record_count"]
    assert flags["activity_flags_counts"]["calibration_signal"] == activity * records
    assert {name for name, n in flags["data_quality_flags_counts"].items() if n} == quality
    assert flags["io_and_clock_flags_counts"]["clock_locked"] == (records if locked else 0)
    assert flags["timing_quality"]["min"] == flags["timing_quality"]["max"] == timing


def test_no_status_claims_nothing(tmp_path: Path) -> None:
    assert seed_flags(ChannelStatus(b"")) is NO_FLAGS
    segment = Segment("IM", "STA1", "", "BHZ", T0, 40.0, np.arange(400, dtype=np.int32))
    (flags,) = _archive(tmp_path, [segment]).values()
    assert flags["io_and_clock_flags_counts"]["clock_locked"] == 0
    assert "timing_quality" not in flags or not flags["timing_quality"]


def test_pieces_with_different_flags_are_never_packed_into_one_record(tmp_path: Path) -> None:
    """A GPS unlock in the middle of a day: records before and after it carry their own flags."""
    locked = seed_flags(ChannelStatus.format1())
    unlocked = seed_flags(ChannelStatus.format1(gps_receiver_unlocked=True))
    segments = [
        Segment("IM", "STA1", "", "BHZ", T0 + k * 10 * NS_PER_S, 40.0, np.arange(400, dtype=np.int32),
                unlocked if 3 <= k < 6 else locked)
        for k in range(9)
    ]
    (flags,) = _archive(tmp_path, segments).values()
    counts = flags["io_and_clock_flags_counts"]["clock_locked"]
    assert 0 < counts < flags["record_count"]
    assert flags["timing_quality"]["min"] == 50 and flags["timing_quality"]["max"] == 100
