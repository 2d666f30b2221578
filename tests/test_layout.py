"""The direction of dependencies between our packages (README "Layout", shared DESIGN.md), on every import.

A package may import the packages its arrows reach, directly or through others; the check reads each
module's syntax tree, so an import inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# package -> the packages of ours it may import (besides itself), following the arrows transitively
ARROWS: dict[str, set[str]] = {
    "timeunits": set(),
    "opskit": set(),
    "digitizer": {"timeunits"},
    "gci_link": {"timeunits"},
    "rn_analysis": {"gci_link"},
    "calibration": {"digitizer", "rn_analysis"},
    "consoles": set(),
    "station": {"calibration", "gci_link", "rn_analysis", "consoles"},
    "idc": {"gci_link", "calibration", "rn_analysis", "consoles"},
    "hil": {"station", "idc"},
}


# what every package may import: integer-nanosecond time, and the operations kit (which may use the time)
LEAVES = {"timeunits", "opskit"}


def _reachable(package: str) -> set[str]:
    seen: set[str] = set()
    todo = [package]
    while todo:
        for nxt in ARROWS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen | {package} | ({"timeunits"} if package in LEAVES else LEAVES)


def _top_level_imports(path: Path) -> set[tuple[str, int]]:
    """(top-level module, line) of every absolute import in the file."""
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update((alias.name.split(".")[0], node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.module.split(".")[0], node.lineno))
    return found


def _imported_packages(path: Path) -> set[tuple[str, int]]:
    return {(name, line) for name, line in _top_level_imports(path) if name in ARROWS}


@pytest.mark.parametrize("package", sorted(ARROWS))
def test_imports_follow_the_arrows(package: str) -> None:
    allowed = _reachable(package)
    modules = sorted((REPO_ROOT / package).rglob("*.py"))
    assert modules, f"package {package}/ has no modules"
    wrong = [
        f"{path.relative_to(REPO_ROOT)}:{line} imports {name}"
        for path in modules
        for name, line in sorted(_imported_packages(path))
        if name not in allowed
    ]
    assert not wrong, "imports against the direction of dependencies:\n" + "\n".join(wrong)


def test_every_top_level_package_is_mapped() -> None:
    packages = {p.parent.name for p in REPO_ROOT.glob("*/__init__.py")} - {"tests", "bench", "fuzz"}
    assert packages == set(ARROWS), "add the new package to ARROWS (and to the README's layout table)"


# the sans-I/O protocol cores: bytes or frames and "now" in, actions and events out
PROTOCOL_CORES = [
    "digitizer/brp.py",
    "digitizer/guralp_session.py",
    "digitizer/guralp_console.py",
    "digitizer/dp5.py",
    "digitizer/mca.py",
    "gci_link/link_session.py",
    "idc/protocol.py",
    "idc/seedlink/protocol.py",
]
IO_MODULES = {
    "zmq", "serial", "socket", "select", "selectors", "asyncio", "threading", "logging", "time", "sqlite3"
}


@pytest.mark.parametrize("core", PROTOCOL_CORES)
def test_protocol_cores_do_no_io_and_read_no_clock(core: str) -> None:
    imported = {name for name, _ in _top_level_imports(REPO_ROOT / core)}
    assert not imported & IO_MODULES, f"{core} imports {sorted(imported & IO_MODULES)}"
