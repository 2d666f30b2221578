"""The IDC console in a real browser, over a metrics database of 300 stations with a fixed clock: the
numbers it shows are ``ims idc status --json``'s, names arrive escaped, and sort, filter, pages, the
per-station page and the CSV export work as an operator would use them."""

from __future__ import annotations

import csv
import io
import json
import urllib.request
from urllib.parse import quote

import pytest

from consoles.config import ConsoleConfig
from consoles.server import ConsoleServer
from gci_link.keys import CertificateAuthority
from idc.console import IdcConsole
from idc.metrics import MetricsStore
from idc.vocabulary import (
    ANONYMOUS,
    ChannelOutcome,
    HandshakeFailure,
    RejectionKind,
    handshake_failed,
    rejected,
    status_flag,
)
from station.ims import main
from timeunits import NS_PER_S

NOW = 1_750_000_000 * NS_PER_S
EVIL = "<script>alert(1)</script>"


def _fill(root):
    """300 stations; every seventh has a hole, every eleventh is disconnected, one has an evil name."""
    store = MetricsStore(root / "metrics.sqlite")
    names = [f"ST{i:03d}" for i in range(299)] + [EVIL]
    heard, connected = {}, set()
    for i, name in enumerate(names):
        start = NOW - 3600 * NS_PER_S
        for a, b in ((start, NOW - 1000 * NS_PER_S), (NOW - (900 if i % 7 == 0 else 1000) * NS_PER_S, NOW)):
            store.channel_seen(name, f"{name[:5]}.BHZ.", ChannelOutcome.AUTHENTICATED,
                               latency_ns=(i + 1) * 1_000_000, start_ns=a, end_ns=b, rate=40.0)
        if name == EVIL:
            store.channel_seen(name, f"{EVIL}.BHN.", ChannelOutcome.AUTHENTICATED, latency_ns=1,
                               start_ns=start, end_ns=NOW, rate=40.0)
        store.count(name, "frames", 300 + i)
        if i % 11 == 0:
            store.count(name, rejected(RejectionKind.CRC), 2)
        else:
            connected.add(name)
        heard[name] = NOW - NS_PER_S
    store.record_links(NOW, heard, connected)
    store.count(ANONYMOUS, handshake_failed(HandshakeFailure.AUTH), 4)  # a stranger: not a station
    store.count("ST007", status_flag("gps_receiver_unlocked"), 12)
    store.close()
    return names


@pytest.fixture(scope="module")
def console(tmp_path_factory):
    root = tmp_path_factory.mktemp("idc")
    names = _fill(root)
    ca = CertificateAuthority.create(tmp_path_factory.mktemp("ca"))
    ca.issue("ST007")
    keys = ca.trust_store().keys
    view = IdcConsole(root, 3600, lambda: NOW, lambda: keys)
    server = ConsoleServer(view.app(None, False), ConsoleConfig(port=0), "idc")
    server.keys = keys
    server.start()
    yield server, root, names
    server.stop()


def _json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_the_console_shows_what_ims_idc_status_json_prints(console, tmp_path, monkeypatch, capsys):
    server, root, _ = console
    config = tmp_path / "idc.toml"
    config.write_text(f'[idc]\nroot = "{root}"\ntrust_dir = "t"\nconnection_endpoint = "tcp://127.0.0.1:1"\n')
    monkeypatch.setattr("gci_link.clock.clock_from_env", lambda: lambda: NOW)
    assert main(["idc", "status", "--config", str(config), "--json"]) == 1
    printed = json.loads(capsys.readouterr().out)
    shown = _json(server.url + "api/status")  # the page's numbers; the command adds its health verdict
    assert {key: printed[key] for key in shown} == shown and "healthy" in printed
    assert len(printed["stations"]) == 300 and printed["anonymous"] == {"handshake_failed:auth": 4}
    station = printed["stations"][1]  # after the evil name: "<" sorts first
    assert station["station"] == "ST000" and not station["connected"] and station["rejected"] == {"crc": 2}
    assert station["gaps"] == 1 and station["frames"] == 300 and station["status_flags"] == {}
    by_name = {s["station"]: s for s in printed["stations"]}
    assert by_name["ST007"]["status_flags"] == {"gps_receiver_unlocked": 12}
    with urllib.request.urlopen(server.url + "export.csv", timeout=10) as response:
        rows = list(csv.DictReader(io.StringIO(response.read().decode())))
    assert [r["station"] for r in rows] == [s["station"] for s in printed["stations"]]
    availability = [s["availability_pct"] for s in printed["stations"]]
    assert [float(r["availability_pct"]) for r in rows] == availability


