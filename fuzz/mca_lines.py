"""Beta-gamma MCA line protocol: arbitrary serial bytes into the host's ``ReplyParser`` (the station reading
the instrument) or the instrument's ``CommandParser`` (the simulated instrument reading the station), and
every reply payload through the payload parsers (``docs/mca-protocol.md``).

Input layout: byte 0 picks the side (bit 0) and whether every line's CRC is set right first (bit 1: so
that changed lines reach the command and payload parsers; a mutated line almost never keeps its CRC);
byte 1 how the bytes are cut into reads; the rest is the serial stream.

Invariants:
- ``feed`` never raises and returns only the documented events; the line reader never holds more than
  one line; how the bytes are cut into reads changes nothing;
- every refusal carries a tag that can be echoed (0-65535), a known SCPI error number and a message, and
  can be answered with ``encode_error``; every accepted command or reply has such a tag, and encoded
  again (when its arguments are plain tokens) it reads back the same;
- every payload parser takes any payload or raises ``McaProtocolError`` with a message; what it takes is
  what its formatter writes back (identity exactly; acquisition status, snapshot, chunk and state of
  health reach a fixed point after one formatting); numbers are finite; a snapshot keeps the limits the
  protocol sets (chunks of at most 1024 cells, arrays of one or two dimensions, cells bounded), so the
  read-out it starts is bounded.
"""

from __future__ import annotations

import math
import random
import re

from digitizer import mca
from digitizer.mca import (
    CHUNK_CELLS,
    ERROR_NAMES,
    MAX_LINE,
    MAX_SNAPSHOT_CELLS,
    MAX_TAG,
    BadLine,
    CommandParser,
    CommandReceived,
    CommandRejected,
    McaProtocolError,
    ReplyParser,
    ReplyReceived,
)
from fuzz.draw import read_sizes

_TOKEN = re.compile(r"[A-Z0-9_:.+\-*?,x/]+", re.IGNORECASE)  # what encode_command sends (docs §2)
_CRC = re.compile(rb"\*[0-9A-Fa-f]{4}\r?$")
MAX_LEN = 3 * MAX_LINE

READ_SIZES = (1, 2, 5, 17, 100, 4000, MAX_LINE + 3)  # the reads a stream is cut into, for the cutting check


def check(data: bytes) -> None:
    mode = data[0] if data else 0
    host = not mode & 1
    stream = _crcs_made_right(data[2:]) if mode & 2 else data[2:]
    whole = _run(stream, host, [len(stream)] if stream else [])
    cuts = random.Random(data[1] if len(data) > 1 else 0)
    cut = _run(stream, host, read_sizes(len(stream), cuts, READ_SIZES))
    assert whole == cut, "the events depend on how the bytes were cut into reads"
    for event in whole:
        if isinstance(event, ReplyReceived):
            _check_reply(event.reply)
        elif isinstance(event, CommandReceived):
            _check_command(event.command)
        else:
            _check_refusal(event)


def _crcs_made_right(stream: bytes) -> bytes:
    """Every line that ends in ``*XXXX`` with the CRC of what precedes it."""
    lines = stream.split(b"\n")
    for i, line in enumerate(lines):
        m = _CRC.search(line)
        if m is not None:
            text = line[: m.start()]
            lines[i] = text + b"*%04X" % mca.crc16(text) + (b"\r" if line.endswith(b"\r") else b"")
    return b"\n".join(lines)


def _run(stream: bytes, host: bool, pieces: list[int]) -> list:
    parser: ReplyParser | CommandParser = ReplyParser() if host else CommandParser()
    events: list = []
    at = 0
    for size in pieces:
        events += parser.feed(stream[at : at + size])
        at += size
        assert len(parser.lines._buf) <= MAX_LINE + 1, f"{len(parser.lines._buf)} bytes of a line held"
    kinds = (ReplyReceived, BadLine) if host else (CommandReceived, CommandRejected)
    assert all(isinstance(e, kinds) for e in events), f"unexpected events {events}"
    return events


