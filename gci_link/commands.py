"""The words both ends of the link use for remote commands (CD-1.1 command request and response frames).

CD-1.1 leaves both messages free text; this project's convention is written down in docs/link.md
("Commands"). Here are the names that must match between the IDC that sends a command and the station
that answers it, so neither side spells them on its own.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gci_link.cd11 import CommandRequestBody

# Runs one IDC command request and returns the text of its answer. It may block (a digitizer console
# takes up to ~20 s): the station end calls it on its command worker, never on the thread that moves
# frames. Raising means the command failed; the exception's text goes back as an ``error:`` response.
CommandHandler = Callable[["CommandRequestBody"], str]


class CommandName(enum.Enum):
    """First word of a command request's message."""

    STATUS = "status"  # the station's state-of-health table
    CALIBRATE = "calibrate"  # calibrate DIGITIZER sine|square|random COMPONENT MINUTES [HZ]
    STOPCAL = "stopcal"  # stopcal DIGITIZER


class CommandOutcome(enum.Enum):
    """How a command request ended; the value is the response text's prefix (empty: the command's own
    answer follows unmarked)."""

    DONE = ""  # the command ran; the text is its answer
    FAILED = "error: "  # the command ran and failed, or the station takes no commands
    BUSY = "busy: "  # not run: earlier commands are not finished; send it again after their responses

    def response_text(self, text: str) -> str:
        return self.value + text
