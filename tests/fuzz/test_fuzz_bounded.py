"""A bounded run of every fuzz harness in ``make test``: a fixed mutated corpus through the very checks that
``make fuzz`` runs under atheris (atheris's libFuzzer ends the process when it is done, so it cannot run
inside pytest; one short real atheris run is below, when atheris is installed)."""

from __future__ import annotations

import importlib
import io
import logging
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from fuzz import cd11_frame
from fuzz.mutate import mutants
from fuzz.targets import TARGETS

REPO = Path(__file__).resolve().parents[2]
INPUTS = {"cd11_frame": 1500, "brp_stream": 1000, "gcf_block": 4000, "station_config": 1500,
          "idc_config": 3000, "hil_scenario": 800, "idc_receiver": 300, "ims2_message": 6000,
          "seedlink_session": 2000, "dp5_stream": 4000, "mca_lines": 6000,
          "guralp_text": 2000}
TOML_TARGETS = {"station_config", "idc_config", "hil_scenario"}


@pytest.fixture(autouse=True)
def _quiet():
    logging.disable(logging.CRITICAL)  # the parsers log every bad input
    yield
    logging.disable(logging.NOTSET)


def _check_all(module, inputs) -> int:
    count = 0
    for data in inputs:
        try:
            module.check(data)
        except Exception as exc:
            raise AssertionError(f"{module.__name__} invariant broken by input {data!r}") from exc
        count += 1
    return count