def test_network_page_sorts_filters_and_pages_300_stations(console, browser):
    server, _, names = console
    status = _json(server.url + "api/status")
    page = browser.new_page()
    page.goto(server.url)
    page.wait_for_selector("#stations tbody tr")
    assert page.inner_text("#pageinfo") == "page 1 of 6 · 300 of 300 stations"
    assert page.locator("#stations tbody tr").count() == 50
    cards = page.inner_text("#summary")
    connected = sum(s["connected"] for s in status["stations"])
    assert f"{connected} / 300" in cards
    assert "input from no known station\n4\nhandshake_failed:auth 4" in cards
    first = page.locator("#stations tbody tr").first
    assert first.locator("td").nth(0).inner_text() == EVIL  # "<" sorts first; shown as text, not run
    assert page.evaluate("document.querySelectorAll('#stations script').length") == 0
    row = {s["station"]: s for s in status["stations"]}["ST011"]
    page.fill("#filter", "ST011")
    cells = page.locator("#stations tbody tr").first.locator("td").all_inner_texts()
    assert cells[:4] == ["ST011", "DISCONNECTED", "1 s ago", f"{row['availability_pct']:.2f}"]
    assert cells[6] == f"{row['latency_s']:.3f}" and cells[-1] == "crc 2"
    assert "bad" in page.locator("#stations tbody tr").first.get_attribute("class")
    page.fill("#filter", "")
    page.click("#stations th[data-key=latency_s]")
    page.click("#stations th[data-key=latency_s]")  # descending: the slowest link first
    slowest = max(status["stations"], key=lambda s: s["latency_s"])
    assert page.locator("#stations tbody tr td").first.inner_text() == slowest["station"]
    page.click("#next")
    assert page.inner_text("#pageinfo").startswith("page 2 of 6")
    page.check("#problems")
    problems = [s for s in status["stations"] if not s["connected"] or s["availability_pct"] < 99
                or s["rejected_total"]]
    assert 0 < len(problems) < 300
    pages = -(-len(problems) // 50)
    assert page.inner_text("#pageinfo") == f"page 1 of {pages} · {len(problems)} of 300 stations"
    page.close()


def test_station_page_lists_channels_gaps_and_escapes_names(console, browser):
    server, _, _ = console
    page = browser.new_page()
    page.goto(server.url + "station/" + quote(EVIL, safe=""))
    page.wait_for_selector("#channels tbody tr")
    assert page.inner_text("#title") == f"Station {EVIL}"
    assert page.title() == f"{EVIL} · IMS network"
    channels = page.locator("#channels tbody tr td:first-child").all_inner_texts()
    assert f"{EVIL}.BHN." in channels
    assert page.evaluate("document.querySelectorAll('body script').length") == 0
    assert page.evaluate("window.alerted === undefined")
    page.goto(server.url + "station/ST007")
    page.wait_for_selector("#gaps tbody tr")
    gap = page.locator("#gaps tbody tr").first.locator("td").all_inner_texts()
    assert gap[0] == "ST007.BHZ." and gap[3] == "100.0"  # the hole left between the two spans
    assert page.inner_text("#summary").startswith("link\nconnected")
    assert page.locator("#flags tbody tr td").all_inner_texts() == ["gps_receiver_unlocked", "12"]
    (key,) = server.keys
    cells = page.locator("#keys tbody tr td").all_inner_texts()
    assert cells[:2] == [str(key.key_id), "ecdsa-p256"]
    assert cells[4] == "not valid"  # issued today, after this test's fixed clock
    assert page.get_attribute("#keys tbody tr td:nth-child(5)", "class").strip() == "bad"
    page.close()


def test_viewers_share_one_computation_per_update_interval(tmp_path):
    _fill(tmp_path)
    console = IdcConsole(tmp_path, 3600, lambda: NOW)
    assert console.network() is console.network()  # the second viewer within the interval: no new query
