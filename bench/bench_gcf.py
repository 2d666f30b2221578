"""GCF decoding speed: our decoder against ObsPy's C reader on the same file in the same run."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import obspy

from bench.timing import best_of
from digitizer.gcf import GcfBlock, encode_block, iter_file_blocks
from timeunits import NS_PER_S

BLOCKS = 4000
RATE = 100
REPEATS = 5


def _file_image() -> tuple[bytes, int]:
    """Three components of 100 sps seismic-like noise: quiet (8-bit), moderate (16-bit) and loud (32-bit)."""
    rng = np.random.default_rng(1)
    parts, total = [], 0
    start = 1_700_000_000
    for i in range(BLOCKS):
        kind = i % 3
        n = {0: 1000, 1: 500, 2: 200}[kind]  # full blocks of 250 records at each width
        step = {0: 40, 1: 9000, 2: 3_000_000}[kind]
        samples = np.cumsum(rng.integers(-step, step, n)).astype(np.int32)
        block = GcfBlock("HPA1", f"6018{'ZNE'[kind]}2", (start + i) * NS_PER_S, float(RATE), 0, samples)
        parts.append(encode_block(block, pad=True))
        total += n
    return b"".join(parts), total


def run(progress: Callable[[str], None]) -> dict:
    progress(f"encoding {BLOCKS} blocks")
    image, total = _file_image()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.gcf"
        path.write_bytes(image)
        ours = iter_file_blocks(image)
        theirs = obspy.read(str(path), format="GCF", blockmerge=False)
        assert sum(b.nsamp for b in ours) == sum(t.stats.npts for t in theirs) == total
        progress("timing ObsPy read (per-block traces and merged)")
        t_obspy_blocks = best_of(lambda: obspy.read(str(path), format="GCF", blockmerge=False), REPEATS)
        t_obspy_merged = best_of(lambda: obspy.read(str(path), format="GCF"), REPEATS)
        progress("timing digitizer.gcf")
        t_ours = best_of(lambda: iter_file_blocks(path.read_bytes()), REPEATS)
    t_obspy = min(t_obspy_blocks, t_obspy_merged)
    return {
        "blocks": BLOCKS,
        "samples": total,
        "ours_msamples_per_s": total / t_ours / 1e6,
        "obspy_blocks_msamples_per_s": total / t_obspy_blocks / 1e6,
        "obspy_merged_msamples_per_s": total / t_obspy_merged / 1e6,
        "ours_us_per_block": t_ours / BLOCKS * 1e6,
        "speedup_vs_obspy_best": t_obspy / t_ours,
        "target": ">= 2x",
    }
