"""SeedLink: arbitrary client bytes into the IDC server's protocol core (``idc.seedlink.protocol.Session``)
over a real on-disk ring, then the records it asks for streamed to it; and every word of the input
through the argument parsers (``selection``, ``times``) against a plain reading of docs/seedlink.md.

Input layout: byte 0 picks the ring view (bit 0: sequence numbers as they start, or shifted so that
their low 24 bits wrap among the records held) and the limits (bit 1: the defaults, or tight ones that
fuzzing reaches); byte 1 how the bytes are cut into reads; the rest is what the client sends.

Invariants:
- ``feed`` never raises; what it holds of a pending line stays below the line limit; the connection is
  closed once ``max_errors`` commands were refused, and stations and selectors stay within their limits;
- the replies are only what the protocol says: ``OK``, ``ERROR`` (protocol 3, extended with a SeedLink 4
  error code and a message), ``ERROR CODE message`` (protocol 4), the HELLO lines, the CAT list,
  capabilities, SLINFO records of 512 bytes, and INFO JSON packets whose length is right and whose
  document is JSON (with an ``error`` exactly when the packet says so); every error code is one the
  SeedLink 4 specification defines, and messages are printable ASCII;
- every event for the log has a known level and only printable ASCII text (the client's bytes cannot
  forge log lines), and a refusal names a reason;
- how the bytes are cut into reads changes nothing: replies, events, state, and the packets streamed;
- resume points lie in the ring; every packet frames exactly a ring record (protocol 3: its low 24 bits;
  protocol 4: its 64-bit number and ``NET_STA``), of a channel the client asked for, in increasing order;
- every station pattern and selector the session took matches exactly the channels a plain reading of
  its text matches; every word of the input is accepted as a station, selector or time exactly when the
  plain reading accepts it, a time has the plain reading's value, and a refusal quotes the word.
"""

from __future__ import annotations

import datetime
import json
import random
import string
import struct
from fnmatch import fnmatchcase
from functools import cache

from fuzz.config_file import scratch_dir
from fuzz.draw import read_sizes
from idc.seedlink.info import Identity
from idc.seedlink.protocol import V3_MASK, FramedRecord, Limits, Phase, Session
from idc.seedlink.record import RECORD_LENGTH
from idc.seedlink.ring import Ring, RingBatch, RingRecord, StreamSummary
from idc.seedlink.selection import selector_v3, selector_v4, station_v3, station_v4
from idc.seedlink.times import parse_time
from tests.idc.seedlink.conftest import records, walk
from timeunits import NS_PER_S

T0 = 1_700_000_000 * NS_PER_S
NOW = T0 + 3600 * NS_PER_S
IDENTITY = Identity("IMS-IDC fuzz", "Fuzz IDC", T0)
CHANNELS = (("XX", "STA1", "00", "BHZ"), ("XX", "STA1", "", "BHN"), ("IM", "AB12C", "10", "HHZ"),
            ("XX", "STA2", "00", "SH"))
PROBES = (*CHANNELS, ("XX", "STA1", "10", "BHZ"), ("IM", "STA1", "00", "LHZ"), ("G", "X", "", "Z"),
          ("XX", "STA10", "0", "BH1"))
TIGHT = Limits(max_line_bytes=96, max_stations=5, max_selectors=3, max_errors=6, max_info_bytes=1200,
               window_grace_s=0.0)
SHIFT = 0x2_000_000 - 16  # the held records' numbers straddle a 24-bit wrap
ERROR_CODES = {"UNSUPPORTED", "UNEXPECTED", "UNAUTHORIZED", "LIMIT", "ARGUMENTS", "AUTH", "INTERNAL"}
LEVELS = {"debug", "info", "warning"}
_V4_HEAD = struct.Struct("<IQB")

READ_SIZES = (1, 2, 3, 7, 13, 100, 600)  # the reads a stream is cut into, for the cutting check


