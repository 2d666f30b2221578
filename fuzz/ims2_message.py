"""IMS 2.0 data messages: ``parse`` on arbitrary text, ``write`` of what it accepts, and its numba kernels.

The IDC decodes received messages as ASCII and quarantines the rest before parsing; ``rn_analysis``
reads files as UTF-8 text. ``parse`` takes any ``str``, so the input is decoded as Latin-1 (one character
per byte, exactly the IDC's text for ASCII input).

Invariants (a broken one is a bug, whatever the exception):
- any text parses, or raises Ims2FormatError naming a block the format knows (or ``envelope``/``STOP``)
  and a line that exists in the input; nothing else escapes;
- a message that parses is written by ``write`` (what the reader accepts, the writer can say), that text
  parses to an equal message (every field, floats and times exactly; ``warnings`` aside, since the writer
  normalises what was tolerated; a PHD without ``#Comment`` comes back with an empty one, as the writer
  always writes the block), and writing it again gives the same text;
- the lexer cuts the text into the same blocks, at the same lines, as a plain reading (ims2_reference);
- the number scan reads every block body as a plain reading does (same values per line, or the same
  first bad token on the same line), and the spectrum-row kernel takes exactly the contiguous ``label v
  v ...`` rows labelled from 0 or 1, with the counts of a plain reading.
"""

from __future__ import annotations

import numpy as np

from fuzz import ims2_reference
from fuzz.seeding import shared_fixtures
from gci_link import ims2
from gci_link.ims2 import Ims2FormatError
from gci_link.ims2.alert import ALERT_BLOCKS
from gci_link.ims2.intcodec import scan_ints
from gci_link.ims2.lexer import Block, lex
from gci_link.ims2.phd import BLOCK_ORDER
from gci_link.ims2.soh import MET_BLOCKS, SOH_BLOCKS
from gci_link.ims2.spectra import parse_channel_rows, split_size_line
from tests.gci_link.ims2 import builders

KNOWN_BLOCKS = {label.lower() for label in (*BLOCK_ORDER, *SOH_BLOCKS, *MET_BLOCKS, *ALERT_BLOCKS)}
NAMED = {"envelope", "stop"}


def check(data: bytes) -> None:
    text = data.decode("latin-1")
    blocks = _check_lexer(text)
    for block in blocks:
        _check_scan(block)
    try:
        message = ims2.parse(text)
    except Ims2FormatError as exc:
        _assert_names_block_and_line(exc, text)
        return
    written = ims2.write(message)
    again = ims2.parse(written)
    builders.assert_same(message, again, skip=("warnings", "comment"))
    if isinstance(message, ims2.PhdMessage):  # a PHD's #Comment is always written (docs/ims2.md)
        assert again.comment == (message.comment or ""), "the comment changed in a round trip"
    else:
        assert again.comment == message.comment, "the comment changed in a round trip"
    assert ims2.write(again) == written, "writing the re-read message gives other text"


def _assert_names_block_and_line(exc: Ims2FormatError, text: str) -> None:
    assert exc.block.lower() in KNOWN_BLOCKS | NAMED, f"unknown block named: {exc}"
    lines = text.count("\n") + 1
    assert exc.line is not None and 1 <= exc.line <= lines, f"line outside a {lines}-line text: {exc}"


# ------------------------------------------------------------------------------------- numba kernels


def _check_lexer(text: str) -> list[Block]:
    """The lexer's blocks (compiled line-head search) against the plain cut; the blocks, for more checks."""
    try:
        expected = ims2_reference.cut(text)
    except ims2_reference.NoStop:
        expected = None
    try:
        lexed = lex(text)
    except Ims2FormatError as exc:
        assert expected is None, f"the lexer found no STOP, the plain cut did at line {expected[1]}: {exc}"
        assert exc.line == text.count("\n") + 1
        return []
    assert expected is not None, "the lexer found a STOP line the plain cut does not see"
    marks, _ = expected
    got = [(b.name, b.line) for b in lexed.blocks]
    assert got == marks, f"the lexer cut blocks {got}, the plain cut {marks}"
    return lexed.blocks


