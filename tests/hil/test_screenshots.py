"""Which console screenshots a run takes, and that a machine without a browser skips them, saying why."""

from __future__ import annotations

from hil import scenario as scenarios
from hil import screenshots
from hil.screenshots import ConsoleCamera, Shot, plan


def test_the_default_demo_shoots_each_fault_halfway_and_skips_consoles_that_are_down():
    shots = plan(scenarios.load(None))
    assert shots == [
        Shot(720.0, "idc", "idc-network.png"),
        Shot(720.0, "SEIS1", "station-SEIS1.png"),
        Shot(2250.0, "idc", "idc-network-during-link_outage-SEIS1.png"),
        Shot(2250.0, "SEIS1", "station-SEIS1-during-link_outage.png"),
        Shot(2360.0, "idc", "idc-network-during-station_crash-RNP1.png"),
        Shot(2450.0, "idc", "idc-network-during-link_outage-RNX1.png"),  # a radionuclide station: no console
        Shot(3060.0, "idc", "idc-network-during-station_crash-INFR1.png"),  # INFR1's own console is down
        Shot(4500.0, "idc", "idc-network-during-gps_unlock-HYDR1.png"),
        Shot(4500.0, "HYDR1", "station-HYDR1-during-gps_unlock.png"),
    ]


def test_without_a_browser_no_shot_is_attempted(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(screenshots, "browser_missing", lambda: "no Chromium at /usr/bin/chromium")
    camera = ConsoleCamera(tmp_path, [Shot(0.0, "idc", "x.png")])
    camera(None, 10.0)  # no network is needed when nothing is due
    assert camera.missing == "no Chromium at /usr/bin/chromium" and not camera.threads
    assert "console screenshots skipped: no Chromium" in caplog.text
