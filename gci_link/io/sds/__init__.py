"""The SDS day-file layout (``YEAR/NET/STA/CHAN.D/NET.STA.LOC.CHAN.D.YEAR.DAY``); see :mod:`.archive`."""

from gci_link.io.sds.archive import NS_PER_DAY, SdsArchive, Segment

__all__ = ["NS_PER_DAY", "SdsArchive", "Segment"]
