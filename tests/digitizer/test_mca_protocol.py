"""The radionuclide line protocol core without any port: line framing and CRC, commands and replies,
SCPI errors, chunked read-out assembled only from verified chunks of one snapshot."""

from __future__ import annotations

import numpy as np
import pytest

from digitizer import mca


def test_crc16_is_ccitt_false() -> None:
    assert mca.crc16(b"123456789") == 0x29B1


def test_the_examples_in_the_protocol_document() -> None:
    assert mca.frame_line(17, "ACQ:START") == b"17 ACQ:START*5CB7\n"
    assert mca.encode_ok(17) == b"17 OK*A8EC\n"
    first, cells = mca.chunk_of(np.arange(65536, dtype=np.uint32).reshape(256, 256), 5)
    assert mca.format_chunk(12, "HIST", 5, first, cells).startswith(
        "SNAP=12 ARRAY=HIST INDEX=5 FIRST=5120 CELLS=1024 CRC32=601E886A DATA=ABQAAAEUAAACFAAAAxQAA")


def test_line_round_trip_and_damage() -> None:
    line = mca.frame_line(17, "ACQ:START")
    assert line.endswith(b"\n") and line.startswith(b"17 ACQ:START*")
    assert mca.unframe_line(line[:-1]) == (17, "ACQ:START")
    damaged = line[:-1].replace(b"START", b"STARU")
    with pytest.raises(mca.McaProtocolError) as exc:
        mca.unframe_line(damaged)
    assert exc.value.code == mca.E_LINE_CHECKSUM and exc.value.tag == 17
    with pytest.raises(mca.McaProtocolError) as exc:
        mca.unframe_line(b"garbage without crc")
    assert exc.value.code == mca.E_LINE_CHECKSUM and exc.value.tag == 0


def test_command_encoding_checks_names_and_arguments() -> None:
    assert mca.encode_command(3, "pres:real", "43200.000").startswith(b"3 PRES:REAL 43200.000*")
    with pytest.raises(mca.McaProtocolError, match="unknown command"):
        mca.encode_command(1, "ACQ:GO")
    with pytest.raises(mca.McaProtocolError, match="takes 1 arguments"):
        mca.encode_command(1, mca.PRESET_REAL)
    with pytest.raises(mca.McaProtocolError, match="plain token"):
        mca.encode_command(1, mca.PRESET_REAL, "1 2")


@pytest.mark.parametrize("line, code", [
    (b"5 ACQ:GO", mca.E_UNDEFINED_HEADER), (b"5 PRES:REAL", mca.E_MISSING_PARAMETER),
    (b"5 PRES:REAL 1 2", mca.E_SYNTAX), (b"5 ", mca.E_SYNTAX)])
def test_instrument_side_command_errors(line: bytes, code: int) -> None:
    framed = mca.frame_line(5, line[2:].decode()) if line[2:] else b"5 *%04X\n" % mca.crc16(b"5 ")
    (event,) = mca.CommandParser().feed(framed)
    assert isinstance(event, mca.CommandRejected) and event.code == code and event.tag == 5


def test_command_parser_accepts_lower_case_and_crlf() -> None:
    framed = mca.frame_line(9, "data:chunk? 4 HIST 12")[:-1] + b"\r\n"
    (event,) = mca.CommandParser().feed(framed)
    assert event == mca.CommandReceived(mca.Command(9, mca.CHUNK, ("4", "HIST", "12")))


def test_seconds_parameter() -> None:
    assert mca.parse_seconds(1, "43200") == 43200.0
    for bad, code in (("-1", mca.E_OUT_OF_RANGE), ("nan", mca.E_OUT_OF_RANGE), ("x", mca.E_SYNTAX)):
        with pytest.raises(mca.McaProtocolError) as exc:
            mca.parse_seconds(1, bad)
        assert exc.value.code == code


def test_over_long_line_is_dropped_and_reported_without_buffering_it() -> None:
    reader = mca.LineReader(max_line=100)
    out = reader.feed(b"x" * 5000)
    assert out == [] and len(reader._buf) == 0
    out = reader.feed(b"y" * 10 + b"\n" + b"1 OK*0000\n")
    assert isinstance(out[0], mca.Overrun) and out[0].dropped == 5010 and out[1] == b"1 OK*0000"
    (event,) = mca.CommandParser().feed(b"z" * (mca.MAX_LINE + 10) + b"\n")
    assert isinstance(event, mca.CommandRejected) and event.code == mca.E_INPUT_OVERRUN


def test_replies_ok_and_err() -> None:
    parser = mca.ReplyParser()
    events = parser.feed(mca.encode_ok(4, "A=1") + mca.encode_error(5, mca.E_SETTINGS_CONFLICT, "running")
                         + b"6 OK*0000\n")
    assert events[0] == mca.ReplyReceived(mca.Reply(4, True, "A=1"))
    assert events[1] == mca.ReplyReceived(mca.Reply(5, False, code=-221, message="running"))
    assert isinstance(events[2], mca.BadLine) and events[2].tag == 6


