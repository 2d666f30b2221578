"""Screenshots of the operator consoles during a simulated run (``make demo``), taken in a real browser.

Each shot is due at a simulated time; when it is, a thread of its own opens the console in headless
Chromium (the distribution's, never a downloaded one) and saves a PNG, so the run's loop is not held.
Without Playwright or Chromium the shots are skipped and the reason is said once.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

    from hil.network import Network
    from hil.scenario import Scenario

log = logging.getLogger(__name__)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT: ViewportSize = {"width": 1280, "height": 860}
READY = {"idc": "#stations tbody tr", "station": "#wave[data-end]"}  # what shows the page has its data


@dataclass(frozen=True)
class Shot:
    at_s: float  # simulated seconds from the start of the run
    console: str  # "idc" or a station name
    file: str


def plan(scenario: Scenario) -> list[Shot]:
    """The network and the first station early on, when all is well; then, halfway through each fault,
    the network and the station at fault (unless the fault is that the console's own process is down, or
    the station has no console: radionuclide-only stations serve none)."""
    consoles = {s.name for s in scenario.stations}
    early = scenario.duration_s * 0.1
    shots = [Shot(early, "idc", "idc-network.png")]
    if scenario.stations:
        first = scenario.stations[0].name
        shots.append(Shot(early, first, f"station-{first}.png"))
    for fault in sorted(scenario.faults, key=lambda f: f.at_s + f.duration_s / 2):
        middle = fault.at_s + fault.duration_s / 2
        if middle >= scenario.duration_s:
            continue
        where = fault.station or "receiver"
        if fault.kind != "receiver_crash":
            shots.append(Shot(middle, "idc", f"idc-network-during-{fault.kind}-{where}.png"))
        if fault.station in consoles and fault.kind != "station_crash":
            shots.append(Shot(middle, where, f"station-{where}-during-{fault.kind}.png"))
    return shots


def browser_missing() -> str | None:
    """Why no screenshot can be taken here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


class ConsoleCamera:
    """A ``Network`` observer: takes each shot once its simulated time has come."""

    def __init__(self, out: Path, shots: list[Shot]) -> None:
        self.out = out
        self.pending = sorted(shots, key=lambda s: s.at_s)
        self.threads: list[threading.Thread] = []
        self.saved: list[Path] = []
        self.missing = browser_missing()
        if self.missing:
            log.warning("console screenshots skipped: %s", self.missing)
            self.pending = []

    def __call__(self, network: Network, elapsed_s: float) -> None:
        while self.pending and self.pending[0].at_s <= elapsed_s:
            shot = self.pending.pop(0)
            thread = threading.Thread(target=self._take, args=(network.console_urls[shot.console], shot),
                                      name=f"screenshot-{shot.file}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def join(self, timeout_s: float = 60.0) -> None:
        for thread in self.threads:
            thread.join(timeout_s)

    def _take(self, url: str, shot: Shot) -> None:
        from playwright.sync_api import Error, sync_playwright

        path = self.out / shot.file
        path.parent.mkdir(parents=True, exist_ok=True)
        ready = READY["idc" if shot.console == "idc" else "station"]
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page(viewport=VIEWPORT)
                    page.goto(url)
                    page.wait_for_selector(ready, timeout=15_000)
                    page.screenshot(path=str(path))
                finally:
                    browser.close()
        except Error as exc:  # a console that did not answer: the run goes on, the shot is missing
            log.warning("console screenshot failed", extra={"console": shot.console, "error": str(exc)})
            return
        self.saved.append(path)
