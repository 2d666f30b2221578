"""The session's command cycle without sockets or threads: ``RunCommand`` out, ``on_command_finished`` in,
and the link going on in between, driven by fake time."""

from __future__ import annotations

import logging
import random

import pytest

from gci_link.commands import CommandOutcome
from gci_link.link_session import (
    Acknowledge,
    EventKind,
    LinkSession,
    RunCommand,
    SendAcknack,
    SendCommandResponse,
    State,
)
from tests.gci_link.test_link_session import config, data_seqs, drain, of
from timeunits import NS_PER_S

S = NS_PER_S


def commanded(**kw) -> LinkSession:
    """A session in the data phase that accepts commands; the IDC frame set is "IDC:0"."""
    session = LinkSession(config(**kw), 0, accepts_commands=True, rng=random.Random(1))
    session.start(0)
    session.on_connection_response(0, 0, "IDC:0", 0)
    session.on_option_response(0)
    session.poll(0)
    assert session.state is State.DATA
    return session


def responses(actions) -> list[str]:
    return [a.text for a in of(actions, SendCommandResponse)]


def test_command_is_handed_out_and_answered_when_reported_finished():
    session = commanded()
    session.on_command_request(7, "calibrate d sine Z 2 1", 1)
    out = session.poll(1)
    assert of(out, RunCommand) == [RunCommand(7, "calibrate d sine Z 2 1")]
    assert of(out, SendAcknack) == [SendAcknack("IDC:0", 7, 7, ())]  # received, though not answered yet
    assert responses(out) == []
    session.on_command_finished(7, CommandOutcome.DONE, "ok", 2)
    out = session.poll(2)
    assert of(out, SendCommandResponse) == [SendCommandResponse("calibrate d sine Z 2 1", "ok")]
    assert of(out, RunCommand) == []


