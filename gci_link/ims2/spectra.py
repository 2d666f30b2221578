"""``#g_Spectrum``, ``#b_Spectrum``, ``#Histogram`` (and the channel rows of ``#Chromatogram``).

Spectrum rows are ``first_channel c c c c c``; the first label is 0 or 1 (beta-gamma files count from
0, particulate ones may count from 1) and is kept, so arrays are indexed ``label - first_label``.
Histogram rows are gamma channels, columns beta channels, with no labels. All values are checked and
converted block-wide with numpy (see intcodec).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .fields import Where, format_span, to_float, to_int
from .intcodec import format_int_rows, line_of, scan_ints
from .lexer import Block, Line

VALUES_PER_ROW = 5
MAX_COUNT = 10**18  # what the reader takes (int64, 18 digits)


@dataclass(frozen=True)
class Spectrum:
    counts: np.ndarray  # int64, one per channel
    span_kev: float
    first_channel: int


@dataclass(frozen=True)
class Histogram:
    counts: np.ndarray  # int64, (gamma channels, beta channels)
    gamma_span_kev: float
    beta_span_kev: float


def split_size_line(block: Block) -> tuple[Line, str, int]:
    """The block's first non-blank line, and the rest of the body with the line number it starts on."""
    lines = block.body.split("\n", 1) if block.body else [""]
    number = block.line + 1
    while True:
        head = lines[0].rstrip("\r")
        rest = lines[1] if len(lines) > 1 else ""
        if head.strip():
            return Line(number, head), rest, number + 1
        if not rest:
            raise Where(block.label, number).error("empty block: the size line is missing")
        lines = rest.split("\n", 1)
        number += 1


def parse_channel_rows(label: str, body: str, first_line: int, n_channels: int) -> tuple:
    """Values of ``first_channel v v v v v`` rows: (int64 array, first channel label)."""
    values, line_first = scan_ints(body, label, first_line)
    counts = np.empty(values.size, dtype=np.int64)
    found = np.full(_FOUND_SIZE, _NONE, dtype=np.int64)
    # the kernel compares with n_channels as int64; no body holds more counts than values, so a larger
    # size line (even past int64) is compared as values.size with the same outcome
    n_counts = _channel_rows(values, line_first, min(n_channels, values.size), counts, found)
    if found[_ROWS] == 0:
        raise Where(label, first_line).error(f"truncated spectrum: no rows, the size line says {n_channels}")
    if found[_EMPTY_LINE] != _NONE:
        raise Where(label, first_line + int(found[_EMPTY_LINE])).error(
            f"row {found[_EMPTY_LABEL]} has a channel label and no values")
    first = int(found[_FIRST_LABEL])
    if first not in (0, 1):
        raise Where(label, first_line + int(found[_FIRST_LINE])).error(
            f"first channel label is {first}, want 0 or 1")
    if found[_WRONG_LINE] != _NONE:
        raise Where(label, first_line + int(found[_WRONG_LINE])).error(
            f"row labelled {found[_WRONG_LABEL]} should start at channel {found[_WRONG_EXPECTED]} "
            "(rows must be contiguous)"
        )
    if n_counts < n_channels:
        raise Where(label, first_line + int(found[_LAST_LINE])).error(
            f"truncated spectrum: {n_counts} channels, the size line says {n_channels}"
        )
    if n_counts > n_channels:
        raise Where(label, first_line + int(found[_OVER_LINE])).error(
            f"too many channels: {n_counts}, the size line says {n_channels}"
        )
    if found[_NEGATIVE] != _NONE:  # labels are >= 0 already
        at = int(found[_NEGATIVE])
        raise Where(label, first_line + line_of(line_first, at)).error(f"negative count {values[at]}")
    return counts[:n_counts], first


# what _channel_rows finds, by index in its ``found`` array (_NONE: not found)
(_ROWS, _EMPTY_LINE, _EMPTY_LABEL, _FIRST_LABEL, _FIRST_LINE, _WRONG_LINE, _WRONG_LABEL, _WRONG_EXPECTED,
 _LAST_LINE, _OVER_LINE, _NEGATIVE, _FOUND_SIZE) = range(12)
_NONE = -1


@njit(cache=True, nogil=True)
def _channel_rows(values: np.ndarray, line_first: np.ndarray, n_channels: int, counts: np.ndarray,
                  found: np.ndarray) -> int:
    """Copy the counts of ``label v v ...`` rows (lines with values) into ``counts``; the count of them.
    ``found`` gets the row count, and the first row (body line) with a label and no value, the first
    label, the first label that breaks contiguity, the last row, the row where the counts pass
    ``n_channels``, and the first negative value (its index), where any."""
    n_lines = line_first.size
    n_counts, rows = 0, 0
    for k in range(n_lines):
        begin = line_first[k]
        end = line_first[k + 1] if k + 1 < n_lines else values.size
        if end == begin:
            continue
        row_label = values[begin]
        if rows == 0:
            found[_FIRST_LABEL], found[_FIRST_LINE] = row_label, k
        elif row_label != found[_FIRST_LABEL] + n_counts and found[_WRONG_LINE] == _NONE:
            found[_WRONG_LINE], found[_WRONG_LABEL] = k, row_label
            found[_WRONG_EXPECTED] = found[_FIRST_LABEL] + n_counts
        if end - begin == 1 and found[_EMPTY_LINE] == _NONE:
            found[_EMPTY_LINE], found[_EMPTY_LABEL] = k, row_label
        for i in range(begin + 1, end):
            value = values[i]
            if value < 0 and found[_NEGATIVE] == _NONE:
                found[_NEGATIVE] = i
            counts[n_counts] = value
            n_counts += 1
        if n_counts > n_channels and found[_OVER_LINE] == _NONE:
            found[_OVER_LINE] = k
        rows += 1
        found[_LAST_LINE] = k
    found[_ROWS] = rows
    return n_counts


