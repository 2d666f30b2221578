"""One daemon, one configuration: a station with a waveform digitizer and a particulate system frames its
waveforms and runs its sample cycle side by side, into one outbox, with both in its status."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from digitizer.packet import Packet
from hil.rn_station import RnSim, RnSystemSpec
from hil.simclock import SimClock
from station.config import parse_config
from station.radionuclide.schedule import Schedule
from station.service import StationService
from station.snapshot import render
from tests.station.radionuclide.conftest import BASE, system_config
from tests.station.radionuclide.test_settings import WAVEFORM
from tests.station.test_service import ScriptedDriver
from timeunits import NS_PER_S

pytestmark = pytest.mark.timeout(60)
SPEED = 400.0
CYCLE = dict(collection_s=3600, decay_s=600, acquisition_s=3000, qc_s=300, qc_every=1, prel_interval_s=900)


def test_waveform_and_radionuclide_run_from_one_daemon(tmp_path):
    schedule = Schedule(system_config("particulate", **CYCLE).cycle)
    slot = schedule.slot_at(time.time_ns()) + 1
    clock = SimClock(schedule.slot_start(slot) - 60 * NS_PER_S, SPEED)  # just before a slot opens
    sim = RnSim(RnSystemSpec("part", "particulate", "ZZP01", cycle=CYCLE), clock, tmp_path, SPEED)
    driver = ScriptedDriver()
    for s in range(60):  # a minute of 40 sps waveform from the digitizer
        driver.items.put(Packet("ZZS01", "ZZSZ2", clock.start_ns + s * NS_PER_S, 40.0,
                                np.arange(40, dtype=np.int32), clock_locked=True))
    config = parse_config(BASE + WAVEFORM + sim.toml(), "station.toml", tmp_path)
    service = StationService(config, driver_factory=lambda _: driver, clock=clock.now_ns)
    runner = threading.Thread(target=service.run, kwargs={"install_signals": False})
    sim.start()
    try:
        runner.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
                service.radionuclide.status()["part"].get("messages", {}).get("stored", 0) >= 2
                and service.frames_published >= 4):
            time.sleep(0.05)
        service.write_status()
        snapshot = service.latest_snapshot
        kinds = [kind for _, kind in service.outbox.kinds("ims2 part ")]
    finally:
        service.sender.stop()  # no IDC here: nothing to drain at shutdown
        service.stop()
        runner.join(30)
        sim.stop()
    assert not runner.is_alive()
    assert service.frames_published >= 4  # the waveform went on beside the cycle
    assert snapshot["radionuclide"]["part"]["messages"]["stored"] >= 2
    assert f"QC {slot} FULL" in [kind.split(" ", 3)[3] for kind in kinds]
    table = render(snapshot)
    assert "RADIONUCLIDE" in table and "particulate" in table


def test_radionuclide_messages_are_in_the_prometheus_view():
    from station.metrics import StationCollector

    snapshot = {"outbox": dict.fromkeys(("frames", "bytes", "unacked_frames", "unacked_bytes", "budget_bytes",
                                         "over_budget"), 0),
                "link": dict.fromkeys(("frames_sent", "frames_resent", "frames_acked", "reconnects",
                                       "bytes_sent", "idc_frames_refused"), 0),
                "channels": {}, "digitizers": {},
                "radionuclide": {"gas": {"messages": {"stored": 7, "pending": 2, "acked": 5}}}}
    families = {f.name: f for f in StationCollector(lambda: snapshot).collect()}
    samples = {(family, s.labels["system"]): s.value for family in ("stored", "pending", "acked")
               for s in families[f"ims_station_radionuclide_messages_{family}"].samples}
    assert samples == {("stored", "gas"): 7, ("pending", "gas"): 2, ("acked", "gas"): 5}