def check(data: bytes) -> None:
    mode = data[0] if data else 0
    view = _views()[mode & 1]
    limits = TIGHT if mode & 2 else Limits()
    stream = data[2:]
    whole = _run(view, limits, stream, [len(stream)] if stream else [])
    cuts = random.Random(data[1] if len(data) > 1 else 0)
    cut = _run(view, limits, stream, read_sizes(len(stream), cuts, READ_SIZES))
    for name, a, b in zip(("replies", "events", "state", "packets"), whole, cut, strict=True):
        assert a == b, f"{name} depend on how the bytes were cut into reads"
    _check_words(stream)


class _Recording(Session):
    """A session that notes the protocols it spoke while answering commands."""

    spoken: set[int]

    def _command(self, raw: bytes) -> bytes:
        out = super()._command(raw)
        self.spoken.add(self.protocol)
        return out


def _run(view: _View, limits: Limits, stream: bytes, pieces: list[int]) -> tuple:
    session = _Recording(view, IDENTITY, limits, peer="fuzz")
    replies, events, at = b"", [], 0
    for size in pieces:
        streaming = session.phase is not Phase.HANDSHAKE
        session.spoken = {session.protocol}
        out = session.feed(stream[at : at + size], NOW)
        at += size
        assert isinstance(out, bytes)
        _check_replies(out, session.spoken, info_only=streaming)
        replies += out
        events += session.take_events()
        if session.phase is not Phase.CLOSED:
            assert len(session._buffer) < limits.max_line_bytes, f"{len(session._buffer)} bytes held"
        assert (session.errors >= limits.max_errors) <= (session.phase is Phase.CLOSED), (
            f"{session.errors} refusals and the connection still open")
    assert len(session._requests) <= limits.max_stations, f"{len(session._requests)} stations"
    for request in (*session._requests, None):
        selectors = request.selectors if request else session._global
        assert len(selectors) <= limits.max_selectors, f"{len(selectors)} selectors"
        if request and request.pattern:
            _check_station_pattern(request.pattern, session.protocol)
        for selector in selectors:
            _check_selector(selector, session.protocol)
    packets = _pump(session, view) if session.phase is Phase.STREAMING else b""
    events += session.take_events()
    _check_events(events)
    state = (session.phase, session.protocol, session.cursor, session.errors, session.dialup,
             session.user_agent, [(r.pattern and r.pattern.text, [s.text for s in r.selectors], r.start,
                                   r.begin_ns, r.end_ns) for r in session._requests])
    return replies, events, state, packets


# ---------------------------------------------------------------------------------------- streaming


def _pump(session: Session, view: _View) -> bytes:
    """What the server's pump does: records from the cursor, then END when the request is complete."""
    for request in session._requests:
        assert request.start is not None and view.oldest_seq <= request.start <= view.next_seq, (
            f"resume point {request.start} outside the ring [{view.oldest_seq}, {view.next_seq}]")
    out = b""
    while session.phase is Phase.STREAMING and session.cursor < view.next_seq:
        batch = view.read(session.cursor, 5, session.wants)
        if batch.first_seq > session.cursor:
            session.skip_to(batch.first_seq)
        out += _check_packets(session, view, session.stream([FramedRecord(r) for r in batch.records],
                                                             batch.next_seq))
    end = session.caught_up(NOW)
    assert end in (b"", b"END") and (end == b"END") == (session.phase is Phase.ENDED)
    return out + end


def _check_packets(session: Session, view: _View, out: bytes) -> bytes:
    held = {r.seq: r for r in view.read(0, 64).records}
    at, last = 0, -1
    while at < len(out):
        if session.protocol == 3:
            head, record = out[at : at + 8], out[at + 8 : at + 8 + RECORD_LENGTH]
            assert head[:2] == b"SL" and all(c in b"0123456789ABCDEF" for c in head[2:]), head
            rec = next((r for r in held.values() if r.record == record and r.seq > last), None)
            assert rec is not None and int(head[2:], 16) == rec.seq & V3_MASK, f"packet {head!r}"
            at += 8 + RECORD_LENGTH
        else:
            assert out[at : at + 4] == b"SE2D", out[at : at + 4]
            length, seq, sid_len = _V4_HEAD.unpack_from(out, at + 4)
            body = at + 4 + _V4_HEAD.size
            rec = held.get(seq)
            assert rec is not None and length == RECORD_LENGTH, f"packet of {seq} ({length} bytes)"
            assert out[body : body + sid_len] == f"{rec.network}_{rec.station}".encode()
            assert out[body + sid_len : body + sid_len + length] == rec.record
            at = body + sid_len + length
        assert rec.seq > last, f"record {rec.seq} sent after {last}"
        assert session.wants(rec.network, rec.station, rec.location, rec.channel), f"{rec[:5]} not asked for"
        last = rec.seq
    return out


