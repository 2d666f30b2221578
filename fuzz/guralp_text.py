"""Güralp text: what the station reads from a Güralp digitizer besides samples, the status text of ``00``
blocks, the binary CD status, and the console's replies as ``GuralpSession`` routes them.

Input layout: byte 0 picks what the rest is (mod 4): 0 the text of a ``00`` status block; 1 the simulated
digitizer's status lines (``hil.sim_digitizer``), their values drawn from the bytes; 2 a CD status body;
3 a serial stream into a ``GuralpSession`` running two console requests, byte 1 cutting it into reads,
bits 2 and 3 of byte 0 asking for a startup rewind and for a reconnect halfway through the stream (so
that the rewind reads the frames' GCF headers).

Invariants:
- status text never raises; what it reports is typed and in range (clock offset within int64 ns, supply
  and temperature finite, the temperature above absolute zero, a GPS sync time a whole second that
  CD-1.1's time field takes, a fix of 3D, 2D or none); each line counts on its own, a later one
  overriding an earlier one; the same text sent in a GCF ``00`` block reads the same;
- what the simulated digitizer writes reads back as the values it wrote, in a GCF block too;
- a CD status body shorter than 16 bytes is refused with ValueError naming its length; a longer one
  reads its offset in 500 ns steps, its lock, fix and calibration flags, in a GCF block too;
- the session returns only its documented outputs; every status it returns holds the ranges above; the
  console gets each request's reply as the text between the prompts that answered its lines, as a plain
  reading of the whole stream's console text finds it, and the console text it holds stays bounded;
- how the bytes are cut into reads changes nothing: the same console outcome, statuses and packets.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import fields
from types import SimpleNamespace
from typing import get_args

import numpy as np

from digitizer import brp
from digitizer.gcf import MAX_RECORDS, GcfBlock, decode_block, encode_block
from digitizer.gcf_status import CD_STATUS_SIZE, parse_cd_status, parse_status_text, status_from_block
from digitizer.guralp_console import (
    MAX_REPLY_TEXT,
    ConsoleFailed,
    ConsoleOpened,
    ConsoleReply,
    ConsoleRequest,
    StrayText,
    calibration_lines,
)
from digitizer.guralp_session import GuralpSession, Output, SessionConfig
from digitizer.packet import Packet, Status
from fuzz.draw import Draw, read_sizes
from gci_link.cd11.timefmt import format_time
from hil.sim_digitizer import Calibration, SimDigitizer
from timeunits import NS_PER_S

OUTPUTS = get_args(Output)
INT64 = 2**63
FIXES = (None, "3D", "2D", "none")
CD_FIXES = ("no GPS", "none", "2D", "3D")
MAX_STATUS_TEXT = 4 * MAX_RECORDS  # the longest GCF status body
T0 = 1_600_000_000 * NS_PER_S
DEADLINE_NS = 10 * NS_PER_S
REQUESTS = (("STATUS",), calibration_lines("sine", "Z", 3, frequency_hz=1))
CONSOLE_HELD_MAX = MAX_REPLY_TEXT + len(brp.PROMPT) - 1  # console text held while waiting for a prompt
MAX_LEN = 4096

READ_SIZES = (1, 2, 3, 5, 7, 64, 1000)  # the reads a stream is cut into, for the cutting check


def check(data: bytes) -> None:
    mode = data[0] % 4 if data else 0
    if mode == 0:
        _check_text(data[1:].decode("ascii", "replace"))
    elif mode == 1:
        _check_simulated(Draw(data[1:]))
    elif mode == 2:
        _check_cd(data[1:])
    else:
        stream, rewind = data[2:], bool(data[0] & 4)
        reconnect = len(stream) // 2 if data[0] & 8 else 0
        cuts = random.Random(data[1] if len(data) > 1 else 0)
        halves = [n for n in (reconnect, len(stream) - reconnect) if n]
        whole = _run_session(stream, halves, rewind, reconnect)
        cut = read_sizes(reconnect, cuts, READ_SIZES) + read_sizes(len(stream) - reconnect, cuts, READ_SIZES)
        assert whole == _run_session(stream, cut, rewind, reconnect), (
            "the session's console outcome, statuses or packets depend on how the bytes were cut")
        assert whole[0] == _console_by_plain_reading(stream, reconnect), (
            "console replies differ from a plain reading")


# ------------------------------------------------------------------------------------------ status text


def _check_status(status: Status) -> None:
    if status.text is None:  # a CD status block
        assert status.gps_fix in CD_FIXES or re.fullmatch(r"code \d+", status.gps_fix or ""), status.gps_fix
    else:
        assert status.gps_fix in FIXES, f"fix {status.gps_fix!r}"
    assert status.gps_locked in (None, True, False)
    offset = status.clock_offset_ns
    assert offset is None or (isinstance(offset, int) and -INT64 <= offset < INT64), f"clock offset {offset}"
    for value in (status.supply_volts, status.temperature_c):
        assert value is None or math.isfinite(value), f"not finite: {value}"
    assert status.temperature_c is None or status.temperature_c >= -273.15, status.temperature_c
    sync = status.last_gps_sync_ns
    if sync is not None:
        assert sync % NS_PER_S == 0, f"GPS sync time {sync} is no whole second"
        format_time(sync, field="last GPS sync")  # what the CD-1.1 channel status takes
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in status.extra.items()), status.extra


def _reported(status: Status) -> dict:
    """What a status says, the raw text aside."""
    return {f.name: getattr(status, f.name) for f in fields(Status) if f.name != "text"}


def _check_text(text: str) -> None:
    status = parse_status_text("FUZZ1", T0, text)
    _check_status(status)
    assert status.text == text
    merged: dict = {"extra": {}}
    for line in text.replace("\r", "\n").split("\n"):
        said = _reported(parse_status_text("FUZZ1", T0, line))
        merged["extra"].update(said.pop("extra"))
        merged.update({k: v for k, v in said.items() if v is not None and v != ()})
    said = _reported(status)
    assert said == {**_reported(Status("FUZZ1", T0)), **merged}, "lines do not count each on its own"
    sent = text.rstrip(" \x00")
    if sent == text and len(text) <= MAX_STATUS_TEXT and text.isascii():
        again = status_from_block(decode_block(encode_block(GcfBlock("FUZZ1", "FUZZ00", T0, 0.0,
                                                                     status_text=text))))
        assert again is not None and again == status, f"a 00 block reads differently: {status} -> {again}"


def _simulated_text(draw: Draw) -> tuple[str, SimpleNamespace, int]:
    """The simulated digitizer's status lines, its state drawn from the fuzzer's bytes."""
    cal = None
    if draw.flag():
        components, kind = draw.choice(("Z", "N", "E", "ZNE")), draw.choice(("sine", "square", "random"))
        cal = Calibration(components, kind, 0, 1)
    firmware = SimpleNamespace(gps_locked=draw.flag(), _clock_offset_s=draw.int_in(-10**9, 10**9) / 1e6,
                               _env_rng=np.random.default_rng(draw.uint(4)), calibration=cal)
    t_ns = draw.int_in(0, 253_402_300_799) * NS_PER_S + draw.int_in(0, NS_PER_S - 1)
    return SimDigitizer.status_text(firmware, t_ns), firmware, t_ns  # type: ignore[arg-type]


def _check_simulated(draw: Draw) -> None:
    text, firmware, t_ns = _simulated_text(draw)
    status = parse_status_text("SIM1", T0, text)
    _check_status(status)
    lines = text.split("\r\n")
    assert status.gps_locked == firmware.gps_locked, f"lock read wrong from {lines[0]!r}"
    if firmware.gps_locked:
        assert status.clock_offset_ns == round(firmware._clock_offset_s * 1e6) * 1000, lines[0]
        assert status.last_gps_sync_ns == t_ns // NS_PER_S * NS_PER_S, lines[0]
        assert status.gps_fix == "3D"
    else:
        assert status.clock_offset_ns is None and status.gps_fix == "none", lines[0]
    words = lines[1].split()
    assert status.supply_volts == float(words[7][:-1]), lines[1]
    assert status.temperature_c == float(words[9][:-2]), lines[1]
    assert status.extra["mass_positions_raw"] == " ".join(lines[2].split()[6:]), lines[2]
    block = decode_block(encode_block(GcfBlock("SIM1", "SIMD00", T0, 0.0, status_text=text)))
    assert status_from_block(block) == parse_status_text("SIM1", T0, text.rstrip(" \x00"))


def _check_cd(body: bytes) -> None:
    try:
        status = parse_cd_status("FUZZ1", T0, body)
    except ValueError as exc:
        assert len(body) < CD_STATUS_SIZE and f"{len(body)} bytes" in str(exc), f"{len(body)} bytes: {exc}"
        return
    assert len(body) >= CD_STATUS_SIZE, f"a {len(body)}-byte CD status body was read"
    _check_status(status)
    assert status.clock_offset_ns == int.from_bytes(body[4:8], "little", signed=True) * 500
    assert status.gps_locked == (body[2] == 0xFF)
    assert status.calibration_active == bool(body[11] & 0b11100)
    sent = body[:MAX_STATUS_TEXT]
    block = GcfBlock("FUZZ1", "FUZZCD", T0, 0.0, status_bytes=sent)
    again = status_from_block(decode_block(encode_block(block)))
    assert again == parse_cd_status("FUZZ1", T0, sent + bytes(-len(sent) % 4)), "a CD block reads differently"


# ---------------------------------------------------------------------------------------------- session


def _run_session(stream: bytes, pieces: list[int], rewind: bool, reconnect: int) -> tuple:
    """The session's outcome; the port is reopened at offset ``reconnect`` (not at 0), where a piece ends."""
    config = SessionConfig(watchdog_ns=100 * NS_PER_S, nak_timeout_ns=NS_PER_S, max_naks=3, rewind_margin=8,
                           rewind_timeout_ns=NS_PER_S, startup_rewind=rewind)
    session = GuralpSession(config)
    session.connection_made(0)
    requests = [ConsoleRequest(lines, DEADLINE_NS) for lines in REQUESTS]
    for request in requests:
        session.submit(request)
    out = session.poll(0)  # the break-in
    at = 0
    for size in pieces:
        if at and at == reconnect:
            session.connection_made(NS_PER_S)
        out += session.receive(stream[at : at + size], NS_PER_S)
        at += size
        held = sum(len(ex.text) for ex in session._console._queue)
        assert held <= CONSOLE_HELD_MAX, f"{held} bytes of console text held"
    out += session.poll(DEADLINE_NS + 1)
    console: list = []
    stray = bytearray()
    statuses, packets = [], []
    for o in out:
        assert isinstance(o, OUTPUTS), f"unexpected output {o!r}"
        if isinstance(o, ConsoleFailed):
            assert o.reason, o
        if isinstance(o, ConsoleOpened | ConsoleFailed | ConsoleReply):
            index = requests.index(o.request)
            console.append((type(o).__name__, index, o.state.value if isinstance(o, ConsoleFailed) else
                            o.text if isinstance(o, ConsoleReply) else None))
        elif isinstance(o, StrayText):
            stray += o.text
        elif isinstance(o, brp.SendBytes) and o.data[0] not in (brp.ACK, brp.NAK):
            console.append(("sent", o.data))
        elif isinstance(o, Status):
            _check_status(o)
            statuses.append(o)
        elif isinstance(o, Packet):
            packets.append((o.sequence, o.stream_id, o.start_ns, o.samples.tobytes()))
    return (console, bytes(stray)), statuses, packets


