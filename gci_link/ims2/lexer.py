"""Cut IMS 2.0 message text into its envelope lines and its ``#`` blocks, keeping line numbers.

A block starts at a line whose first non-blank character is ``#`` and ends at the next such line or
at ``STOP``; nothing after ``STOP`` belongs to the message. Block bodies stay one string each, so
the spectrum and histogram parsers can work on them whole. CRLF line ends are accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import Ims2FormatError

# searched in "\n" + text: the leading newline lets the regex engine jump from line end to line end
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
    blocks: list[Block] = []
    envelope_end = None
    line = 1
    counted_to = 0
    stop = None
    pending: tuple[str, str, int, int, str] | None = None  # name, args, line, body start, header
    for mark in _MARK.finditer("\n" + text):
        line_start, header_end = mark.start(), mark.end() - 1  # in text (the search added one character)
        line += text.count("\n", counted_to, line_start)
        counted_to = line_start
        if envelope_end is None:
            envelope_end = line_start
        if pending is not None:
            blocks.append(_block(pending, text[pending[3] : line_start]))
        if mark.group(3) is not None:
            stop = line_start
            pending = None
            break
        pending = (mark.group(1), mark.group(2), line, header_end + 1, text[line_start:header_end])
    if stop is None:
        raise Ims2FormatError("STOP", line + text.count("\n", counted_to), "message ends without a STOP line")
    envelope_text = text[:envelope_end]
    envelope = [Line(i + 1, t.rstrip("\r")) for i, t in enumerate(envelope_text.split("\n"))]
    return Lexed([ln for ln in envelope if ln.text.strip()], blocks)


def _block(pending: tuple[str, str, int, int, str], body: str) -> Block:
    name, args, line, _, header = pending
    return Block(name, tuple(args.split()), line, body, header.rstrip("\r"))
