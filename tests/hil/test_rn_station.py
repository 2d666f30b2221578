"""A radionuclide station end to end: the real station daemon (a process, SIGKILLed in the middle of a
count and started again) drives a simulated particulate system (PX5-HPGe and air sampler) and a noble-gas
system (beta-gamma analyser with its xenon unit) on pseudo-terminals through a slot of its schedule, and
sends every message over the GCI link to a real receiver. Every message the station made is stored at
the IDC exactly once and byte for byte; the counts went on through the crash.

Data time runs SPEED times real time for every part (the daemon reads the same clock from
IMS_SIM_CLOCK), so the hour-long slot takes about ten seconds. The slot followed is the first to open
once the daemon is up: a daemon slow to start on a busy machine costs one slot more, never the test.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

from gci_link import ims2
from gci_link.clock import SIM_CLOCK_ENV, sim_clock_spec
from gci_link.keys import CertificateAuthority
from hil.rn_station import RnSim, RnSystemSpec, message_report, rn_station_toml
from hil.simclock import SimClock
from idc.config import StationPolicy
from idc.rn_store import RnIndex
from station.radionuclide.schedule import CountKind, Schedule
from tests.gci_link.link_harness import Daemon
from tests.idc.conftest import Running, make_config
from tests.station.radionuclide.conftest import system_config
from timeunits import NS_PER_S

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
SPEED = 300.0
STARTUP_S = 1200  # data seconds the daemon usually needs to start (4 s real) before the first slot opens
STATION = "ZZS"
CYCLE = dict(collection_s=3600, decay_s=600, acquisition_s=2000, prel_interval_s=300, soh_poll_s=60,
             rmssoh_s=600)
PARTICULATE = RnSystemSpec("part", "particulate", "ZZP01", "01", cycle=CYCLE | dict(qc_s=300, qc_every=1))
NOBLE_GAS = RnSystemSpec("gas", "noble_gas", "ZZX01", "02", cycle=CYCLE | dict(gasbk_s=300),
                         histogram_channels=64, seed=1)


def test_a_slot_of_both_systems_reaches_the_idc_exactly_across_a_station_crash(tmp_path):
    ca = CertificateAuthority.create(tmp_path / "ca")
    bundle = ca.issue(STATION).bundle
    schedule = Schedule(system_config("particulate", **PARTICULATE.cycle).cycle)  # both open slots alike
    slot = schedule.slot_at(time.time_ns()) + 1
    start_ns = schedule.slot_start(slot) - STARTUP_S * NS_PER_S
    clock = SimClock(start_ns, SPEED)
    env = {**os.environ, SIM_CLOCK_ENV: sim_clock_spec(start_ns, time.time_ns(), SPEED)}
    systems = [RnSim(spec, clock, tmp_path, SPEED) for spec in (PARTICULATE, NOBLE_GAS)]
    config = make_config(tmp_path / "idc", ca.trust_dir, stations={STATION: StationPolicy(STATION, "XX")})
    run = Running(config, ca.trust_store(), clock.now_ns)
    station_toml = tmp_path / "station.toml"
    tables = [system.toml() for system in systems]
    station_toml.write_text(rn_station_toml(STATION, "XX", run.receiver.connection_endpoint, bundle, tables))
    daemon = Daemon([sys.executable, "-m", "station.ims", "station", "run", "--config", str(station_toml)],
                    env, tmp_path / "station.log")
    try:
        for system in systems:
            system.start()
        daemon.start()
        status = tmp_path / "data" / "state" / "status.json"  # written once the daemon runs
        while not status.exists() and daemon.alive:
            time.sleep(0.05)
        while schedule.slot_start(slot) < clock.now_ns() + 30 * NS_PER_S:
            slot += 1
        sample = schedule.sample_count(slot)
        clock.wait_until(sample.start_ns + 450 * NS_PER_S, _never())  # PREL 1 out, PREL 2 not yet
        daemon.kill()
        killed_ns = clock.now_ns()
        daemon.start()  # the detectors counted on meanwhile
        clock.wait_until(sample.end_ns + 240 * NS_PER_S, _never())
        assert daemon.terminate() == 0, daemon.log_tail()
    finally:
        daemon.stop_quietly()
        run.stop()
        for system in systems:
            system.stop()
    assert sample.start_ns < killed_ns < sample.end_ns
    outbox = tmp_path / "data" / "outbox" / "outbox.sqlite"
    report = message_report(outbox, tmp_path / "idc" / "ims2", STATION)
    for name in ("part", "gas"):
        tally = report[name]
        assert tally.all_exact and tally.sent == tally.acked == tally.stored, (name, tally, daemon.log_tail())
    index = RnIndex(tmp_path / "idc" / "ims2")
    try:
        messages = [ims2.parse(index.text(m).decode("ascii")) for m in index.find(station=STATION)]
    finally:
        index.close()
    for system, first in ((systems[0], CountKind.QC), (systems[1], CountKind.GASBK)):
        code = system.spec.station
        mine = [m for m in messages if isinstance(m, ims2.PhdMessage) and m.station == code]
        fulls = {m.data_type: m for m in mine if m.spectrum_qualifier == "FULL"
                 and m.collection_start_ns in (None, schedule.collection(slot)[0])
                 and m.acquisition_start_ns >= schedule.slot_start(slot)}
        full = fulls["SAMPLEPHD"]
        assert first.data_type in fulls, (code, sorted(fulls))
        # one count from its start to the scheduled end: not restarted at the crash
        preset_s = (sample.end_ns - full.acquisition_start_ns) / NS_PER_S
        assert full.real_time_s == pytest.approx(preset_s, abs=20)
        prels = [m for m in mine if m.spectrum_qualifier == "PREL" and m.sample_id == full.sample_id]
        assert prels and len({m.real_time_s for m in prels}) == len(prels)  # no PREL sent twice
        if first is CountKind.GASBK:
            assert full.gasbk_id == fulls["GASBKPHD"].sample_id and full.srid == fulls["GASBKPHD"].srid
            assert full.xe_volume_ml is not None and full.xe_volume_ml > 0
        assert any(isinstance(m, ims2.SohMessage) and m.station == code for m in messages)
    hpge = systems[0].dp5
    assert hpge is not None
    started = [c.first_enable_ns for c in hpge.truth_counts if c.first_enable_ns is not None]
    in_slot = [t for t in started if schedule.slot_start(slot) <= t < sample.end_ns]
    assert len(in_slot) == 2  # the QC count and the sample count: none started again at the crash


def _never() -> threading.Event:
    return threading.Event()
