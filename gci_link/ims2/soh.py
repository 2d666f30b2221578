"""RMSSOH and MET messages: rows of values over time intervals (project layout, spec §10.2 and §10.4).

No public RMSSOH or MET file exists; the block names and the ``#DetEnv`` token order follow the only
public reader (S9), the rest is the project's convention, documented in docs/ims2.md.
"""

from __future__ import annotations

import numpy as np

from .common import (
    Sorted,
    check_header_args,
    format_comment,
    header_lines,
    ids_line,
    parse_text,
    tokens_of,
    word,
    writing,
)
from .errors import Ims2FormatError
from .fields import (
    MISSING,
    Where,
    format_float,
    format_time,
    optional_float,
    optional_int,
    optional_word,
    to_float,
    to_int,
    to_time,
)
from .lexer import Block
from .messages import Chromatogram, MetMessage, MetRow, SohMessage, SohRow
from .spectra import format_channel_rows, parse_channel_rows, split_size_line

# value columns before the ``start_date start_time interval_s`` triple: (name, kind) with kind
# f float, i integer, w word; any value may be ``-`` (the station does not have it)
SOH_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "#AirSamplerFlow": (("avg_flow_m3_h", "f"), ("flow_sd_m3_h", "f")),
    "#AirSamplerEnv": (("ambient_temp_c", "f"), ("filter_dp_hpa", "f"), ("ambient_pressure_hpa", "f")),
    "#DetEnv": (
        ("room_temp_c", "f"),
        ("shield", "w"),
        ("room_rh_pct", "i"),
        ("hv_v", "i"),
        ("crystal_temp_c", "i"),
        ("cooler", "w"),
        ("ln2_fill_pct", "i"),
        ("leakage_na", "i"),
    ),
    "#NIMBIN": (("rail", "w"), ("measured_v", "f")),
    "#PowerSupply": (("source", "w"), ("state", "w"), ("ups_charge_pct", "i")),
    "#EquipStatus": (
        ("collection", "w"),
        ("collection_srid", "w"),
        ("processing", "w"),
        ("processing_srid", "w"),
        ("acquisition", "w"),
        ("acquisition_srid", "w"),
    ),
    "#TamperEnv": (("sensor", "w"), ("state", "w")),
    "#ProcessSensors": (("type", "w"), ("name", "w"), ("reading", "f")),
}
CHROMATOGRAM = "#Chromatogram"
SOH_BLOCKS = ("#Header", "#Comment", *SOH_COLUMNS, CHROMATOGRAM)
MET = "#Met"
MET_BLOCKS = ("#Header", "#Comment", MET)
MET_FIELDS = MetRow._fields[2:]


def _parse_period_header(block: Block, warnings: list[str]) -> dict:
    """``station detector system_type`` / period start and end / transmit time."""
    check_header_args(block, warnings)
    ids, period, transmit = header_lines(block, 3)
    label = block.label
    station, detector, system_type = tokens_of(ids, 3, label, "station detector system_type")
    d0, t0, d1, t1 = tokens_of(period, 4, label, "period start and end date time")
    date, time = tokens_of(transmit, 2, label, "transmit date time")
    where = Where(label, period.number)
    return {
        "station": station,
        "detector": optional_word(detector),
        "system_type": optional_word(system_type),
        "period_start_ns": to_time(d0, t0, where, "period start"),
        "period_end_ns": to_time(d1, t1, where, "period end"),
        "transmit_ns": to_time(date, time, Where(label, transmit.number), "transmit time"),
    }


def _format_period_header(m: SohMessage | MetMessage) -> list[str]:
    with writing("#Header"):
        return [
            "#Header 3",
            ids_line(m.station, m.detector, m.system_type),
            f"{format_time(m.period_start_ns)} {format_time(m.period_end_ns)}",
            format_time(m.transmit_ns),
        ]


def _comment(blocks: Sorted) -> dict:
    block = blocks.get("#Comment")
    return {} if block is None else {"comment": parse_text(block)}


# ---------------------------------------------------------------- RMSSOH


def parse_soh(envelope: dict, blocks: Sorted, data_type_line: int) -> SohMessage:
    header_block = blocks.require("#Header", envelope["data_type"], data_type_line)
    header = _parse_period_header(header_block, blocks.warnings)
    if header["system_type"] is None:
        raise Where("#Header", header_block.line).error("an RMSSOH needs a system type")
    rows = {
        label: _parse_soh_rows(label, block) for label, block in blocks.known.items() if label in SOH_COLUMNS
    }
    chromatograms = tuple(_parse_chromatogram(b) for b in blocks.repeated.get(CHROMATOGRAM, ()))
    return SohMessage(
        **envelope,
        **header,
        **_comment(blocks),
        blocks=rows,
        chromatograms=chromatograms,
        extra_blocks=tuple(blocks.extra),
        warnings=tuple(blocks.warnings),
    )