def test_payload_decoders() -> None:
    assert mca.parse_identity("IMS-SIM,BG-256,0042,1.0") == mca.Identity("IMS-SIM", "BG-256", "0042", "1.0")
    with pytest.raises(mca.McaProtocolError):
        mca.parse_identity("a,b,c")
    status = mca.AcquisitionStatus("RUNNING", 10.5, 10.25, 1_700_000_000_000_000_000)
    assert mca.parse_acquisition_status(mca.format_acquisition_status(status)) == status
    assert mca.parse_acquisition_status("STATE=STOPPED REAL=0 LIVE=0 START=-").start_ns is None
    with pytest.raises(mca.McaProtocolError, match="state"):
        mca.parse_acquisition_status("STATE=GONE REAL=0 LIVE=0")
    soh = mca.Soh(time_ns=5, hv_v=712.0, flow_m3h=1.8, sampler="RUNNING", stage="COLLECT", xe_yield=0.63,
                  extra={"NEW_KEY": "7"})
    assert mca.parse_soh(mca.format_soh(soh)) == soh
    assert mca.parse_soh("HV_V=- FLOW_M3H=2").hv_v is None
    with pytest.raises(mca.McaProtocolError, match="not a number"):
        mca.parse_soh("FLOW_M3H=fast")


def _snapshot(snap_id: int = 7) -> tuple[mca.SnapshotInfo, dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    arrays = {"HIST": rng.integers(0, 1 << 32, (256, 256), dtype=np.uint64).astype(np.uint32),
              "GSGL": rng.integers(0, 1000, 256).astype(np.uint32), "BSGL": np.arange(300, dtype=np.uint32)}
    info = mca.SnapshotInfo(snap_id, mca.AcquisitionStatus("RUNNING", 100.0, 99.0, 123),
                            {k: mca.ArraySpec(v.shape, mca.chunks_for(v.size)) for k, v in arrays.items()},
                            mca.CHUNK_CELLS)
    return info, arrays


def _chunk_payload(info: mca.SnapshotInfo, arrays: dict[str, np.ndarray], name: str, index: int) -> str:
    first, cells = mca.chunk_of(arrays[name], index)
    return mca.format_chunk(info.snap_id, name, index, first, cells)


def test_snapshot_round_trip() -> None:
    info, _ = _snapshot()
    back = mca.parse_snapshot(mca.format_snapshot(info))
    assert back == info and back.arrays["HIST"].chunks == 64 and back.arrays["BSGL"].chunks == 1
    with pytest.raises(mca.McaProtocolError, match="inconsistent"):
        mca.parse_snapshot(mca.format_snapshot(info).replace("HIST:256x256:64", "HIST:256x256:63"))


def test_chunked_readout_retries_a_bad_chunk_and_assembles_only_when_whole() -> None:
    info, arrays = _snapshot()
    asm = mca.ReadoutAssembler(info)
    wanted = asm.wanted()
    assert len(wanted) == 66
    for i, (name, index) in enumerate(wanted):
        payload = _chunk_payload(info, arrays, name, index)
        if i == 10:  # one chunk damaged on the line: refused, then asked again
            at = payload.index("DATA=") + 20
            corrupt = payload[:at] + ("B" if payload[at] != "B" else "C") + payload[at + 1:]
            with pytest.raises(mca.McaProtocolError, match="CRC-32"):
                mca.parse_chunk(corrupt)
            with pytest.raises(mca.McaProtocolError, match="incomplete"):
                asm.result()
        asm.add(mca.parse_chunk(payload))
    readout = asm.result()
    for name, array in arrays.items():
        np.testing.assert_array_equal(readout.arrays[name], array)
    assert readout.acquisition.live_s == 99.0


def test_assembler_refuses_chunks_that_do_not_belong() -> None:
    info, arrays = _snapshot()
    asm = mca.ReadoutAssembler(info)
    other, _ = _snapshot(snap_id=8)
    with pytest.raises(mca.McaProtocolError, match="snapshot 8"):
        asm.add(mca.parse_chunk(_chunk_payload(other, arrays, "GSGL", 0)))
    with pytest.raises(mca.McaProtocolError, match="not part"):
        asm.add(mca.Chunk(7, "HIST", 64, 0, np.zeros(1024, np.uint32)))
    with pytest.raises(mca.McaProtocolError, match="expected 0\\+300"):
        asm.add(mca.Chunk(7, "BSGL", 0, 1024, np.zeros(300, np.uint32)))
    assert len(asm.wanted()) == 66


def test_chunk_cell_count_must_match_its_data() -> None:
    info, arrays = _snapshot()
    payload = _chunk_payload(info, arrays, "GSGL", 0).replace("CELLS=256", "CELLS=255")
    with pytest.raises(mca.McaProtocolError, match="declares 255 cells"):
        mca.parse_chunk(payload)
