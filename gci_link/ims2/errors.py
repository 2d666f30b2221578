"""The one exception the IMS 2.0 codec lets out, so a station can quarantine exactly what it cannot read."""

from __future__ import annotations


class Ims2FormatError(ValueError):
    """A malformed IMS 2.0 message, or a message object that cannot be written.

    ``block`` names the block (``#g_Spectrum``) or ``envelope``; ``line`` is the 1-based line number
    in the message text (None when writing); ``problem`` says what is wrong.
    """

    def __init__(self, block: str, line: int | None, problem: str) -> None:
        self.block = block
        self.line = line
        self.problem = problem
        where = f"{block}, line {line}" if line is not None else block
        super().__init__(f"{where}: {problem}")
