"""Hand memory that the process freed back to the operating system, now and then.

glibc keeps freed heap memory for reuse, and gives back only what lies at the top of its heap. After a
burst of big frames (an array's 400 channels, or an insider repeating one that is refused) the freed
chunks sit between live ones: the IDC receiver measured tens of MiB resident that nothing used, kept for
good. ``malloc_trim(0)`` returns those pages in a few milliseconds; where the C library has no such call
(musl, macOS), nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from collections.abc import Callable

TRIM_EVERY_S = 10.0  # a trim of a 250 MiB heap took about 2 ms: every 10 s is 0.02 % of a core


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return getattr(libc, "malloc_trim", None)


class HeapTrimmer:
    """``maybe()`` from a daemon's loop trims at most once per ``every_s`` (real seconds, whatever clock
    the daemon's data runs on)."""

    def __init__(self, every_s: float = TRIM_EVERY_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._trim = _malloc_trim()
        self._every_s = every_s
        self._clock = clock
        self._last = clock()

    @property
    def available(self) -> bool:
        return self._trim is not None

    def maybe(self) -> bool:
        """Trim if it is due; True if it was done."""
        now = self._clock()
        if self._trim is None or now - self._last < self._every_s:
            return False
        self._last = now
        self._trim(0)
        return True
