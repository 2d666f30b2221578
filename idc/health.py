"""Is the receiver healthy? What ``ims idc status`` answers with its exit code, for monitoring checks.

Unhealthy: the receiver does not run (nobody live holds the data root's lock); a configured station had
nothing archived in the window; or a channel's newest archived sample is older than ``stale_after_s``
(a station that stopped sending, or a link that stalled)."""

from __future__ import annotations

from gci_link.texttable import duration
from idc.config import IdcConfig
from idc.metrics import ChannelReport

ROOT_LOCK = "receiver.lock"  # in the data root, held while a receiver writes there
DEFAULT_STALE_AFTER_S = 300.0


def problems(config: IdcConfig, reports: list[ChannelReport], running: bool, window_s: int,
             stale_after_s: float = DEFAULT_STALE_AFTER_S) -> list[str]:
    """Why the receiver is unhealthy, one line each; empty when healthy."""
    found = [] if running else [f"the receiver is not running (no live holder of {config.root / ROOT_LOCK})"]
    heard = {r.station for r in reports if r.availability_pct > 0}
    found += [f"station {name}: nothing archived in the last {duration(window_s)}"
              for name in sorted(config.stations) if name not in heard]
    found += [f"{r.station} {r.channel}: newest sample {duration(r.timeliness_s)} old"
              for r in reports if r.station in heard and r.timeliness_s is not None
              and r.timeliness_s > stale_after_s]
    return found
