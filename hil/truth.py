"""Ground truth kept on disk: every sample a simulated digitizer produced, one raw int32 file per stream.

A week of a few channels is hundreds of millions of samples; held in the harness's memory it would grow
the very process a soak watches for leaks. Each stream's samples are appended to ``STREAM.i32`` as they
are made (a stream is contiguous in time, which ``record`` checks) and read back memory-mapped. The
format is deliberately not miniSEED: the truth must not pass through the code whose output it checks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from timeunits import NS_PER_S


@dataclass
class _Stream:
    start_ns: int
    rate: int
    samples: int
    file: BinaryIO


class TruthStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._streams: dict[str, _Stream] = {}
        self._lock = threading.Lock()

    def record(self, stream_id: str, start_ns: int, samples: np.ndarray, rate: int) -> None:
        """Append one block; it must start where the stream's previous block ended."""
        with self._lock:
            stream = self._streams.get(stream_id)
            if stream is None:
                stream = _Stream(start_ns, rate, 0, (self.folder / f"{stream_id}.i32").open("wb"))
                self._streams[stream_id] = stream
            expected = stream.start_ns + stream.samples * NS_PER_S // stream.rate
            if rate != stream.rate or start_ns != expected:
                raise ValueError(
                    f"truth of {stream_id} must be contiguous: block at {start_ns} ns, {rate} sps after "
                    f"{expected} ns, {stream.rate} sps"
                )
            stream.file.write(np.ascontiguousarray(samples, dtype="<i4").tobytes())
            stream.samples += len(samples)

    def samples_of(self, stream_id: str) -> tuple[int, np.ndarray]:
        """(first sample time, every sample so far), memory-mapped; (0, empty) for a stream never seen."""
        with self._lock:
            stream = self._streams.get(stream_id)
            if stream is None or stream.samples == 0:
                return 0, np.zeros(0, np.int32)
            if not stream.file.closed:  # closed once the run ended
                stream.file.flush()
            path, count, start = Path(stream.file.name), stream.samples, stream.start_ns
        return start, np.memmap(path, dtype="<i4", mode="r", shape=(count,))

    def close(self) -> None:
        with self._lock:
            for stream in self._streams.values():
                stream.file.close()
