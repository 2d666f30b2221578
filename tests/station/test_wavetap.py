"""The console's waveform: min and max per half second of the last minutes, in time order."""

from __future__ import annotations

import numpy as np

from station.wavetap import WaveTap
from timeunits import NS_PER_S

T0 = 1_800_000_000 * NS_PER_S


def test_bins_keep_each_half_seconds_extremes_and_forget_what_is_older_than_the_span():
    tap = WaveTap(span_s=10.0)
    for s in range(20):
        samples = np.zeros(40, dtype=np.int32)
        samples[s % 40] = 1000 + s  # one spike per packet: decimation must not drop it
        tap.add("X.BHZ.", T0 + s * NS_PER_S, 40.0, samples)
    tap.add("X.BHZ.", T0 + 5 * NS_PER_S, 40.0, np.full(40, -5, dtype=np.int32))  # late: older than the span
    points = tap.points("X.BHZ.")
    assert points["t_ms"] == sorted(points["t_ms"])
    assert points["t_ms"][0] >= (T0 + 9 * NS_PER_S) // 1_000_000 and len(points["t_ms"]) == 2 * 11
    assert max(points["max"]) == 1019 and -5 not in points["min"]
    assert tap.channels() == ["X.BHZ."] and tap.points("nope") == {"t_ms": [], "min": [], "max": []}
