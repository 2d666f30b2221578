"""Memory and CPU of the simulated network's processes over simulated time, read from ``/proc``.

A soak must show that memory stays flat: the harness samples each role's resident set (the receiver,
its verifier workers, every station, the harness itself) now and then, keeps the peak per window of
simulated time (a day in a week-long run), and compares the last window with the first. A role keeps
its name across restarts: a station killed and restarted is one role with two processes in turn.
CPU seconds per role are kept too; they say where the time goes when choosing a simulation speed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1 << 20


@dataclass(frozen=True)
class MemoryBound:
    """How much a role's peak resident set may grow from the first window to the last: by ``ratio``
    of the first window's peak or by ``slack_bytes``, whichever allows more (small processes vary by
    a few MiB as the allocator and SQLite's page cache settle; that is not a leak)."""

    ratio: float = 0.25
    slack_bytes: int = 32 * MIB

    def limit(self, first_peak: int) -> int:
        return first_peak + max(int(first_peak * self.ratio), self.slack_bytes)

    def describe(self) -> str:
        return f"last-window peak <= first-window peak + max({self.ratio:.0%}, {self.slack_bytes // MIB} MiB)"


@dataclass
class RoleStats:
    peaks: dict[int, int] = field(default_factory=dict)  # window index -> peak RSS in bytes
    cpu_s: dict[int, float] = field(default_factory=dict)  # pid -> CPU seconds last seen
    pids: list[int] = field(default_factory=list)  # in the order they appeared

    @property
    def cpu_total_s(self) -> float:
        return sum(self.cpu_s.values())


class ProcessWatch:
    """Call ``sample`` now and then with the simulated time and the processes to look at."""

    def __init__(self, window_s: float) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, got {window_s}")
        self.window_s = window_s
        self.roles: dict[str, RoleStats] = {}
        self.samples = 0

    def sample(self, sim_s: float, pids: dict[str, int]) -> None:
        """Record RSS and CPU of each role's process; a process that ended meanwhile is skipped."""
        window = int(sim_s // self.window_s)
        self.samples += 1
        for role, pid in pids.items():
            self._record(role, pid, window)

    def _record(self, role: str, pid: int, window: int) -> None:
        usage = read_usage(pid)
        if usage is None:
            return
        rss, cpu_s = usage
        stats = self.roles.setdefault(role, RoleStats())
        stats.peaks[window] = max(stats.peaks.get(window, 0), rss)
        stats.cpu_s[pid] = cpu_s
        if pid not in stats.pids:
            stats.pids.append(pid)

    def report(self, bound: MemoryBound) -> dict:
        """Per role: peak RSS (MiB) per window, first and last, whether growth stayed within ``bound``,
        CPU seconds, and how many processes the role had (restarts + 1)."""
        roles = {}
        for role, stats in sorted(self.roles.items()):
            windows = sorted(stats.peaks)
            first, last = stats.peaks[windows[0]], stats.peaks[windows[-1]]
            roles[role] = {
                "peak_rss_mib_per_window": [round(stats.peaks[w] / MIB, 1) for w in windows],
                "first_window_peak_mib": round(first / MIB, 1),
                "last_window_peak_mib": round(last / MIB, 1),
                "limit_mib": round(bound.limit(first) / MIB, 1),
                "flat": last <= bound.limit(first),
                "cpu_s": round(stats.cpu_total_s, 1),
                "processes": len(stats.pids),
            }
        return {
            "window_s": self.window_s,
            "samples": self.samples,
            "bound": bound.describe(),
            "roles": roles,
            "flat": all(r["flat"] for r in roles.values()),
        }


def read_usage(pid: int) -> tuple[int, float] | None:
    """(resident set in bytes, user + system CPU seconds) of a live process, None once it is gone."""
    try:
        status = (PROC / str(pid) / "status").read_text()
        stat = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rss = next((int(ln.split()[1]) * 1024 for ln in status.splitlines() if ln.startswith("VmRSS:")), None)
    if rss is None:  # a zombie has no memory lines
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return rss, (utime + stime) / _TICKS


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (from every thread's ``children`` list), oldest first."""
    found: list[int] = []
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except (FileNotFoundError, ProcessLookupError):
        return found
    for task in tasks:
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return sorted(set(found))
