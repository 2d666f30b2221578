"""Every bug the fuzz harnesses found, with its input as a literal: the input now gets a clear error (or the
right result) and passes every invariant of its harness. docs/reliability.md lists them."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from digitizer import brp, dp5, mca
from digitizer.brp import BlockReceived, BrpReceiver, GapGivenUp, HeldBlockReplaced, frame_block
from digitizer.gcf_status import parse_status_text
from digitizer.guralp_console import MAX_REPLY_TEXT, Console, ConsoleFailed, ConsoleReply, ConsoleRequest
from fuzz import (
    brp_stream,
    cd11_frame,
    dp5_stream,
    guralp_text,
    hil_scenario,
    idc_config,
    ims2_message,
    mca_lines,
    seedlink_session,
    station_config,
)
from gci_link import ims2
from gci_link.cd11 import Cd11FormatError, decode_frame
from hil.scenario import ScenarioError
from hil.scenario import load as load_scenario
from idc.config import IdcConfigError
from idc.config import load_config as load_idc_config
from idc.seedlink.protocol import Limits, Phase, Session
from idc.seedlink.selection import selector_v4, station_v4
from idc.seedlink.times import parse_time as parse_seedlink_time
from station.config import ConfigError, parse_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _quiet():
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


# ---- CD-1.1 ------------------------------------------------------------------------------------------

# connection response whose 1-byte frame authentication value is padded with 7f 00 00 (decoded, then
# re-encoded with NUL padding: not the bytes received)
AUTH_PADDING = bytes.fromhex(
    "0000000200000044494443000000000053544131000000000000000000000000000000000001000149444300000000004944"
    "430054435000000000000000000000000000000000070000000101" "7f0000" "d5b45fae048981db"
)
# command request whose two reserved bytes after the location are 00 01 (silently dropped)
RESERVED = bytes.fromhex(
    "0000000800000054494443000000000053544131000000000000000000000000000000005354413100000000535441310042"
    "485a0000" "0001" "313937303030312030303a30303a30302e3030300000000343414c00000000000000000"
    "06b34d473f08a5948"
)
# data frame whose channel calib (frame offset 104) is NaN 7fc00000: the decoded frame was not equal to itself
NAN_CALIB = bytes.fromhex(
    "00000005000000c0535441310000000030000000000000000000000000000001000000000000000100002710313937303030"
    "312030303a30303a30302e3030300000000a535441310042485a000000000000006c0000006800000001535441310042485a"
    "000073347fc000003f800000313937303030312030303a30303a30302e303030000003e80000000000000020010000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "9ea9c3c4e8030f3d"
)
# transformation 2 (Canadian after signing) in data format s2 with a sample of 40000: no channel signature
# scope exists (it holds the samples as s2), and the IDC verifier raised ValueError on it
UNSIGNABLE = bytes.fromhex(
    "00000005000000d0535441310000000030000000000000000000000000000001000000000000000100002710313937303030"
    "312030303a30303a30302e3030300000000a535441310042485a000000000000007c0000007800020001535441310042485a"
    "000073323f8000003f800000313937303030312030303a30303a30302e30303000000fa00000000400000020010000000000"
    "00000000000000000000000000000000000000000000000000000000000f700000009c40d8f009c400000000000000000000"
    "000000000000000000000000000000000402190eb4788e5a"
)


@pytest.mark.parametrize(("raw", "field"), [
    (AUTH_PADDING, "frame authentication value padding"),
    (RESERVED, "reserved"),
    (NAN_CALIB, "channel 0 calib"),
    (UNSIGNABLE, "channel 0 data format"),
], ids=["padding", "reserved", "nan-calib", "unsignable"])
def test_cd11_frames_found_by_fuzzing_are_refused_naming_the_field(raw: bytes, field: str) -> None:
    with pytest.raises(Cd11FormatError) as info:
        decode_frame(raw)
    assert info.value.field == field
    cd11_frame.check(raw)


# ---- IMS 2.0 -------------------------------------------------------------------------------------------

ALERT = (
    "BEGIN IMS2.0\nMSG_TYPE DATA\nMSG_ID 20240301005211000 ZZP01\nDATA_TYPE ALERT_FLOW\n#Header 3\n"
    "ZZP01 ZZP01_001 P\n2024/03/01 01:00:31.0\n#Alert\n2024/03/01 01:00:30.0 FLOW LOW RAISED\n"
    "SAMPLER 412.5 500.0 M3/H\nAir sampler flow under threshold\nSTOP\n"
)


def _ims2_seed(*holding: str) -> str:
    """The first of the harness's seeds whose text holds every string of ``holding``."""
    return next(t for s in ims2_message.seeds() if all(h in (t := s.decode()) for h in holding))


