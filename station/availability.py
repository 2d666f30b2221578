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
        self._first_ns: dict[str, int] = {}  # channel -> its first sample since the daemon started

    def add(self, channel: str, start_ns: int, sample_rate: float, nsamp: int) -> None:
        if nsamp <= 0 or sample_rate <= 0:
            return
        counts = self._counts.setdefault(channel, {})
        self._rates[channel] = sample_rate
        self._first_ns[channel] = min(start_ns, self._first_ns.get(channel, start_ns))
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

    def strip(self, channel: str, end_ns: int, bars: int, bar_minutes: int) -> list[float | None]:
        """Percent of the expected samples received, per bar of ``bar_minutes``, oldest first; the last
        bar holds ``end_ns``. Only time since the channel's first sample and until ``end_ns`` is expected
        to have data, so the bar in progress is not short; a bar wholly before the first sample is None
        (no record: the daemon was not running or the channel not yet configured)."""
        counts = self._counts.get(channel, {})
        rate, first_ns = self._rates.get(channel), self._first_ns.get(channel)
        if rate is None or first_ns is None:
            return [None] * bars
        last = end_ns // MINUTE_NS
        first = last - bars * bar_minutes + 1
        strip: list[float | None] = []
        for start in range(first, last + 1, bar_minutes):
            span_ns = min((start + bar_minutes) * MINUTE_NS, end_ns) - max(start * MINUTE_NS, first_ns)
            if span_ns <= 0:
                strip.append(None)
                continue
            received = sum(counts.get(m, 0) for m in range(start, start + bar_minutes))
            strip.append(min(100.0, 100.0 * received / max(1.0, rate * span_ns / NS_PER_S)))
        return strip