def test_the_shares_sum_to_one() -> None:
    assert sum(share for share, _ in TARGETS.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("target", list(TARGETS))
def test_bounded_fuzz(target: str) -> None:
    assert set(INPUTS) == set(TARGETS)
    module = importlib.import_module(f"fuzz.{target}")
    seeds = module.seeds()
    assert seeds
    checked = _check_all(module, seeds)
    checked += _check_all(module, mutants(seeds, INPUTS[target], seed=zlib.crc32(target.encode()),
                                          dictionary=module.DICTIONARY, toml=target in TOML_TARGETS))
    assert checked == len(seeds) + INPUTS[target]


def test_a_parser_bug_is_not_disguised(monkeypatch) -> None:
    """The checks can fail: an exception other than Cd11FormatError from the decoder reaches the fuzzer."""
    frame = cd11_frame.seeds()[0]
    cd11_frame.check(frame)

    def broken(*args, **kwargs):
        raise IndexError("planted parser bug")

    monkeypatch.setattr(cd11_frame, "decode_frame", broken)
    with pytest.raises(IndexError, match="planted"):
        cd11_frame.check(frame)


def test_an_ims2_parser_bug_is_not_disguised(monkeypatch) -> None:
    """The IMS 2.0 checks can fail: an exception other than Ims2FormatError from the parser, a number scan
    that reads one count wrong, and an error naming a line the text does not have all reach the fuzzer."""
    from fuzz import ims2_message
    from gci_link import ims2
    from gci_link.ims2 import Ims2FormatError, intcodec

    seed = ims2_message.seeds()[-1]
    ims2_message.check(seed)
    with monkeypatch.context() as patched:
        patched.setattr(ims2, "parse", lambda text: [][0])
        with pytest.raises(IndexError):
            ims2_message.check(seed)
    with monkeypatch.context() as patched:
        def beyond_the_text(text):
            raise Ims2FormatError("envelope", text.count("\n") + 2, "planted")
        patched.setattr(ims2, "parse", beyond_the_text)
        with pytest.raises(AssertionError, match="line outside"):
            ims2_message.check(seed)
    scan = intcodec.scan_ints

    def one_off(body, block, first_line):
        values, line_first = scan(body, block, first_line)
        values = values.copy()
        values[-1:] += 1  # the last number of every body read one too high
        return values, line_first

    monkeypatch.setattr(ims2_message, "scan_ints", one_off)
    with pytest.raises(AssertionError, match="plain reading"):
        for data in ims2_message.seeds():
            ims2_message.check(data)


def test_wrong_samples_are_caught_by_the_reference_decoder(monkeypatch) -> None:
    from gci_link.cd11 import canadian

    frames = [f for f in cd11_frame.seeds() if b"\x00\x00\x00\x05" == f[:4]]  # data frames
    decode_stream = canadian.decode_stream

    def off_by_one(data, nsamp, *, offset=0):
        decoded = decode_stream(data, nsamp, offset=offset)
        samples = decoded.samples.copy()
        samples[-1:] += np.int32(1)
        return canadian.Decoded(samples, decoded.v0, decoded.bytes_used)

    monkeypatch.setattr(canadian, "decode_stream", off_by_one)
    with pytest.raises(AssertionError, match="reference"):
        for frame in frames:
            cd11_frame.check(frame)


def test_gcf_file_blocks_agree_with_obspy() -> None:
    """A real peer as the differential check: mutated blocks in file form, read by ObsPy's GCF reader.

    Known, deliberate differences: ObsPy refuses data blocks of 0 samples (we take them), reads the
    15-bit day count as signed (blocks after 2034-05-01 land in 1900-1989), and keeps start times as
    floats (sub-microsecond rounding), and raises IndexError on stream IDs shorter than 2 characters; we
    refuse blocks whose samples do not fill whole seconds, which it takes. Everything both accept must
    agree sample for sample."""
    import warnings

    import obspy

    from digitizer.gcf import GcfFormatError, decode_block
    from fuzz import gcf_block

    compared = 0
    seeds = gcf_block.seeds()
    for data in mutants(seeds, 2000, seed=5, dictionary=gcf_block.DICTIONARY):
        block = data[:1024].ljust(1024, b"\0")
        try:
            ours = decode_block(block)
        except GcfFormatError:
            continue
        if ours.is_status or int.from_bytes(block[8:12], "big") >> 31:  # day count >= 2**14
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                trace = obspy.read(io.BytesIO(block), format="GCF")[0]
            except OSError:
                assert ours.nsamp == 0, f"ObsPy refuses a block we decode: {block[:16].hex()}"
                continue
            except IndexError:  # ObsPy's own bug: a stream ID shorter than 2 characters
                assert len(ours.stream_id) < 2
                continue
        assert np.array_equal(trace.data, ours.samples), block[:16].hex()
        assert trace.stats.sampling_rate == ours.sample_rate
        assert abs(trace.stats.starttime.ns - ours.start_ns) <= 1000
        compared += 1
    assert compared >= 50, f"only {compared} blocks compared"


def test_atheris_runs_a_harness(tmp_path: Path) -> None:
    """``make fuzz`` itself (the atheris runner, two targets at once), on a few hundred inputs of two cheap
    targets."""
    pytest.importorskip("atheris")
    done = subprocess.run([sys.executable, "-m", "fuzz", "--total", "400", "--jobs", "2", "--out",
                           str(tmp_path), "gcf_block", "idc_config"],
                          cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = [line.split() for line in done.stdout.split("== fuzzing summary")[1].splitlines() if line]
    assert [row[0] for row in summary] == ["gcf_block", "idc_config", "total"]
    inputs = [int(row[1].replace(",", "")) for row in summary]
    assert inputs[2] == inputs[0] + inputs[1] >= 400
    assert summary[2][-2:] == ["0", "crashes"]


def test_the_receiver_harness_catches_a_door_the_archive_disagrees_with(monkeypatch) -> None:
    """With the admission rules switched off, frames the archive refuses are accepted: the harness's
    split-and-pack check fails (ValueError from the SDS archive), it does not pass them quietly."""
    from fuzz import idc_receiver
    from idc import verify

    monkeypatch.setattr(verify, "data_problem", lambda *_: None)
    with pytest.raises(ValueError, match="ASCII letters or digits|sps is outside|Steim-2"):
        for seed in idc_receiver.seeds():
            idc_receiver.check(seed)


def test_the_receiver_harness_catches_a_strangers_name_as_a_label(monkeypatch) -> None:
    from fuzz import idc_receiver
    from idc import verify

    monkeypatch.setattr(verify, "ANONYMOUS", "NOPE")  # as if the claimed name became the label
    with pytest.raises(AssertionError, match="label 'NOPE' from input"):
        for seed in idc_receiver.seeds():
            idc_receiver.check(seed)


def test_the_receiver_harness_catches_an_acknack_for_a_failed_commit(monkeypatch) -> None:
    """A core that took a failed commit for a durable one would acknowledge frames the store lost."""
    from fuzz import idc_receiver
    from idc.protocol import ReceiverProtocol

    script = idc_receiver._Script().send(0).send(5).settle(commit_succeeds=False)  # STA1: connect, frame 1
    idc_receiver.check(bytes(script.out))
    settled = ReceiverProtocol.settled

    def durable_anyway(self, durable, failed):
        return settled(self, [*durable, *(f.batch for f in failed)], [])

    monkeypatch.setattr(ReceiverProtocol, "settled", durable_anyway)
    with pytest.raises(AssertionError, match="acknack covers"):
        idc_receiver.check(bytes(script.out))


def test_the_receiver_harness_catches_a_reload_that_keeps_what_it_should_end(monkeypatch) -> None:
    """A reload that kept a removed station's session, or kept checking with the old keys, is caught."""
    from fuzz import idc_receiver
    from gci_link.keys import SignatureError
    from idc.checker import FrameChecker
    from idc.protocol import ReceiverProtocol

    seed = idc_receiver.seeds()[-1]  # the reload seed
    idc_receiver.check(seed)
    with monkeypatch.context() as patched:
        patched.setattr(ReceiverProtocol, "_no_longer_allowed", lambda *_: None)
        with pytest.raises(AssertionError, match="a removed station's session lives on"):
            idc_receiver.check(seed)
    reconfigure = FrameChecker.reconfigure
    monkeypatch.setattr(FrameChecker, "reconfigure", lambda self, trust, stations: reconfigure(
        self, self.trust, stations))  # the new station list, but the old keys
    with pytest.raises(SignatureError, match="revoked"):
        idc_receiver.check(seed)


def test_the_seedlink_harness_catches_a_selection_that_matches_wrongly(monkeypatch) -> None:
    """Station patterns matched case-sensitively (the protocol's are not): the plain reading disagrees."""
    import re

    from fuzz import seedlink_session
    from idc.seedlink import selection

    data = b"\x00\x00STATION sta1 xx\r\nDATA\r\nEND\r\n"
    seedlink_session.check(data)
    monkeypatch.setattr(selection, "_glob", lambda pattern: re.compile(re.escape(pattern).replace(
        r"\*", ".*").replace(r"\?", ".")))
    with pytest.raises(AssertionError, match="station 'xx_sta1' on XX_STA1"):
        seedlink_session.check(data)


def test_the_dp5_harness_catches_a_status_field_read_wrongly(monkeypatch) -> None:
    """A status whose general-purpose count is read one too high no longer encodes back to itself."""
    import dataclasses

    from digitizer import dp5
    from fuzz import dp5_stream

    seed = bytes((4, 3)) + dp5.encode_status_response(dp5_stream._status())
    dp5_stream.check(seed)
    decode_status = dp5.decode_status
    monkeypatch.setattr(dp5, "decode_status", lambda raw: dataclasses.replace(
        decode_status(raw), gp_count=decode_status(raw).gp_count + 1))
    with pytest.raises(AssertionError, match="status changed in a round trip"):
        dp5_stream.check(seed)


def test_the_mca_harness_catches_a_chunk_read_short(monkeypatch) -> None:
    """A chunk reader that drops the last cell: the chunk no longer reads back to what was written."""
    import dataclasses

    from digitizer import mca
    from fuzz import mca_lines

    seeds = [s for s in mca_lines.seeds() if b"CRC32=" in s]
    for seed in seeds:
        mca_lines.check(seed)
    parse_chunk = mca.parse_chunk
    monkeypatch.setattr(mca, "parse_chunk", lambda payload: dataclasses.replace(
        parse_chunk(payload), data=parse_chunk(payload).data[:-1]))
    with pytest.raises(AssertionError, match="cells do not read back"):
        for seed in seeds:
            mca_lines.check(seed)


def test_the_guralp_harness_catches_a_slow_clock_misread_and_a_reply_cut_short(monkeypatch) -> None:
    """A clock line whose direction is not read (Slow lines no longer recognised) disagrees with what the
    simulated digitizer wrote; a console reply missing its last character disagrees with a plain reading."""
    import dataclasses
    import re

    from digitizer import gcf_status
    from digitizer.guralp_console import Console, ConsoleReply
    from fuzz import guralp_text
    from fuzz.draw import Draw

    slow = next(data for data in guralp_text.seeds()
                if data[0] == 1 and " Slow" in guralp_text._simulated_text(Draw(data[1:]))[0])
    exchanges = [data for data in guralp_text.seeds() if data[0] == 3]
    for data in [slow, *exchanges]:
        guralp_text.check(data)
    with monkeypatch.context() as patched:
        fast_only = gcf_status._CLOCK.pattern.replace("Fast|Slow", "Fast")
        patched.setattr(gcf_status, "_CLOCK", re.compile(fast_only, re.I))
        with pytest.raises(AssertionError, match="lock read wrong"):
            guralp_text.check(slow)
    block_mode = Console.block_mode
    monkeypatch.setattr(Console, "block_mode", lambda self: [dataclasses.replace(o, text=o.text[:-1])
                                                              if isinstance(o, ConsoleReply) else o
                                                              for o in block_mode(self)])
    with pytest.raises(AssertionError, match="plain reading"):
        for data in exchanges:
            guralp_text.check(data)