def test_ims2_a_year_before_1000_is_written_with_four_digits() -> None:
    """Read as 0024, written as ``24/03/01`` (strftime's %Y), which the reader then refused."""
    text = ALERT.replace("2024/03/01 01:00:31.0", "0024/03/01 01:00:31.0")
    written = ims2.write(ims2.parse(text))
    assert "\n0024/03/01 01:00:31.0\n" in written
    assert ims2.parse(written).transmit_ns == ims2.parse(text).transmit_ns
    ims2_message.check(text.encode())


def test_ims2_an_envelope_line_ending_in_cr_reads_back_the_same() -> None:
    """"DATA\\r \\r" was kept as "DATA\\r", written as "DATA\\r\\n" and read back as "DATA" (found by atheris
    during make fuzz): blanks and CRs at the end of an envelope line are not part of it."""
    text = ALERT.replace("MSG_TYPE DATA\n", "MSG_TYPE DATA\nDATA\r \r\n", 1)
    message = ims2.parse(text)
    assert message.extra_envelope == ("DATA",)
    assert ims2.parse(ims2.write(message)).extra_envelope == ("DATA",)
    ims2_message.check(text.encode())


@pytest.mark.parametrize(("old", "new", "says"), [
    # read as text holding a CR, which write refuses (a comment and a certificate kept verbatim alike)
    ("under threshold", "under\rthreshold", "#Alert, line 11: a carriage return inside a line of text"),
    ("#Alert\n", "#Comment\nfine\nnot\r fine\n#Alert\n", "#Comment, line 10: a carriage return"),
    # read as inf, which write refuses
    ("412.5", "1e999", "#Alert, line 10: number '1e999' for value is out of range"),
], ids=["cr-in-text", "cr-in-comment", "inf"])
def test_ims2_what_the_writer_refuses_is_refused_when_read(old: str, new: str, says: str) -> None:
    text = ALERT.replace(old, new, 1)
    with pytest.raises(ims2.Ims2FormatError, match=says):
        ims2.parse(text)
    ims2_message.check(text.encode())


def test_ims2_a_verbatim_certificate_with_a_cr_is_refused() -> None:
    phd = _ims2_seed("DATA_TYPE QCPHD")  # whose certificate follows the layout
    assert "DATA_TYPE QCPHD" in phd and "#Certificate\n" in phd
    text = phd.replace("#Certificate\n", "#Certificate\nXe-133\r1\n", 1)
    with pytest.raises(ims2.Ims2FormatError, match="#Certificate, line .*: a carriage return"):
        ims2.parse(text)
    ims2_message.check(text.encode())


@pytest.mark.parametrize("header", ["#CErtificate", "#Certificate    FULL"])
def test_ims2_a_verbatim_certificate_comes_back_under_its_canonical_header(header: str) -> None:
    """Kept as RawBlock('#CErtificate', ...) but written as '#Certificate': the round trip changed it."""
    phd = _ims2_seed("DATA_TYPE QCPHD")
    text = phd.replace("#Certificate\n", f"{header}\nXe-133\n", 1)
    message = ims2.parse(text)
    assert message.certificate == ims2.RawBlock("#Certificate", ("Xe-133", *message.certificate.lines[1:]))
    assert ims2.parse(ims2.write(message)).certificate == message.certificate
    ims2_message.check(text.encode())


def test_ims2_a_size_line_past_int64_is_a_truncated_spectrum() -> None:
    """'99999999999999999999 720': OverflowError from the compiled row kernel, which compares as int64."""
    phd = _ims2_seed("ZZP01 ZZP01_001 P", "DATA_TYPE SAMPLEPHD")  # a particulate SAMPLEPHD of 32 channels
    text = phd.replace("#g_Spectrum\n32 ", "#g_Spectrum\n99999999999999999999 ", 1)
    assert text != phd
    with pytest.raises(ims2.Ims2FormatError, match="#g_Spectrum, line .*: truncated spectrum: 32 channels"):
        ims2.parse(text)
    ims2_message.check(text.encode())


