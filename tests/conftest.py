"""Shared test helpers: where the real-station fixtures live (read in place, never copied)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = Path(os.environ.get("IMS_SHARED_FIXTURES", REPO_ROOT.parent / "shared" / "fixtures"))


def shared_fixture_dir(kind: str) -> Path:
    """Folder of real fixtures of one kind (``cd11``, ``phd``); skips the test if it is absent."""
    path = SHARED_FIXTURES / kind
    if not path.is_dir():
        pytest.skip(f"real-station fixtures not found at {path} (set IMS_SHARED_FIXTURES to their folder)")
    return path
