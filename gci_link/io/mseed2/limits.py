"""What a miniSEED 2 record in an SDS day file can carry: one set of limits for everyone who must agree.

The packer (records.py) refuses anything outside them, the SDS archive refuses a segment outside them
before a day-file path is made of its codes, and the IDC receiver checks them at the door
(idc/admission.py). So data the receiver accepted is never refused later by the archive, where it would
fail a batch holding every station's frames.

- codes: ASCII letters and digits only (the fixed header's 12 bytes, and SDS directory and file names:
  no ``/``, ``..``, NUL, spaces or anything non-ASCII); network 1-2, station 1-5, location 0-2 and
  channel 1-3 characters;
- rates: 1/32767 to 32767 samples per second (the header's factor and multiplier are int16);
- times: from 1970 (start times are nanoseconds since 1970, and BTIME is computed from them) to
  2**63 - 1 ns in 2262 (int64 nanoseconds in the packer and in SQLite);
- Steim-2: one sample differs from the one before by what 30 bits hold (modulo 2**32, as libmseed takes
  differences), since the packer puts consecutive samples of a channel into one record.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

MAX_RATE_TERM = 32767  # factor and multiplier are int16
MAX_RATE = float(MAX_RATE_TERM)  # samples per second, fastest
MIN_RATE = 1.0 / MAX_RATE_TERM  # and slowest (a period of 32767 s)
EARLIEST_NS = 0  # 1970-01-01
LATEST_NS = (1 << 63) - 1  # 2262-04-11
STEIM2_DIFFERENCE_BITS = 30  # the widest Steim-2 difference (one per word)
_HALF = 1 << (STEIM2_DIFFERENCE_BITS - 1)  # a difference d fits when -_HALF <= d < _HALF

# (fewest, most) characters of each code
NETWORK = (1, 2)
STATION = (1, 5)
LOCATION = (0, 2)
CHANNEL = (1, 3)
_ALPHABET = re.compile(r"[A-Za-z0-9]*")


@lru_cache(maxsize=8192)  # a network's few thousand codes arrive again in every frame
def code_problem(code: str, lengths: tuple[int, int], what: str) -> str | None:
    """What is wrong with one code (``what`` names it in the message), or None."""
    fewest, most = lengths
    if fewest <= len(code) <= most and _ALPHABET.fullmatch(code):
        return None
    return f"{what} {code!r} is not {fewest}-{most} ASCII letters or digits"


def channel_problem(network: str, station: str, location: str, channel: str) -> str | None:
    """The first code of a channel that breaks the rules, or None."""
    return (
        code_problem(network, NETWORK, "network")
        or code_problem(station, STATION, "station")
        or code_problem(location, LOCATION, "location")
        or code_problem(channel, CHANNEL, "channel")
    )


def rate_problem(rate: float) -> str | None:
    if MIN_RATE <= rate <= MAX_RATE:  # False for NaN too
        return None
    return f"{rate:.9g} sps is outside the {MIN_RATE:.3g} to {MAX_RATE:g} sps a miniSEED 2 header can carry"


def time_problem(start_ns: int, end_ns: int) -> str | None:
    """For data from ``start_ns`` to just before ``end_ns``."""
    if EARLIEST_NS <= start_ns and end_ns <= LATEST_NS:
        return None
    return f"data from {start_ns} to {end_ns} ns is outside 1970 to 2262 (int64 ns since 1970)"


def steim2_problem(samples: np.ndarray) -> str | None:
    """Where two consecutive samples differ by more than a Steim-2 difference holds, or None."""
    if len(samples) < 2 or int(samples.max()) - int(samples.min()) < _HALF:
        return None  # nearly all data (any 24-bit digitizer): no two samples are that far apart
    x = samples.astype(np.int64)
    d = ((np.diff(x) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)  # modulo 2**32, as steim2_fits
    wide = np.flatnonzero((d < -_HALF) | (d >= _HALF))
    if not len(wide):
        return None
    i = int(wide[0]) + 1
    return (
        f"samples {i - 1} and {i} ({int(x[i - 1])}, {int(x[i])}) differ by more than the "
        f"{STEIM2_DIFFERENCE_BITS} bits of a Steim-2 difference"
    )


def steim2_fits(before: int, after: int) -> bool:
    """Whether ``after`` may follow ``before`` in one Steim-2 record (the difference modulo 2**32)."""
    difference = ((int(after) - int(before) + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
    return -_HALF <= difference < _HALF


def segment_problem(
    network: str, station: str, location: str, channel: str, start_ns: int, rate: float, samples: np.ndarray
) -> str | None:
    """The first limit a channel's contiguous samples break, or None: what the packer would refuse."""
    problem = channel_problem(network, station, location, channel) or rate_problem(rate)
    if problem is not None:
        return problem
    end_ns = start_ns + round(len(samples) * 1e9 / rate)
    return time_problem(start_ns, end_ns) or steim2_problem(samples)