def test_ims2_a_certificate_of_one_blank_line_comes_back_the_same() -> None:
    """Kept verbatim as ('',), written as no line at all, read back as ()."""
    phd = _ims2_seed("DATA_TYPE QCPHD")
    text = phd[: phd.index("#Certificate\n")] + "#Certificate\n\nSTOP\n"
    message = ims2.parse(text)
    assert message.certificate == ims2.RawBlock("#Certificate", ("",))
    assert ims2.parse(ims2.write(message)).certificate == message.certificate
    ims2_message.check(text.encode())


@pytest.mark.parametrize("line", ["\f#Cali 0", "\r\r#NIMBIN", "\x85STOP"])
def test_ims2_a_line_the_lexer_does_not_take_for_a_mark_is_written_back(line: str) -> None:
    """Only blanks and tabs may precede a mark; write used str.strip (form feed, CR, U+0085 too) and refused
    to write back verbatim lines and envelope lines that parse had read as plain text."""
    for text in (ALERT.replace("#Alert\n", f"#Extra\n{line}\n#Alert\n", 1),
                 ALERT.replace("DATA_TYPE", f"{line}\nDATA_TYPE", 1)):
        message = ims2.parse(text)
        assert ims2.write(ims2.parse(ims2.write(message))) == ims2.write(message)
        ims2_message.check(text.encode("latin-1"))


# ---- BRP -----------------------------------------------------------------------------------------------

BLOCK = bytes.fromhex("00393a2d3a5b4f1e35e7c0a00104010100000000fffffffd00000003")  # any 16-1024 bytes


def test_brp_blocks_held_below_the_give_up_line_are_delivered_not_kept_forever() -> None:
    """Depth 6: blocks 2 and 3 held while 1 is missing, then block 9 arrives. Blocks 2 and 3 were neither
    delivered nor reported lost, stayed held forever, and later moved the expected sequence backwards."""
    stream = b"".join(frame_block(seq, BLOCK) for seq in (0, 2, 3, 9))
    rx = BrpReceiver(depth=6)
    events = rx.feed(stream, 0)
    assert [(type(e).__name__, getattr(e, "seq", getattr(e, "sequences", None))) for e in events
            if isinstance(e, BlockReceived | GapGivenUp)] == [
        ("BlockReceived", 0), ("GapGivenUp", (1,)), ("BlockReceived", 2), ("BlockReceived", 3),
    ]
    assert rx.held_count == 1 and rx.expected_seq == 4  # 4-8 may still be resent; 9 waits for them
    brp_stream.check(bytes([5, 7]) + stream)  # header: depth 6, some read cuts


def test_the_brp_harness_knows_every_receiver_event() -> None:
    """The harness listed the receiver's events by hand and missed one added later (a held block replaced by
    a different one under its sequence number): atheris took each such input for a crash, 20 in 40 s. It now
    reads them from ``digitizer.brp.Event``."""
    other = BLOCK[:-1] + bytes([BLOCK[-1] ^ 1])
    stream = b"".join(frame_block(seq, block) for seq, block in ((0, BLOCK), (2, BLOCK), (2, other)))
    assert HeldBlockReplaced(2) in BrpReceiver(depth=6).feed(stream, 0)
    brp_stream.check(bytes([5, 7]) + stream)


# ---- configuration files --------------------------------------------------------------------------------

EXAMPLE_STATION = (REPO / "station" / "example_station.toml").read_text()


@pytest.mark.parametrize(("old", "new", "key"), [
    ("calib = 0.0159", "calib = inf", "channels[0].calib"),  # accepted
    ("sample_rate = 40.0", "sample_rate = nan", "channels[0].sample_rate"),  # accepted
    ("calib = 0.0159", "calib = " + "9" * 400, "channels[0].calib"),  # OverflowError
    ('path = "archive"', 'path = "arch\\u0000ive"', "archive.path"),  # ValueError: embedded null byte
])
def test_station_config_found_by_fuzzing(tmp_path: Path, old: str, new: str, key: str) -> None:
    text = EXAMPLE_STATION.replace(old, new, 1)
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="station.toml", base_dir=tmp_path)
    assert [p.key for p in info.value.problems] == [key]
    station_config.check(text.encode())


DEEP_TOML = "n={" * 700 + "}" * 700 + "\n"  # atheris found 5 KB of nested inline tables: RecursionError


