"""The real browser of the console tests: Debian's Chromium driven by Playwright, never a downloaded one.

Tests that need it skip, saying why, where Playwright or the browser is missing (``.ci/run`` installs
Chromium before ``make test``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def launch() -> Iterator[object]:
    """A headless Chromium for one test module (its pages are opened by the tests), or a skip."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser tests need the Python package playwright (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
