"""Issue 11, defects 3, 5, 6, 7 and 9: what a station's own key cannot buy, and what strangers cannot
put into the metrics. Each attack is refused at the door with its reason, and the honest frame right
after it is still accepted; driven through the receiver's sans-I/O core."""

from __future__ import annotations

import numpy as np
import pytest

from gci_link.cd11 import (
    DataBody,
    build_data_frame,
    build_subframe,
    decode_frame,
    encode_frame,
    sign_all_channels,
    sign_frame,
)
from idc.actions import Reject
from idc.admission import data_problem
from idc.config import DataLimits, StationPolicy
from idc.vocabulary import ANONYMOUS, RejectionKind
from tests.conftest import shared_fixture_dir
from tests.idc.conftest import T0, signed
from tests.idc.test_protocol import Driver, rejected
from timeunits import NS_PER_S

YEAR_2263 = 9_225_000_000 * NS_PER_S  # past 2**63 ns from 1970: the metrics' integer overflow of the report


def _frame(
    keys,
    seq: int,
    *,
    site: str = "STA1A",
    location: str = "00",
    rate: float = 40.0,
    nsamp: int = 400,
    channels: int = 1,
    time_ns: int | None = None,
    samples: np.ndarray | None = None,
) -> bytes:
    start = T0 + seq * 10 * NS_PER_S if time_ns is None else time_ns
    samples = np.arange(nsamp, dtype=np.int32) if samples is None else samples
    subs = [
        build_subframe(
            samples, site=site, channel=f"{i:03d}", location=location, time_ns=start, sample_rate=rate
        )
        for i in range(channels)
    ]
    frame = build_data_frame(subs, creator="STA1", sequence=seq, nominal_time_ns=start)
    frame = sign_all_channels(frame, keys.sta1.key_id, keys.sta1.sign)
    return encode_frame(sign_frame(frame, keys.sta1.key_id, keys.sta1.sign))


@pytest.fixture
def driver(keys, clock) -> Driver:
    d = Driver(keys, clock())
    d.connect()
    return d


def _refused_then_honest(driver: Driver, keys, attack: bytes, seq: int) -> Reject:
    (reject,) = [a for a in driver.receive(attack) if isinstance(a, Reject)]
    assert driver.receive(signed(seq, keys)) == []  # the honest frame right after is accepted
    batch = driver.core.take_batches()
    assert [sorted(b.frames) for b in batch] == [[seq]]
    return reject


@pytest.mark.parametrize(
    ("site", "location"),
    [("/etc", "00"), ("../..", "00"), ("..", ""), ("A\0B", "00"), ("STA1A", "/x"), ("ÄBC", "00")],
)
def test_codes_that_could_become_paths_are_refused(driver, keys, site, location):
    reject = _refused_then_honest(driver, keys, _frame(keys, 7, site=site, location=location), 8)
    assert reject.rejection.kind is RejectionKind.BAD_CODE


def test_a_station_cannot_write_another_stations_site(driver, keys):
    """HONES sent by STA1 landed in HONEST's day file; STA1 may send its configured sites only."""
    reject = _refused_then_honest(driver, keys, _frame(keys, 7, site="HONES"), 8)
    assert reject.rejection.kind is RejectionKind.FOREIGN_SITE
    assert "STA1A" in reject.rejection.detail  # the reason names what the station may send


@pytest.mark.parametrize("time_ns", [YEAR_2263, T0 - 11 * 366 * 86_400 * NS_PER_S])
def test_data_outside_the_time_window_is_refused(driver, keys, clock, time_ns):
    reject = _refused_then_honest(driver, keys, _frame(keys, 7, time_ns=time_ns), 8)
    assert reject.rejection.kind is RejectionKind.TIME_WINDOW