@pytest.mark.parametrize("nesting", [DEEP_TOML, "a = " + "[" * 2000 + "]" * 2000 + "\n"])
def test_toml_nested_too_deeply_is_a_syntax_problem(tmp_path: Path, nesting: str) -> None:
    """tomllib recurses once per level with no limit of its own; every configuration says so plainly."""
    with pytest.raises(ConfigError, match="nested too deeply"):
        parse_config(nesting, source="station.toml", base_dir=tmp_path)
    (tmp_path / "idc.toml").write_text(nesting)
    with pytest.raises(IdcConfigError, match="nested too deeply"):
        load_idc_config(tmp_path / "idc.toml")
    (tmp_path / "scenario.toml").write_text(nesting)
    with pytest.raises(ScenarioError, match="nested too deeply"):
        load_scenario(tmp_path / "scenario.toml")
    station_config.check(nesting.encode())


IDC_BASE = b'[idc]\nroot = "r"\ntrust_dir = "t"\nconnection_endpoint = "tcp://127.0.0.1:1"\n'


@pytest.mark.parametrize(("extra", "says"), [  # what the old code did is noted on each line
    (b'responder_name = "\xff"\n', "not UTF-8"),  # UnicodeDecodeError
    (b'advertise_address = "x"\n', "idc.advertise_address"),  # accepted; every Connection Response raised
    (b'responder_name = "RESPONDER"\n', "idc.responder_name"),  # accepted; every frame sent failed to encode
    (b'[stations.STA1]\nnetwork = "\xc3\xa91"\n', "stations.STA1.network"),  # accepted
    (b"silence_timeout_s = nan\n", "idc.silence_timeout_s"),  # accepted
    (b"prometheus_port = 70000\n", "idc.prometheus_port"),  # accepted
    (b'data_endpoint = "tcp://a\\u0000:1"\n', "idc.data_endpoint"),  # accepted
])
def test_idc_config_found_by_fuzzing(tmp_path: Path, extra: bytes, says: str) -> None:
    path = tmp_path / "idc.toml"
    path.write_bytes(IDC_BASE + extra)
    with pytest.raises(IdcConfigError, match=says):
        load_idc_config(path)
    idc_config.check(IDC_BASE + extra)


SCENARIO = """[run]
duration_s = 600
speed = 10.0
seed = 1
frame_length_s = 10

[[stations]]
name = "STA1"
network = "XX"
sensor = "seismometer"
sample_rate = 20
block_s = 5
channels = ["STA1.BHZ"]

[[faults]]
kind = "unplug"
station = "STA1"
at_s = 100
duration_s = 60
"""


@pytest.mark.parametrize(("old", "new", "says"), [
    ('station = "STA1"', 'station = ["STA1"]', "faults[0].station"),  # TypeError: unhashable type
    ('"STA1.BHZ"', '"STA1.BHZ.LOCA"', "stations[0].channels[0]"),  # accepted; 4-letter location
    ("block_s = 5", "block_s = 5\nbaud = 1300", "stations[0].baud"),  # accepted; station config refuses it
    ("frame_length_s = 10", "frame_length_s = 7", "run.frame_length_s"),  # accepted
    ("seed = 1", "seed = -1", "run.seed"),  # accepted; numpy refuses negative seeds
    ('channels = ["STA1.BHZ"]', "channels = []", "stations[0].channels"),  # accepted
    ('name = "STA1"', 'name = "ST\u00c91"', "stations[0].name"),  # accepted; not ASCII
    ("duration_s = 600", "duration_s = nan", "run.duration_s"),  # accepted
    ("speed = 10.0", "speed = 10.0\n# \udcff", "(file): not UTF-8"),  # UnicodeDecodeError (byte ff)
    ('"STA1.BHZ"]', '"STA1.BHZ", "STA1.BHZ"]', "stations[0].channels[1]"),  # accepted; station config refused
])
def test_scenario_found_by_fuzzing(tmp_path: Path, old: str, new: str, says: str) -> None:
    data = SCENARIO.replace(old, new, 1).encode("utf-8", "surrogateescape")
    path = tmp_path / "scenario.toml"
    path.write_bytes(data)
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert any(f"{p.key}: {p.problem}".startswith(says) for p in info.value.problems), info.value.problems
    hil_scenario.check(data)


