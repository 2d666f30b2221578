"""CD-1.1 codec speed: Canadian decode/encode against libmseed's Steim2 decode, and CRC-64 throughput.

Data: one day of 40-sps counts from the simulated broadband seismometer (microseism-coloured noise and
events, hil.sensors). Steim2 runs in C through pymseed on the very same samples. Every figure is the
best of several repeats after a warm-up call, so numba compile time is excluded. Single thread.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pymseed

from bench.timing import best_of
from gci_link.cd11 import canadian, crc64
from hil.sensors import broadband_seismometer

RATE = 40
DAY = 86_400 * RATE
FRAME = 10 * RATE
REPEATS = 7


def _steim2(samples: np.ndarray) -> bytes:
    traces = pymseed.MS3TraceList()
    traces.add_data("FDSN:XX_DEMO__B_H_Z", samples, "i", float(RATE), starttime_str="2024-01-01T00:00:00Z")
    return b"".join(
        traces.generate(max_record_length=4096, encoding=pymseed.DataEncoding.STEIM2, format_version=2)
    )


def run(progress: Callable[[str], None]) -> dict:
    progress("simulating a day of 40 sps broadband seismometer counts with events")
    x = broadband_seismometer("BENCH", RATE, np.random.default_rng(42)).generate(DAY)
    msamples = DAY / 1e6

    progress("Canadian encode/decode, whole day as one stream")
    stream = canadian.encode(x)
    assert np.array_equal(canadian.decode(stream, DAY), x)
    t_dec = best_of(lambda: canadian.decode(stream, DAY), REPEATS)
    t_enc = best_of(lambda: canadian.encode(x), REPEATS)

    progress("Canadian decode, 10-s subframes (400 samples per call)")
    pieces = [canadian.encode(x[i : i + FRAME]) for i in range(0, DAY, FRAME)]
    t_dec_frames = best_of(lambda: [canadian.decode(p, FRAME) for p in pieces], 3)
    # what the frame parser calls per channel: also recovers v0 and the bytes used
    t_stream_frames = best_of(lambda: [canadian.decode_stream(p, FRAME) for p in pieces], 3)

    progress("Steim2 (libmseed via pymseed) pack and decode of the same samples")
    records = _steim2(x)
    (segment,) = [
        seg for trace in pymseed.MS3TraceList.from_buffer(records, unpack_data=True) for seg in trace
    ]
    assert np.array_equal(np.asarray(segment.np_datasamples), x), "Steim2 round trip differs"
    t_steim = best_of(lambda: pymseed.MS3TraceList.from_buffer(records, unpack_data=True), REPEATS)

    progress("CRC-64 over 64 MB")
    blob = np.random.default_rng(0).integers(0, 256, 64 * 1024 * 1024, dtype=np.uint8)
    t_crc = best_of(lambda: crc64(blob), 5)

    return {
        "samples": DAY,
        "canadian_bytes_per_sample": round(len(stream) / DAY, 3),
        "steim2_bytes_per_sample": round(len(records) / DAY, 3),
        "canadian_decode_msamples_per_s": round(msamples / t_dec, 1),
        "canadian_decode_10s_subframes_msamples_per_s": round(msamples / t_dec_frames, 1),
        "canadian_decode_stream_10s_subframes_msamples_per_s": round(msamples / t_stream_frames, 1),
        "canadian_decode_10s_subframe_us_per_call": round(t_dec_frames / len(pieces) * 1e6, 2),
        "canadian_encode_msamples_per_s": round(msamples / t_enc, 1),
        "steim2_decode_msamples_per_s": round(msamples / t_steim, 1),
        "canadian_over_steim2_decode": round(t_steim / t_dec, 2),
        "crc64_mb_per_s": round(blob.size / 1e6 / t_crc, 1),
        "targets": "Canadian decode >= 1.5x Steim2; CRC-64 >= 500 MB/s",
    }