def _console_by_plain_reading(stream: bytes, reconnect: int) -> tuple[list, bytes]:
    """Each request's outcome from the whole stream's console text and block-mode returns, read at once:
    break in, then each line's reply is the text up to the next prompt, unless longer than the console may
    say (then GO, and the request fails); after GO, the text up to ESC DC1 does not count; text while no
    request runs is stray. A reconnect starts a new byte stream, not a new console exchange."""
    console: list = [("sent", bytes((brp.BREAK_IN,)) + b"\r")]
    stray = bytearray()
    queue = list(enumerate(REQUESTS))
    state, text, replies, failed = "break", b"", [], None
    events = brp.FrameScanner().feed(stream[:reconnect]) + brp.FrameScanner().feed(stream[reconnect:])
    for event in events:
        if not queue:
            if isinstance(event, brp.TerminalText):
                stray += event.data
            continue
        index, lines = queue[0]
        if isinstance(event, brp.BlockModeResumed):
            if state == "go":
                console.append(("ConsoleFailed", index, failed) if failed else
                               ("ConsoleReply", index, "".join(replies)))
                queue.pop(0)
                state, text, replies, failed = "break", b"", [], None
            continue
        if not isinstance(event, brp.TerminalText) or state == "go":
            continue
        text += event.data
        while state != "go":
            before, prompt, rest = text.partition(brp.PROMPT)
            if len(before) > MAX_REPLY_TEXT + (0 if prompt else len(brp.PROMPT) - 1):  # a prompt may follow
                state, failed = "go", state
                console.append(("sent", b"GO\r"))
            if not prompt or state == "go":
                break
            text = rest
            if state == "line":
                replies.append(before.decode("ascii", "replace"))
            else:
                console.append(("ConsoleOpened", index, None))
            if len(replies) < len(lines):
                state = "line"
                console.append(("sent", lines[len(replies)].encode("ascii") + b"\r"))
            else:
                state = "go"
                console.append(("sent", b"GO\r"))
    if queue:
        console += [("sent", b"GO\r"), ("ConsoleFailed", queue[0][0], failed or state)]
    return console, bytes(stray)