def test_the_regression_scenario_itself_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "scenario.toml"
    path.write_text(SCENARIO)
    assert load_scenario(path).stations[0].name == "STA1"


def test_an_empty_or_multi_line_key_is_named_visibly(tmp_path: Path) -> None:
    """Found by atheris (`"" = ""`): the unknown-key problem had an empty key path, naming nothing; a key
    holding a newline broke the one-problem-per-line report."""
    data = b'"" = ""\n"a\\nb" = 1\n'
    with pytest.raises(ConfigError) as info:
        parse_config(data.decode(), source="station.toml", base_dir=tmp_path)
    keys = [p.key for p in info.value.problems if p.problem == "unknown key"]
    assert keys == ['""', '"a\\nb"']
    station_config.check(data)
    path = tmp_path / "scenario.toml"
    path.write_bytes(SCENARIO.encode() + b'"" = 1\n')
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    problems = [f"{p.key}: {p.problem}" for p in info.value.problems]
    assert problems == ['faults[0]."": unknown key']  # the key lands in the last table


# ---- SeedLink server ------------------------------------------------------------------------------------

SEEDLINK_NOW = 1_700_000_000 * 10**9


def _seedlink_session(limits: Limits) -> Session:
    return Session(seedlink_session._views()[0], seedlink_session.IDENTITY, limits, peer="test")


def test_seedlink_info_refusals_close_the_connection_like_any_other() -> None:
    """Bad INFO requests were counted but never closed the connection: a client could send them forever
    (each answered by an error document), and its later BYE was logged as "too many errors"."""
    data = (b"\x02\x03SLPROTO 4.1\r\nSLPROTO 4.0\r\nDATA\r\nSTATION XX_STA1 extra\r\nSTATION XX_STA1\r\n"
            b"SELECT a b\r\nDATA 5 2023-11-14T22:14:00 2023-11-14T22:13:00\r\nINFO LEVEL\r\nEND\r\n")
    seedlink_session.check(data)  # tight limits: 6 refusals close
    session = _seedlink_session(Limits(max_errors=3))
    out = session.feed(b"SLPROTO 4.0\r\nINFO NOPE\r\nINFO NOPE\r\nINFO NOPE\r\nINFO ID\r\n", SEEDLINK_NOW)
    assert session.phase is Phase.CLOSED and session.errors == 3 and out.count(b"SEJE") == 3
    assert b"SEJI" not in out  # the fourth INFO was not answered: the connection is closed
    assert [e.fields.get("command") for e in session.take_events()][-2:] == ["INFO", None]


def test_seedlink_the_refusal_that_closes_a_streaming_connection_sends_no_line_among_the_packets() -> None:
    """Refusals while packets flow are logged and counted only; the last one, which closes the connection,
    wrote an ``ERROR`` line into the packet stream."""
    data = b"\x00\x00STATION STA1\r\nDATA\r\nEND\r\n" + b"\xff\r\n" * 25
    seedlink_session.check(data)
    session = _seedlink_session(Limits(max_errors=2))
    assert session.feed(b"STATION STA1\r\nDATA\r\nEND\r\n", SEEDLINK_NOW) == b"OK\r\nOK\r\n"
    assert session.phase is Phase.STREAMING
    assert session.feed(b"\xff\r\n\xff\r\n", SEEDLINK_NOW) == b"" and session.phase is Phase.CLOSED


def test_the_seedlink_harness_follows_a_protocol_switch() -> None:
    """Found by atheris, a false alarm of the harness: SLPROTO 4.0, INFO (a JSON packet), then SLPROTO 3.1
    before any STATION (allowed) made it take the JSON packet for a protocol 3 reply. It now checks the
    replies against every protocol the session spoke while making them."""
    session = _seedlink_session(Limits())
    out = session.feed(b"SLPROTO 4.0\r\nINFO ID\r\nSLPROTO 3.1\r\n", SEEDLINK_NOW)
    assert out.startswith(b"OK\r\nSEJI") and out.endswith(b"OK\r\n") and session.protocol == 3
    seedlink_session.check(
        b"\x00\x00SLPROTO 4.0\r\nINFO ID\r\nSTATION XX_SCAPABILITIES EXTREPLYFO+ STREAMS\r\n"
        b"\xff\xff\xff\xff\xff\xff\xffION STA1 XX\r\nSELECT\x01\x00 00BHZ.E\r\nDATA 10 1999,1,1\r\n"
        b"SLPROTO 3.1\r\nSTATION STA1 XX\r\nDATA 7FFFFFFFFFFFFFFF\r\nN XX_STA2\r\nDATA 20\r\nENL\r\n"
        b"INFO+ STREAMS\r\n")