# ------------------------------------------------------------------------------------------ replies


def _check_replies(out: bytes, protocols: set[int], info_only: bool) -> None:
    """Cut the replies into the forms the protocol has; anything else is garbage sent to the client. Once
    packets flow (``info_only``), only INFO packets may come between them. ``protocols``: those the
    session spoke while it made them (SLPROTO may come between them)."""
    hello = f"SeedLink v4.0 ({IDENTITY.software}) :: ".encode()
    at = 0
    while at < len(out):
        rest = out[at:]
        assert not info_only or rest.startswith((b"SLINFO", b"SEJ")), f"{rest[:40]!r} among the packets"
        if rest.startswith((b"OK\r\n", b"ERROR\r\n")):
            at += rest.index(b"\n") + 1
        elif rest.startswith((b"ERROR\r", b"ERROR ")):
            line, _, _ = rest[6:].partition(b"\r\n")
            code, _, message = line.partition(b" ")
            assert code.decode() in ERROR_CODES and message, f"error reply {rest[:80]!r}"
            _printable(message.decode("ascii"))
            at += 6 + len(line) + 2
        elif rest.startswith(hello):
            at += rest.index(b"\r\n", rest.index(b"\r\n") + 2) + 2
        elif rest.startswith(b"SLPROTO:"):  # GETCAPABILITIES
            at += rest.index(b"\r\n") + 2
        elif rest.startswith(b"SLINFO"):
            assert rest[6:8] in (b" *", b"  ") and len(rest) >= 8 + RECORD_LENGTH, rest[:8]
            at += 8 + RECORD_LENGTH
        elif rest.startswith((b"SEJI", b"SEJE")):
            length, seq, sid_len = _V4_HEAD.unpack_from(rest, 4)
            doc = json.loads(rest[4 + _V4_HEAD.size : 4 + _V4_HEAD.size + length])
            assert 4 in protocols and seq == 0 and sid_len == 0 and len(rest) >= 4 + _V4_HEAD.size + length
            assert ("error" in doc) == rest.startswith(b"SEJE"), f"INFO {rest[:4]!r} with {sorted(doc)}"
            if "error" in doc:
                assert doc["error"]["code"] in ERROR_CODES and doc["error"]["message"], doc["error"]
            at += 4 + _V4_HEAD.size + length
        else:  # CAT: "NET STA" lines, then END
            end = rest.find(b"END\r\n")
            assert end >= 0, f"unknown reply {rest[:80]!r}"
            for line in rest[:end].split(b"\r\n")[:-1]:
                net, sta = line.decode("ascii").split(" ")
                assert any((net, sta) == c[:2] for c in CHANNELS), f"CAT line {line!r}"
            at += end + 5


def _printable(text: str) -> None:
    assert text.isascii() and text.isprintable(), f"unprintable text {text!r}"


def _check_events(events: list) -> None:
    for event in events:
        assert event.level in LEVELS and event.message, event
        for value in (event.message, *event.fields.values()):
            if isinstance(value, str):
                _printable(value)
        if event.message == "command refused":
            assert event.fields["code"] in ERROR_CODES and event.fields["reason"], event


# ------------------------------------------------------------------------- plain reading of the texts

_ALNUM = frozenset(string.ascii_letters + string.digits)
_WILD = _ALNUM | {"*", "?"}


