"""Where seed inputs come from: the shared real-station fixtures, read in place (never copied)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import SHARED_FIXTURES


def shared_fixtures(kind: str) -> Path:
    """Folder of real fixtures of one kind; it may be absent (then the encoders' seeds stand alone)."""
    return SHARED_FIXTURES / kind