def test_seedlink_year_0_is_no_date() -> None:
    """``TIME 0000,01,01`` was refused by Python's calendar with "year 0 is out of range", quoting nothing."""
    with pytest.raises(ValueError, match=r"time '0000,01,01': no such date"):
        parse_seedlink_time("0000,01,01")
    seedlink_session.check(b"\x00\x00TIME 0000,01,01\r\nTIME 0000-12-31T00:00Z\r\n")


def test_seedlink_a_pattern_of_many_stars_matches_without_backtracking() -> None:
    """Found by atheris (libFuzzer's 30 s timeout, 5 inputs): a pattern became one ``.*`` per star, and
    stars followed by a letter that does not match backtracked exponentially, holding the session for
    minutes on one command. Each star now matches atomically (``fnmatch.translate``); on the old code this
    test runs into pytest's timeout."""
    stars = station_v4("*" * 63 + "Q")
    assert not stars.matches("XX", "STA1") and stars.matches("XX", "STAQ")
    assert not selector_v4("*" * 60 + "Q").matches("00", "BHZ")
    seedlink_session.check(b"HL--\r\nINFO STATIONS\r\n" + b"*" * 122 + b"IREAMS\r\nBYE\r\n")


# ---- DP5 ------------------------------------------------------------------------------------------------


def _dp5_events(stream: bytes, *, host: bool, cut: int) -> list:
    parser = dp5.PacketParser.for_host() if host else dp5.PacketParser.for_device()
    events = [e for at in range(0, len(stream), cut) for e in parser.feed(stream[at : at + cut])]
    return [(type(e).__name__, e.offset, getattr(e, "got", None)) for e in events + parser.flush()]


def test_dp5_a_damaged_packet_is_truncated_however_the_bytes_arrive() -> None:
    """A request cut short by the next one: read in one piece, the damaged one was ``Truncated`` (the
    good one inside it was complete); read a byte at a time, ``BadChecksum`` (it was not yet), and the
    simulated DP5 answered it with a CHECKSUM_ERROR acknowledgement the host never asked for."""
    stream = bytes.fromhex("f5fa01010004fe0f" "f5faf0030000fd1e")  # a 4-byte request cut by DISABLE MCA
    expected = [("Truncated", 0, 8), ("Resync", 8, None), ("Received", 8, None)]
    assert _dp5_events(stream, host=False, cut=len(stream)) == expected
    assert _dp5_events(stream, host=False, cut=1) == expected
    dp5_stream.check(b"\x03\x7f" + stream)


def test_dp5_a_complete_packet_inside_another_is_read_however_the_bytes_arrive() -> None:
    """A good packet inside another whose checksum happens to be good too: in one piece the outer one was
    delivered, a byte at a time the inner one (the outer one still incomplete when the inner one ended)."""
    stream = dp5.encode_packet(0x8F, 0x01, b"ab" + dp5.encode_ack(dp5.AckCode.OK) + b"cd")
    expected = [("Truncated", 0, 8), ("Resync", 8, None), ("Received", 8, None)]
    assert _dp5_events(stream, host=True, cut=len(stream)) == expected
    assert _dp5_events(stream, host=True, cut=1) == expected
    dp5_stream.check(b"\x02\x00" + stream)


def test_dp5_an_unknown_device_type_is_encoded_as_it_was_read() -> None:
    """A status from device type 32 decodes as ``unknown(32)``; the encoder wrote it back as a DP5 (0)."""
    raw = bytearray(dp5.encode_status_response(dp5_stream._status())[6:-2])
    raw[39] = 32
    status = dp5.decode_status(bytes(raw))
    assert status.device_type == "unknown(32)"
    assert dp5.decode_status(dp5.encode_status(status)).device_type == "unknown(32)"
    with pytest.raises(dp5.Dp5FormatError, match="device type 'PX9'"):
        dp5.encode_status(dataclasses.replace(status, device_type="PX9"))
    dp5_stream.check(b"\x04\x00" + dp5.encode_packet(*dp5.RSP_STATUS, bytes(raw)))


