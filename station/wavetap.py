"""The last minutes of every channel, reduced for the console's live waveform view.

The main loop hands each packet over (two numpy reductions, a deque append); the console thread copies
the deque and never touches the acquisition buffers. Each bin keeps the minimum and maximum of about
half a second of samples, so a spike is never lost to decimation.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from timeunits import NS_PER_S

BINS_PER_S = 2


class WaveTap:
    def __init__(self, span_s: float = 300.0) -> None:
        self.span_ns = round(span_s * NS_PER_S)
        # channel -> (bin start times ns, minima, maxima) per packet, oldest first
        self._chunks: dict[str, deque[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
        self._newest: dict[str, int] = {}  # channel -> time of its newest bin

    def add(self, channel: str, start_ns: int, sample_rate: float, samples: np.ndarray) -> None:
        if not len(samples) or sample_rate <= 0:
            return
        step = max(1, math.ceil(sample_rate / BINS_PER_S))
        starts = np.arange(0, len(samples), step)
        times = start_ns + (starts * (NS_PER_S / sample_rate)).astype(np.int64)
        newest = max(int(times[-1]), self._newest.get(channel, 0))
        self._newest[channel] = newest
        if int(times[-1]) < newest - self.span_ns:
            return  # a late packet already out of the view
        chunks = self._chunks.setdefault(channel, deque())
        chunks.append((times, np.minimum.reduceat(samples, starts), np.maximum.reduceat(samples, starts)))
        while chunks and int(chunks[0][0][-1]) < newest - self.span_ns:
            chunks.popleft()

    def channels(self) -> list[str]:
        return sorted(self._chunks)

    def points(self, channel: str) -> dict[str, list]:
        """``t_ms``, ``min``, ``max`` of the channel's bins in time order (safe from another thread)."""
        chunks = self._chunks.get(channel)
        if chunks is None:
            return {"t_ms": [], "min": [], "max": []}
        copied = list(chunks)  # one C-level copy under the GIL: the main loop may append meanwhile
        copied.sort(key=lambda c: int(c[0][0]))  # late packets arrive out of order
        if not copied:
            return {"t_ms": [], "min": [], "max": []}
        times = np.concatenate([c[0] for c in copied]) // 1_000_000
        return {"t_ms": times.tolist(), "min": np.concatenate([c[1] for c in copied]).tolist(),
                "max": np.concatenate([c[2] for c in copied]).tolist()}
