"""Structured, greppable log lines (logfmt: ``ts=… level=… logger=… msg="…" key=value …``).

Libraries log with ``logging.getLogger(__name__)`` and pass context as ``extra={...}``; this formatter
renders every extra attribute as a key=value pair so operators can grep for ``stream=`` or ``station=``.
When stderr is systemd's journal stream (``$JOURNAL_STREAM`` names it), each line starts with its syslog
priority (``<3>`` error, ``<4>`` warning, ``<6>`` info, ``<7>`` debug), which journald strips and keeps
as the entry's priority, so ``journalctl -p warning`` shows warnings and worse.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import TextIO

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    """A character as it may appear in a log line: control and other unprintable characters (CR, ESC,
    C1, line separators) become visible escapes, so text a peer sent can neither forge a log line nor
    drive an operator's terminal."""
    if char in _ESCAPES:
        return _ESCAPES[char]
    if char.isprintable():
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _needs_quotes(char: str) -> bool:
    return char in ' "=\\' or not char.isprintable()


def _quote(value: object) -> str:
    text = str(value)
    if text == "" or any(_needs_quotes(c) for c in text):
        return '"' + "".join(_escape(c) for c in text) + '"'
    return text


SYSLOG_PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
                     logging.CRITICAL: 2}


def is_journal_stream(stream: TextIO) -> bool:
    """``stream`` is the journal stream systemd connected (sd_journal_stream_fd(3), JOURNAL_STREAM)."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    try:
        info = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):  # closed, or no file descriptor (a test's StringIO)
        return False
    return bool(expected) and expected == f"{info.st_dev}:{info.st_ino}"


class LogfmtFormatter(logging.Formatter):
    def __init__(self, syslog_priority: bool = False) -> None:
        super().__init__()
        self.syslog_priority = syslog_priority

    def format(self, record: logging.LogRecord) -> str:
        line = self._logfmt(record)
        if not self.syslog_priority:
            return line
        priority = SYSLOG_PRIORITIES.get(record.levelno, 6 if record.levelno < logging.WARNING else 3)
        return f"<{priority}>{line}"

    def _logfmt(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        parts = [
            f"ts={stamp}.{int(record.msecs):03d}Z",
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"msg={_quote(record.getMessage())}",
        ]
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                parts.append(f"{key}={_quote(value)}")
        if record.exc_info:
            parts.append(f"exc={_quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a line is logged, not when logging was configured: a
    command run in process (a test's) must not leave the root logger writing to a stream since closed."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> TextIO:
        return sys.stderr


def configure(level: str = "info", stream: TextIO | None = None) -> None:
    """Route all logging through one logfmt handler (idempotent); to ``stream``, or to the current stderr."""
    handler = _StderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(LogfmtFormatter(syslog_priority=is_journal_stream(stream or sys.stderr)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
