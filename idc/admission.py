"""What a data frame's contents must keep to before they touch the archive, the metrics or the logs.

Checked at the door, on every channel of a frame from a configured station, before any signature is
verified (a violation is refused whatever the signatures say, so one station's key cannot buy more):

- codes in the SEED alphabet and lengths (idc/codes.py), since they become file paths and labels;
- the site is one the authenticated station is configured to send (``[stations.NAME] sites``), so a
  station can never write into another station's channels;
- the rate is one a miniSEED 2 header can carry (gci_link.io.mseed2 MIN_RATE..MAX_RATE, the same
  limits the packer has), so nothing the verifier accepts is refused later by the archive, where it
  would hold up every station's batch;
- the samples lie inside the data time window around the receiver's clock (``data_past_days``,
  ``data_future_s``), and one subframe spans at most ``max_subframe_span_s``;
- the day files the frame would append to number at most ``max_day_files_per_frame``.
"""

from __future__ import annotations

from gci_link.cd11 import DataBody
from gci_link.io.mseed2 import MAX_RATE, MIN_RATE
from idc.codes import code_problem
from idc.config import DataLimits, StationPolicy
from idc.vocabulary import RejectionKind
from timeunits import NS_PER_DAY, NS_PER_MS, NS_PER_S

Problem = tuple[RejectionKind, str]


def data_problem(body: DataBody, station: StationPolicy, now_ns: int, limits: DataLimits) -> Problem | None:
    """The first rule above that a channel breaks (rejection kind and reason), or None."""
    sites = station.allowed_sites
    earliest = now_ns - int(limits.past_s * NS_PER_S)
    latest = now_ns + int(limits.future_s * NS_PER_S)
    max_span_ns = int(limits.max_span_s * NS_PER_S)
    day_files = 0
    for sub in body.channels:
        problem = code_problem(sub.site, sub.channel, sub.location)
        if problem is not None:
            return RejectionKind.BAD_CODE, problem
        where = f"channel {sub.site}/{sub.channel}/{sub.location}"
        if sub.site not in sites:
            allowed = ", ".join(sites)
            return RejectionKind.FOREIGN_SITE, f"{where}: station {station.name} sends sites {allowed} only"
        if not MIN_RATE <= sub.sample_rate <= MAX_RATE:
            return (
                RejectionKind.DATA_LIMITS,
                f"{where}: {sub.nsamp} samples in {sub.time_length_ms} ms is {sub.sample_rate:g} sps, "
                f"outside the {MIN_RATE:.3g}-{MAX_RATE:g} sps miniSEED can carry",
            )
        end_ns = sub.time_ns + sub.time_length_ms * NS_PER_MS
        if sub.time_ns < earliest or end_ns > latest:
            return (
                RejectionKind.TIME_WINDOW,
                f"{where}: data from {sub.time_ns} to {end_ns} ns, outside {earliest} to {latest} ns "
                "(the accepted window around the receiver's clock)",
            )
        if end_ns - sub.time_ns > max_span_ns:
            span_s = (end_ns - sub.time_ns) / NS_PER_S
            return RejectionKind.DATA_LIMITS, f"{where}: spans {span_s:g} s, over {limits.max_span_s:g} s"
        day_files += end_ns // NS_PER_DAY - sub.time_ns // NS_PER_DAY + 1
    if day_files > limits.max_day_files:
        return (
            RejectionKind.DATA_LIMITS,
            f"the frame would append to {day_files} day files, more than {limits.max_day_files}",
        )
    return None
