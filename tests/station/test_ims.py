"""The ``ims`` entry point: version, and ``--log-level`` before or after the subcommand."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from station import ims


def test_version_names_the_installed_package(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        ims.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"ims {metadata.version('ims-station')}"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--log-level", "debug", "keys", "list", "x"], ["--log-level", "debug", "keys", "list", "x"]),
        (["keys", "list", "x", "--log-level", "debug"], ["--log-level", "debug", "keys", "list", "x"]),
        (["keys", "--log-level=error", "list", "x"], ["--log-level=error", "keys", "list", "x"]),
        (["cd11", "dump", "--", "--log-level", "f"], ["cd11", "dump", "--", "--log-level", "f"]),
    ],
)
def test_log_level_is_accepted_after_the_subcommand(argv: list[str], expected: list[str]) -> None:
    assert ims.hoist_log_level(argv) == expected


@pytest.fixture
def root_logging() -> Iterator[None]:
    """``ims.main`` configures the root logger; put it back for the tests that follow."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("root_logging")
def test_log_level_after_the_subcommand_takes_effect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ims.main(["keys", "list", str(tmp_path), "--log-level", "error"])
    assert logging.getLogger().level == logging.ERROR
    with pytest.raises(SystemExit):
        ims.main(["keys", "list", str(tmp_path), "--log-level", "loud"])
    assert "invalid choice: 'loud'" in capsys.readouterr().err