# ---------------------------------------------------------------------------------------------- corpus

# the line forms of the DM24 manuals (digitizer/gcf_status.py)
MANUAL_LINES = (
    "2006 9 4 13:13:00 2 MicroSeconds Fast Freq error 0 e-9 Auto 3D [-4]",
    "2005 8 10 12:36:00 GPS Control settling Auto 3-D [-5 Not sync'd]",
    "2006 1 18 14:38:00 o/s= 90 drift= 0 pwm= 8187 Auto 3D",
    '2006 1 18 14:38:00 o/s= 90 drift= 0 pwm= 8187 Fix= "3D"',
    "2006 9 4 13:13:00 Lat= \"51'21.6526N\" Long=\"001'09.8148W\"",
    "Boot Log : 143 Power cycles 294 Watchdog resets",
    "Boot Log : Power_cycles= 143 Watchdog_resets= 294",
    "2006 1 18 14:56:15 External supply : 13.0V Temperature 24.68'C",
    "2006 1 18 14:56:15 Mass positions -486 -300 -424",
    "2005 8 10 17:06:27 GPS switched Off",
)


def _sim_console_reply(lines: tuple[str, ...], status: str) -> bytes:
    """What the simulated firmware writes for a break-in, ``lines`` and GO (``SimDigitizer._console_*``)."""
    out = brp.PROMPT
    for line in lines:
        out += (status.encode("ascii") if line == "STATUS" else b"") + brp.PROMPT
    return out + brp.ESC_DC1


