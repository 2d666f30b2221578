"""The SDS day-file layout (``YEAR/NET/STA/CHAN.D/NET.STA.LOC.CHAN.D.YEAR.DAY``); see :mod:`.archive`."""

from gci_link.io.sds.archive import SdsArchive, Segment

__all__ = ["SdsArchive", "Segment"]
