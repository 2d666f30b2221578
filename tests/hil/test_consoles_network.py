"""Both consoles in a real browser during a short simulated network run, as operators would watch them:
the IDC sees a station whose link is cut go disconnected and come back; that station's own console shows
its backlog grow, then drain; another station's unplugged digitizer turns red with its alarm text; and
the live waveform advances."""

from __future__ import annotations

import threading
import time

import pytest

from hil import scenario as scenarios
from hil.network import Network

pytestmark = [pytest.mark.pty, pytest.mark.slow]

SCENARIO = """
[run]
duration_s = 960
speed = 30.0
seed = 16
frame_length_s = 10

[[stations]]
name = "CUT"
network = "XX"
sensor = "seismometer"
sample_rate = 20
block_s = 2
channels = ["CUT.BHZ"]

[[stations]]
name = "PLUG"
network = "XX"
sensor = "microbarometer"
sample_rate = 20
block_s = 2
channels = ["PLUG.BDF"]

[[faults]]
kind = "link_outage"
station = "CUT"
at_s = 450
duration_s = 300

[[faults]]
kind = "unplug"
station = "PLUG"
at_s = 450
duration_s = 300
"""
OUTAGE_S = (450, 750)  # on the scenario's clock, which starts once the daemons are ready


# read in the page (Playwright evaluates these over the DevTools protocol; the page's CSP forbids eval)
IDC_CUT = """() => { const a = document.querySelector("#stations a[href='/station/CUT']");
  return a && {cls: a.closest("tr").className, link: a.closest("tr").cells[1].textContent}; }"""
BACKLOG = """() => { const card = [...document.querySelectorAll("#summary .card")]
  .find((c) => c.textContent.startsWith("outbox backlog"));
  return card ? parseInt(card.querySelector(".value").textContent) : null; }"""
EQUIPMENT = """() => { const tr = document.querySelector("#equipment tbody tr");
  return tr && {cls: tr.className, alarms: tr.cells[tr.cells.length - 1].textContent}; }"""
WAVE_END = "() => document.getElementById('wave').dataset.end || null"


def _open(browser, url: str, wait_s: float = 60.0):
    """The page at ``url`` once its daemon listens (they bind their consoles while they start)."""
    from playwright.sync_api import Error

    page = browser.new_page()
    deadline = time.monotonic() + wait_s
    while True:
        try:
            page.goto(url)
            return page
        except Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _watch(network: Network, browser, done: threading.Event) -> list[dict]:
    """What the three pages show, about twice a second of real time, until the scenario's time is up."""
    while not network.console_urls.get("PLUG") or network.receiver is None:
        time.sleep(0.1)
    pages = {name: _open(browser, network.console_urls[name]) for name in ("idc", "CUT", "PLUG")}
    timeline = []
    while not done.is_set():
        elapsed = network.scenario_s()
        if elapsed is None:  # the daemons are still starting
            time.sleep(0.1)
            continue
        if elapsed >= network.scenario.duration_s:
            break
        timeline.append({"at_s": elapsed, "idc_cut": pages["idc"].evaluate(IDC_CUT),
                         "cut_backlog": pages["CUT"].evaluate(BACKLOG),
                         "plug": pages["PLUG"].evaluate(EQUIPMENT),
                         "wave_end": pages["CUT"].evaluate(WAVE_END)})
        time.sleep(0.5)
    for page in pages.values():
        page.close()
    return timeline


def test_consoles_show_the_faults_of_a_simulated_network(tmp_path, browser):
    scenario = scenarios.parse(SCENARIO, "consoles-test")
    network = Network(scenario, tmp_path / "run", show_progress=False)
    done = threading.Event()
    result: dict = {}

    def run() -> None:
        try:
            result["summary"] = network.run()
        except BaseException as exc:  # seen by the test thread
            result["error"] = exc
        finally:
            done.set()

    runner = threading.Thread(target=run, name="network")
    runner.start()
    try:
        timeline = _watch(network, browser, done)
    finally:
        runner.join(timeout=300)
    assert "error" not in result, result.get("error")
    assert len(timeline) >= 20, timeline
    before = [t for t in timeline if t["at_s"] < OUTAGE_S[0]]
    during = [t for t in timeline if OUTAGE_S[0] + 150 <= t["at_s"] < OUTAGE_S[1]]
    after = [t for t in timeline if t["at_s"] >= OUTAGE_S[1] + 90]
    assert before and during and after, timeline
    # the IDC: the cut station connected, then disconnected (its session closed for silence), then back
    assert before[-1]["idc_cut"]["link"] == "connected" and before[-1]["idc_cut"]["cls"] != "bad", before
    assert {"cls": "bad", "link": "DISCONNECTED"} in [t["idc_cut"] for t in during], during
    assert after[-1]["idc_cut"]["link"] == "connected", after
    # the cut station's own console: its backlog grows while cut, and drains once the link is back. On a
    # loaded machine its first connection may come late, so what it held before counts from just before
    # the cut, not from the start
    backlogs = [(round(t["at_s"]), (t["idc_cut"] or {}).get("link"), t["cut_backlog"]) for t in timeline]
    peak = max(t["cut_backlog"] or 0 for t in during)
    assert peak >= 10 and peak > (before[-1]["cut_backlog"] or 0), backlogs
    assert after[-1]["cut_backlog"] is not None and after[-1]["cut_backlog"] < peak / 4, backlogs
    # the unplugged digitizer: red, with the alarm that names it and says what to check
    unplugged = [t for t in timeline if OUTAGE_S[0] <= t["at_s"] < OUTAGE_S[1]]
    red = [t["plug"] for t in unplugged if t["plug"] and t["plug"]["cls"] == "bad"]
    assert red and "digitizer digitizer (PLUG): no data for" in red[-1]["alarms"], unplugged
    assert "check its cable" in red[-1]["alarms"]
    assert after[-1]["plug"]["cls"] != "bad", after
    # the live waveform advances
    ends = [int(t["wave_end"]) for t in timeline if t["wave_end"]]
    assert len(set(ends)) >= 5 and ends == sorted(ends)
