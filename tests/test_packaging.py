"""What `pip install` ships: every package of ours that the code imports, each with its py.typed marker.

An editable install maps only the packages pyproject.toml lists, so a package missing there works in
the repository and fails with ModuleNotFoundError on a fresh machine (as ``timeunits`` once did).
"""

from __future__ import annotations

import tomllib

from setuptools import find_packages

from tests.conftest import REPO_ROOT

NOT_SHIPPED = {"tests", "bench", "fuzz"}  # run from a checkout only


def _pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def _shipped_top_level() -> set[str]:
    include = _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    return {p for p in find_packages(where=str(REPO_ROOT), include=include) if "." not in p}


def test_every_top_level_package_is_shipped():
    on_disk = {p.parent.name for p in REPO_ROOT.glob("*/__init__.py")}
    assert _shipped_top_level() == on_disk - NOT_SHIPPED


def test_shipped_packages_carry_py_typed():
    assert "py.typed" in _pyproject()["tool"]["setuptools"]["package-data"]["*"]
    missing = sorted(p for p in _shipped_top_level() if not (REPO_ROOT / p / "py.typed").is_file())
    assert missing == []