def seeds() -> list[bytes]:
    """The manual's line forms, the simulated digitizer's status text and console exchanges (with frames
    of data and status blocks between them), and CD status bodies."""
    text = "\r\n".join(MANUAL_LINES) + "\r\n"
    out = [b"\x00" + text.encode("ascii"), b"\x00" + text.replace("\r\n", "\n").encode("ascii")]
    out += [b"\x00" + line.encode("ascii") for line in MANUAL_LINES]
    out += [b"\x01" + bytes((flags,)) + bytes(range(i, i + 16)) for i, flags in enumerate((0, 1, 2, 3, 0x10))]
    out += [b"\x02" + bytes((ord("3"), ord("A"), 0xFF, 1)) + (-1234).to_bytes(4, "little", signed=True)
            + bytes((5, 0, 0, 0b100101, 0, 0, 0, 0)), b"\x02" + bytes(15)]
    sim_text, _, _ = _simulated_text(Draw(bytes(16)))
    tx = brp.BrpTransmitter()
    walk = np.arange(100, dtype=np.int32)
    frames = [tx.frame(encode_block(GcfBlock("SIM1", "SIMDZ0", T0 + i * NS_PER_S, 100.0, samples=walk)))[1]
              for i in range(3)]
    frames.append(tx.frame(encode_block(GcfBlock("SIM1", "SIMD00", T0, 0.0, status_text=sim_text)))[1])
    cd_body = bytes((ord("3"), ord("A"), 0xFF, 1, 3, 0, 0, 0, 0, 0, 0, 0b100, 0, 0, 0, 0))
    frames.append(tx.frame(encode_block(GcfBlock("SIM1", "SIMDCD", T0, 0.0, status_bytes=cd_body)))[1])
    exchange = _sim_console_reply(REQUESTS[0], sim_text) + _sim_console_reply(REQUESTS[1], "")
    refused = brp.PROMPT + brp.PROMPT + b"Z 1 HZ SINEWAVE undefined (unknown word)\r\n" + brp.PROMPT
    streams = [exchange, frames[0] + exchange[:30] + frames[1] + exchange[30:] + frames[2] + frames[3],
               exchange[:-2] + frames[3] + frames[4], brp.PROMPT + refused,
               b"boot\r\n" + exchange + b"after\r\n", exchange.replace(brp.PROMPT, brp.PROMPT + b"\x1b"),
               b"".join(frames)]
    out += [bytes((mode,)) + bytes((cut,)) + s for s in streams for mode, cut in ((3, 0), (3, 7), (15, 5))]
    # a reconnect halfway (mode 11) after ten blocks, the digitizer two blocks further on: a rewind of two
    tx = brp.BrpTransmitter()
    later = [tx.frame(encode_block(GcfBlock("SIM1", "SIMDZ0", T0 + i * NS_PER_S, 100.0, samples=walk)))[1]
             for i in range(14)]
    return out + [b"\x0b\x03" + b"".join(later[:10] + later[12:] + later[4:12])]


DICTIONARY = [brp.PROMPT, brp.ESC_DC1, b"\r\n", b" MicroSeconds Fast", b" MicroSeconds Slow", b" Freq error ",
              b" e-9 Auto 3D", b"GPS Control settling", b"Not sync'd", b"o/s= ", b" drift= ", b" pwm= ",
              b"Fix= \"", b"Lat= \"", b" Long=\"", b"Boot Log : ", b"External supply : ", b"V Temperature ",
              b"'C", b"Mass positions ", b"GPS switched Off", b"2006 9 4 13:13:00 ", b"9999", b"-",
              b"99999999999999999999", b".5", b"G"]