def parse_spectrum(block: Block, label: str) -> Spectrum:
    head, body, body_line = split_size_line(block)
    where = Where(label, head.number)
    tokens = head.tokens
    if len(tokens) != 2:
        raise where.error(f"wrong count of values: {len(tokens)}, want 2 (n_channels energy_span_keV)")
    n_channels = to_int(tokens[0], where, "n_channels")
    if n_channels < 1:
        raise where.error(f"n_channels is {n_channels}")
    span = to_float(tokens[1], where, "energy_span_keV")
    counts, first = parse_channel_rows(label, body, body_line, n_channels)
    return Spectrum(counts, span, first)


def parse_histogram(block: Block, label: str) -> Histogram:
    head, body, body_line = split_size_line(block)
    where = Where(label, head.number)
    tokens = head.tokens
    if len(tokens) != 4:
        raise where.error(
            f"wrong count of values: {len(tokens)}, want 4 (n_gamma n_beta gamma_span_keV beta_span_keV)"
        )
    n_gamma = to_int(tokens[0], where, "n_gamma")
    n_beta = to_int(tokens[1], where, "n_beta")
    if n_gamma < 1 or n_beta < 1:
        raise where.error(f"histogram size {n_gamma} x {n_beta}")
    gamma_span = to_float(tokens[2], where, "gamma_span_keV")
    beta_span = to_float(tokens[3], where, "beta_span_keV")
    values, line_first = scan_ints(body, label, body_line)
    per_line = np.diff(np.append(line_first, values.size))
    filled = np.flatnonzero(per_line)
    wrong = per_line[filled] != n_beta
    if wrong.any():
        at = int(filled[np.argmax(wrong)])
        raise Where(label, body_line + at).error(
            f"wrong count of values: {per_line[at]} in this row, the size line says {n_beta} beta channels"
        )
    if filled.size != n_gamma:
        last = body_line + int(filled[-1]) if filled.size else head.number
        raise Where(label, last).error(
            f"histogram row count mismatch: {filled.size} rows, the size line says {n_gamma} gamma rows"
        )
    _check_not_negative(values, label, line_first, body_line)
    return Histogram(values.reshape(n_gamma, n_beta), gamma_span, beta_span)


def _check_not_negative(values: np.ndarray, label: str, line_first: np.ndarray, first_line: int) -> None:
    if values.size and values.min() < 0:
        at = int(np.argmax(values < 0))
        raise Where(label, first_line + line_of(line_first, at)).error(f"negative count {values[at]}")


def format_channel_rows(counts: np.ndarray, first_channel: int) -> str:
    """``first_channel c c c c c`` rows, the last one shorter when the channels do not fill it."""
    counts = _counts_1d(counts)
    if first_channel not in (0, 1):
        raise ValueError(f"first channel label must be 0 or 1, not {first_channel}")
    full = counts.size // VALUES_PER_ROW * VALUES_PER_ROW
    labels = np.arange(first_channel, first_channel + full, VALUES_PER_ROW, dtype=np.int64)
    text = format_int_rows(np.column_stack([labels, counts[:full].reshape(-1, VALUES_PER_ROW)]))
    if full < counts.size:
        text += format_int_rows(np.append(first_channel + full, counts[full:])[np.newaxis, :])
    return text


def format_spectrum(spectrum: Spectrum) -> str:
    counts = _counts_1d(spectrum.counts)
    head = f"{counts.size} {format_span(spectrum.span_kev)}\n"
    return head + format_channel_rows(counts, spectrum.first_channel)


def format_histogram(histogram: Histogram) -> str:
    counts = np.asarray(histogram.counts)
    if counts.ndim != 2 or 0 in counts.shape:
        raise ValueError(
            f"the histogram must be a non-empty 2-D array (gamma x beta), not shape {counts.shape}"
        )
    _check_counts(counts)
    head = (
        f"{counts.shape[0]} {counts.shape[1]} "
        f"{format_span(histogram.gamma_span_kev)} {format_span(histogram.beta_span_kev)}\n"
    )
    return head + format_int_rows(counts)


def _counts_1d(counts: np.ndarray) -> np.ndarray:
    counts = np.asarray(counts)
    if counts.ndim != 1 or counts.size == 0:
        raise ValueError(f"a spectrum must be a non-empty 1-D array, not shape {counts.shape}")
    _check_counts(counts)
    return counts.astype(np.int64, copy=False)


def _check_counts(counts: np.ndarray) -> None:
    if counts.dtype.kind not in "iu":
        raise ValueError(f"counts must be integers, not {counts.dtype}")
    if counts.size and counts.min() < 0:
        raise ValueError(f"negative count {counts.min()}")
    if counts.size and counts.max() >= MAX_COUNT:
        raise ValueError(f"count {counts.max()} has more than 18 digits")
