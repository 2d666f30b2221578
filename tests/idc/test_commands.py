"""Command requests from the IDC (``ims idc command``): checked before they are queued, sent by the
running receiver to a station's open session, answered by a real station sender, the response stored
and printed; a request that cannot be sent in time is withdrawn and never sent later."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from gci_link.cd11 import CommandRequestBody
from gci_link.keys import Role, TrustStore
from gci_link.link_session import SessionConfig
from gci_link.station_end.outbox import Outbox
from gci_link.station_end.sender import Sender
from idc.commands import ANSWERED, QUEUED, SENT, WITHDRAWN, CommandQueue, check_command
from tests.idc.conftest import REPO, Running, ims_idc, make_config, signed
from timeunits import NS_PER_S

pytestmark = pytest.mark.timeout(90)


def config_for(tmp_path, keys):
    return make_config(tmp_path / "idc", keys.ca.trust_dir, key_bundle=keys.idc_bundle)


def test_command_words_are_checked_before_anything_is_queued(tmp_path, keys):
    config = config_for(tmp_path, keys)
    assert check_command(config, "STA1", "calibrate BHZ random 30").channel == "BHZ"
    full = check_command(config, "STA1", "calibrate STA1A.BHZ.00 sine 20 0.1 1")
    assert (full.site, full.channel, full.location) == ("STA1A", "BHZ", "00")
    assert check_command(config, "STA2", "status").site == "STA2A"
    refused = {
        ("NOPE", "status"): "not configured in this receiver",
        ("STA1", "reboot now"): "unknown command 'reboot'",
        ("STA1", "calibrate BHZ random"): "expected calibrate CHANNEL",
        ("STA1", "calibrate BHZ noise 30"): "signal 'noise' is not one of",
        ("STA1", "calibrate BHZ random 999"): "minutes must be 1..240",
        ("STA1", "calibrate BHZ sine 30 0.37"): "0.37",
        ("STA1", "calibrate STA2A.BHZ. random 30"): "site 'STA2A' is not one of station STA1's",
        ("STA1", "status\nstopcal X"): "one line of printable ASCII",
        ("STA1", "status é"): "one line of printable ASCII",
        ("STA1", "status " + "x" * 1100): "1 to 1024 characters",
    }
    for (station, text), why in refused.items():
        with pytest.raises(ValueError, match=None) as caught:
            check_command(config, station, text)
        assert why in str(caught.value), (text, caught.value)


class Answering:
    """The station's command handler: answers each request with its words, counting the runs."""

    def __init__(self) -> None:
        self.runs: list[str] = []

    def __call__(self, request: CommandRequestBody) -> str:
        words = request.command.decode()
        self.runs.append(words)
        return f'{{"ran":"{words}","channel":"{request.channel}"}}'


