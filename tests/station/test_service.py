"""The station daemon's own logic, driven in-process with a scripted driver (no ports, no sockets):
restart without duplicates, a failing outbox write that loses nothing, and the delivery alarms."""

from __future__ import annotations

import queue
import sqlite3
import threading
import time

import numpy as np
import pytest

from digitizer.guralp import DriverCounters
from digitizer.packet import Packet
from gci_link.cd11 import decode_frame
from gci_link.station_end.outbox import Outbox
from station.config import parse_config
from station.service import ARCHIVE_ALARM, WRITE_ALARM, StationService
from timeunits import NS_PER_S

T0 = 1_800_000_000 * NS_PER_S
RATE = 20.0


class ScriptedDriver:
    """Stands in for GuralpDriver: hands out whatever the test queued."""

    def __init__(self) -> None:
        self.items: queue.Queue = queue.Queue()
        self.counters = DriverCounters()

    def start(self) -> None: ...

    def stop_calibration(self) -> str:
        self.calls = [*getattr(self, "calls", []), ("stop",)]
        return "ok"

    def stop(self) -> None: ...

    def get(self, timeout: float | None = None):
        try:
            return self.items.get_nowait()
        except queue.Empty:
            return None


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


CONFIG = """
[station]
name = "TST"
network = "XX"
[acquisition]
lateness_budget_s = 2.0
[soh]
link_down_after_s = 60.0
backlog_after_s = 300.0
[[digitizers]]
name = "d"
system_id = "TST01"
port = "/dev/null"
[[channels]]
digitizer = "d"
stream_id = "TSTZ0"
site = "TST"
channel = "BHZ"
sensor_type = "seismic"
calib = 1.0
calper = 1.0
sample_rate = 20.0
[link]
endpoints = ["tcp://127.0.0.1:9"]
[archive]
path = "archive"
[outbox]
path = "outbox/outbox.sqlite"
"""


def make_service(tmp_path, clock: Clock) -> tuple[StationService, ScriptedDriver]:
    driver = ScriptedDriver()
    config = parse_config(CONFIG, "test", tmp_path)
    return StationService(config, driver_factory=lambda _: driver, clock=clock), driver


def feed(driver: ScriptedDriver, first_s: int, last_s: int) -> None:
    """One packet per second; sample values are the sample index since T0 (any loss or repeat shows)."""
    n = int(RATE)
    for s in range(first_s, last_s):
        values = np.arange(s * n, (s + 1) * n, dtype=np.int32)
        driver.items.put(Packet("TST01", "TSTZ0", T0 + s * NS_PER_S, RATE, values, clock_locked=True))


def outbox_samples(path) -> np.ndarray:
    box = Outbox(path, 1 << 40)
    frames = [decode_frame(f.frame) for f in box.unacked(limit=10_000)]
    box.close()
    parts = sorted((sub.time_ns, sub.samples) for f in frames for sub in f.body.channels)
    return np.concatenate([p for _, p in parts]) if parts else np.zeros(0, np.int32)


def test_restart_after_a_crash_neither_loses_nor_repeats_samples(tmp_path):
    clock = Clock()
    first, driver = make_service(tmp_path, clock)
    feed(driver, 0, 45)
    first.pump()
    assert first.frame_and_publish() >= 3
    first.outbox.close()  # SIGKILL: nothing else is flushed; the acquisition's held data is gone
    second, driver = make_service(tmp_path, clock)
    feed(driver, 10, 60)  # the driver's startup rewind refetches blocks the first process had framed
    second.pump()
    second.frame_and_publish(final=True)
    second.outbox.close()
    assert second.refetched_samples_trimmed == (40 - 10) * RATE
    assert np.array_equal(outbox_samples(tmp_path / "outbox" / "outbox.sqlite"), np.arange(60 * int(RATE)))


def test_a_backlog_played_back_faster_than_real_time_is_framed_without_dropping_samples(tmp_path):
    """A digitizer emptying its flash after an outage hands over far more data time at once than
    ``buffer_s`` (600 s by default): the main loop must cut frames between pumps, never drop samples."""
    clock = Clock()
    service, driver = make_service(tmp_path, clock)
    n = int(RATE) * 10
    for s in range(0, 1500, 10):  # 25 minutes of 10 s blocks, all waiting in the driver at once
        values = np.arange(s * int(RATE), s * int(RATE) + n, dtype=np.int32)
        driver.items.put(Packet("TST01", "TSTZ0", T0 + s * NS_PER_S, RATE, values, clock_locked=True))
    pumps = 0
    while service.pump():  # the main loop: pump, then frame what is ready
        pumps += 1
        service.frame_and_publish()
    service.frame_and_publish(final=True)
    service.outbox.close()
    assert pumps > 1
    assert service.acquisition.buffers["TST.BHZ."].stats.overflow_samples == 0
    assert np.array_equal(outbox_samples(tmp_path / "outbox" / "outbox.sqlite"), np.arange(1500 * int(RATE)))


