"""``parse`` and ``write``: the envelope (BEGIN ... DATA_TYPE ... STOP) and dispatch by data type."""

from __future__ import annotations

from .alert import ALERT_BLOCKS, format_alert, parse_alert
from .common import ends_block, format_raw, sort_blocks, word, writing
from .errors import Ims2FormatError
from .fields import Where
from .lexer import Line, lex
from .messages import (
    ALERT_TYPES,
    DATA_TYPES,
    MET_TYPE,
    PHD_TYPES,
    SOH_TYPE,
    AlertMessage,
    Message,
    MetMessage,
    PhdMessage,
    SohMessage,
)
from .phd import BLOCK_ORDER, format_phd, parse_phd
from .soh import CHROMATOGRAM, MET_BLOCKS, SOH_BLOCKS, format_met, format_soh, parse_met, parse_soh

ENVELOPE = "envelope"
VERSIONS = ("IMS2.0", "IMS1.0")


def parse(text: str) -> Message:
    """Read one IMS 2.0 data message; raises Ims2FormatError naming block, line and problem."""
    lexed = lex(text)
    envelope, data_type_line = _parse_envelope(lexed.envelope)
    data_type = envelope["data_type"]
    if data_type in PHD_TYPES:
        return parse_phd(envelope, sort_blocks(lexed.blocks, BLOCK_ORDER), data_type_line)
    if data_type == SOH_TYPE:
        return parse_soh(envelope, sort_blocks(lexed.blocks, SOH_BLOCKS, (CHROMATOGRAM,)), data_type_line)
    if data_type == MET_TYPE:
        return parse_met(envelope, sort_blocks(lexed.blocks, MET_BLOCKS), data_type_line)
    return parse_alert(envelope, sort_blocks(lexed.blocks, ALERT_BLOCKS), data_type_line)


def _parse_envelope(lines: list[Line]) -> tuple[dict, int]:
    if not lines:
        raise Ims2FormatError(ENVELOPE, 1, "no BEGIN line before the first block")
    begin = lines[0].tokens
    where = Where(ENVELOPE, lines[0].number)
    if begin[0].upper() != "BEGIN" or len(begin) != 2 or begin[1].upper() not in VERSIONS:
        raise where.error(f"first line is {lines[0].text.strip()!r}, want 'BEGIN IMS2.0'")
    fields: dict = {"ims_version": begin[1].upper()}
    extra: list[str] = []
    data_type_line = None
    for line in lines[1:]:
        where = Where(ENVELOPE, line.number)
        if data_type_line is not None:
            raise where.error(f"text outside any block: {line.text.strip()!r}")
        keyword, *rest = line.tokens
        keyword = keyword.upper()
        if keyword == "MSG_TYPE":
            if [t.upper() for t in rest] != ["DATA"]:
                raise where.error(f"MSG_TYPE {' '.join(rest)!r} is not a data message (want MSG_TYPE DATA)")
        elif keyword == "MSG_ID":
            if len(rest) not in (1, 2):
                raise where.error(f"MSG_ID wants an id and an optional source, got {len(rest)} tokens")
            fields["msg_id"] = rest[0]
            fields["msg_source"] = rest[1] if len(rest) == 2 else None
        elif keyword == "REF_ID":
            fields["ref_id"] = " ".join(rest)
        elif keyword == "DATA_TYPE":
            if len(rest) != 1 or rest[0].upper() not in DATA_TYPES:
                raise where.error(f"unsupported DATA_TYPE {' '.join(rest)!r} (known: {' '.join(DATA_TYPES)})")
            fields["data_type"] = rest[0].upper()
            data_type_line = line.number
        else:
            # not str.strip: "\f#x" must not become a "#" line; trailing CRs go with the blanks, as the
            # reader drops a CRLF's CR and would not read one back
            extra.append(line.text.lstrip(" \t").rstrip(" \t\r"))
    if data_type_line is None:
        raise Ims2FormatError(ENVELOPE, lines[-1].number, "no DATA_TYPE line before the first block")
    if "msg_id" not in fields:
        raise Ims2FormatError(ENVELOPE, data_type_line, "no MSG_ID line")
    fields["extra_envelope"] = tuple(extra)
    return fields, data_type_line


def write(message: Message) -> str:
    """The message as IMS 2.0 text (LF line ends, no trailing blanks, ends with ``STOP``)."""
    head = _format_envelope(message)
    if isinstance(message, PhdMessage):
        _check_type(message, PHD_TYPES)
        body = format_phd(message)
    elif isinstance(message, SohMessage):
        _check_type(message, (SOH_TYPE,))
        body = format_soh(message)
    elif isinstance(message, MetMessage):
        _check_type(message, (MET_TYPE,))
        body = format_met(message)
    elif isinstance(message, AlertMessage):
        _check_type(message, ALERT_TYPES)
        body = format_alert(message)
    else:
        raise TypeError(f"not an IMS 2.0 message object: {type(message).__name__}")
    extra = [line for block in message.extra_blocks for line in format_raw(block)]
    return "\n".join([*head, *body, *extra, "STOP"]) + "\n"


def _check_type(message: Message, allowed: tuple[str, ...]) -> None:
    if message.data_type not in allowed:
        raise Ims2FormatError(
            ENVELOPE, None, f"DATA_TYPE {message.data_type!r} is not one of {' '.join(allowed)}"
        )


def _format_envelope(m: Message) -> list[str]:
    with writing(ENVELOPE):
        msg_id = word(m.msg_id, "MSG_ID")
        if m.msg_source is not None:
            msg_id += f" {word(m.msg_source, 'MSG_ID source')}"
        lines = [f"BEGIN {word(m.ims_version, 'version')}", "MSG_TYPE DATA", f"MSG_ID {msg_id}"]
        if m.ref_id is not None:
            lines.append(f"REF_ID {m.ref_id}".rstrip())
        for line in m.extra_envelope:
            if ends_block(line) or "\n" in line:
                raise ValueError(f"envelope line {line!r} cannot be written")
            lines.append(line)
        lines.append(f"DATA_TYPE {m.data_type}")
    return lines
