"""What every data type shares: sorting blocks into known and verbatim ones, ``#Comment``, free text."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .errors import Ims2FormatError
from .fields import Where
from .lexer import Block, Line
from .messages import RawBlock


@dataclass
class Sorted:
    """The blocks of one message: known ones by canonical label, the rest verbatim, plus warnings."""

    known: dict[str, Block] = field(default_factory=dict)
    repeated: dict[str, list[Block]] = field(default_factory=dict)
    extra: list[RawBlock] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def get(self, label: str) -> Block | None:
        return self.known.get(label)

    def require(self, label: str, data_type: str, line: int) -> Block:
        block = self.known.get(label)
        if block is None:
            raise Ims2FormatError(label, line, f"missing {label} block, which a {data_type} must have")
        return block


def sort_blocks(blocks: list[Block], labels: Iterable[str], repeatable: Iterable[str] = ()) -> Sorted:
    """Match block names case-insensitively; a known block may appear once unless ``repeatable``."""
    canonical = {label.lower(): label for label in labels}
    repeatable = set(repeatable)
    out = Sorted()
    for block in blocks:
        label = canonical.get(block.label.lower())
        if label is None:
            out.extra.append(raw_block(block))
            out.warnings.append(f"unknown block {block.label} at line {block.line} kept verbatim")
        elif label in repeatable:
            out.repeated.setdefault(label, []).append(block)
        elif label in out.known:
            raise Ims2FormatError(
                label, block.line, f"block appears twice (first at line {out.known[label].line})"
            )
        else:
            if block.args and label != "#Header":
                out.warnings.append(f"{label} at line {block.line}: ignored tokens {' '.join(block.args)!r}")
            out.known[label] = block
    return out


def raw_block(block: Block) -> RawBlock:
    return RawBlock(block.raw_header.strip(), tuple(line.text for line in block.lines()))


def check_header_args(block: Block, warnings: list[str]) -> None:
    if block.args != ("3",):
        warnings.append(f"#Header at line {block.line} says {' '.join(block.args)!r}, not '3'")


def parse_text(block: Block, lines: list[Line] | None = None) -> str:
    """Free text (``#Comment``, or ``lines`` of the block): the lines as written, joined with newlines.

    A carriage return inside a line is refused, as ``write`` refuses it (readers that end lines at CR
    would read other lines), so what is read can be written back."""
    lines = block.lines() if lines is None else lines
    for line in lines:
        if "\r" in line.text:
            raise Where(block.label, line.number).error("a carriage return inside a line of text")
    return "\n".join(line.text for line in lines)


def ends_block(line: str) -> bool:
    """Whether the lexer would take this line for a block's ``#`` line or for STOP: only blanks and tabs
    may precede the mark (not a form feed or other Unicode space, which ``str.strip`` would remove)."""
    head = line.lstrip(" \t")
    stop = head.rstrip(" \t\r")
    return head.startswith("#") or (stop.isascii() and stop.upper() == "STOP")


def text_lines(text: str, label: str) -> list[str]:
    """Free text as message lines; a line that a reader would take for a block or for STOP is refused."""
    lines = text.split("\n") if text else []
    for number, line in enumerate(lines, 1):
        if ends_block(line):
            raise Ims2FormatError(
                label, None, f"text line {number} ({line!r}) would end the block or message"
            )
        if "\r" in line:
            raise Ims2FormatError(label, None, f"text line {number} holds a carriage return")
    return lines


def format_comment(comment: str | None) -> list[str]:
    """``#Comment`` and its lines; nothing when there is no comment."""
    return [] if comment is None else ["#Comment", *text_lines(comment, "#Comment")]


def header_lines(block: Block, want: int) -> list[Line]:
    """The first ``want`` non-blank lines of a positional block (real files leave blank lines around)."""
    lines = block.filled_lines()
    if len(lines) < want:
        raise Where(block.label, block.line).error(f"{len(lines)} non-blank lines, want {want}")
    if len(lines) > want:
        raise Where(block.label, lines[want].number).error(f"{len(lines)} non-blank lines, want {want}")
    return lines


def tokens_of(line: Line, count: int | tuple[int, ...], label: str, what: str) -> list[str]:
    tokens = line.tokens
    counts = (count,) if isinstance(count, int) else count
    if len(tokens) not in counts:
        want = " or ".join(str(c) for c in counts)
        raise Where(label, line.number).error(f"wrong count of values: {len(tokens)}, want {want} ({what})")
    return tokens


def format_raw(block: RawBlock) -> list[str]:
    for number, line in enumerate(block.lines, 1):
        if ends_block(line):
            raise Ims2FormatError(block.name, None, f"verbatim line {number} ({line!r}) would end the block")
    return [block.header, *block.lines]


@contextmanager
def writing(label: str) -> Iterator[None]:
    """Report a value that cannot be written as an Ims2FormatError naming the block."""
    try:
        yield
    except Ims2FormatError:
        raise
    except (ValueError, TypeError) as exc:
        raise Ims2FormatError(label, None, str(exc)) from exc


def ids_line(station: str, detector: str | None, system_type: str | None) -> str:
    """``station detector system_type``, the first #Header line of RMSSOH, MET and ALERT messages."""
    return " ".join((word(station, "station"), word(detector, "detector"), word(system_type, "system type")))


def word(value: str | None, what: str) -> str:
    """One token for a positional line; None is written ``-``."""
    if value is None:
        return "-"
    text = str(value)
    if len(text.split()) != 1 or text != text.strip():
        raise ValueError(f"{what} {text!r} must be one token without blanks")
    return text
