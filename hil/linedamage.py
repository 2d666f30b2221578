"""Line damage the Güralp protocol cannot detect: which block a host accepts from a damaged BRP frame.

BRP's checksum is a byte sum and GCF's only check is that the integrated differences end on the RIC
(spec §§3, 7). Two bit errors in one frame that flip the same bit of two bytes in opposite directions
leave the byte sum unchanged, and when both bytes are differences of the same width and significance the
sample offset the first adds the second takes away, so the RIC still matches: the host receives a valid
block with some samples wrong, and no receiver could know. At the soak's bit error rate (1e-5, far above
a real cable's) that shows up within a simulated day, so the harness must tell it from a software fault:
it checks every damaged frame the way a receiver does, with the receiver's own code.
"""

from __future__ import annotations

from digitizer.brp import Frame, FrameScanner
from digitizer.gcf import GcfBlock, GcfFormatError, decode_block


def undetected_damage(sent: bytes, delivered: bytes) -> GcfBlock | None:
    """The block a receiver accepts from ``delivered``, the bytes the line made of the BRP frame ``sent``,
    when they differ and yet pass the checksum and GCF's check under the same sequence number; else None.
    A frame that lost or gained bytes is never reported: its checksum runs over other bytes."""
    if delivered == sent or len(delivered) != len(sent):
        return None
    events = FrameScanner().feed(delivered)
    frames = [e for e in events if isinstance(e, Frame)]
    if len(frames) != 1 or frames[0].offset != 0 or frames[0].seq != sent[1]:
        return None
    try:
        return decode_block(frames[0].gcf)
    except GcfFormatError:
        return None
