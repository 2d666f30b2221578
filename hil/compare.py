"""Ground truth against the IDC archive: every sample lost, duplicated or corrupted, counted exactly.

The truth is what the simulated digitizers produced; the archive is read back with ObsPy (an
independent miniSEED reader), trace by trace and unmerged, so a duplicated record shows up as a
sample covered twice rather than being silently merged away.

Samples the simulated hardware itself lost (blocks a full digitizer flash dropped) are passed in as
``hardware_gaps``: exactly those samples are expected to be missing, none of them may be in the
archive, and every other missing sample counts as lost. Every run of missing samples is listed with
its exact bounds.

Blocks the serial line damaged in a way the Güralp protocol cannot detect (``hil.linedamage``) are passed
in as ``undetected``, as the host accepted them: an archived sample that differs from the truth but equals
such a block's sample at the same time is counted apart, as ``line_undetected``; any other difference is
corruption.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from timeunits import NS_PER_S


@dataclass
class ChannelComparison:
    channel: str
    truth_samples: int
    archived_samples: int
    lost: int  # truth samples no archived sample covers
    duplicated: int  # archived samples beyond the first at the same time
    corrupted: int  # archived samples whose value differs from the truth
    outside_truth: int  # archived samples at times the digitizer never sampled or never sent
    hardware_gap_samples: int = 0  # truth samples inside the hardware's gaps (expected missing)
    line_undetected: int = 0  # archived samples as the line damaged them where no check could see it
    missing: list[tuple[int, int]] = field(default_factory=list)  # runs [start_ns, end_ns) not archived

    @property
    def exact(self) -> bool:
        return self.lost == self.duplicated == self.corrupted == self.outside_truth == 0

    def as_dict(self) -> dict:
        return asdict(self) | {"exact": self.exact}


def compare_channel(
    code: str,
    truth_start_ns: int,
    rate: float,
    truth: np.ndarray,
    traces: list[tuple[int, np.ndarray]],
    hardware_gaps: Sequence[tuple[int, int]] = (),
    undetected: Sequence[tuple[int, np.ndarray]] = (),
) -> ChannelComparison:
    """``traces``: (start ns, samples) as read from the archive, in any order, overlaps allowed;
    ``hardware_gaps``: [start ns, end ns) spans whose samples never left the digitizer;
    ``undetected``: (start ns, samples) of blocks as the line's undetectable damage delivered them."""
    coverage = np.zeros(len(truth), np.int32)
    corrupted = outside = archived = line_undetected = 0
    step_ns = NS_PER_S / rate
    damaged: dict[int, set[int]] = {}  # truth index -> values the line delivered there undetected
    for start_ns, samples in undetected:
        first = round((start_ns - truth_start_ns) / step_ns)
        for i, value in enumerate(samples.tolist()):
            damaged.setdefault(first + i, set()).add(value)
    for start_ns, samples in traces:
        archived += len(samples)
        first = round((start_ns - truth_start_ns) / step_ns)
        idx = first + np.arange(len(samples))
        inside = (idx >= 0) & (idx < len(truth))
        outside += int((~inside).sum())
        np.add.at(coverage, idx[inside], 1)
        differs = samples[inside] != truth[idx[inside]]
        if damaged:
            explained = [int(v) in damaged.get(int(i), ()) for i, v in
                         zip(idx[inside][differs], samples[inside][differs], strict=True)]
            line_undetected += sum(explained)
            corrupted += len(explained) - sum(explained)
        else:
            corrupted += int(differs.sum())
    expected_missing = np.zeros(len(truth), bool)
    for begin_ns, end_ns in hardware_gaps:
        lo = max(0, round((begin_ns - truth_start_ns) / step_ns))
        expected_missing[lo : max(lo, round((end_ns - truth_start_ns) / step_ns))] = True
    missing = coverage == 0
    return ChannelComparison(
        channel=code,
        truth_samples=len(truth),
        archived_samples=archived,
        lost=int((missing & ~expected_missing).sum()),
        duplicated=int(np.clip(coverage - 1, 0, None).sum()),
        corrupted=corrupted,
        outside_truth=outside + int((~missing & expected_missing).sum()),
        hardware_gap_samples=int(expected_missing.sum()),
        line_undetected=line_undetected,
        missing=[(truth_start_ns + round(a * step_ns), truth_start_ns + round(b * step_ns))
                 for a, b in _runs(missing)],
    )


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[first, end) index pairs of the runs of True in ``mask``."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist(), strict=True))


def read_sds_traces(
    sds_root: Path, network: str, site: str, location: str, channel: str, start_ns: int, end_ns: int
) -> list[tuple[int, np.ndarray]]:
    """Every trace of one channel in an SDS archive between two times, unmerged, via ObsPy."""
    from obspy import UTCDateTime
    from obspy.clients.filesystem.sds import Client

    if not sds_root.is_dir():
        return []
    stream = Client(str(sds_root)).get_waveforms(
        network,
        site,
        location,
        channel,
        UTCDateTime(ns=start_ns - NS_PER_S),
        UTCDateTime(ns=end_ns + NS_PER_S),
        merge=None,
    )
    return [(tr.stats.starttime.ns, np.asarray(tr.data, dtype=np.int64)) for tr in stream]
