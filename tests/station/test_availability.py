"""Availability strips: samples per minute, split at minute boundaries, as a share of the expected."""

from __future__ import annotations

import pytest

from station.availability import MINUTE_NS, AvailabilityStrips
from timeunits import NS_PER_S

T0 = 1_800_000_000 * NS_PER_S // MINUTE_NS * MINUTE_NS  # on a minute


def test_full_minutes_a_gap_and_a_packet_across_a_minute_boundary():
    strips = AvailabilityStrips(days=1)
    for s in range(0, 120):  # two full minutes of 1 s packets at 20 sps
        strips.add("X.BHZ.", T0 + s * NS_PER_S, 20.0, 20)
    for s in range(150, 180):  # half of the third minute
        strips.add("X.BHZ.", T0 + s * NS_PER_S, 20.0, 20)
    strips.add("X.BHZ.", T0 + 239 * NS_PER_S, 20.0, 40)  # the fourth minute's last second, and one more
    end = T0 + 4 * MINUTE_NS + 30 * NS_PER_S  # half way through the fifth minute
    bars = strips.strip("X.BHZ.", end, bars=6, bar_minutes=1)
    # no record before the first sample; the fifth minute is expected to be full only half way
    assert bars == [None, 100.0, 100.0, 50.0, pytest.approx(100 / 60), pytest.approx(100 * 20 / 600)]
    # bars end at the minute of `end`: minutes 1-2 (1200 + 600 samples of 2400) and 3-4.5 (20 + 20 of 1800)
    two = strips.strip("X.BHZ.", end, bars=2, bar_minutes=2)
    assert two == [75.0, pytest.approx(100 * 40 / 1800)]
    assert strips.strip("nothing", T0, bars=3, bar_minutes=1) == [None, None, None]


def test_minutes_older_than_the_days_kept_are_forgotten():
    strips = AvailabilityStrips(days=1 / 1440 * 10)  # ten minutes
    for minute in range(30):
        strips.add("X.BHZ.", T0 + minute * MINUTE_NS, 1.0, 60)
    got = strips.strip("X.BHZ.", T0 + 30 * MINUTE_NS - 1, bars=30, bar_minutes=1)
    assert got == [0.0] * 19 + [100.0] * 11  # forgotten minutes read as nothing received
