"""``ims idc plot``: quick looks at the SDS archive for people, as PNG files.

The archive is read with ObsPy, as any SDS user reads it: availability from the day files' record
headers (the share of each UTC day their samples cover), waveforms through ObsPy's SDS client.
matplotlib draws without a display (Agg).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from timeunits import NS_PER_S

DAY_S = 86_400
_SPAN = re.compile(r"(\d+(?:\.\d+)?)(s|m|h|d)")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": DAY_S}


def parse_span(text: str) -> float:
    """``90s``, ``10m``, ``2h``, ``1d`` in seconds; ValueError saying what is expected."""
    match = _SPAN.fullmatch(text.strip())
    if match is None or float(match[1]) <= 0:
        raise ValueError(f"expected a positive span like 90s, 10m, 2h or 1d, got {text!r}")
    return float(match[1]) * _UNIT_S[match[2]]


def day_files(sds_root: Path, day: dt.date) -> list[Path]:
    """Every channel's day file of one UTC day (ROOT/YEAR/NET/STA/CHAN.D/NET.STA.LOC.CHAN.D.YEAR.DOY)."""
    year, doy = day.year, day.timetuple().tm_yday
    return sorted(sds_root.glob(f"{year}/*/*/*.D/*.D.{year}.{doy:03d}"))


def covered_s(path: Path, day: dt.date) -> float:
    """Seconds of ``day`` that the records of one day file cover (overlaps counted once)."""
    from obspy import read

    day_start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()
    spans = []
    for trace in read(str(path), headonly=True):
        stats = trace.stats
        if stats.sampling_rate > 0:
            start = stats.starttime.timestamp
            end = start + stats.npts / stats.sampling_rate
            spans.append((max(start, day_start), min(end, day_start + DAY_S)))
    spans.sort()
    total, reach = 0.0, day_start
    for start, end in spans:
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def availability(sds_root: Path, days: Iterable[dt.date]) -> dict[str, dict[dt.date, float]]:
    """``NET.STA.LOC.CHA`` -> day -> the ratio of the day its day file covers (absent: no file)."""
    table: dict[str, dict[dt.date, float]] = {}
    for day in days:
        for path in day_files(sds_root, day):
            channel = ".".join(path.name.split(".")[:4])
            table.setdefault(channel, {})[day] = covered_s(path, day) / DAY_S
    return table


def plot_availability(table: dict[str, dict[dt.date, float]], days: list[dt.date], out: Path) -> None:
    """One row per channel, one column per day, coloured by availability and labelled in percent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    channels = sorted(table)
    grid = np.array([[table[c].get(d, 0.0) for d in days] for c in channels])
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(days) + 3), max(2.5, 0.3 * len(channels) + 1.5)))
    image = ax.imshow(grid * 100, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(days)), [d.isoformat() for d in days], rotation=90, fontsize=7)
    ax.set_yticks(range(len(channels)), channels, fontsize=7)
    if grid.size <= 400:
        for (row, col), value in np.ndenumerate(grid):
            ax.text(col, row, f"{value * 100:.0f}", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, label="availability (%)")
    ax.set_title("Archived share of each UTC day (%)")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def waveforms(sds_root: Path, network: str, sites: Iterable[str], start_ns: int, end_ns: int) -> Any:
    """An ObsPy Stream of every channel of ``sites`` between the two times (merged, gaps masked)."""
    from obspy import Stream, UTCDateTime
    from obspy.clients.filesystem.sds import Client

    client = Client(str(sds_root))
    start, end = UTCDateTime(start_ns / NS_PER_S), UTCDateTime(end_ns / NS_PER_S)
    stream = Stream()
    for site in sites:
        stream += client.get_waveforms(network, site, "*", "*", start, end)
    stream.merge()
    return stream.sort()


def plot_waveforms(stream: Any, title: str, out: Path) -> None:
    """One panel per channel on a shared UTC time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(stream), 1, sharex=True, squeeze=False, figsize=(10, 1.6 * len(stream) + 1))
    for ax, trace in zip(axes[:, 0], stream, strict=True):
        ax.plot(trace.times("matplotlib"), trace.data, linewidth=0.5, color="black")
        ax.set_ylabel(trace.id, fontsize=7, rotation=0, ha="right")
        ax.tick_params(labelsize=7)
    from matplotlib.dates import DateFormatter

    axes[-1, 0].xaxis_date()
    axes[-1, 0].xaxis.set_major_formatter(DateFormatter("%H:%M:%S"))
    axes[-1, 0].set_xlabel("UTC")
    fig.suptitle(title)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
