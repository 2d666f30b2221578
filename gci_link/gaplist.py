"""Per-station CD-1.1 gap list: which sequence numbers have been received, as disjoint intervals.

CD-1.1 semantics (spec §5.3): lowest and highest are inclusive; a gap is (start inclusive, end exclusive);
an empty list reports lowest 0, highest -1. Sequence numbers are unsigned 64-bit; they are kept as
Python ints in [0, 2**64). Received numbers are stored as half-open intervals [start, end) so the list
stays small when frames arrive in order, and so it can be saved as rows and restored after a restart.
``consecutive_runs`` cuts a list of numbers into such runs for the station side; ``seq_to_signed``
and ``seq_from_signed`` map them to and from the signed 64-bit form of the wire and of SQLite.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

SEQ_LIMIT = 1 << 64
_SIGN = 1 << 63


def seq_to_signed(seq: int) -> int:
    """An unsigned 64-bit sequence number as the signed 64-bit integer that CD-1.1 acknacks and SQLite
    carry (two's complement)."""
    return seq - SEQ_LIMIT if seq >= _SIGN else seq


def seq_from_signed(value: int) -> int:
    return value + SEQ_LIMIT if value < 0 else value


def consecutive_runs(seqs: Iterable[int]) -> list[range]:
    """Ascending sequence numbers cut into runs of consecutive ones: 5 6 7 9 -> range(5, 8), range(9, 10).

    A long run then costs one range instead of a number each (one outbox update, one replay outbox).
    """
    runs: list[range] = []
    for seq in seqs:
        if runs and seq == runs[-1].stop:
            runs[-1] = range(runs[-1].start, seq + 1)
        else:
            runs.append(range(seq, seq + 1))
    return runs


class GapList:
    """Received sequence numbers of one frame set; ``add`` reports whether a number is new."""

    def __init__(self, intervals: list[tuple[int, int]] | None = None) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in sorted(intervals or []):
            if not 0 <= start < end <= SEQ_LIMIT:
                raise ValueError(f"gap list interval [{start}, {end}) is empty or outside 0..2**64")
            if self._ends and start <= self._ends[-1]:
                self._ends[-1] = max(self._ends[-1], end)
            else:
                self._starts.append(start)
                self._ends.append(end)

    def __contains__(self, seq: int) -> bool:
        i = bisect.bisect_right(self._starts, seq) - 1
        return i >= 0 and seq < self._ends[i]

    def add(self, seq: int) -> bool:
        """Record ``seq``; True if it was not received before (a duplicate returns False)."""
        if not 0 <= seq < SEQ_LIMIT:
            raise ValueError(f"sequence number {seq} outside the unsigned 64-bit range")
        if seq in self:
            return False
        i = bisect.bisect_right(self._starts, seq)  # first interval starting after seq
        joins_left = i > 0 and self._ends[i - 1] == seq
        joins_right = i < len(self._starts) and self._starts[i] == seq + 1
        if joins_left and joins_right:
            self._ends[i - 1] = self._ends[i]
            del self._starts[i], self._ends[i]
        elif joins_left:
            self._ends[i - 1] = seq + 1
        elif joins_right:
            self._starts[i] = seq
        else:
            self._starts.insert(i, seq)
            self._ends.insert(i, seq + 1)
        return True

    @property
    def lowest(self) -> int:
        return self._starts[0] if self._starts else 0

    @property
    def highest(self) -> int:
        return self._ends[-1] - 1 if self._ends else -1

    def gaps(self) -> list[tuple[int, int]]:
        """Missing ranges inside lowest..highest, as (first missing, next present), ascending."""
        return list(zip(self._ends[:-1], self._starts[1:], strict=True))

    def intervals(self) -> list[tuple[int, int]]:
        """Received ranges [start, end) for saving; ``GapList(intervals)`` restores the same list."""
        return list(zip(self._starts, self._ends, strict=True))
