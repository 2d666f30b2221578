"""ALERT_FLOW, ALERT_SYSTEM, ALERT_TEMP, ALERT_UPS: one alert per message (project layout, spec §10.3)."""

from __future__ import annotations

from .common import (
    Sorted,
    check_header_args,
    format_comment,
    header_lines,
    ids_line,
    parse_text,
    text_lines,
    tokens_of,
    word,
    writing,
)
from .errors import Ims2FormatError
from .fields import MISSING, Where, format_float, format_time, optional_float, optional_word, to_time
from .messages import AlertMessage

ALERT = "#Alert"
ALERT_BLOCKS = ("#Header", "#Comment", ALERT)
STATES = ("RAISED", "CLEARED")


def category_of(data_type: str) -> str:
    return data_type.removeprefix("ALERT_")


def parse_alert(envelope: dict, blocks: Sorted, data_type_line: int) -> AlertMessage:
    data_type = envelope["data_type"]
    header = blocks.require("#Header", data_type, data_type_line)
    check_header_args(header, blocks.warnings)
    ids, transmit = header_lines(header, 2)
    station, detector, system_type = tokens_of(ids, 3, "#Header", "station detector system_type")
    date, time = tokens_of(transmit, 2, "#Header", "transmit date time")
    block = blocks.require(ALERT, data_type, data_type_line)
    lines = block.lines()
    filled = [line for line in lines if line.text.strip()]
    if len(filled) < 2:
        raise Where(ALERT, block.line).error(
            f"{len(filled)} non-blank lines, want at least 2 (when and what, subject value limit unit)"
        )
    when, what = filled[0], filled[1]
    d, t, category, condition, state = tokens_of(when, 5, ALERT, "date time category condition state")
    where = Where(ALERT, when.number)
    if category.upper() != category_of(data_type):
        raise where.error(f"category {category} does not match DATA_TYPE {data_type}")
    if state.upper() not in STATES:
        raise where.error(f"state {state!r}, want RAISED or CLEARED")
    subject, value, limit, unit = tokens_of(what, 4, ALERT, "subject value limit unit")
    what_where = Where(ALERT, what.number)
    text_start = lines.index(what) + 1
    return AlertMessage(
        **envelope,
        station=station,
        detector=optional_word(detector),
        system_type=system_type,
        transmit_ns=to_time(date, time, Where("#Header", transmit.number), "transmit time"),
        alert_ns=to_time(d, t, where, "alert time"),
        category=category.upper(),
        condition=condition.upper(),
        state=state.upper(),
        subject=optional_word(subject),
        value=optional_float(value, what_where, "value"),
        limit=optional_float(limit, what_where, "limit"),
        unit=optional_word(unit),
        text=parse_text(block, lines[text_start:]),
        comment=None if (c := blocks.get("#Comment")) is None else parse_text(c),
        extra_blocks=tuple(blocks.extra),
        warnings=tuple(blocks.warnings),
    )


def format_alert(m: AlertMessage) -> list[str]:
    if m.category != category_of(m.data_type):
        raise Ims2FormatError(ALERT, None, f"category {m.category} does not match DATA_TYPE {m.data_type}")
    if m.state not in STATES:
        raise Ims2FormatError(ALERT, None, f"state {m.state!r}, want RAISED or CLEARED")
    with writing("#Header"):
        header = [
            "#Header 3",
            ids_line(m.station, m.detector, m.system_type),
            format_time(m.transmit_ns),
        ]
    with writing(ALERT):
        numbers = (MISSING if v is None else format_float(v, 1) for v in (m.value, m.limit))
        body = [
            ALERT,
            " ".join((format_time(m.alert_ns), m.category, word(m.condition, "condition"), m.state)),
            " ".join((word(m.subject, "subject"), *numbers, word(m.unit, "unit"))),
            *text_lines(m.text, ALERT),
        ]
    return header + format_comment(m.comment) + body