def test_a_rate_the_archive_cannot_carry_is_refused_at_the_door(driver, keys):
    """A rate over 32767 sps passed the verifier and then stopped SDS archiving for every station."""
    reject = _refused_then_honest(driver, keys, _frame(keys, 7, rate=40_000.0), 8)
    assert reject.rejection.kind is RejectionKind.DATA_LIMITS and "32767" in reject.rejection.detail


def test_the_packers_own_limits_hold_whatever_the_configured_window(keys, clock):
    """A window reaching back 100 years still admits nothing before 1970, and samples whose jump Steim-2
    cannot encode are refused at the door, not by the packer in the middle of a batch."""
    driver = Driver(keys, clock(), limits=DataLimits(past_s=100 * 365.25 * 86_400))
    driver.connect()
    reject = _refused_then_honest(driver, keys, _frame(keys, 7, time_ns=-3600 * NS_PER_S), 8)
    assert reject.rejection.kind is RejectionKind.DATA_LIMITS and "1970" in reject.rejection.detail
    samples = np.array([5, 5 + (1 << 29), 5], dtype=np.int32)  # differences of 2**29: 31 bits
    reject = _refused_then_honest(driver, keys, _frame(keys, 9, nsamp=3, samples=samples), 10)
    assert reject.rejection.kind is RejectionKind.DATA_LIMITS
    assert "samples 0 and 1 (5, 536870917) differ by more than the 30 bits" in reject.rejection.detail


def test_a_frame_cannot_spread_over_thousands_of_day_files(keys, clock):
    """400 channels at 1e-4 sps spanning 25 days each created 10,400 day files from one 103 KB frame
    (here 24.8 days, the longest a subframe's 32-bit millisecond length can state)."""
    driver = Driver(keys, clock(), max_frame_bytes=1 << 20)
    driver.connect()
    reject = _refused_then_honest(driver, keys, _frame(keys, 7, rate=1e-4, nsamp=214, channels=400), 8)
    assert reject.rejection.kind is RejectionKind.DATA_LIMITS and "spans" in reject.rejection.detail


def test_strangers_claimed_names_never_become_labels(driver, keys):
    """20k garbage messages with made-up creators printed 20,608 lines of ims idc status."""
    rng = np.random.default_rng(9)
    labels = set()
    for i in range(2000):
        garbage = bytearray(rng.bytes(120))
        garbage[8:16] = f"X{i:07d}".encode()
        for action in driver.receive(bytes(garbage)):
            if isinstance(action, Reject):
                labels.add(action.rejection.station)
    unknown = signed(9, keys).replace(b"STA1", b"NOPE", 1)
    labels.update(a.rejection.station for a in driver.receive(unknown) if isinstance(a, Reject))
    assert labels == {ANONYMOUS}
    assert rejected(driver.receive(signed(10, keys))) == []


def test_the_day_files_one_frame_touches_are_bounded(keys, clock):
    driver = Driver(keys, clock(), limits=DataLimits(max_day_files=2))
    driver.connect()
    reject = _refused_then_honest(driver, keys, _frame(keys, 7, channels=3), 8)
    assert reject.rejection.kind is RejectionKind.DATA_LIMITS and "3 day files" in reject.rejection.detail


def test_real_stations_frames_keep_to_the_admission_rules():
    """The rules refuse attacks, not real data: frames of GERES, H04N, KEST and LBTB (an array, a
    hydroacoustic station with 1 sps channels, a three-component station, locations 'US') pass them, at
    the receiver's clock of their own day, with each station's sites configured."""
    checked = 0
    for path in sorted(shared_fixture_dir("cd11").glob("*.cd11")):
        frame = decode_frame(path.read_bytes())
        body = frame.body
        assert isinstance(body, DataBody)
        station = StationPolicy(frame.header.creator, "IM", sites=tuple({sub.site for sub in body.channels}))
        now = max(sub.end_ns for sub in body.channels) + 3600 * NS_PER_S
        assert data_problem(body, station, now, DataLimits()) is None, path.name
        checked += len(body.channels)
    assert checked == 26
