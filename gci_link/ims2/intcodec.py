"""Integer text <-> numpy, vectorised over whole blocks: a 256 x 256 histogram is 65,536 numbers.

Parsing works on the block's bytes at once (character classes, token ends, then one pass per digit
position over the tokens that long) instead of a Python call per number, and still names the line of
the first bad token. Few large temporaries: fresh memory costs page faults, which dominate otherwise.
Formatting writes the digits of every number into one byte buffer, one numpy pass per digit position.
"""

from __future__ import annotations

from typing import NoReturn

import numpy as np

from .errors import Ims2FormatError

_INVALID, _BLANK, _DIGIT, _SIGN = 0, 1, 2, 3
_CLASS = np.zeros(256, dtype=np.uint8)
_CLASS[[ord(c) for c in " \t\r\n"]] = _BLANK
_CLASS[ord("0") : ord("9") + 1] = _DIGIT
_CLASS[[ord("-"), ord("+")]] = _SIGN
_MAX_DIGITS = 18  # every 18-digit number fits in int64
_POW10 = 10 ** np.arange(_MAX_DIGITS + 1, dtype=np.int64)
_NEWLINE, _MINUS, _PLUS, _SPACE, _ZERO = ord("\n"), ord("-"), ord("+"), ord(" "), ord("0")


def scan_ints(body: str, block: str, first_line: int) -> tuple[np.ndarray, np.ndarray]:
    """Every blank-separated integer of ``body``, and for each line of ``body`` the index of its first value.

    Line ``k`` holds ``values[line_first[k]:line_first[k + 1]]`` (the last line runs to the end).
    ``first_line`` is the message line number of the body's first line, for errors.
    """
    raw = np.frombuffer(body.encode("ascii", "replace"), dtype=np.uint8)
    kind = np.empty(raw.size + 2, dtype=np.uint8)  # padded with a blank at both ends: index = raw index + 1
    kind[0] = kind[-1] = _BLANK
    np.take(_CLASS, raw, out=kind[1:-1])
    blank = kind == _BLANK
    ends = np.flatnonzero(blank[1:] > blank[:-1])
    ends += 1  # padded index one past each token's last character
    line_begins = np.concatenate(([1], np.flatnonzero(raw == _NEWLINE) + 2))
    line_first = np.searchsorted(ends, line_begins, side="right")
    tokens = _Tokens(body, blank, ends, block, first_line, line_first)
    signed = int(kind.max()) == _SIGN
    if signed or int(kind.min()) == _INVALID:
        tokens.check_characters(kind)
    last = ends - 2  # raw index of each token's last character
    values = raw[last].astype(np.int64)
    values -= _ZERO
    longer = np.flatnonzero(~blank[last])  # (padded index ``last`` is the character before it)
    for k in range(1, _MAX_DIGITS):  # one pass per digit position, over the tokens that long
        if longer.size == 0:
            break
        at = last[longer] - k
        digits = raw[at].astype(np.int64) - _ZERO
        if signed:
            digits[kind[at + 1] == _SIGN] = 0
        values[longer] += digits * _POW10[k]
        longer = longer[~blank[at]]
    if longer.size:
        tokens.fail(int(longer[0]), "number too large for a count")
    if signed:
        values[raw[tokens.starts() - 1] == _MINUS] *= -1
    return values, line_first


class _Tokens:
    """Token positions of a scanned body, for the rare checks and for errors that quote a token."""

    def __init__(
        self,
        body: str,
        blank: np.ndarray,
        ends: np.ndarray,
        block: str,
        first_line: int,
        line_first: np.ndarray,
    ) -> None:
        self.body, self.blank, self.ends = body, blank, ends
        self.block, self.first_line, self.line_first = block, first_line, line_first

    def starts(self) -> np.ndarray:
        return np.flatnonzero(self.blank[:-1] > self.blank[1:]) + 1

    def fail(self, token: int, problem: str) -> NoReturn:
        start = int(self.starts()[token])
        text = self.body[start - 1 : int(self.ends[token]) - 1]  # one character per byte ('?' for non-ASCII)
        line = self.first_line + line_of(self.line_first, token)
        raise Ims2FormatError(self.block, line, f"{problem} {text!r}")

    def check_characters(self, kind: np.ndarray) -> None:
        """Only digits, and a sign as a token's first character followed by a digit."""
        starts = self.starts()
        misplaced = (kind == _INVALID) | (kind == _SIGN)
        misplaced[starts] = kind[starts] == _INVALID
        bad = np.logical_or.reduceat(misplaced, starts) if starts.size else np.zeros(0, dtype=bool)
        bad |= (self.ends - starts == 1) & (kind[starts] == _SIGN)
        if bad.any():
            self.fail(int(np.argmax(bad)), "bad number")


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
