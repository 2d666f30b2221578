"""Cutting sequence numbers into runs (the sender's outbox acks and ``ims link replay`` share it)."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from gci_link.gaplist import consecutive_runs


def test_runs_break_where_a_number_is_missing():
    assert consecutive_runs([5, 6, 7, 9]) == [range(5, 8), range(9, 10)]
    assert consecutive_runs((2**64 - 2, 2**64 - 1)) == [range(2**64 - 2, 2**64)]
    assert consecutive_runs([]) == []


@given(st.sets(st.integers(0, 300)))
def test_runs_cover_exactly_the_numbers_and_never_touch(numbers):
    runs = consecutive_runs(sorted(numbers))
    assert [seq for run in runs for seq in run] == sorted(numbers)
    assert all(a.stop < b.start for a, b in pairwise(runs))