def _parse_soh_rows(label: str, block: Block) -> tuple[SohRow, ...]:
    columns = SOH_COLUMNS[label]
    rows = []
    for line in block.filled_lines():
        names = " ".join(name for name, _ in columns) + " start_date start_time interval_s"
        tokens = tokens_of(line, len(columns) + 3, label, names)
        where = Where(label, line.number)
        values = tuple(
            _soh_value(t, kind, where, name) for t, (name, kind) in zip(tokens, columns, strict=False)
        )
        date, time, interval = tokens[-3:]
        rows.append(
            SohRow(values, to_time(date, time, where, "interval start"), to_int(interval, where, "interval"))
        )
    return tuple(rows)


def _soh_value(token: str, kind: str, where: Where, name: str) -> float | int | str | None:
    if kind == "f":
        return optional_float(token, where, name)
    if kind == "i":
        return optional_int(token, where, name)
    return optional_word(token)


def _parse_chromatogram(block: Block) -> Chromatogram:
    head, body, body_line = split_size_line(block)
    srid, n_points, step = tokens_of(head, 3, block.label, "srid n_points step_s")
    where = Where(block.label, head.number)
    n = to_int(n_points, where, "n_points")
    if n < 1:
        raise where.error(f"n_points is {n}")
    values, first = parse_channel_rows(block.label, body, body_line, n)
    return Chromatogram(optional_word(srid), to_float(step, where, "step"), first, values)


def format_soh(m: SohMessage) -> list[str]:
    out = _format_period_header(m) + format_comment(m.comment)
    unknown = set(m.blocks) - set(SOH_COLUMNS)
    if unknown:
        raise Ims2FormatError(
            sorted(unknown)[0], None, f"not an RMSSOH block (known: {' '.join(SOH_COLUMNS)})"
        )
    for label, columns in SOH_COLUMNS.items():
        if label not in m.blocks:
            continue
        with writing(label):
            out.append(label)
            for row in m.blocks[label]:
                if len(row.values) != len(columns):
                    raise ValueError(f"{len(row.values)} values in a row, want {len(columns)}")
                cells = [
                    _soh_cell(v, kind, name) for v, (name, kind) in zip(row.values, columns, strict=True)
                ]
                out.append(" ".join((*cells, format_time(row.start_ns), str(int(row.interval_s)))))
    for chromatogram in m.chromatograms:
        with writing(CHROMATOGRAM):
            values = np.asarray(chromatogram.values)
            out += [
                CHROMATOGRAM,
                f"{word(chromatogram.srid, 'srid')} {values.size} {format_float(chromatogram.step_s, 1)}",
                format_channel_rows(values, chromatogram.first_index).rstrip("\n"),
            ]
    return out


def _soh_cell(value: float | int | str | None, kind: str, name: str) -> str:
    if value is None:
        return MISSING
    if kind == "w":
        return word(str(value), name)
    if isinstance(value, str):
        raise ValueError(f"{name} must be a number, not the text {value!r}")
    if kind == "f":
        return format_float(value, 1)
    if int(value) != value:
        raise ValueError(f"{name} must be an integer, not {value!r}")
    return str(int(value))


# ---------------------------------------------------------------- MET


def parse_met(envelope: dict, blocks: Sorted, data_type_line: int) -> MetMessage:
    header = _parse_period_header(
        blocks.require("#Header", envelope["data_type"], data_type_line), blocks.warnings
    )
    block = blocks.require(MET, envelope["data_type"], data_type_line)
    rows = []
    for line in block.filled_lines():
        tokens = tokens_of(
            line, 4 + len(MET_FIELDS), MET, "start end (date time each) " + " ".join(MET_FIELDS)
        )
        where = Where(MET, line.number)
        values = (optional_float(t, where, name) for t, name in zip(tokens[4:], MET_FIELDS, strict=True))
        start = to_time(tokens[0], tokens[1], where, "start")
        rows.append(MetRow(start, to_time(tokens[2], tokens[3], where, "end"), *values))
    return MetMessage(
        **envelope,
        **header,
        **_comment(blocks),
        rows=tuple(rows),
        extra_blocks=tuple(blocks.extra),
        warnings=tuple(blocks.warnings),
    )


def format_met(m: MetMessage) -> list[str]:
    out = _format_period_header(m) + format_comment(m.comment) + [MET]
    with writing(MET):
        for row in m.rows:
            values = (MISSING if v is None else format_float(v, 1) for v in row[2:])
            out.append(" ".join((format_time(row.start_ns), format_time(row.end_ns), *values)))
    return out
