"""Every SAMPLEPHD the receiver stores is analysed beside it, with the backgrounds its #Header references:
through the real link and receiver, with a background that comes late, bad input, a restart, an index
from before the analysis, and an analysis that never ends."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gci_link import ims2
from gci_link.link_session import SessionConfig
from gci_link.station_end.outbox import Outbox
from gci_link.station_end.sender import Sender
from hil.betagamma_phd import simulate_set
from idc.rn_analyser import JobFailed, RnAnalyser, WorkerProcess
from idc.rn_store import INDEX_NAME, PHD_COLUMNS, IndexedMessage, RnIndex, RnStore, StoredAnalysis
from idc.rn_worker import encode
from idc.stores import open_wal
from rn_analysis.dispatch import analyse_message
from station.ims import main as ims
from station.publisher import publish_message
from tests.idc.conftest import REPO, Running, make_config, process_running
from timeunits import NS_PER_S

pytestmark = pytest.mark.timeout(120)
WAIT_S = 60.0  # for the analysis process to start and work; a test that waits this long has failed


@pytest.fixture(scope="module")
def sets():
    """Two cycles of station STA1, on two detectors so that their measurement ids differ."""
    return [simulate_set(seed, detector=f"STA1_00{seed - 30}") for seed in (31, 32)]


def text(m: ims2.PhdMessage) -> bytes:
    return ims2.write(m).encode()


def roundtrip(m: ims2.PhdMessage) -> ims2.PhdMessage:
    parsed = ims2.parse(ims2.write(m))
    assert isinstance(parsed, ims2.PhdMessage)
    return parsed


def send(tmp_path: Path, run: Running, keys, messages: list[ims2.PhdMessage]) -> list[int]:
    """The messages over the GCI link as the station sends them; their frame sequence numbers."""
    outbox = Outbox(tmp_path / "outbox.sqlite", 1 << 30)
    try:
        seqs = [publish_message(outbox, f"ims2 {m.data_type}", m.transmit_ns, text(m), creator="STA1",
                                destination="0", signer=keys.sta1) for m in messages]
        sender = Sender(SessionConfig("STA1", (run.receiver.connection_endpoint,)), outbox, signer=keys.sta1,
                        poll_interval_s=0.02)
        assert sender.run_until_drained(30 * NS_PER_S)  # every frame acknowledged
    finally:
        outbox.close()
    return seqs


def analyses(root: Path) -> dict[int, tuple[IndexedMessage, StoredAnalysis | None]]:
    """Every SAMPLEPHD in the index by sequence number, with its current analysis."""
    index = RnIndex(root)
    try:
        return {m.seq: (m, index.analysis(m)) for m in index.find(data_type="SAMPLEPHD")}
    finally:
        index.close()


def wait_until(root: Path, done, what: str) -> dict[int, tuple[IndexedMessage, StoredAnalysis | None]]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = analyses(root)
        if done(found):
            return found
        time.sleep(0.05)
    raise AssertionError(f"no {what} within {WAIT_S} s: {found}")


def test_samples_are_analysed_with_their_backgrounds_and_bad_ones_get_an_error(tmp_path, keys, sets,
                                                                              capsysbinary):
    first, second = sets
    dead = dataclasses.replace(second.sample, msg_id="ZERO-LIVE", live_time_s=0.0, gasbk_id=None,
                               sample_id="STA1_002-2025/12/09-00:00:00.0")  # waits for no background
    root = tmp_path / "idc" / "ims2"
    run = Running(make_config(tmp_path / "idc", keys.ca.trust_dir), keys.ca.trust_store(), time.time_ns)
    try:
        # the first cycle complete; the second sample before its gas background; a sample with no live time
        seqs = send(tmp_path, run, keys, [first.detbk, first.gasbk, first.sample, second.detbk,
                                          second.sample, dead])
        found = wait_until(root, lambda f: len(f) == 3 and all(a for _, a in f.values()), "three analyses")
        _, whole = found[seqs[2]]
        assert whole.error is None and (whole.gasbk_seq, whole.detbk_seq) == (seqs[1], seqs[0])
        assert not whole.gasbk_missing and not whole.detbk_missing
        expected = analyse_message(roundtrip(first.sample), gasbk=roundtrip(first.gasbk),
                                   detbk=roundtrip(first.detbk)).to_json()
        assert whole.result is not None
        assert whole.result["nuclides"] == expected["nuclides"] and whole.result["peaks"] == expected["peaks"]
        flags = {f["name"]: f["passed"] for f in whole.result["flags"]}
        assert flags["gas_background"] and flags["detector_background"] and flags["backgrounds_received"]
        assert whole.result["flags"][:-1] == expected["flags"]

        _, early = found[seqs[4]]  # its gas background has not come yet
        assert early.error is None and early.gasbk_missing and early.gasbk_seq is None
        assert early.detbk_seq == seqs[3] and not early.detbk_missing
        assert early.result is not None
        flags = {f["name"]: f for f in early.result["flags"]}
        assert not flags["gas_background"]["passed"] and not flags["backgrounds_received"]["passed"]
        assert second.sample.gasbk_id in flags["backgrounds_received"]["detail"]

        _, bad = found[seqs[5]]
        assert bad.result is None and bad.error is not None and "live time 0.0 s" in bad.error

        late = send(tmp_path, run, keys, [second.gasbk])  # the receiver carried on; analysed again
        found = wait_until(root, lambda f: f[seqs[4]][1] is not None and not f[seqs[4]][1].gasbk_missing,
                           "the analysis again with the late gas background")
        _, again = found[seqs[4]]
        assert again.gasbk_seq == late[0] and again.result is not None
        expected = analyse_message(roundtrip(second.sample), gasbk=roundtrip(second.gasbk),
                                   detbk=roundtrip(second.detbk)).to_json()
        assert again.result["nuclides"] == expected["nuclides"]
        assert found[seqs[2]][1] == whole  # the others were left alone
    finally:
        run.stop()
    check_the_commands(tmp_path, capsysbinary, {seqs[2]: "XE-133", seqs[4]: "XE-133", seqs[5]: "error: "},
                       found)


def check_the_commands(tmp_path, capsysbinary, expected, found) -> None:
    """``ims idc rn list`` says per sample what its analysis found; ``show`` puts the report after the
    message, ``--json`` gives the stored analysis."""
    idc_toml = tmp_path / "idc.toml"
    idc_toml.write_text("[idc]\nroot = 'idc'\ntrust_dir = 'unused'\nconnection_endpoint = 'tcp://127.0.0.1:1'\n")
    capsysbinary.readouterr()
    assert ims(["idc", "rn", "list", "--config", str(idc_toml)]) == 0
    rows = {int(line.split()[2]): line for line in capsysbinary.readouterr().out.decode().splitlines()[1:]}
    for seq, word in expected.items():
        assert word in rows[seq].split("FULL", 1)[1]
    assert not rows[min(rows)].rstrip().endswith("pending")  # a DETBKPHD: no analysis column
    assert ims(["idc", "rn", "list", "--type", "samplephd", "--json", "--config", str(idc_toml)]) == 0
    listed = {m["seq"]: m["analysis"] for m in map(json.loads, capsysbinary.readouterr().out.splitlines())}
    assert listed == {seq: dataclasses.asdict(analysis) for seq, (_, analysis) in found.items()}
    for seq, (message, analysis) in found.items():
        assert ims(["idc", "rn", "show", str(message.id), "--config", str(idc_toml)]) == 0
        out = capsysbinary.readouterr().out
        stored = RnIndex(tmp_path / "idc" / "ims2")
        assert out.startswith(stored.text(message))
        stored.close()
        report = out.decode().rsplit("STOP\n", 1)[1]
        assert f"{message.station} seq {seq}" in report
        if analysis.error is None:
            assert "XE-133" in report and "backgrounds_received" in report
        else:
            assert f"FAILED: {analysis.error}" in report
        assert ims(["idc", "rn", "show", str(message.id), "--json", "--config", str(idc_toml)]) == 0
        shown = json.loads(capsysbinary.readouterr().out)
        assert shown["seq"] == seq and shown["analysis"]["result"] == analysis.result


def test_a_restart_analyses_what_was_stored_without_analysis(tmp_path, keys, sets):
    root = tmp_path / "idc" / "ims2"
    config = make_config(tmp_path / "idc", keys.ca.trust_dir, rn_analysis=False)
    run = Running(config, keys.ca.trust_store(), time.time_ns)
    try:
        seqs = send(tmp_path, run, keys, [sets[0].detbk, sets[0].gasbk, sets[0].sample])
    finally:
        run.stop()
    assert [a for _, a in analyses(root).values()] == [None]  # stored, acknowledged, not analysed
    run = Running(make_config(tmp_path / "idc", keys.ca.trust_dir), keys.ca.trust_store(), time.time_ns)
    try:
        found = wait_until(root, lambda f: f[seqs[2]][1] is not None, "the analysis after the restart")
    finally:
        run.stop()
    done = found[seqs[2]][1]
    assert done is not None and done.error is None and (done.gasbk_seq, done.detbk_seq) == (seqs[1], seqs[0])


def test_an_index_from_before_the_analysis_is_migrated_and_its_samples_analysed(tmp_path, sets):
    store = RnStore(tmp_path)
    for seq, m in enumerate([sets[0].detbk, sets[0].gasbk, sets[0].sample, sets[1].sample], start=1):
        store.write("STA1", seq, sets[0].sample.transmit_ns, text(m))
    store.close()
    index = RnIndex(tmp_path)
    (tmp_path / index.find(data_type="SAMPLEPHD")[1].path).write_bytes(b"changed on disk")
    index.close()
    db = sqlite3.connect(tmp_path / INDEX_NAME)  # back to the schema of the first index files
    db.executescript("DROP INDEX messages_measurement; DROP INDEX messages_type; DROP TABLE analyses;"
                     + "".join(f"ALTER TABLE messages DROP COLUMN {c};" for c in PHD_COLUMNS))
    db.close()
    old = RnIndex(tmp_path)  # the reader copes with an index the receiver has not migrated yet
    sample = old.find(data_type="SAMPLEPHD")[0]
    assert sample.sample_id is None and old.analysis(sample) is None
    old.close()
    RnStore(tmp_path).close()  # the receiver's start migrates it
    analyser = RnAnalyser(tmp_path, time.time_ns, timeout_s=WAIT_S, memory_bytes=2 << 30)
    db = open_wal(tmp_path / INDEX_NAME, "NORMAL")
    try:
        while analyser.step(db):  # the ids of the old rows from their files, then the analysis
            pass
    finally:
        db.close()
        analyser.close()
    found = analyses(tmp_path)
    message, done = found[3]
    assert (message.system_type, message.sample_id, message.gasbk_id) == ("B", sets[0].sample.sample_id,
                                                                           sets[0].sample.gasbk_id)
    assert done is not None and done.error is None and (done.gasbk_seq, done.detbk_seq) == (2, 1)
    message, failed = found[4]  # its ids could not be read: marked, and its analysis says why
    assert message.system_type == "-" and failed is not None and "SHA-256 mismatch" in str(failed.error)


def test_a_job_that_never_ends_or_eats_memory_is_stopped_and_the_next_is_done(tmp_path):
    never = tmp_path / "fifo"
    os.mkfifo(never)  # nobody writes: reading it never ends
    huge = tmp_path / "huge.msg"
    with huge.open("wb") as f:
        f.truncate(2 << 30)  # sparse: reading it whole needs 2 GiB
    worker = WorkerProcess(1 << 30)
    try:
        with pytest.raises(JobFailed, match="longer than 0.5 s"):
            worker.ask({"describe": str(never), "sha256": ""}, timeout_s=0.5)
        missing = worker.ask({"describe": str(tmp_path / "gone.msg"), "sha256": ""}, timeout_s=WAIT_S)
        assert "gone.msg" in missing["error"]  # a fresh process answered
        eaten = worker.ask({"describe": str(huge), "sha256": ""}, timeout_s=WAIT_S)
        assert eaten == {"error": "the analysis needed more than its 1024 MiB of memory"}
        assert "gone.msg" in worker.ask({"describe": str(tmp_path / "gone.msg"), "sha256": ""},
                                        timeout_s=WAIT_S)["error"]  # and it goes on
    finally:
        worker.close()


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_the_analysis_process_does_not_outlive_a_killed_receiver(tmp_path):
    never = tmp_path / "fifo"
    os.mkfifo(never)  # the job reads it, and nothing is ever written
    receiver = subprocess.Popen([sys.executable, "-c", (
        "from idc.rn_analyser import WorkerProcess\n"
        f"WorkerProcess(2 << 30).ask({{'describe': {str(never)!r}, 'sha256': ''}}, 3600)\n")],
        env=os.environ | {"PYTHONPATH": str(REPO)})
    writer = None
    try:
        deadline = time.monotonic() + WAIT_S
        while writer is None and time.monotonic() < deadline:  # until the job has the fifo open
            try:
                writer = os.open(never, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: no reader yet
                time.sleep(0.02)
        (analysis,) = children(receiver.pid)
        receiver.kill()
        receiver.wait()
        while process_running(analysis) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not process_running(analysis)  # it would wait for the fifo forever
    finally:
        receiver.kill()
        receiver.wait()
        if writer is not None:
            os.close(writer)


def test_an_analysis_that_overruns_is_recorded_as_the_samples_error(tmp_path, sets):
    store = RnStore(tmp_path)
    stuck = store.write("STA1", 1, sets[0].sample.transmit_ns, text(sets[0].sample))
    store.close()
    stuck.unlink()
    os.mkfifo(stuck)  # reading the sample never ends
    analyser = RnAnalyser(tmp_path, time.time_ns, timeout_s=0.5, memory_bytes=2 << 30)
    db = open_wal(tmp_path / INDEX_NAME, "NORMAL")
    try:
        while analyser.step(db):
            pass
    finally:
        db.close()
        analyser.close()
    ((_, overran),) = analyses(tmp_path).values()
    assert overran is not None and overran.result is None
    assert overran.error == "the analysis took longer than 0.5 s and was stopped"


def test_a_result_with_a_number_that_is_not_finite_is_an_error_not_a_value():
    assert json.loads(encode({"result": {"x": 1.5}})) == {"result": {"x": 1.5}}
    assert json.loads(encode({"result": {"x": float("nan")}}))["error"].endswith("not a finite number")