def _plain_station(text: str, network: str | None, protocol: int) -> str | None:
    """The ``NET_STA`` glob a STATION argument stands for, None if it is not one (docs/seedlink.md)."""
    if protocol == 4:
        return text.upper() if 1 <= len(text) <= 64 and set(text) <= _WILD | {"_"} else None
    network = "*" if network is None else network
    for value, longest in ((text, 5), (network, 2)):
        if not value or not set(value) <= _WILD or ("*" not in value and len(value) > longest):
            return None
    return f"{network}_{text}".upper()


def _plain_selector(text: str, protocol: int):
    """(negative, glob, subject of a channel, takes data records), None if ``text`` is no selector."""
    negative = text.startswith("!")
    body = text[1:] if negative else text
    if protocol == 3:
        codes, dot, kind = body.partition(".")
        if dot and not (len(kind) == 1 and kind in "DECOTL?"):
            return None
        if len(codes) == 5 and set(codes[:2]) <= _ALNUM | {"?", "-"} and set(codes[2:]) <= _ALNUM | {"?"}:
            glob = codes.replace("-", " ")
        elif len(codes) == 3 and set(codes) <= _ALNUM | {"?"}:
            glob = "??" + codes
        elif not codes and dot:
            glob = "?????"
        else:
            return None
        return negative, glob.upper(), lambda loc, cha: f"{loc:<2}{cha:<3}", kind in ("", "?", "D")
    body, colon, conversion = body.partition(":")
    if colon and (negative or conversion.lower() != "native"):
        return None
    streams, dot, kind = body.partition(".")
    if not set(streams) <= _WILD | {"_"} or (dot and not (1 <= len(kind) <= 2 and set(kind) <= _WILD)):
        return None
    if not kind:
        data = True
    elif len(kind) == 1 and kind.upper() in "DECOTL":  # a lone type letter is the subformat
        data = kind.upper() == "D"
    else:  # a format/subformat pattern matched from the start of "2D"
        data = fnmatchcase("2D", kind.upper() + "*")
    subject = lambda loc, cha: f"{loc}_{'_'.join(cha)}" if len(cha) == 3 else f"{loc}_{cha}"  # noqa: E731
    return negative, (streams or "*").upper(), subject, data


def _check_station_pattern(pattern, protocol: int) -> None:
    net, _, sta = pattern.text.partition("_")
    glob = _plain_station(pattern.text, None, 4) if protocol == 4 else _plain_station(sta, net, 3)
    assert glob is not None, f"station {pattern.text!r} taken"
    for net, sta, *_ in PROBES:
        plain = fnmatchcase(f"{net}_{sta}".upper(), glob)
        assert pattern.matches(net, sta) == plain, f"station {pattern.text!r} on {net}_{sta}: not {plain}"


def _check_selector(selector, protocol: int) -> None:
    plain = _plain_selector(selector.text, protocol)
    assert plain is not None, f"selector {selector.text!r} taken"
    negative, glob, subject, data = plain
    assert selector.negative == negative
    for _, _, loc, cha in PROBES:
        expected = data and fnmatchcase(subject(loc, cha).upper(), glob)
        assert selector.matches(loc, cha) == expected, f"selector {selector.text!r} on {loc}.{cha}"


def _plain_time(text: str) -> int | None:
    """ns of a time argument (``Y,M,D[,h[,m[,s[.f][,ns]]]]`` or ``Y-M-D[Th:m[:s[.f]]][Z]``), or None."""
    def digits(s: str, lo: int, hi: int) -> bool:
        return lo <= len(s) <= hi and s.isascii() and s.isdigit()

    fraction = extra = "0"
    if "," in text:
        parts = text.split(",")
        if not 3 <= len(parts) <= 7:
            return None
        if len(parts) >= 6:
            parts[5], dot, fraction = parts[5].partition(".")
            if dot and not digits(fraction, 1, 9):
                return None
        if len(parts) == 7:
            extra = parts.pop()
            if not digits(extra, 1, 9):
                return None
        fields = parts
    else:
        body = text[:-1] if text.endswith("Z") else text
        date, sep, clock = body.partition("T")
        fields = date.split("-")
        if len(fields) != 3 or (sep and not clock):
            return None
        if sep:
            hms = clock.split(":")
            if len(hms) == 3:
                hms[2], dot, fraction = hms[2].partition(".")
                if dot and not digits(fraction, 1, 9):
                    return None
            if len(hms) not in (2, 3):
                return None
            fields += hms
    if not digits(fields[0], 4, 4) or not all(digits(f, 1, 2) for f in fields[1:]):
        return None
    year, month, day, hour, minute, second = (int(f) for f in (*fields, "0", "0", "0")[:6])
    try:
        days = datetime.date(year, month, day).toordinal() - datetime.date(1970, 1, 1).toordinal()
    except ValueError:
        return None
    if hour > 23 or minute > 59 or second > 60:
        return None
    seconds = days * 86400 + hour * 3600 + minute * 60 + second
    return seconds * NS_PER_S + int(fraction.ljust(9, "0")) + int(extra)


