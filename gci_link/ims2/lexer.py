"""Cut IMS 2.0 message text into its envelope lines and its ``#`` blocks, keeping line numbers.

A block starts at a line whose first non-blank character is ``#`` and ends at the next such line or
at ``STOP``; nothing after ``STOP`` belongs to the message. Block bodies stay one string each, so
the spectrum and histogram parsers can work on them whole. CRLF line ends are accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import Ims2FormatError

# a mark starts at the newline before its line, so the regex engine can jump from newline to newline; a
# '#' on the very first line is not a block start (the first line must be BEGIN)
_MARK = re.compile(r"\n[ \t]*(?:#([^\s]*)([^\n]*)|(STOP)[ \t\r]*(?=\n|$))", re.IGNORECASE)


@dataclass(frozen=True)
class Line:
    number: int  # 1-based, in the message text
    text: str  # without the line end

    @property
    def tokens(self) -> list[str]:
        return self.text.split()


@dataclass(frozen=True)
class Block:
    name: str  # as written, without '#'
    args: tuple[str, ...]  # further tokens on the '#' line
    line: int  # line number of the '#' line
    body: str  # the text between the '#' line and the next block (may hold CR characters)
    raw_header: str  # the '#' line as written, for verbatim pass-through

    @property
    def label(self) -> str:
        return f"#{self.name}"

    def lines(self) -> list[Line]:
        """The body's lines, numbered, line ends removed (blank lines kept)."""
        texts = self.body.split("\n")
        if texts and texts[-1] == "":
            texts.pop()
        return [Line(self.line + 1 + i, t.rstrip("\r")) for i, t in enumerate(texts)]

    def filled_lines(self) -> list[Line]:
        """The body's non-blank lines: positional blocks count only these."""
        return [line for line in self.lines() if line.text.strip()]


@dataclass(frozen=True)
class Lexed:
    envelope: list[Line]
    blocks: list[Block]


def lex(text: str) -> Lexed:
    """Envelope lines (before the first block) and blocks, up to ``STOP``."""
    heads = []  # (match, position of its line in text, its line number) of each '#' line, then STOP
    line, counted_to = 1, 0
    for mark in _MARK.finditer(text):
        start = mark.start() + 1
        line += text.count("\n", counted_to, start)
        counted_to = start
        heads.append((mark, start, line))
        if mark.group(3) is not None:
            break
    else:
        raise Ims2FormatError("STOP", line + text.count("\n", counted_to), "message ends without a STOP line")
    blocks = []
    for (mark, start, number), (_, next_start, _) in zip(heads, heads[1:], strict=False):
        header_end = mark.end()
        header = text[start:header_end].rstrip("\r")
        blocks.append(
            Block(
                mark.group(1), tuple(mark.group(2).split()), number, text[header_end + 1 : next_start], header
            )
        )
    envelope = [Line(i + 1, t.rstrip("\r")) for i, t in enumerate(text[: heads[0][1]].split("\n"))]
    return Lexed([ln for ln in envelope if ln.text.strip()], blocks)
