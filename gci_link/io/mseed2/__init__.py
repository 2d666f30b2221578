"""miniSEED 2 (Steim-2) records packed by one compiled call per batch; see :mod:`.records`."""

from gci_link.io.mseed2.records import (
    MAX_RATE,
    MAX_RATE_TERM,
    MAX_RECORD_SAMPLES,
    MIN_RATE,
    PackedRecords,
    header_id,
    pack_records,
)

__all__ = [
    "MAX_RATE",
    "MAX_RATE_TERM",
    "MAX_RECORD_SAMPLES",
    "MIN_RATE",
    "PackedRecords",
    "header_id",
    "pack_records",
]