def start_station(run: Running, tmp_path, keys, handler: Answering):
    config = SessionConfig(station="STA1", endpoints=(run.receiver.connection_endpoint,),
                           backoff_base_ns=NS_PER_S // 10, backoff_cap_ns=NS_PER_S // 2)
    outbox = Outbox(tmp_path / "outbox.db", 10**8, first_sequence=3000)
    outbox.append("data", 0, lambda seq: signed(seq, keys))
    idc_keys = TrustStore.load(keys.ca.trust_dir, role=Role.IDC)
    sender = Sender(config, outbox, signer=keys.sta1, idc_keys=idc_keys, command_handler=handler,
                    poll_interval_s=0.02)
    thread = threading.Thread(target=sender.run, daemon=True)
    thread.start()
    return sender, thread, outbox


def wait_state(queue: CommandQueue, command_id: int, state: str, timeout_s: float = 20.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        command = queue.get(command_id)
        if command is not None and command.state == state:
            return command
        time.sleep(0.05)
    raise AssertionError(f"command {command_id} not {state}: {queue.get(command_id)}")


def test_a_queued_command_reaches_the_station_and_its_answer_is_stored(tmp_path, keys):
    config = config_for(tmp_path, keys)
    run = Running(config, keys.ca.trust_store(), time.time_ns)
    queue = CommandQueue(config.root)
    handler = Answering()
    try:
        text = "calibrate STA1A.BHZ.00 random 30"
        first = queue.submit("STA1", check_command(config, "STA1", text), text, time.time_ns())
        time.sleep(1.5)  # the receiver has looked at the queue: STA1 has no session, the request waits
        assert queue.get(first).state == QUEUED
        sender, thread, outbox = start_station(run, tmp_path, keys, handler)
        try:
            answered = wait_state(queue, first, ANSWERED)
            assert answered.response == '{"ran":"calibrate STA1A.BHZ.00 random 30","channel":"BHZ"}'
            assert answered.seq is not None and answered.sent_ns <= answered.answered_ns
            second = queue.submit("STA1", check_command(config, "STA1", "status"), "status", time.time_ns())
            assert wait_state(queue, second, ANSWERED).seq > answered.seq
            assert handler.runs == [text, "status"]  # each once
            assert run.on_loop(run.receiver.metrics.counters)[("STA1", "command_responses")] == 2
            assert sender.counters.idc_frames_refused == 0  # signed, tagged and fresh for the station
        finally:
            sender.stop()
            thread.join(10)
            outbox.close()
    finally:
        queue.close()
        run.stop()


def test_the_command_line_prints_the_answer_and_withdraws_what_it_cannot_send(tmp_path, keys):
    config = config_for(tmp_path, keys)
    toml = tmp_path / "idc.toml"
    toml.write_text(f"[idc]\nroot = '{config.root}'\ntrust_dir = '{keys.ca.trust_dir}'\n"
                    "connection_endpoint = 'tcp://127.0.0.1:*'\n"
                    "[stations.STA1]\nnetwork = 'XX'\nsites = ['STA1A']\n")

    def ims(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(ims_idc(*args, "--config", str(toml)), cwd=REPO, capture_output=True,
                              text=True, timeout=timeout)

    refused = ims("command", "STA9", "status")
    assert refused.returncode == 2 and "station 'STA9' is not configured" in refused.stderr
    assert not (config.root / "commands.sqlite").exists()  # nothing was queued
    run = Running(config, keys.ca.trust_store(), time.time_ns)
    handler = Answering()
    try:
        late = ims("command", "STA1", "status", "--send-within", "1.5")  # STA1 is not connected
        assert late.returncode == 3 and "withdrawn" in late.stderr, late.stderr
        sender, thread, outbox = start_station(run, tmp_path, keys, handler)
        try:
            done = ims("command", "STA1", "calibrate", "BHZ", "step", "20")
            assert done.returncode == 0, done.stderr
            assert done.stdout == '{"ran":"calibrate BHZ step 20","channel":"BHZ"}\n'
            time.sleep(1.5)  # the receiver has had the chance to send the withdrawn request: it did not
            assert handler.runs == ["calibrate BHZ step 20"]
        finally:
            sender.stop()
            thread.join(10)
            outbox.close()
        listing = ims("commands")
        assert listing.returncode == 0
        lines = listing.stdout.splitlines()
        assert [line.split()[2] for line in lines[1:]] == [WITHDRAWN, ANSWERED]
        one = ims("commands", "--id", "2")
        assert "calibrate BHZ step 20" in one.stdout and '"ran"' in one.stdout
    finally:
        run.stop()


def test_a_request_whose_frame_cannot_leave_is_queued_again(tmp_path, keys):
    queue = CommandQueue(tmp_path)
    try:
        command_id = queue.submit("STA1", check_command(config_for(tmp_path, keys), "STA1", "status"),
                                  "status", 1)
        assert queue.mark_sent(command_id, 77, 2)
        assert queue.get(command_id).state == SENT
        queue.unsent(command_id)
        assert (queue.get(command_id).state, queue.get(command_id).seq) == (QUEUED, None)
        assert queue.withdraw(command_id) and not queue.mark_sent(command_id, 78, 3)  # withdrawn: never sent
        assert queue.answer("STA1", b"status", b"late", 4) is None  # no sent request to match
    finally:
        queue.close()


class Gated(Answering):
    """Answers only once the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def __call__(self, request: CommandRequestBody) -> str:
        assert self.gate.wait(20)
        return super().__call__(request)


def test_a_response_the_locked_queue_refuses_is_stored_once_the_lock_is_gone(tmp_path, keys):
    import sqlite3

    config = config_for(tmp_path, keys)
    run = Running(config, keys.ca.trust_store(), time.time_ns)
    queue = CommandQueue(config.root)
    handler = Gated()
    sender, thread, outbox = start_station(run, tmp_path, keys, handler)
    try:
        command_id = queue.submit("STA1", check_command(config, "STA1", "status"), "status", time.time_ns())
        wait_state(queue, command_id, SENT)
        operator = sqlite3.connect(config.root / "commands.sqlite", isolation_level=None)
        operator.execute("BEGIN IMMEDIATE")  # an operator's command holding the database
        handler.gate.set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not run.on_loop(lambda: run.receiver._unstored_answers):
            time.sleep(0.05)
        assert run.on_loop(lambda: run.receiver._unstored_answers), "the response never met the lock"
        operator.execute("COMMIT")
        operator.close()
        assert wait_state(queue, command_id, ANSWERED).response == '{"ran":"status","channel":""}'
    finally:
        sender.stop()
        thread.join(10)
        outbox.close()
        queue.close()
        run.stop()
