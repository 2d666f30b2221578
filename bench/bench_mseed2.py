"""Steim-2 miniSEED 2 packing of one receiver batch: pymseed vs gci_link.io.mseed2 (what the SDS writer uses).

2,670 channels x one 10 s subframe of 400 samples (40 sps), random walks as in bench_receiver. pymseed:
one trace list, ``add_data`` per segment, ``generate`` (512-byte records, Steim-2, version 2) and the
records grouped by their header id, as ``SdsArchive.append`` did before it used mseed2. Ours: one
``pack_records`` call, then (as a caller would) each segment's records sliced out as bytes. Both
produce the same bytes (checked). Times are the best of several runs after a warm-up, so numba's
compile is excluded.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pymseed

from bench.bench_receiver import _counts
from bench.timing import best_of
from gci_link.io.mseed2 import header_id, pack_records

SEGMENTS = 2670
SAMPLES = 400
RATE = 40.0
T0 = 1_704_067_200 * 1_000_000_000
REPEATS = 7
_HEADER_ID = slice(8, 20)


def _channels() -> list[tuple[str, str, str, str]]:
    return [
        ("IM", f"S{i // 6:03d}", "00", f"BH{'ZNE'[i % 3]}" if i % 6 < 3 else f"HH{'ZNE'[i % 3]}")
        for i in range(SEGMENTS)
    ]


def _pymseed(sids: list[str], headers: list[bytes], segments: list[np.ndarray]) -> dict[bytes, list[bytes]]:
    traces = pymseed.MS3TraceList()
    for sid, x in zip(sids, segments, strict=True):
        traces.add_data(sid, x, "i", RATE, starttime=T0)
    out: dict[bytes, list[bytes]] = {h: [] for h in headers}
    with traces:
        for record in traces.generate(
            max_record_length=512, encoding=pymseed.DataEncoding.STEIM2, format_version=2
        ):
            out[record[_HEADER_ID]].append(record)
    return out


def run(progress: Callable[[str], None]) -> dict:
    rng = np.random.default_rng(1)
    channels = _channels()
    segments = [_counts(rng, SAMPLES) for _ in range(SEGMENTS)]
    sids = [pymseed.nslc2sourceid(*c) for c in channels]
    headers = [header_id(*c) for c in channels]
    samples = np.concatenate(segments)
    bounds = np.arange(SEGMENTS + 1, dtype=np.int64) * SAMPLES
    starts = np.full(SEGMENTS, T0, dtype=np.int64)
    rates = np.full(SEGMENTS, RATE)
    ids = np.frombuffer(b"".join(headers), dtype=np.uint8).reshape(SEGMENTS, 12)

    def ours() -> list[bytes]:
        packed = pack_records(samples, bounds, starts, rates, ids)
        first = packed.first.tolist()
        return [packed.records[first[i] : first[i + 1]].tobytes() for i in range(SEGMENTS)]

    progress("first call (numba compile or cache load)")
    started = time.perf_counter()
    pack_records(samples, bounds, starts, rates, ids)
    first_call = time.perf_counter() - started
    theirs = _pymseed(sids, headers, segments)
    assert ours() == [b"".join(theirs[h]) for h in headers], "records differ from pymseed's"
    progress(f"timing pymseed ({SEGMENTS} segments)")
    t_pymseed = best_of(lambda: _pymseed(sids, headers, segments), REPEATS)
    progress("timing gci_link.io.mseed2")
    t_pack = best_of(lambda: pack_records(samples, bounds, starts, rates, ids), REPEATS * 3)
    t_ours = best_of(ours, REPEATS * 3)
    return {
        "segments": SEGMENTS,
        "samples_per_segment": SAMPLES,
        "records": int(sum(len(v) for v in theirs.values())),
        "pymseed_us_per_segment": t_pymseed / SEGMENTS * 1e6,
        "pack_records_us_per_segment": t_pack / SEGMENTS * 1e6,
        "pack_and_slice_us_per_segment": t_ours / SEGMENTS * 1e6,
        "speedup_pack_only": t_pymseed / t_pack,
        "speedup_with_slicing": t_pymseed / t_ours,
        "first_call_s": first_call,
        "identical_bytes": "yes",
    }
