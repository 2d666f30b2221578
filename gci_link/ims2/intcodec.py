"""Integer text <-> numpy, over whole blocks: a 256 x 256 histogram is 65,536 numbers.

Parsing is one compiled pass over the block's bytes (numba): each blank-separated token becomes a
number, each line's first value is noted, and the first bad token is located for an error that quotes
it with its line. Formatting writes the digits of every number into one byte buffer, one numpy pass per
digit position.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .errors import Ims2FormatError

_MAX_LENGTH = 18  # characters (sign included): every such number fits in int64
_NEWLINE, _SPACE, _ZERO = ord("\n"), ord(" "), ord("0")
_NO_ERROR = -1


def scan_ints(body: str, block: str, first_line: int) -> tuple[np.ndarray, np.ndarray]:
    """Every blank-separated integer of ``body``, and for each line of ``body`` the index of its first value.

    Line ``k`` holds ``values[line_first[k]:line_first[k + 1]]`` (the last line runs to the end).
    ``first_line`` is the message line number of the body's first line, for errors. A token that is
    not an optionally signed run of digits is a "bad number", one longer than 18 characters "too large";
    the first bad one is reported, else the first too large one.
    """
    raw = np.frombuffer(body.encode("ascii", "replace"), dtype=np.uint8)  # one byte per character
    values = np.empty((raw.size + 1) // 2, dtype=np.int64)  # tokens are at least one character and a blank
    line_first = np.empty(np.count_nonzero(raw == _NEWLINE) + 1, dtype=np.int64)  # faster than str.count
    errors = np.full(6, _NO_ERROR, dtype=np.int64)  # start, end and line of the first bad, then too large
    count = _scan(raw, values, line_first, errors)
    for at, problem in ((0, "bad number"), (3, "number too large for a count")):
        if errors[at] != _NO_ERROR:
            text = body[errors[at] : errors[at + 1]]
            raise Ims2FormatError(block, first_line + int(errors[at + 2]), f"{problem} {text!r}")
    return values[:count], line_first


@njit(cache=True, nogil=True)
def _scan(raw: np.ndarray, values: np.ndarray, line_first: np.ndarray, errors: np.ndarray) -> int:
    """Fill ``values`` and ``line_first`` (see scan_ints); the count of values. ``errors`` gets the
    start, end and line of the first token with a bad character (0-2) and of the first too long (3-5)."""
    count, line, i, size = 0, 0, 0, raw.size
    line_first[0] = 0
    while i < size:
        c = raw[i]
        if c == 10:
            line += 1
            line_first[line] = count
            i += 1
            continue
        if c == 32 or c == 9 or c == 13:
            i += 1
            continue
        start = i
        negative = c == 45
        bad = False
        if c == 45 or c == 43:
            i += 1
            bad = i == size or raw[i] == 32 or raw[i] == 9 or raw[i] == 13 or raw[i] == 10  # a sign alone
        value = 0
        while i < size:
            c = raw[i]
            if c == 32 or c == 9 or c == 13 or c == 10:
                break
            if 48 <= c <= 57:
                value = value * 10 + (c - 48)
            else:
                bad = True
            i += 1
        if bad:
            if errors[0] == _NO_ERROR:
                errors[0], errors[1], errors[2] = start, i, line
        elif i - start > _MAX_LENGTH and errors[3] == _NO_ERROR:
            errors[3], errors[4], errors[5] = start, i, line
        values[count] = -value if negative else value
        count += 1
    return count


def line_of(line_first: np.ndarray, token: int) -> int:
    """0-based line of the body that holds value number ``token`` (see scan_ints)."""
    return int(np.searchsorted(line_first, token, side="right")) - 1


def format_int_rows(rows: np.ndarray) -> str:
    """Rows of non-negative integers as text: one line per row, values separated by one blank."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return "\n" * rows.shape[0]
    top = int(rows.max())
    widest = len(str(top))
    # the narrowest dtype that holds every value keeps the temporaries small (a histogram is mostly 0..99)
    values = rows.ravel().astype(np.min_scalar_type(top), copy=False)
    width = np.full(values.size, 2, dtype=np.uint8)  # digits plus the separator
    for k in range(1, widest):
        width += values >= 10**k
    last_digit = np.cumsum(width, dtype=np.intp)
    buf = np.full(int(last_digit[-1]), _SPACE, dtype=np.uint8)
    buf[last_digit[rows.shape[1] - 1 :: rows.shape[1]] - 1] = _NEWLINE
    last_digit -= 2
    buf[last_digit] = values % 10 + _ZERO
    for k in range(1, widest):  # one pass per digit position, over the values that wide
        wide = np.flatnonzero(width > k + 1)
        buf[last_digit[wide] - k] = values[wide] // 10**k % 10 + _ZERO
    return buf.tobytes().decode("ascii")
