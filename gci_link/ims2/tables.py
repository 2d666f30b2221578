"""Calibration tables of a PHD message: one row type per block, one row per line.

The tables are a few dozen rows, so they are read row by row; the column kinds say how each token is
read and written (``f`` float, ``i`` integer, ``w`` word).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .fields import Where, format_float, to_float, to_int
from .lexer import Block


class EnergyPoint(NamedTuple):
    """``#g_Energy`` row: a line energy and the channel of its centroid (in the spectrum's numbering)."""

    energy_kev: float
    channel: float
    channel_unc: float


class BetaEnergyPoint(NamedTuple):
    """``#b_Energy`` row; decay mode ``C`` = conversion electron."""

    energy_kev: float
    decay_mode: str
    channel: float
    channel_unc: float


class ResolutionPoint(NamedTuple):
    """``#g_Resolution`` / ``#b_Resolution`` row."""

    energy_kev: float
    fwhm_kev: float
    fwhm_unc: float


class EfficiencyPoint(NamedTuple):
    """``#g_Efficiency`` / ``#TotalEff`` row; efficiencies are fractions."""

    energy_kev: float
    efficiency: float
    efficiency_unc: float


class RoiLimits(NamedTuple):
    """``#ROI_Limits`` row (keV), or ``#ROI_Chan_Limits`` row (channels): beta limits first."""

    roi: int
    beta_low: float
    beta_high: float
    gamma_low: float
    gamma_high: float


class BgEfficiency(NamedTuple):
    """``#b-gEfficiency`` row: the beta-gamma detection efficiency of a nuclide in one ROI."""

    nuclide: str
    roi: int
    efficiency: float
    efficiency_unc: float


class Ratio(NamedTuple):
    """``#Ratios`` row: counts in ``lower_roi`` per count in ``upper_roi`` for the source in the id."""

    ratio_id: str
    upper_roi: int
    lower_roi: int
    ratio: float
    ratio_unc: float


TableRow = (
    EnergyPoint | BetaEnergyPoint | ResolutionPoint | EfficiencyPoint | RoiLimits | BgEfficiency | Ratio
)
Cell = float | int | str


@dataclass(frozen=True)
class TableKind:
    block: str  # canonical block name, with '#'
    row: type[TableRow]
    columns: str  # one kind letter per column, in the order of the row's fields


TABLES: dict[str, TableKind] = {
    t.block: t
    for t in (
        TableKind("#g_Energy", EnergyPoint, "fff"),
        TableKind("#b_Energy", BetaEnergyPoint, "fwff"),
        TableKind("#g_Resolution", ResolutionPoint, "fff"),
        TableKind("#b_Resolution", ResolutionPoint, "fff"),
        TableKind("#g_Efficiency", EfficiencyPoint, "fff"),
        TableKind("#TotalEff", EfficiencyPoint, "fff"),
        TableKind("#ROI_Limits", RoiLimits, "iffff"),
        TableKind("#ROI_Chan_Limits", RoiLimits, "iffff"),
        TableKind("#b-gEfficiency", BgEfficiency, "wiff"),
        TableKind("#Ratios", Ratio, "wiiff"),
    )
}


def parse_table(kind: TableKind, block: Block) -> tuple[TableRow, ...]:
    rows = []
    names = kind.row._fields
    for line in block.filled_lines():
        tokens = line.tokens
        where = Where(kind.block, line.number)
        if len(tokens) != len(kind.columns):
            raise where.error(
                f"wrong count of values: {len(tokens)}, want {len(kind.columns)} ({' '.join(names)})"
            )
        values: list[Cell] = []
        for token, column, name in zip(tokens, kind.columns, names, strict=True):
            if column == "f":
                values.append(to_float(token, where, name))
            elif column == "i":
                values.append(to_int(token, where, name))
            else:
                values.append(token)
        rows.append(kind.row._make(values))  # the column kinds give each field its type
    return tuple(rows)


def format_table(kind: TableKind, rows: Sequence[tuple[Cell, ...]]) -> list[str]:
    """Rows as lines, columns left-aligned like the real files, no trailing blanks."""
    cells = [[_cell(v, c) for v, c in zip(row, kind.columns, strict=True)] for row in rows]
    if not cells:
        return []
    widths = [max(len(row[i]) for row in cells) for i in range(len(kind.columns))]
    return [" ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in cells]


def _cell(value: Cell, column: str) -> str:
    if column == "f":
        if isinstance(value, str):
            raise TypeError(f"table number {value!r} is text")
        return format_float(value)
    if column == "i":
        return str(int(value))
    text = str(value)
    if not text or len(text.split()) != 1:
        raise ValueError(f"table word {text!r} must be one token without blanks")
    return text
