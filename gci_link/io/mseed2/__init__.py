"""miniSEED 2 (Steim-2) records packed by one compiled call per batch (:mod:`.records`), within the one
set of limits everyone who writes or admits data checks (:mod:`.limits`)."""

from gci_link.io.mseed2.limits import (
    MAX_RATE,
    MAX_RATE_TERM,
    MIN_RATE,
    channel_problem,
    code_problem,
    segment_problem,
    steim2_fits,
)
from gci_link.io.mseed2.records import MAX_RECORD_SAMPLES, PackedRecords, header_id, pack_records

__all__ = [
    "MAX_RATE",
    "MAX_RATE_TERM",
    "MAX_RECORD_SAMPLES",
    "MIN_RATE",
    "PackedRecords",
    "channel_problem",
    "code_problem",
    "header_id",
    "pack_records",
    "segment_problem",
    "steim2_fits",
]
