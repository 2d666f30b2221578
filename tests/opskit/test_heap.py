"""The heap trimmer gives back memory freed between live objects, and no more often than asked."""

from __future__ import annotations

import gc
import os

import pytest

from hil.procwatch import read_usage
from opskit.heap import HeapTrimmer

MIB = 1 << 20


def _rss() -> int:
    usage = read_usage(os.getpid())
    assert usage is not None
    return usage[0]


def test_a_trim_returns_the_memory_freed_between_live_objects() -> None:
    trimmer = HeapTrimmer(every_s=0.0)
    if not trimmer.available:
        pytest.skip("this C library has no malloc_trim (not glibc)")
    # 4 KiB objects come from malloc's heap; keeping every tenth pins the heap's top, so the other nine
    # tenths (about 70 MiB) are free but stay resident
    blocks = [bytes(4096 - 33) for _ in range(20_000)]
    kept = blocks[::10]
    del blocks
    gc.collect()
    before = _rss()
    assert trimmer.maybe()
    after = _rss()
    assert before - after > 32 * MIB, (before // MIB, after // MIB)
    assert len(kept) == 2_000


def test_a_trim_comes_at_most_once_per_interval() -> None:
    now = [100.0]
    trimmer = HeapTrimmer(every_s=10.0, clock=lambda: now[0])
    if not trimmer.available:
        pytest.skip("this C library has no malloc_trim (not glibc)")
    assert not trimmer.maybe()  # counted from its creation
    now[0] = 110.0
    assert trimmer.maybe()
    now[0] = 119.9
    assert not trimmer.maybe()
    now[0] = 120.0
    assert trimmer.maybe()
