"""Integer text <-> numpy, vectorised over whole blocks: a 256 x 256 histogram is 65,536 numbers.

Parsing works on the block's bytes at once (character classes, token edges, digit weights summed per
token) instead of a Python call per number, and still names the line of the first bad token.
Formatting writes the digits of every number into one byte buffer, one numpy pass per digit position.
"""

from __future__ import annotations

import numpy as np

from .errors import Ims2FormatError

_INVALID, _BLANK, _DIGIT, _SIGN = 0, 1, 2, 3
_CLASS = np.zeros(256, dtype=np.uint8)
_CLASS[[ord(c) for c in " \t\r\n"]] = _BLANK
_CLASS[ord("0") : ord("9") + 1] = _DIGIT
_CLASS[[ord("-"), ord("+")]] = _SIGN
_MAX_DIGITS = 18  # every 18-digit number fits in int64
_POW10 = 10 ** np.arange(_MAX_DIGITS + 1, dtype=np.int64)
_NEWLINE, _MINUS, _SPACE, _ZERO = ord("\n"), ord("-"), ord(" "), ord("0")


def scan_ints(body: str, block: str, first_line: int) -> tuple[np.ndarray, np.ndarray]:
    """Every blank-separated integer of ``body``, and the 0-based line of ``body`` it stands on.

    ``first_line`` is the message line number of the body's first line, for errors.
    """
    raw = np.frombuffer(body.encode("ascii", "replace"), dtype=np.uint8)
    empty = np.zeros(0, dtype=np.int64)
    if raw.size == 0:
        return empty, empty
    kind = _CLASS[raw]
    in_token = kind != _BLANK
    edges = np.diff(in_token.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    if starts.size == 0:
        return empty, empty
    lengths = ends - starts
    lines = np.cumsum(raw == _NEWLINE)[starts]

    def fail(token: int, problem: str) -> None:
        text = body[starts[token] : ends[token]]  # one byte per character (non-ASCII became '?')
        raise Ims2FormatError(block, first_line + int(lines[token]), f"{problem} {text!r}")

    misplaced = (kind == _INVALID) | (kind == _SIGN)
    if misplaced.any():
        misplaced[starts] = kind[starts] == _INVALID  # a sign may lead a token
        bad = np.logical_or.reduceat(misplaced, starts)
        bad |= (lengths == 1) & (kind[starts] == _SIGN)
        if bad.any():
            fail(int(np.argmax(bad)), "bad number")
    too_long = lengths > _MAX_DIGITS
    if too_long.any():
        fail(int(np.argmax(too_long)), "number too large for a count")
    chars = raw[in_token]
    token_first = np.cumsum(lengths) - lengths
    exponent = np.repeat(token_first + lengths - 1, lengths) - np.arange(chars.size)
    digits = chars.astype(np.int64) - _ZERO
    digits[kind[in_token] == _SIGN] = 0
    values = np.add.reduceat(digits * _POW10[exponent], token_first)
    negative = chars[token_first] == _MINUS
    if negative.any():
        values[negative] = -values[negative]
    return values, lines


def format_int_rows(rows: np.ndarray) -> str:
    """Rows of non-negative integers as text: one line per row, values separated by one blank."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return "\n" * rows.shape[0]
    values = rows.ravel()
    digits = np.searchsorted(_POW10[1:], values, side="right") + 1
    ends = np.cumsum(digits + 1)
    buf = np.full(int(ends[-1]), _SPACE, dtype=np.uint8)
    buf[ends[rows.shape[1] - 1 :: rows.shape[1]] - 1] = _NEWLINE
    last_digit = ends - 2
    buf[last_digit] = _ZERO + values % 10
    for k in range(1, int(digits.max())):
        wide = np.flatnonzero(digits > k)
        buf[last_digit[wide] - k] = _ZERO + (values[wide] // _POW10[k]) % 10
    return buf.tobytes().decode("ascii")
