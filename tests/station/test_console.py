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
    view = StationConsole(lambda: service.latest_snapshot, service.wavetap, availability=service.availability)
    server = ConsoleServer(view.app(None, False), ConsoleConfig(port=0), "station")
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
    link_card = page.locator("#summary .card", has_text="GCI link to the IDC").inner_text()
    assert "IDLE" in link_card and "last ack after – s · sent 0 · acked 0" in link_card  # no IDC here
    # 40 s of 20 sps in the 110 s since the first sample (2200 expected); no record before it
    hours = page.get_attribute("#strip-hours", "data-percents").split()
    assert len(hours) == 72 and hours[-1] == "36.4" and set(hours[:-1]) == {"-"}
    assert len(page.get_attribute("#strip-days", "data-percents").split()) == 168
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


TOKEN = "operator-token-0123456789"


@pytest.fixture
def operated(tmp_path):
    clock = Clock()
    service, _ = make_service(tmp_path, clock)
    asked: list[list[str]] = []  # the calibrate commands the page made the daemon run

    def calibrate(words: list[str]) -> str:
        asked.append(words)
        return "calibration started"

    view = StationConsole(lambda: service.latest_snapshot | {"calibration_channels": ["XMPL.BHZ"]},
                          service.wavetap, calibrate)
    server = ConsoleServer(view.app(TOKEN, False), ConsoleConfig(port=0), "station")
    server.start()
    yield service, asked, server
    server.stop()
    service.outbox.close()


def test_an_operator_starts_a_calibration_after_confirming_it(operated, browser):
    _, asked, server = operated
    page = browser.new_page()
    page.goto(server.url)
    page.wait_for_selector("#login:not([hidden])")
    assert page.is_hidden("#calibrate")
    page.fill("#token", "not the token")
    page.click("#login button")
    page.wait_for_selector("#cal-note:has-text('Wrong operator credential')")
    page.fill("#token", TOKEN)
    page.click("#login button")
    page.wait_for_selector("#calibrate:not([hidden])")
    page.select_option("#cal-signal", "sine")
    page.fill("#cal-minutes", "16")
    page.fill("#cal-hz", "0.1  1")
    dialogs = []
    page.once("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.click("#calibrate button:not(#logout)")
    page.wait_for_timeout(300)
    assert dialogs and "Start a sine calibration of XMPL.BHZ at 0.1, 1 Hz, for 16 min?" in dialogs[0]
    assert not asked  # dismissed: nothing was asked of the daemon
    page.once("dialog", lambda d: d.accept())
    page.click("#calibrate button:not(#logout)")
    page.wait_for_selector("#cal-note:has-text('Station answered: calibration started')")
    assert asked == [["calibrate", "XMPL.BHZ", "sine", "16", "0.1", "1"]]
    page.click("#logout")
    page.wait_for_selector("#login:not([hidden])")
    page.close()


def test_a_calibration_request_is_checked_before_the_daemon_hears_of_it(operated):
    import json
    import urllib.error
    import urllib.request

    _, asked, server = operated

    def post(body):
        request = urllib.request.Request(server.url + "api/calibrate", data=json.dumps(body).encode(),
                                         headers={"Authorization": f"Bearer {TOKEN}"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    good = {"channel": "XMPL.BHZ", "signal": "step", "minutes": 3}
    for change, problem in [({"channel": "XMPL.BHN"}, "no channel 'XMPL.BHN' with a calibration table"),
                            ({"signal": "loud"}, "signal must be"), ({"minutes": 0}, "minutes must be"),
                            ({"minutes": True}, "minutes must be"), ({"signal": "sine"}, "needs 1 to 10"),
                            ({"signal": "sine", "hz": [0]}, "needs 1 to 10"),
                            ({"signal": "sine", "hz": ["1; rm"]}, "needs 1 to 10")]:
        status, text = post(good | change)
        assert status == 400 and problem in text, (change, text)
    assert not asked
    assert post(good) == (200, '{"answer": "calibration started"}')
    assert asked == [["calibrate", "XMPL.BHZ", "step", "3"]]


def test_the_daemon_refuses_a_console_calibration_of_a_channel_without_a_calibration_table(tmp_path):
    service, _ = make_service(tmp_path, Clock())
    try:
        answer = service.calibrate_from_console(["calibrate", "NOPE.BHZ", "random", "5"])
        assert answer.startswith("calibration not run: no channel 'NOPE.BHZ'")
    finally:
        service.outbox.close()


def test_radionuclide_systems_show_their_cycle_when_the_station_has_them(tmp_path, browser):
    service, _ = make_service(tmp_path, Clock())
    rn = {"part": {"kind": "particulate", "running": True, "loop_errors": 0, "quarantined": 1,
                   "count": {"key": "SAMPLE 12", "start_ns": T0, "end_ns": T0 + 3600 * NS_PER_S,
                             "started_ns": T0, "measurement_id": "m", "finished": False},
                   "messages": {"stored": 5, "pending": 2, "acked": 3, "sent_by_type": {}},
                   "alarms": [{"name": "flow_low", "source": "part", "severity": "WARNING", "raised_ns": T0,
                               "message": "part: flow_low (400, limit 500)"}]}}
    server = ConsoleServer(StationConsole(lambda: service.latest_snapshot | {"radionuclide": rn},
                                          service.wavetap).app(None, False), ConsoleConfig(port=0), "station")
    server.start()
    try:
        page = browser.new_page()
        page.goto(server.url)
        page.wait_for_selector("#radionuclide tbody tr")
        cells = page.locator("#radionuclide tbody tr td").all_inner_texts()
        assert cells[:3] == ["part", "particulate", "running"]
        assert cells[3].startswith("SAMPLE 12 (")
        assert cells[4:] == ["5 / 2", "1", "part: flow_low (400, limit 500)"]
        page.close()
    finally:
        server.stop()
        service.outbox.close()