def _check_tag(tag: int) -> None:
    assert isinstance(tag, int) and 0 <= tag <= MAX_TAG, f"tag {tag} cannot be echoed"


def _check_refusal(event: BadLine | CommandRejected) -> None:
    _check_tag(event.tag)
    if isinstance(event, BadLine):
        assert event.reason, event
        return
    assert event.code in ERROR_NAMES and event.message, event
    line = mca.encode_error(event.tag, event.code, event.message)  # what the instrument answers
    assert mca.unframe_line(line[:-1])[0] == event.tag


def _check_command(command: mca.Command) -> None:
    _check_tag(command.tag)
    assert command.name in mca.COMMAND_ARGS and len(command.args) == mca.COMMAND_ARGS[command.name]
    if all(_TOKEN.fullmatch(a) for a in command.args):
        line = mca.encode_command(command.tag, command.name, *command.args)
        tag, body = mca.unframe_line(line[:-1])
        assert mca.parse_command(tag, body) == command, f"{command} reads back differently"
    if command.name in (mca.PRESET_REAL, mca.PRESET_LIVE):
        try:
            seconds = mca.parse_seconds(command.tag, command.args[0])
        except McaProtocolError as exc:
            assert str(exc) and exc.code in ERROR_NAMES
        else:
            assert math.isfinite(seconds) and seconds >= 0


def _check_reply(reply: mca.Reply) -> None:
    _check_tag(reply.tag)
    line = mca.encode_ok(reply.tag, reply.payload) if reply.ok else mca.encode_error(
        reply.tag, reply.code, reply.message)
    again = mca.parse_reply(*mca.unframe_line(line[:-1]))
    sent = reply if reply.ok else mca.Reply(reply.tag, False, code=reply.code, message=reply.message[:200])
    assert again == sent, f"{reply} reads back as {again}"  # an error message is sent cut at 200
    if reply.ok:
        for parse in (_identity, _presets, _acquisition, _snapshot, _chunk, _soh):
            try:
                parse(reply.payload)
            except McaProtocolError as exc:
                assert str(exc), f"{parse.__name__}: an error without a message"


def _finite(*values: float | None) -> None:
    assert all(v is None or math.isfinite(v) for v in values), f"not finite: {values}"


def _identity(payload: str) -> None:
    identity = mca.parse_identity(payload)
    assert mca.parse_identity(",".join((identity.maker, identity.model, identity.serial,
                                         identity.firmware))) == identity


def _presets(payload: str) -> None:
    presets = mca.parse_presets(payload)
    _finite(presets.real_s, presets.live_s)


def _acquisition(payload: str) -> None:
    status = mca.parse_acquisition_status(payload)
    _finite(status.real_s, status.live_s)
    _fixed_point(status, mca.format_acquisition_status, mca.parse_acquisition_status)


def _snapshot(payload: str) -> None:
    info = mca.parse_snapshot(payload)
    _finite(info.acquisition.real_s, info.acquisition.live_s)
    assert 1 <= info.chunk_cells <= CHUNK_CELLS, f"chunks of {info.chunk_cells} cells"
    assert all(1 <= len(spec.shape) <= 2 for spec in info.arrays.values()), info.arrays
    assert sum(spec.cells for spec in info.arrays.values()) <= MAX_SNAPSHOT_CELLS, info.arrays
    wanted = mca.ReadoutAssembler(info).wanted()
    assert len(wanted) == sum(spec.chunks for spec in info.arrays.values())
    _fixed_point(info, mca.format_snapshot, mca.parse_snapshot)


def _chunk(payload: str) -> None:
    chunk = mca.parse_chunk(payload)
    text = mca.format_chunk(chunk.snap_id, chunk.array, chunk.index, chunk.first, chunk.data)
    again = mca.parse_chunk(text)
    assert (again.snap_id, again.array, again.index, again.first) == (chunk.snap_id, chunk.array, chunk.index,
                                                                      chunk.first)
    assert again.data.tobytes() == chunk.data.tobytes(), "a chunk's cells do not read back"