def _check_words(stream: bytes) -> None:
    """Every word of the input as a station, a selector and a time, against the plain reading."""
    words = stream.decode("latin-1").split()[:40]
    for i, word in enumerate(words):
        after = words[i + 1] if i + 1 < len(words) else None
        for protocol, parse in ((3, selector_v3), (4, selector_v4)):
            selector = _agree(word, parse, _plain_selector(word, protocol))
            if selector is not None:
                _check_selector(selector, protocol)
        pattern = _agree(word, station_v4, _plain_station(word, None, 4))
        if pattern is not None:
            _check_station_pattern(pattern, 4)
        pattern = _agree(word, lambda w, net=after: station_v3(w, net), _plain_station(word, after, 3), after)
        if pattern is not None:
            _check_station_pattern(pattern, 3)
        plain = _plain_time(word)
        ns = _agree(word, parse_time, plain)
        assert ns == plain, f"time {word!r}: {ns}, the plain reading {plain}"


def _agree(word: str, parse, plain, also: str | None = None):
    """What ``parse`` makes of ``word`` (None if it refuses it, quoting it, as the plain reading does)."""
    try:
        parsed = parse(word)
    except ValueError as exc:
        assert plain is None, f"{parse.__name__} refused {word!r} ({exc}), the plain reading takes it"
        assert repr(word) in str(exc) or (also is not None and repr(also) in str(exc)), (
            f"refusal of {word!r} does not quote it: {exc}")
        return None
    assert plain is not None, f"{parse.__name__} took {word!r}, the plain reading refuses it"
    return parsed


# ---------------------------------------------------------------------------------------------- ring


class _View:
    """The ring as a session sees it, sequence numbers shifted by ``shift``."""

    def __init__(self, ring: Ring, shift: int) -> None:
        self.ring, self.shift = ring, shift

    @property
    def next_seq(self) -> int:
        return self.ring.next_seq + self.shift

    @property
    def oldest_seq(self) -> int:
        return self.ring.oldest_seq + self.shift

    def first_seq_ending_after(self, time_ns: int) -> int:
        return self.ring.first_seq_ending_after(time_ns) + self.shift

    def start_of(self, seq: int) -> int | None:
        return self.ring.start_of(seq - self.shift)

    def streams(self) -> list[StreamSummary]:
        return [s._replace(first_seq=s.first_seq + self.shift, last_seq=s.last_seq + self.shift)
                for s in self.ring.streams()]

    def read(self, seq: int, max_records: int, accept=None) -> RingBatch:
        batch = self.ring.read(max(0, seq - self.shift), max_records, accept)
        return RingBatch([RingRecord(r.seq + self.shift, *r[1:]) for r in batch.records],
                         batch.first_seq + self.shift, batch.next_seq + self.shift)


@cache
def _views() -> tuple[_View, _View]:
    """A ring of 16 records holding the last 16 of 24 (so the first 8 are gone), 10 s each per channel."""
    ring = Ring.open(scratch_dir() / "seedlink.ring", records=16, sync=False)
    if ring.next_seq == 1:
        for k in range(6):
            ring.append_batch([(*c, records(*c, T0 + k * 10 * NS_PER_S, walk(k, 10), rate=1.0))
                               for c in CHANNELS])
    return _View(ring, 0), _View(ring, SHIFT)


