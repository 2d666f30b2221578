"""Shared test helpers: where the real-station fixtures live (read in place, never copied); and the
guard that no test leaves a process running (a verifier worker orphaned by a killed receiver ran on
for an hour once: issue 11)."""

from __future__ import annotations

import os
import secrets
import signal
from pathlib import Path

import pytest

from tests import processes

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = Path(os.environ.get("IMS_SHARED_FIXTURES", REPO_ROOT.parent / "shared" / "fixtures"))
# how long a child may take to finish exiting after its test (a worker told to stop, a killed daemon)
EXIT_GRACE_S = 5.0

_SESSION_TOKEN = f"{os.getpid()}.{secrets.token_hex(4)}"
os.environ[processes.SESSION_VARIABLE] = _SESSION_TOKEN  # inherited by everything the tests start


def shared_fixture_dir(kind: str) -> Path:
    """Folder of real fixtures of one kind (``cd11``, ``phd``); skips the test if it is absent."""
    path = SHARED_FIXTURES / kind
    if not path.is_dir():
        pytest.skip(f"real-station fixtures not found at {path} (set IMS_SHARED_FIXTURES to their folder)")
    return path


def _kill(pids: set[int]) -> str:
    """Describe the processes, then SIGKILL them (each is known to be this session's) so the next test
    is not blamed for them."""
    described = "; ".join(f"pid {pid}: {processes.command_line(pid)}" for pid in sorted(pids))
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return described


@pytest.fixture(autouse=True)
def _no_child_process_left_running():
    """A test whose child processes still run after it (and a short grace to exit) errors, naming them."""
    before = processes.children(os.getpid())
    yield
    left = processes.wait_gone(processes.children(os.getpid()) - before, EXIT_GRACE_S)
    if left:
        pytest.fail(f"the test left {len(left)} child process(es) running: {_kill(left)}", pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """At the end, no process started by the session may run, orphans included (found by the session's
    token in their environment): the run fails, loudly, naming them."""
    left = processes.wait_gone(processes.tagged(_SESSION_TOKEN), EXIT_GRACE_S)
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = f"{len(left)} process(es) started by this test session still run: {_kill(left)}"
    if reporter is not None:
        reporter.write("\n")
        reporter.write_sep("!", "processes left behind", red=True, bold=True)
        reporter.write_line(message, red=True)
    else:
        print(message)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory):
    """The test network's CA and keys (``tests.idc.conftest.make_keys``), one set for the whole session:
    making them registers the stations' signers in one global table (``SIGNERS``), so a second set (one
    per conftest that imported the fixture) made the first set's frames carry the other's keys, and
    the idc tests failed whenever adversarial tests ran between them."""
    from tests.idc.conftest import make_keys

    return make_keys(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (tests/browser.py); skips the test where it is missing."""
    from tests.browser import launch

    yield from launch()
