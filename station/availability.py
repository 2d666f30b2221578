"""Per-channel availability over the last hours and days, for the console's strip charts.

The main loop counts the samples each packet brings into one-minute buckets (a dictionary increment or
two per packet); the console asks for the share of expected samples per bar. The console thread only
looks buckets up by key, never iterates what the main loop changes, so no lock is needed.
"""

from __future__ import annotations

from timeunits import NS_PER_S

MINUTE_NS = 60 * NS_PER_S


class AvailabilityStrips:
    def __init__(self, days: float = 7.0) -> None:
        self.keep_minutes = round(days * 1440)
        self._counts: dict[str, dict[int, int]] = {}  # channel -> minute index -> samples received
        self._rates: dict[str, float] = {}
        self._oldest: dict[str, int] = {}  # channel -> oldest minute still kept

    def add(self, channel: str, start_ns: int, sample_rate: float, nsamp: int) -> None:
        if nsamp <= 0 or sample_rate <= 0:
            return
        counts = self._counts.setdefault(channel, {})
        self._rates[channel] = sample_rate
        period_ns = NS_PER_S / sample_rate
        done = 0
        while done < nsamp:  # split at minute boundaries (a packet rarely spans one)
            t = start_ns + round(done * period_ns)
            minute = t // MINUTE_NS
            before_next_minute = -(-((minute + 1) * MINUTE_NS - t) // round(period_ns))  # ceil
            take = min(nsamp - done, max(1, before_next_minute))
            counts[minute] = counts.get(minute, 0) + take
            done += take
        newest = (start_ns + round((nsamp - 1) * period_ns)) // MINUTE_NS
        oldest = self._oldest.setdefault(channel, newest - self.keep_minutes)
        while oldest < newest - self.keep_minutes:
            counts.pop(oldest, None)
            oldest += 1
        self._oldest[channel] = oldest

    def strip(self, channel: str, end_ns: int, bars: int, bar_minutes: int) -> list[float]:
        """Percent of the expected samples received, per bar of ``bar_minutes``, the last bar ending at
        the minute of ``end_ns`` (partly elapsed: counted as a whole minute), oldest first."""
        counts = self._counts.get(channel, {})
        rate = self._rates.get(channel)
        if rate is None:
            return [0.0] * bars
        last = end_ns // MINUTE_NS
        first = last - bars * bar_minutes + 1
        expected = rate * 60 * bar_minutes
        return [
            min(100.0, 100.0 * sum(counts.get(m, 0) for m in range(start, start + bar_minutes)) / expected)
            for start in range(first, last + 1, bar_minutes)
        ]