# ---------------------------------------------------------------------------------------------- corpus

_SESSIONS = [
    b"HELLO\r\nSTATION STA1 XX\r\nSELECT 00BHZ\r\nDATA 10\r\nSTATION AB12C IM\r\nSELECT !HH?\r\nEND\r\n",
    b"HELLO\r\nCAT\r\nINFO ID\r\nINFO CAPABILITIES\r\nINFO STATIONS\r\nINFO STREAMS\r\nBYE\r\n",
    b"BATCH\r\nSTATION STA? XX\r\nSELECT BH?.D\r\nFETCH 12 2023,11,14,22,13,40\r\nSTATION *\r\n"
    b"TIME 2023,11,14,22,13,30 2023,11,14,22,14,00\r\nEND\r\n",
    b"CAPABILITIES EXTREPLY\r\nSELECT HHZ\r\nSELECT --SH\r\nDATA\r\n",
    b"SELECT ??BH?\r\nTIME 2023,11,14,22,13,25.5\r\n",
    b"STATION STA1\nDATA 0x1000000\rSTATION STA2 XX\nFETCH FFFFF0\nEND\n",
    b"SLPROTO 4.0\r\nUSERAGENT fuzz/1.0 (libslink)\r\nGETCAPABILITIES\r\nSTATION XX_STA*\r\n"
    b"SELECT 00_B_H_?.2D\r\nSELECT !*_?_?_N\r\nDATA ALL\r\nSTATION IM_AB12C\r\n"
    b"SELECT *:native\r\nDATA -1 2023-11-14T22:13:30Z 2023-11-14T22:14:10.25Z\r\nENDFETCH\r\n",
    b"SLPROTO 4.0\r\nINFO FORMATS\r\nINFO STATIONS XX_*\r\nINFO STREAMS *_STA1 *_B_H_Z.D\r\nINFO ID\r\n"
    b"STATION XX_STA1\r\nDATA 20\r\nEND\r\nINFO STREAMS\r\nBYE\r\n",
    b"SLPROTO 4.0\r\nSTATION *\r\nSELECT _S_H\r\nFETCH 33554420 2023-11-14 2023-11-14T23:00\r\nEND\r\n",
    b"GET / HTTP/1.1\r\nHost: idc\r\n\r\nHELLO\r\nSTATION STA1 XX\r\nSELECT 00BHZ.E\r\nDATA 10 1999,1,1\r\n"
    b"SLPROTO 3.1\r\nSTATION STA1 XX\r\nDATA 7FFFFFFFFFFFFFFF\r\nEND\r\nINFO STREAMS\r\nBYE\r\n",
    b"SLPROTO 4.1\r\nSLPROTO 4.0\r\nDATA\r\nSTATION XX_STA1 extra\r\nSTATION XX_STA1\r\nSELECT a b\r\n"
    b"DATA 5 2023-11-14T22:14:00 2023-11-14T22:13:00\r\nINFO LEVEL\r\nEND\r\n",
]


def seeds() -> list[bytes]:
    """Real command sequences (as SeisComP, ObsPy, slinktool and SeedLink 4 clients send them), with
    each ring view and each set of limits."""
    return [bytes((mode, cut)) + s for s in _SESSIONS for mode, cut in ((0, 0), (1, 7), (2, 3), (3, 11))]


DICTIONARY = [b"\r\n", b"HELLO", b"STATION ", b"SELECT ", b"DATA ", b"FETCH ", b"TIME ", b"END", b"BYE",
              b"INFO ", b"SLPROTO 4.0", b"CAT", b"BATCH", b"ENDFETCH", b"CAPABILITIES EXTREPLY",
              b"USERAGENT ", b"GETCAPABILITIES", b"STREAMS", b"STATIONS", b"ALL", b"-1", b":native",
              b"2023,11,14,22,13,30", b"2023-11-14T22:13:30.5Z", b".D", b"!", b"*", b"?", b"_", b"--",
              b"0x1000000", b"FFFFFF"]
