"""What a data frame's contents must keep to before they touch the archive, the metrics or the logs.

Checked at the door, on every channel of a frame from a configured station, before any signature is
verified (a violation is refused whatever the signatures say, so one station's key cannot buy more):

- codes: site 1-5, channel 1-3, location 0-2 ASCII letters or digits (``bad_code``), since they become
  SDS paths, miniSEED headers, SeedLink ids and metrics labels;
- the site is one the authenticated station is configured to send (``[stations.NAME] sites``), so a
  station can never write into another station's channels (``foreign_site``);
- the samples lie inside the window of ``data_past_days`` before and ``data_future_s`` after the
  receiver's clock (``time_window``);
- what a miniSEED 2 record can carry (``data_limits``): the very limits the packer has
  (gci_link/io/mseed2/limits.py: rate, times from 1970 to 2262, Steim-2 differences), so nothing the
  receiver accepts is refused later by the archive, where it would hold up every station's batch;
- one subframe spans at most ``max_subframe_span_s`` and the frame appends to at most
  ``max_day_files_per_frame`` day files (``data_limits``).
"""

from __future__ import annotations

from gci_link.cd11 import DataBody
from gci_link.io.mseed2.limits import (
    CHANNEL,
    LOCATION,
    STATION,
    code_problem,
    rate_problem,
    steim2_problem,
    time_problem,
)
from idc.config import DataLimits, StationPolicy
from idc.vocabulary import RejectionKind
from timeunits import NS_PER_DAY, NS_PER_S

Problem = tuple[RejectionKind, str]


def data_problem(body: DataBody, station: StationPolicy, now_ns: int, limits: DataLimits) -> Problem | None:
    """The first rule above that a channel breaks (rejection kind and reason), or None."""
    sites = station.allowed_sites
    earliest = now_ns - int(limits.past_s * NS_PER_S)
    latest = now_ns + int(limits.future_s * NS_PER_S)
    max_span_ns = int(limits.max_span_s * NS_PER_S)
    day_files = 0
    for sub in body.channels:
        problem = (
            code_problem(sub.site, STATION, "site")
            or code_problem(sub.channel, CHANNEL, "channel")
            or code_problem(sub.location, LOCATION, "location")
        )
        if problem is not None:
            return RejectionKind.BAD_CODE, problem
        where = f"channel {sub.site}/{sub.channel}/{sub.location}"
        if sub.site not in sites:
            allowed = ", ".join(sites)
            return RejectionKind.FOREIGN_SITE, f"{where}: station {station.name} sends sites {allowed} only"
        start_ns, end_ns = sub.time_ns, sub.end_ns
        if start_ns < earliest or end_ns > latest:
            return (
                RejectionKind.TIME_WINDOW,
                f"{where}: data from {start_ns} to {end_ns} ns, outside {earliest} to {latest} ns "
                "(the accepted window around the receiver's clock)",
            )
        problem = (
            time_problem(start_ns, end_ns)
            or _rate_problem(sub.nsamp, sub.time_length_ms, sub.sample_rate)
            or steim2_problem(sub.samples)
        )
        if problem is not None:
            return RejectionKind.DATA_LIMITS, f"{where}: {problem}"
        if end_ns - start_ns > max_span_ns:
            span_s = (end_ns - start_ns) / NS_PER_S
            return RejectionKind.DATA_LIMITS, f"{where}: spans {span_s:g} s, over {limits.max_span_s:g} s"
        day_files += (end_ns - 1) // NS_PER_DAY - start_ns // NS_PER_DAY + 1  # end_ns > start_ns: a rate
    if day_files > limits.max_day_files:
        return (
            RejectionKind.DATA_LIMITS,
            f"the frame would append to {day_files} day files, more than {limits.max_day_files}",
        )
    return None


def _rate_problem(nsamp: int, time_length_ms: int, rate: float) -> str | None:
    problem = rate_problem(rate)
    return None if problem is None else f"{nsamp} samples in {time_length_ms} ms: {problem}"
