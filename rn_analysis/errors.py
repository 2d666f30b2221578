"""The one exception type of the analyses, so callers (CLI, IDC, station) catch bad input in one place."""

from __future__ import annotations


class AnalysisError(ValueError):
    """Input that cannot be analysed; the message names the file, the block or the value that is wrong."""
