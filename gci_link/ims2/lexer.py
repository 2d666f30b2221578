"""Cut IMS 2.0 message text into its envelope lines and its ``#`` blocks, keeping line numbers.

A block starts at a line whose first non-blank character is ``#`` and ends at the next such line or
at ``STOP``; nothing after ``STOP`` belongs to the message. Block bodies stay one string each, so
the spectrum and histogram parsers can work on them whole. CRLF line ends are accepted.

The lines that may hold a mark (first non-blank character ``#``, ``S`` or ``s``) are found from the
newline positions (numpy) by a compiled look at each line's head; only those few lines meet the regex
that reads a mark. A regex tried at every line cost more than the rest of a spectrum message's parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numba import njit

from .errors import Ims2FormatError

# a mark is a whole line (not the very first: that must be BEGIN): a '#' line or a STOP line
_MARK = re.compile(r"[ \t]*(?:#([^\s]*)([^\n]*)|(STOP)[ \t\r]*(?=\n|$))", re.IGNORECASE)
_NEWLINE, _HASH, _UPPER_S, _LOWER_S = ord("\n"), ord("#"), ord("S"), ord("s")


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
    raw = np.frombuffer(text.encode("ascii", "replace"), dtype=np.uint8)  # one byte per character
    newlines = np.flatnonzero(raw == _NEWLINE)
    heads = []  # (match, position of its line in text, its line number) of each '#' line, then STOP
    for k in _candidate_lines(raw, newlines):
        start = int(newlines[k]) + 1
        mark = _MARK.match(text, start)
        if mark is None:
            continue
        heads.append((mark, start, int(k) + 2))
        if mark.group(3) is not None:
            break
    else:
        raise Ims2FormatError("STOP", newlines.size + 1, "message ends without a STOP line")
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


def _candidate_lines(raw: np.ndarray, newlines: np.ndarray) -> np.ndarray:
    """Which lines may hold a mark, as indices into ``newlines`` (the newline before each), in order."""
    found = np.empty(64, dtype=np.int64)
    count = _line_heads(raw, newlines, found)
    if count > found.size:  # many lines opening with an S (free text): again, with room for all
        found = np.empty(count, dtype=np.int64)
        _line_heads(raw, newlines, found)
    return found[:count]


@njit(cache=True, nogil=True)
def _line_heads(raw: np.ndarray, newlines: np.ndarray, found: np.ndarray) -> int:
    """Fill ``found`` (as far as it goes) with the index of each newline whose line's first character
    other than blank or tab is ``#``, ``S`` or ``s``; how many there are."""
    count, size = 0, raw.size
    for k in range(newlines.size):
        i = newlines[k] + 1
        while i < size and (raw[i] == 32 or raw[i] == 9):
            i += 1
        if i < size and (raw[i] == _HASH or raw[i] == _UPPER_S or raw[i] == _LOWER_S):
            if count < found.size:
                found[count] = k
            count += 1
    return count