def _check_scan(block: Block) -> None:
    """scan_ints on the block's body after its first line (where a spectrum's rows are), as a plain read."""
    try:
        _, body, first_line = split_size_line(block)
    except Ims2FormatError:
        return
    rows, problem = ims2_reference.scan(body)
    try:
        values, line_first = scan_ints(body, block.label, first_line)
    except Ims2FormatError as exc:
        assert problem is not None, f"the scan refused a body the plain reading takes: {exc}"
        kind, line, token = problem
        assert str(exc) == f"{block.label}, line {first_line + line}: {kind} {token!r}", (str(exc), problem)
        return
    assert problem is None, f"the scan took a body with {problem}"
    assert values.dtype == np.int64
    starts = line_first.tolist()
    got = [values[a:b].tolist() for a, b in zip(starts, [*starts[1:], values.size], strict=True)]
    assert got == rows, "the scan reads other numbers than the plain reading"
    _check_channel_rows(block.label, body, first_line, rows)


def _check_channel_rows(label: str, body: str, first_line: int, rows: list[list[int]]) -> None:
    expected = ims2_reference.channel_rows(rows)
    n = len(expected[1]) if expected else 1
    valid = expected is not None and expected[0] in (0, 1) and min(expected[1]) >= 0
    try:
        counts, first = parse_channel_rows(label, body, first_line, n)
    except Ims2FormatError as exc:
        assert not valid, f"spectrum rows refused that a plain reading takes: {exc}"
        return
    assert valid and expected is not None, f"spectrum rows taken that a plain reading refuses: {rows}"
    assert (first, counts.tolist()) == expected, "spectrum rows read otherwise than a plain reading"


# ---------------------------------------------------------------------------------------------- corpus


def _reduced(text: str, channels: int = 10) -> str:
    """A real message with its spectra and histogram cut to ``channels`` (size lines rewritten), everything
    else as found, so a seed keeps the real layout (trailing blanks, spacing) at a few kilobytes."""
    out: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        name = line.strip().split(" ")[0] if line.strip().startswith("#") else ""
        i += 1
        if name in ("#g_Spectrum", "#b_Spectrum", "#Histogram"):
            size = lines[i].split()
            if name == "#Histogram":
                out.append(" ".join([str(channels), str(channels), *size[2:]]))
            else:
                out.append(" ".join([str(channels), *size[1:]]))
            i += 1
            body = []
            while i < len(lines) and not lines[i].lstrip().startswith("#") and lines[i].strip() != "STOP":
                body.append(lines[i])
                i += 1
            if name == "#Histogram":
                out += [" ".join(row.split()[:channels]) for row in body[:channels]]
            else:
                values = [v for row in body for v in row.split()[1:]][:channels]
                first = int(body[0].split()[0])
                out += [" ".join([str(first + k), *values[k : k + 5]]) for k in range(0, channels, 5)]
    return "\n".join(out)


def seeds() -> list[bytes]:
    """The real PHD fixtures (spectra cut to 10 channels), and every data type from the project's writer."""
    found = [_reduced(p.read_text(encoding="ascii")) for p in sorted(shared_fixtures("phd").glob("*.PHD"))]
    rng = np.random.default_rng(11)
    messages: list[ims2.Message] = [
        builders.beta_gamma(rng, n=10),
        builders.beta_gamma(rng, "GASBKPHD", n=10, first_channel=None),
        builders.beta_gamma(rng, "QCPHD", n=5),
        builders.hpge(rng, channels=32),
        builders.hpge(rng, "QCPHD", channels=16),
        builders.hpge(rng, "DETBKPHD", channels=12, system_type="G"),
        builders.soh(),
        builders.met(),
        *(builders.alert(t) for t in ims2.ALERT_TYPES),
    ]
    return [t.encode("ascii") for t in found + [ims2.write(m) for m in messages]]


DICTIONARY = [b"BEGIN IMS2.0\n", b"MSG_TYPE DATA\n", b"MSG_ID ", b"DATA_TYPE ", b"SAMPLEPHD", b"QCPHD",
              b"GASBKPHD", b"RMSSOH", b"ALERT_FLOW", b"MET", b"\n#Header 3\n", b"\n#g_Spectrum\n",
              b"\n#b_Spectrum\n", b"\n#Histogram\n", b"\n#Calibration\n", b"\n#Certificate\n",
              b"\n#Comment\n", b"\n#Chromatogram\n", b"\n#Alert\n", b"\n#Met\n", b"\nSTOP\n",
              b"2024/03/01 01:00:20.0", b" - ", b"\r\n", b"999999999999999999", b"-1", b"1e308", b"0.5"]
