"""Compile (or load from numba's on-disk cache) every compiled kernel before a daemon takes data.

A kernel compiles on its first call, which on a fresh installation takes seconds: long enough for a
station's first frame, or a receiver's first batch, to stall behind it, and under the simulation's
accelerated clock seconds become many minutes of data time. Daemons call ``warm_up`` at start, and the
simulated network calls it before its clock runs, so no kernel compiles on the data path. Each call
goes through the same public entry points, with the same argument types, as the data path does, so
the signatures compiled here are the ones used later.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from gci_link.cd11 import build_data_frame, build_subframe, decode_frame, encode_frame
from gci_link.ims2.lexer import lex
from gci_link.ims2.spectra import parse_channel_rows
from gci_link.io.sds import SdsArchive, Segment
from timeunits import NS_PER_S

_START_NS = 1_700_000_000 * NS_PER_S


def warm_up() -> float:
    """Run every kernel once (CD-1.1 Canadian coding and CRC-64, miniSEED 2 packing, the IMS 2.0 lexer,
    number scan and spectrum rows); seconds taken."""
    started = time.perf_counter()
    samples = (np.arange(400, dtype=np.int64) * 37 % 2001 - 1000).astype(np.int32)
    subframe = build_subframe(samples, site="WARM", channel="BHZ", time_ns=_START_NS, sample_rate=40.0)
    frame = build_data_frame([subframe], creator="WARM", sequence=1, nominal_time_ns=_START_NS)
    decode_frame(encode_frame(frame))
    with tempfile.TemporaryDirectory(prefix="ims-kernels-") as tmp:
        archive = SdsArchive(Path(tmp))
        segment = Segment("XX", "WARM", "", "BHZ", _START_NS, 40.0, samples)
        archive.append(archive.split_by_day(segment))
        archive.close()
    lex("BEGIN IMS2.0\n#g_Spectrum\n1 2\nSTOP\n")  # every IMS 2.0 message goes through these
    parse_channel_rows("#g_Spectrum", "1 5 6\n", 1, 2)  # and spectra through its number scan
    return time.perf_counter() - started