def _soh(payload: str) -> None:
    soh = mca.parse_soh(payload)
    _finite(*(getattr(soh, attr) for attr, (_, kind) in mca.SOH_FIELDS.items() if kind is float))
    try:
        text = mca.format_soh(soh)
    except McaProtocolError:
        return  # an unknown key's value the formatter cannot send ('=' in it): read leniently
    _fixed_point(mca.parse_soh(text), mca.format_soh, mca.parse_soh)


def _fixed_point(value, write, read) -> None:
    """What ``read`` took, written and read again, is written the same (floats are written rounded)."""
    text = write(value)
    assert write(read(text)) == text, f"{text!r} does not read back to itself"


# ---------------------------------------------------------------------------------------------- corpus


def seeds() -> list[bytes]:
    """Command lines as the station's driver sends them (instrument side) and every reply the simulated
    instrument gives (host side), whole, with noise, cut short and damaged."""
    import numpy as np

    commands = [mca.encode_command(1, mca.IDN), mca.encode_command(2, mca.PRESET_REAL, "43200.000"),
                mca.encode_command(3, mca.PRESET_LIVE, "0.000"), mca.encode_command(4, mca.START),
                mca.encode_command(5, mca.ACQ_STATUS), mca.encode_command(6, mca.SNAP),
                mca.encode_command(7, mca.CHUNK, 12, "HIST", 5), mca.encode_command(65535, mca.SOH),
                mca.encode_command(9, mca.RST), mca.encode_command(10, mca.PRESETS)]
    status = mca.AcquisitionStatus("DONE", 43200.0, 43198.168, 1_700_000_000_000_000_000)
    arrays = {"HIST": mca.ArraySpec((4, 300), 2), "GSGL": mca.ArraySpec((256,), 1)}
    snapshot = mca.SnapshotInfo(12, status, arrays, 1000)
    cells = np.arange(40, dtype=np.uint32) * 65537
    soh = mca.Soh(time_ns=1_700_000_000_000_000_000, hv_v=700.5, detector_temp_c=-12.25,
                  sampler="RUNNING", stage="COUNT", sample_id="SAMPLE-0042", xe_volume_ml=1.2345, power="UPS",
                  ups_charge_pct=87.0, extra={"NEWKEY": "1"})
    replies = [mca.encode_ok(1, "IMS,BG-SIM,0001,1.2.3"), mca.encode_ok(2),
               mca.encode_ok(10, "REAL=43200 LIVE=0"),
               mca.encode_ok(5, mca.format_acquisition_status(status)),
               mca.encode_ok(6, mca.format_snapshot(snapshot)),
               mca.encode_ok(7, mca.format_chunk(12, "HIST", 1, 1000, cells)),
               mca.encode_ok(8, mca.format_soh(soh)),
               mca.encode_error(9, mca.E_STALE_DATA, "snapshot 11 is stale"),
               mca.encode_error(11, mca.E_LINE_CHECKSUM, "line CRC 0000 does not match 1D0F")]
    out = []
    for side, lines in ((0, replies), (1, commands)):
        clean = b"".join(lines)
        damaged = bytearray(clean)
        damaged[5] ^= 0x01
        streams = [clean, b"\x00\xff noise\r\n" + clean[:30] + b"\n" + clean, bytes(damaged), clean[:-7],
                   clean.replace(b"\n", b"\r\n"), b"x" * (MAX_LINE + 5) + b"\n" + lines[0]]
        out += [bytes((side | crc, cut)) + s for s in streams for crc, cut in ((0, 0), (2, 5))]
    return out + [bytes((2, 1)) + line for line in replies] + [bytes((3, 1)) + line for line in commands]


DICTIONARY = [b"*0000\n", b"\n", b"\r\n", b"OK ", b"ERR -230 ", b"SNAP=", b"ARRAYS=", b"CHUNK=", b"CELLS=",
              b"CRC32=", b"DATA=", b"STATE=DONE", b"REAL=", b"LIVE=", b"START=", b"x", b":", b",", b"=",
              b"nan", b"inf", b"-1", b"99999", b"DATA:CHUNK? ", b"PRES:REAL ", b"HV_V=", b"TIME="]
