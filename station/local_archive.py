"""The operator's local archive: every framed sample as SDS miniSEED on the station PC, within a budget.

It reuses the IDC's SDS writer so both ends lay files out identically; when the archive outgrows its
disk budget the oldest day files go first (the outbox, not this archive, is what guarantees delivery).
"""

from __future__ import annotations

import logging
from pathlib import Path

from gci_link.io.sds import SdsArchive, Segment
from station.framer import FrameDraft

log = logging.getLogger(__name__)


class LocalArchive:
    def __init__(self, root: Path, network: str, budget_bytes: int) -> None:
        self.root = root
        self.network = network
        self.budget_bytes = budget_bytes
        self._sds = SdsArchive(root)

    def write(self, draft: FrameDraft) -> None:
        """All of a frame's channels in one append, so one sync covers them."""
        pieces = []
        for sub in draft.subframes:
            segment = Segment(
                self.network, sub.site, sub.location, sub.channel, sub.time_ns, sub.sample_rate, sub.samples
            )
            pieces += self._sds.split_by_day(segment)
        self._sds.append(pieces)

    def close(self) -> None:
        self._sds.close()

    def prune(self) -> int:
        """Delete the oldest day files until the archive fits its budget; returns bytes in use."""
        files = sorted((p for p in self.root.rglob("*.D.*") if p.is_file()), key=_day_key)
        used = sum(p.stat().st_size for p in files)
        while used > self.budget_bytes and len(files) > 1:
            oldest = files.pop(0)
            used -= oldest.stat().st_size
            self._sds.remove(str(oldest))
            log.warning("local archive over budget; oldest day file removed", extra={"file": str(oldest)})
        return used


def _day_key(path: Path) -> tuple[str, str, str]:
    *_, year, day = path.name.rsplit(".", 2)
    return year, day, path.name