def test_trimming_ends_once_the_replay_caught_up_so_a_clock_step_back_loses_nothing(tmp_path):
    """After the refetched packets, a packet stamped earlier than what was framed is new data (the
    digitizer's clock stepped back): it reaches the acquisition, which sees the time tear."""
    clock = Clock()
    first, driver = make_service(tmp_path, clock)
    feed(driver, 0, 45)
    first.pump()
    first.frame_and_publish()
    first.outbox.close()
    second, driver = make_service(tmp_path, clock)
    feed(driver, 10, 50)  # refetched, then new
    second.pump()
    trimmed = second.refetched_samples_trimmed
    values = np.full(int(RATE), 7, dtype=np.int32)
    driver.items.put(Packet("TST01", "TSTZ0", T0 + 20 * NS_PER_S, RATE, values, clock_locked=True))
    second.pump()  # stamped 30 s back, before what the outbox holds
    assert second.refetched_samples_trimmed == trimmed == (40 - 10) * RATE
    assert second.acquisition.buffers["TST.BHZ."].stats.time_tears == 1
    second.outbox.close()


def test_outbox_write_failure_keeps_frames_and_raises_alarm(tmp_path, monkeypatch):
    clock = Clock()
    service, driver = make_service(tmp_path, clock)
    real_append = service.outbox.append

    def disk_full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(service.outbox, "append", disk_full)
    feed(driver, 0, 35)
    service.pump()
    assert service.frame_and_publish() == 0
    assert service.alarms.get(WRITE_ALARM, "station") is not None
    monkeypatch.setattr(service.outbox, "append", real_append)
    feed(driver, 35, 50)
    service.pump()
    service.frame_and_publish(final=True)
    assert service.alarms.get(WRITE_ALARM, "station") is None
    service.outbox.close()
    assert np.array_equal(outbox_samples(tmp_path / "outbox" / "outbox.sqlite"), np.arange(50 * int(RATE)))


def test_a_local_archive_that_cannot_be_written_warns_once_and_the_outbox_goes_on(tmp_path, caplog):
    """A file where the archive's folder should be: every archive write fails (as on a full disk) while
    the outbox takes every frame; one alarm per episode, no traceback, cleared by the next good write."""
    clock = Clock()
    service, driver = make_service(tmp_path, clock)
    (tmp_path / "archive").rmdir()
    (tmp_path / "archive").write_text("not a folder")
    feed(driver, 0, 35)
    service.pump()
    with caplog.at_level("INFO", logger="station"):
        assert service.frame_and_publish() >= 2
        clock.now += 60 * NS_PER_S
        feed(driver, 35, 50)
        service.pump()
        assert service.frame_and_publish() >= 1
    alarm = service.alarms.get(ARCHIVE_ALARM, "station")
    assert alarm is not None and alarm.raised_ns == T0 and alarm.severity.name == "WARNING"
    assert service.alarms.get(WRITE_ALARM, "station") is None
    raised = [r for r in caplog.records if getattr(r, "alarm", None) == ARCHIVE_ALARM]
    assert len(raised) == 1 and "local archive write failed" in raised[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)
    (tmp_path / "archive").unlink()
    feed(driver, 50, 60)
    service.pump()
    service.frame_and_publish(final=True)
    assert service.alarms.get(ARCHIVE_ALARM, "station") is None
    assert [a.name for a in service.alarms.history] == [ARCHIVE_ALARM]
    service.archive.close()
    service.outbox.close()
    assert np.array_equal(outbox_samples(tmp_path / "outbox" / "outbox.sqlite"), np.arange(60 * int(RATE)))
    assert list((tmp_path / "archive").rglob("*.D.*"))  # the archive holds what came after the episode


