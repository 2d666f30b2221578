"""The station console in a real browser, over a daemon driven in-process with a scripted digitizer:
the waveform advances as data comes, an unplugged digitizer turns red with its alarm text, and names
sent by the instruments arrive as text."""

from __future__ import annotations

import pytest

from consoles.config import ConsoleConfig
from consoles.server import ConsoleServer
from station.alarms import Severity
from station.console import StationConsole
from tests.station.test_service import T0, Clock, feed, make_service
from timeunits import NS_PER_S


@pytest.fixture
def station(tmp_path):
    clock = Clock()
    service, driver = make_service(tmp_path, clock)
    server = ConsoleServer(StationConsole(lambda: service.latest_snapshot, service.wavetap).app(None, False),
                           ConsoleConfig(port=0), "station")
    server.start()
    yield service, driver, clock, server
    server.stop()
    service.outbox.close()


def _tick(service, clock, seconds):
    clock.now += seconds * NS_PER_S
    service.pump()
    service._watch_link()
    service.write_status()


def test_waveform_advances_and_an_unplugged_digitizer_turns_red_with_its_alarm(station, browser):
    service, driver, clock, server = station
    feed(driver, 0, 30)
    _tick(service, clock, 30)
    page = browser.new_page()
    page.goto(server.url)
    page.wait_for_selector("#wave[data-end]")
    first_end = int(page.get_attribute("#wave", "data-end"))
    assert first_end == (T0 + 29_500_000_000) // 1_000_000  # the last half-second bin of 30 s of data
    assert page.inner_text("#equipment tbody tr td:nth-child(2)") == "receiving"
    feed(driver, 30, 40)
    _tick(service, clock, 10)
    page.wait_for_selector(f"#wave:not([data-end='{first_end}'])")  # the page's CSP forbids eval
    assert int(page.get_attribute("#wave", "data-end")) - first_end == 10_000  # ten more seconds drawn
    _tick(service, clock, 70)  # the cable is pulled: nothing for 70 s
    row = page.locator("#equipment tbody tr").first
    page.wait_for_selector("#equipment tbody tr.bad")
    assert row.locator("td").nth(1).inner_text() == "NO DATA"
    assert "digitizer d (TST01): no data for 70 s" in row.locator("td").last.inner_text()
    color = row.locator("td").nth(1).evaluate("td => getComputedStyle(td).color")
    assert color == "rgb(198, 40, 40)"  # --bad
    alarms = page.locator("#alarms tbody tr", has_text="digitizer_silent")
    assert alarms.get_attribute("class") == "bad" and "check its cable" in alarms.inner_text()
    critical = [a for a in service.latest_snapshot["alarms"] if a["severity"] == "CRITICAL"]
    assert {a["name"] for a in critical} == {"digitizer_silent", "gci_link_down"}  # no IDC in this test
    assert page.inner_text("#summary .card.bad .value") == "2 CRITICAL"
    page.close()


def test_text_from_the_instruments_arrives_escaped(station, browser):
    service, driver, clock, server = station
    evil = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    service.alarms.raise_alarm("odd", evil, Severity.WARNING, clock.now, message=evil)
    _tick(service, clock, 1)
    page = browser.new_page()
    page.goto(server.url)
    page.wait_for_selector("#alarms tbody tr")
    assert evil in page.inner_text("#alarms tbody")
    assert page.evaluate("document.querySelectorAll('#alarms img, #alarms script').length") == 0
    page.close()
