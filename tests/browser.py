"""The real browser of the console tests: Debian's Chromium driven by Playwright, never a downloaded one.

Tests that need it skip, saying why, where Playwright or the browser is missing (``.ci/run`` installs
Chromium before ``make test``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hil.screenshots import CHROMIUM, CHROMIUM_ARGS, browser_missing


def launch() -> Iterator[object]:
    """A headless Chromium for one test module (its pages are opened by the tests), or a skip."""
    missing = browser_missing()
    if missing:
        pytest.skip(f"browser tests skipped: {missing}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
