"""IDC commands through the real sender and sockets: a command that holds its thread (as a digitizer
console session does, up to ~20 s) must not hold data frames, acknacks or shutdown."""

from __future__ import annotations

import logging
import threading

import pytest

from gci_link.cd11 import AcknackBody, CommandRequestBody
from gci_link.station_end.outbox import Outbox
from gci_link.station_end.sender import Sender
from tests.gci_link.station_end.test_sender import T0, FakeIdc, Running, append, link_config, wait_for
from timeunits import NS_PER_S

pytestmark = pytest.mark.timeout(60)

S = NS_PER_S


class StepClock:
    """Link time that moves only when the test moves it, so counts of timed events are exact."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


class Console:
    """A command handler standing in for a digitizer console session: it holds its thread until released."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.commands: list[bytes] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, request: CommandRequestBody) -> str:
        self.commands.append(request.command)
        self.entered.set()
        if not self.release.wait(30):
            raise TimeoutError("the test never released the console")
        return self.answer


@pytest.fixture
def outbox(tmp_path):
    with Outbox(tmp_path / "outbox.db", 10**8, first_sequence=500) as box:
        yield box


@pytest.fixture
def idc():
    fake = FakeIdc()
    yield fake
    fake.close()


def test_20_s_console_command_does_not_stop_data_or_acknacks(idc, outbox):
    clock, console = StepClock(), Console("sine calibration started")
    cfg = link_config(idc, heartbeat_ns=5 * S, response_timeout_ns=30 * S, resend_after_ns=10 * S)
    sender = Sender(cfg, outbox, clock=clock, command_handler=console, poll_interval_s=0.02)
    command_acked = AcknackBody("IDC:0", 41, 41, ())
    with Running(sender):
        wait_for(lambda: idc.station_acknacks)  # link up
        idc.send_command(41, "calibrate d sine Z 2 1")
        wait_for(console.entered.is_set)
        wait_for(lambda: command_acked in idc.station_acknacks)  # acknowledged before it is answered
        sent = []
        for second in range(1, 21):  # the console holds its thread for 20 s of link time
            clock.now = T0 + second * S
            sent += append(outbox, 1)
            wait_for(lambda: outbox.stats().unacked_frames == 0)  # out, and the IDC's acknack processed
        station_acknacks = idc.station_acknacks.count(command_acked)
        idc.send_command(42, "status")
        wait_for(lambda: idc.command_responses)
        busy_before_release = [r.response for r in idc.command_responses]
        console_still_held = not console.release.is_set()
        console.release.set()
        wait_for(lambda: len(idc.command_responses) == 2)
    assert console_still_held and console.commands == [b"calibrate d sine Z 2 1"]  # 42 never ran
    assert idc.received_seqs() == sent == list(range(500, 520))
    assert sender.counters.frames_acked == 20 and sender.counters.frames_sent == 20
    assert sender.counters.frames_resent == 0 and sender.counters.reconnects == 0
    assert station_acknacks == 5  # the prompt one for request 41, then heartbeats at 5, 10, 15, 20 s
    (busy,) = busy_before_release  # the only response while the console was held
    assert busy.startswith(b"busy: requests 41 not answered yet")
    answer = idc.command_responses[1]
    assert answer.request == b"calibrate d sine Z 2 1" and answer.response == b"sine calibration started"
    assert AcknackBody("IDC:0", 41, 42, ()) in idc.station_acknacks


def test_failing_commands_are_answered_as_errors_and_the_sender_goes_on(idc, outbox, caplog):
    def handler(request: CommandRequestBody) -> str:
        if request.command == b"boom":
            raise RuntimeError("console gone")
        if request.command == b"mute":
            return None  # type: ignore[return-value]  # a handler bug: no text
        return "fine"

    sender = Sender(link_config(idc), outbox, command_handler=handler, poll_interval_s=0.02)
    with caplog.at_level(logging.INFO, logger="gci_link"), Running(sender):
        wait_for(lambda: idc.station_acknacks)
        for seq, text in enumerate(("boom", "mute", "status"), start=1):
            idc.send_command(seq, text)
            wait_for(lambda n=seq: len(idc.command_responses) == n)
        seqs = append(outbox, 3)
        wait_for(lambda: outbox.stats().unacked_frames == 0)
    assert [r.response for r in idc.command_responses] == [
        b"error: RuntimeError: console gone", b"error: the station's handler returned None", b"fine"]
    assert sorted(idc.received_seqs()) == seqs
    failed = [r for r in caplog.records if r.getMessage() == "command failed"]
    assert len(failed) == 1 and failed[0].exc_info is not None and failed[0].seq == 1
    answered = [r.outcome for r in caplog.records if r.getMessage() == "command answered"]
    assert answered == ["failed", "failed", "done"]  # the session's events, each logged once


def test_stop_does_not_wait_for_a_held_console(idc, outbox):
    console = Console("never answered")
    sender = Sender(link_config(idc), outbox, command_handler=console, poll_interval_s=0.02)
    running = Running(sender)
    with running:
        wait_for(lambda: idc.station_acknacks)
        idc.send_command(7, "calibrate d random Z 30")
        wait_for(console.entered.is_set)
    # leaving the block stopped the sender and joined its thread while the console was still held
    assert not running.thread.is_alive() and not console.release.is_set()
    wait_for(lambda: idc.alerts)
    assert idc.alerts == ["station shutting down"] and idc.command_responses == []
    console.release.set()