def test_dp5_the_longest_accumulation_time_is_encoded_as_it_was_read() -> None:
    """Found by atheris: accumulation time bytes 12-15 all 0xFF (255 ms + 16,777,215 x 100 ms) decode to
    1677721.755 s; the encoder, keeping the ms byte below 100 and the 100 ms count at 24 bits, wrote back
    1677721.555 s."""
    raw = bytearray(dp5.encode_status_response(dp5_stream._status())[6:-2])
    raw[12:16] = b"\xff\xff\xff\xff"
    status = dp5.decode_status(bytes(raw))
    assert status.accumulation_time_s == 1677721.755
    assert dp5.decode_status(dp5.encode_status(status)).accumulation_time_s == 1677721.755
    crash = bytes.fromhex("0403f5faff00" + "ff" * 41 + "f5fa80010040" + "ff" * 66 + "0000f512")
    dp5_stream.check(crash)


# ---- beta-gamma MCA line protocol -----------------------------------------------------------------------


def _mca_line(body: str, tag: int = 1) -> bytes:
    text = f"{tag} {body}".encode()
    return text + b"*%04X\n" % mca.crc16(text)


def test_mca_a_tag_that_cannot_be_echoed_is_refused() -> None:
    """Tags are 0-65535, but lines were read with any 5-digit tag: a command tagged 99999 was accepted
    and the instrument's reply to it was refused by its own encoder (McaProtocolError out of frame_line)."""
    (event,) = mca.CommandParser().feed(_mca_line("*IDN?", tag=99999))
    assert isinstance(event, mca.CommandRejected) and event.tag == 0
    assert "tag 99999 is not 0-65535" in event.message
    mca.encode_error(event.tag, event.code, event.message)  # the refusal can be answered
    (bad,) = mca.CommandParser().feed(b"70000 *IDN?*0000\n")  # wrong CRC: the tag is not echoed either
    assert isinstance(bad, mca.CommandRejected) and bad.tag == 0
    mca_lines.check(b"\x03\x00" + _mca_line("*IDN?", tag=99999))


@pytest.mark.parametrize(("payload", "says"), [
    ("SNAP=1 STATE=DONE REAL=1 LIVE=1 ARRAYS=H:100000x100000:9765625 CHUNK=1024", "more than 4194304 cells"),
    ("SNAP=1 STATE=DONE REAL=1 LIVE=1 ARRAYS=H:10:1 CHUNK=5000", "CHUNK=5000 is not 1-1024"),
    ("SNAP=1 STATE=DONE REAL=1 LIVE=1 ARRAYS=H:2x2x2:1 CHUNK=1000", "more than two dimensions"),
])
def test_mca_a_snapshot_beyond_the_protocols_limits_is_refused(payload: str, says: str) -> None:
    """Snapshots were taken with any chunk size, any number of dimensions and any number of cells: the
    first one had the host's read-out list 9,765,625 chunks (an unbounded allocation from one line)."""
    with pytest.raises(mca.McaProtocolError, match=says):
        mca.parse_snapshot(payload)
    mca_lines.check(b"\x02\x00" + _mca_line("OK " + payload))


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999"])
def test_mca_numbers_in_replies_are_finite(value: str) -> None:
    """``float`` takes nan and inf: a state of health, presets or acquisition times came through as such."""
    with pytest.raises(mca.McaProtocolError, match="is not a finite number"):
        mca.parse_soh(f"HV_V={value}")
    with pytest.raises(mca.McaProtocolError, match="is not a finite number"):
        mca.parse_acquisition_status(f"STATE=DONE REAL={value} LIVE=1")
    mca_lines.check(b"\x02\x00" + _mca_line(f"OK HV_V={value} STATE=DONE REAL={value} LIVE=1"))


# ---- Güralp digitizer text -------------------------------------------------------------------------------


