"""logfmt lines stay one line and plain text whatever a peer managed to put into a logged value."""

from __future__ import annotations

import io
import logging

import pytest

from station import logfmt


def _line(message: str, **extra: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logfmt.LogfmtFormatter())
    logger = logging.getLogger("tests.logfmt")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.warning(message, extra=extra)
    return stream.getvalue()


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("STA1\r\nts=2026 level=error msg=forged", '"STA1\\r\\nts=2026 level=error msg=forged"'),
        ("\x1b[2J\x1b[31mred", '"\\x1b[2J\\x1b[31mred"'),
        ("a\x85b\u2028c\u2029d", '"a\\x85b\\u2028c\\u2029d"'),
        ("del\x7f", '"del\\x7f"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("back\\slash", '"back\\\\slash"'),
        ("plain", "plain"),
        ("Güralp", "Güralp"),
        ("", '""'),
    ],
)
def test_values_from_peers_cannot_break_or_forge_a_line(value: str, shown: str) -> None:
    line = _line("frame rejected", station=value)
    assert line.endswith("\n") and line.count("\n") == 1 and "\r" not in line and "\x1b" not in line
    assert f" station={shown}" in line
    assert line[:-1].isprintable()


def test_the_message_itself_is_escaped_too() -> None:
    line = _line("creator \x1b]0;owned\x07 unknown")
    assert 'msg="creator \\x1b]0;owned\\x07 unknown"' in line


def test_logging_configured_for_stderr_follows_stderr_once_the_first_is_closed(monkeypatch) -> None:
    """A command run in process configures logging while a test's stderr is captured; the next test's
    threads must log to their own stderr, not fail on the first one's closed stream."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", root.handlers[:])
    monkeypatch.setattr(root, "level", root.level)
    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    logfmt.configure("info")
    first.close()
    monkeypatch.setattr("sys.stderr", second)
    logging.getLogger("tests.logfmt_after_close").info("still heard", extra={"station": "STA1"})
    assert "msg=\"still heard\" station=STA1" in second.getvalue()
