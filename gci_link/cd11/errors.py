"""The one exception the CD-1.1 codec lets out, so callers (receiver, CLI) can catch exactly it."""

from __future__ import annotations


class Cd11FormatError(ValueError):
    """Bytes that are not a valid CD-1.1 frame, or a value that cannot be encoded.

    ``field`` names what is wrong and ``offset`` is the byte offset from the start of the frame
    (for encoding: the position the field would occupy).
    """

    def __init__(self, message: str, *, field: str, offset: int) -> None:
        self.field = field
        self.offset = offset
        self.reason = message
        super().__init__(f"{field} at byte {offset}: {message}")