@pytest.mark.parametrize("line", [
    "2006 9 4 13:13:00 99999999999999999999 MicroSeconds Fast",  # 1e23 ns: past int64
    "2006 9 4 13:13:00 " + "9" * 400 + " MicroSeconds Slow",  # float() of it overflowed in the station's SOH
    "2006 1 18 14:56:15 External supply : 1" + "0" * 400 + "V Temperature 24.68'C",  # read as inf volts
    "2006 1 18 14:56:15 External supply : 12.0V Temperature -300'C",  # below absolute zero
])
def test_guralp_status_numbers_no_digitizer_can_mean_are_ignored(line: str) -> None:
    """A status line whose clock offset does not fit int64 ns, or whose supply or temperature is not a
    finite temperature above absolute zero, was read as such (an offset of 400 digits made the station's
    SOH raise OverflowError on ``float``); now it is ignored like any line not recognised."""
    status = parse_status_text("FUZZ1", 0, line)
    assert (status.clock_offset_ns, status.supply_volts, status.temperature_c, status.gps_locked) == (
        None, None, None, None)
    guralp_text.check(b"\x00" + line.encode("ascii"))


def test_guralp_a_clock_line_without_a_real_date_keeps_the_last_gps_sync() -> None:
    """A second clock line whose stamp is no date (hour 25) set the GPS sync time back to None."""
    text = "2006 9 4 13:13:00 2 MicroSeconds Fast\n2006 9 4 25:13:00 3 MicroSeconds Fast"
    status = parse_status_text("FUZZ1", 0, text)
    assert status.last_gps_sync_ns == 1_157_375_580 * 10**9 and status.clock_offset_ns == 3000
    guralp_text.check(b"\x00" + text.encode("ascii"))


def _console_outcome(stream: bytes, cut: int) -> list:
    console = Console()
    request = ConsoleRequest(("STATUS",), 10**10)
    console.submit(request)
    scanner, out = brp.FrameScanner(), []
    for at in range(0, len(stream), cut):
        for event in scanner.feed(stream[at : at + cut]):
            out += console.text(event.data) if isinstance(event, brp.TerminalText) else console.block_mode()
    return out + console.poll(10**10 + 1)


def test_guralp_console_prompts_are_found_however_the_text_arrives() -> None:
    """A prompt was seen only at the end of a read: the console's whole answer in one read (its prompt
    followed by more text) left the request waiting until it timed out; read a byte at a time it worked."""
    stream = b" ok\r\n" + b"GPS locked\r\n ok\r\n" + b"\x1b\x11"
    expected = [brp.SendBytes(b"STATUS\r"), brp.SendBytes(b"GO\r")]
    for cut in (len(stream), 1):
        out = _console_outcome(stream, cut)
        assert [o for o in out if isinstance(o, brp.SendBytes)] == expected
        assert [o.text for o in out if isinstance(o, ConsoleReply)] == ["GPS locked\r\n"]
    guralp_text.check(b"\x03\x00" + stream)


def test_guralp_text_after_the_return_to_block_mode_is_not_the_replys() -> None:
    """ESC DC1 inside a piece of text was reported after the whole piece: the console took text the
    digitizer sent after leaving it (here the next request's prompts) as its own, or not, depending on
    how the bytes were cut into reads."""
    stream = b" ok\r\nst\r\n ok\r\n\x1b\x11 ok\r\n ok\r\n"
    scanned = brp.FrameScanner().feed(stream)
    assert [type(e).__name__ for e in scanned] == ["TerminalText", "BlockModeResumed", "TerminalText"]
    assert scanned[0].data.endswith(brp.ESC_DC1) and scanned[2].data == b" ok\r\n ok\r\n"
    # found by the bounded run's mutations
    guralp_text.check(b"\x03\x07 ok\xff\n\x00\x00\x00\x01\n3 MINUT-425\r\n1970 01 01 00:00:00 No "
                      b"calibration\r\n ok\r\n\x1b\x11 ok\r\n ok\r\n ok\r\n\x1b\x11after\r\n")


def test_guralp_console_output_without_a_prompt_is_bounded() -> None:
    """Console text was held without limit while waiting for a prompt: past MAX_REPLY_TEXT the request
    fails (GO is sent, the failure named once the digitizer is back in block mode), however it arrives."""
    stream = b" ok\r\n" + b"x" * (MAX_REPLY_TEXT + 10) + b"\x1b\x11"
    for cut in (len(stream), 1000):
        out = _console_outcome(stream, cut)
        assert [o for o in out if isinstance(o, brp.SendBytes)] == [brp.SendBytes(b"STATUS\r"),
                                                                     brp.SendBytes(b"GO\r")]
        (failed,) = [o for o in out if isinstance(o, ConsoleFailed)]
        assert f"more than {MAX_REPLY_TEXT} bytes of console output without a prompt" in failed.reason
    guralp_text.check(b"\x03\x05" + stream)
