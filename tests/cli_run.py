"""Run ``ims`` as an operator does, in a child process, and see what it leaves behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def ims(*args: str, cwd: Path, timeout_s: float = 60.0, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    """``ims ARGS`` from this source tree in ``cwd``; stdout and stderr captured as text."""
    environment = os.environ | {"PYTHONPATH": str(REPO_ROOT)} | (env or {})
    return subprocess.run([sys.executable, "-m", "station.ims", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout_s, env=environment)


def tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root`` with its size and modification time, to show nothing changed."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}