@pytest.mark.parametrize("link_up", [False, True])
def test_link_down_and_backlog_alarms_follow_the_clock(tmp_path, link_up):
    clock = Clock()
    service, driver = make_service(tmp_path, clock)
    feed(driver, 0, 25)
    service.pump()
    service.frame_and_publish()
    for step in range(8):  # 8 minutes with nothing acknowledged
        clock.now += 60 * NS_PER_S
        service.link_health.observe(clock(), link_up, service.outbox.unacked(limit=1)[0].enqueued_ns)
        if step == 0:
            assert service.alarms.get("gci_link_down", "station") is None  # not yet 60 s down
    assert (service.alarms.get("gci_link_down", "station") is None) == link_up
    assert service.alarms.get("delivery_backlog", "station") is not None  # unacked for 8 min > 5 min
    service.outbox.ack(range(0, service.outbox.next_sequence))
    service.link_health.observe(clock(), True, None)
    assert service.alarms.get("gci_link_down", "station") is None
    assert service.alarms.get("delivery_backlog", "station") is None
    service.outbox.close()


def test_an_unexpected_error_in_the_main_loop_is_logged_and_survived(tmp_path, caplog):
    clock = Clock()
    service, driver = make_service(tmp_path, clock)
    real_cut = service.framer.cut
    calls = []

    def cut_failing_once(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise RuntimeError("framer bug met by some input")
        return real_cut(**kwargs)

    service.framer.cut = cut_failing_once
    feed(driver, 0, 25)
    runner = threading.Thread(target=service.run, kwargs={"install_signals": False})
    runner.start()
    deadline = time.monotonic() + 20
    while service.frames_published < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    service.stop()
    runner.join(30)
    assert not runner.is_alive()
    assert service.loop_errors == 1
    assert service.frames_published >= 2  # the loop went on after the error
    assert "station main loop error" in caplog.text


def test_idc_commands_reach_the_digitizer_and_bad_ones_are_answered(tmp_path):
    from gci_link.cd11 import CommandRequestBody

    service, driver = make_service(tmp_path, Clock())

    def command(text: str) -> str:
        return service._command(CommandRequestBody("TST", "TST", "BHZ", "", T0, text.encode()))

    assert "no active alarms" in command("status")
    assert command("stopcal d") == "ok"
    assert driver.calls == [("stop",)]
    # a calibration session that cannot start is answered at once, and touches no digitizer
    assert command("calibrate BHZ sine two").startswith("calibration not run: MINUTES must be a whole number")
    assert command("calibrate BHZ random 30").startswith(
        "calibration not run: channel TST.BHZ. has no [channels.calibration] table")
    assert command("calibrate BHN random 30").startswith("calibration not run: no channel 'BHN'")
    assert command("calibrate BHZ sine 30 0.3").startswith("calibration not run: sine frequency 0.3 Hz")
    assert "usage: calibrate CHANNEL random|sine|step MINUTES" in command("calibrate BHZ")
    assert command("stopcal nosuch").startswith("unknown command")
    assert len(driver.calls) == 1
    service.outbox.close()


def test_a_silent_digitizer_raises_an_alarm_naming_it_and_clears_when_data_returns(tmp_path):
    clock = Clock()
    service, driver = make_service(tmp_path, clock)
    feed(driver, 0, 5)
    service.pump()
    clock.now += 59 * NS_PER_S
    service._watch_link()
    assert service.alarms.get("digitizer_silent", "TST01") is None  # the default: 60 s of nothing
    clock.now += 2 * NS_PER_S
    service._watch_link()
    alarm = service.alarms.get("digitizer_silent", "TST01")
    assert alarm is not None and alarm.message.startswith("digitizer d (TST01): no data for 61 s")
    service.write_status()
    snapshot = service.latest_snapshot
    assert snapshot["digitizer_links"]["d"]["silent"]
    shown = snapshot["alarms"][0]
    assert shown["message"] == alarm.message and shown["severity"] == "CRITICAL"
    feed(driver, 5, 6)
    service.pump()
    service._watch_link()
    assert service.alarms.get("digitizer_silent", "TST01") is None
    service.write_status()
    assert service.latest_snapshot["recent_alarms"][0]["name"] == "digitizer_silent"
    assert not service.latest_snapshot["digitizer_links"]["d"]["silent"]
    service.outbox.close()


def test_a_console_that_cannot_listen_is_logged_and_acquisition_goes_on(tmp_path, caplog):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = parse_config(CONFIG + f'[console]\nbind = "127.0.0.1:{port}"\n', "test", tmp_path)
        driver = ScriptedDriver()
        service = StationService(config, driver_factory=lambda _: driver, clock=Clock())
        with caplog.at_level("ERROR"):
            assert service._start_console() is None
    assert "station console cannot listen" in caplog.text
    feed(driver, 0, 25)
    service.pump()
    assert service.frame_and_publish() >= 1
    service.outbox.close()
