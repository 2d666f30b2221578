"""Plain readings of IMS 2.0 text, for differential checks of the numba kernels in gci_link/ims2.

Written from docs/ims2.md's rules, not from the kernels: no numpy, no byte offsets, one regex per line.
``cut`` says where blocks start (lexer._line_heads), ``scan`` reads integer tokens (intcodec._scan),
``channel_rows`` reads ``label v v v`` rows (spectra._channel_rows). Slow; only the fuzz checks use them.
"""

from __future__ import annotations

import re

_MARK = re.compile(r"[ \t]*(?:#(\S*)|STOP[ \t\r]*$)", re.IGNORECASE)
_SEPARATORS = re.compile(r"[ \t\r]+")
_NUMBER = re.compile(r"[+-]?[0-9]+")
MAX_DIGITS = 18  # sign included


class NoStop(Exception):
    """The text has no STOP line after its first line."""


def cut(text: str) -> tuple[list[tuple[str, int]], int]:
    """(block name, line number) of every ``#`` line before STOP (never line 1), and STOP's line."""
    marks: list[tuple[str, int]] = []
    for number, line in enumerate(text.split("\n")[1:], 2):
        mark = _MARK.match(line)
        if mark is None:
            continue
        if mark.group(1) is None:
            return marks, number
        marks.append((mark.group(1), number))
    raise NoStop


def scan(body: str) -> tuple[list[list[int]], tuple[str, int, str] | None]:
    """The integers of each line of ``body``, and the first problem (kind, 0-based line, token): a token
    that is not a signed run of ASCII digits anywhere comes first, else one longer than 18 characters."""
    rows: list[list[int]] = []
    bad = large = None
    for k, line in enumerate(body.split("\n")):
        row = []
        for token in _SEPARATORS.split(line):
            if not token:
                continue
            if not _NUMBER.fullmatch(token):
                bad = bad or ("bad number", k, token)
            elif len(token) > MAX_DIGITS:
                large = large or ("number too large for a count", k, token)
            else:
                row.append(int(token))
        rows.append(row)
    return rows, bad or large


def channel_rows(rows: list[list[int]]) -> tuple[int, list[int]] | None:
    """(first label, counts) of contiguous ``label v v ...`` rows, or None when they are not that."""
    filled = [row for row in rows if row]
    if not filled or any(len(row) < 2 for row in filled):
        return None
    first, counts = filled[0][0], list[int]()
    for row in filled:
        if row[0] != first + len(counts):
            return None
        counts += row[1:]
    return first, counts