def test_a_20_s_command_does_not_stop_data_or_acknacks():
    """One frame a second and an IDC acknack after each, all through a command that runs 20 s."""
    session = commanded(heartbeat_ns=5 * S)
    session.on_command_request(3, "calibrate d random Z 30", 0)
    assert of(session.poll(0), RunCommand) == [RunCommand(3, "calibrate d random Z 30")]
    sent, acked, heartbeats = [], [], 0
    for second in range(20):
        t = second * S
        session.offer([100 + second])
        out = drain(session, t)
        sent += data_seqs(out)
        heartbeats += len(of(out, SendAcknack))
        session.received_bytes(60, t + S // 2)
        session.on_acknack("STA1:0", 100, 100 + second, (), t + S // 2)
        acknowledged = of(session.poll(t + S // 2), Acknowledge)
        acked += [seq for a in acknowledged for seq in a.seqs]
        assert responses(out) == []
    assert sent == acked == list(range(100, 120))  # each frame out and acknowledged in its own second
    assert heartbeats == 3  # the prompt acknack of the request went at 0 s; heartbeats at 5, 10, 15 s
    assert session.counters.frames_resent == 0 and session.counters.reconnects == 0
    session.on_command_finished(3, CommandOutcome.DONE, "random calibration started", 20 * S)
    assert responses(session.poll(20 * S)) == ["random calibration started"]


def test_a_second_command_while_one_runs_is_answered_busy_at_once_and_not_run():
    session = commanded()
    session.on_command_request(7, "calibrate d sine Z 2 1", 0)
    session.poll(0)
    session.on_command_request(8, "status", 1)
    out = session.poll(1)
    assert of(out, RunCommand) == []
    (busy,) = responses(out)
    assert busy.startswith(CommandOutcome.BUSY.value) and "requests 7 not answered yet" in busy
    assert of(out, SendAcknack) == [SendAcknack("IDC:0", 7, 8, ())]
    session.on_command_finished(7, CommandOutcome.DONE, "ok", 2)
    assert responses(session.poll(2)) == ["ok"]
    session.on_command_request(9, "status", 3)  # room again: runs
    assert of(session.poll(3), RunCommand) == [RunCommand(9, "status")]


def test_a_longer_command_queue_accepts_that_many_then_answers_busy():
    session = commanded(command_queue=2)
    for seq in (1, 2, 3):
        session.on_command_request(seq, f"c{seq}", 0)
    out = session.poll(0)
    assert of(out, RunCommand) == [RunCommand(1, "c1"), RunCommand(2, "c2")]
    assert [r.request for r in of(out, SendCommandResponse)] == ["c3"]
    session.on_command_finished(2, CommandOutcome.DONE, "two", 1)  # results may come in any order
    session.on_command_finished(1, CommandOutcome.DONE, "one", 1)
    assert responses(session.poll(1)) == ["two", "one"]


def test_repeated_request_is_not_run_again_while_running_nor_after():
    session = commanded()
    session.on_command_request(7, "calibrate", 1)
    assert len(of(session.poll(1), RunCommand)) == 1
    session.on_command_request(7, "calibrate", 2)  # the IDC repeats it before the answer
    out = session.poll(2)
    assert of(out, RunCommand) == [] and responses(out) == []
    session.on_command_finished(7, CommandOutcome.DONE, "ok calibrate", 3)
    assert responses(session.poll(3)) == ["ok calibrate"]
    session.on_command_request(7, "calibrate", 4)  # and after it: the same answer again, not run
    out = session.poll(4)
    assert of(out, RunCommand) == [] and responses(out) == ["ok calibrate"]
    assert [e.fields["reason"] for e in session.take_events() if e.kind is EventKind.COMMAND_REPEATED] == [
        "still running", "answered"]


def test_failed_command_is_answered_as_error_and_the_link_stays_up():
    session = commanded()
    session.on_command_request(1, "x", 0)
    session.poll(0)
    session.on_command_finished(1, CommandOutcome.FAILED, "RuntimeError: calibrator busy", 1)
    assert responses(session.poll(1)) == ["error: RuntimeError: calibrator busy"]
    assert session.state is State.DATA


def test_station_without_commands_refuses_them():
    session = LinkSession(config(), 0)
    session.start(0)
    session.on_connection_response(0, 0, "IDC:0", 0)
    session.on_option_response(0)
    session.on_command_request(1, "status", 0)
    out = session.poll(0)
    assert of(out, RunCommand) == [] and responses(out) == ["error: this station accepts no commands"]


def test_answer_finished_during_a_reconnect_goes_out_on_the_next_connection():
    session = commanded(backoff_base_ns=S)
    session.on_command_request(5, "calibrate", 0)
    session.poll(0)
    session.on_transport_lost("send failed", 1)
    session.poll(1)
    session.on_command_finished(5, CommandOutcome.DONE, "ok", 2)
    assert session.state is State.BACKOFF and responses(session.poll(2)) == []
    session.poll(session.next_wakeup_ns(2))  # reconnect
    session.on_connection_response(0, 0, "IDC:0", 3 * S)
    session.on_option_response(3 * S)
    assert responses(session.poll(3 * S)) == ["ok"]


def test_results_that_make_no_sense_are_refused():
    session = commanded()
    with pytest.raises(ValueError, match="no command from request 9 is running"):
        session.on_command_finished(9, CommandOutcome.DONE, "ok", 0)
    session.on_command_request(9, "c", 0)
    with pytest.raises(ValueError, match="only the session answers busy"):
        session.on_command_finished(9, CommandOutcome.BUSY, "", 0)
    session.on_command_finished(9, CommandOutcome.DONE, "ok", 1)  # the refused report changed nothing
    assert responses(session.poll(1)) == ["ok"]


def test_result_after_shutdown_is_not_sent():
    session = commanded()
    session.on_command_request(2, "calibrate", 0)
    session.poll(0)
    session.shutdown(1)
    session.poll(1)
    session.on_command_finished(2, CommandOutcome.DONE, "ok", 2)
    assert session.poll(2) == []
    assert session.take_events()[-1].kind is EventKind.COMMAND_UNANSWERED


def test_the_core_reports_events_and_writes_no_log(caplog):
    with caplog.at_level(logging.DEBUG):
        session = commanded()
        session.on_command_request(1, "status", 0)
        session.on_acknack("OTHER:0", 0, 0, (), 0)
        session.on_transport_lost("send failed", 1)
        session.shutdown(2)
        session.poll(2)
    assert caplog.records == []
    events = session.take_events()
    assert [e.kind for e in events] == [
        EventKind.CONNECTING, EventKind.LINK_UP, EventKind.COMMAND_ACCEPTED, EventKind.FOREIGN_ACKNACK,
        EventKind.LINK_LOST, EventKind.LINK_STOPPED,
    ]
    lost = events[4].fields
    assert lost["station"] == "STA1" and lost["endpoint"] == "tcp://10.0.0.1:8041"
    assert lost["reason"] == "send failed" and 0.5 <= lost["delay_s"] <= 1.0
    assert session.take_events() == []  # each event is handed out once
