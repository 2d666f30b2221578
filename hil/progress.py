"""A progress bar for long simulated runs: redrawn in place on a terminal, a line per 10 % otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total_s: float, *, enabled: bool = True, stream: TextIO = sys.stderr) -> None:
        self.total_s = total_s
        self.enabled = enabled
        self.stream = stream
        self.tty = stream.isatty()
        self.started = time.monotonic()
        self._last_decile = -1

    def update(self, done_s: float, note: str = "") -> None:
        if not self.enabled:
            return
        fraction = min(1.0, done_s / self.total_s)
        wall = time.monotonic() - self.started
        text = f"simulated {_hms(done_s)} / {_hms(self.total_s)}  ({wall:.0f} s real)"
        text += f"  {note}" if note else ""
        if self.tty:
            bar = "#" * int(30 * fraction)
            self.stream.write(f"\r[{bar:<30}] {fraction:4.0%} {text}")
            self.stream.flush()
        elif int(fraction * 10) > self._last_decile:
            self._last_decile = int(fraction * 10)
            print(f"{fraction:4.0%} {text}", file=self.stream, flush=True)

    def done(self) -> None:
        self.update(self.total_s)
        if self.enabled and self.tty:
            self.stream.write("\n")


def _hms(seconds: float) -> str:
    s = int(seconds)
    days = f"{s // 86400}d " if s >= 86400 else ""
    return f"{days}{s % 86400 // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
