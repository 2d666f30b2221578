"""SeedLink server protocol core, sans I/O: bytes from a client in, replies and packets out.

One :class:`Session` per connection. The adapter feeds it what the client sent (:meth:`Session.feed`
returns the replies), and while the session streams it hands it the ring's records from
``session.cursor`` on (:meth:`Session.stream` returns the packets to send) and tells it when it has
caught up with the ring (:meth:`Session.caught_up` returns ``END`` when a dial-up or time-window
request is complete). The session never touches a socket, reads no clock and logs nothing: "now" comes
with the calls that need it, what happened comes back as :class:`Event` s for the adapter to log
(:meth:`Session.take_events`), and ring positions and INFO summaries are read through :class:`RingView`.

Protocol 3 (SeisComP/ObsPy/slinktool): HELLO, CAT, BYE, BATCH, CAPABILITIES EXTREPLY, STATION sta [net],
SELECT [LL]CCC[.T], DATA/FETCH [seq [begin [end]]], TIME begin [end], END, INFO; uni-station mode (SELECT
then DATA/FETCH/TIME without STATION) starts at once; packets are ``SL`` + 6 hex digits (the low 24 bits
of the sequence number) + the 512-byte record. Protocol 4 after ``SLPROTO 4.0``: STATION NET_STA, SELECT
LOC_B_S_SS[.FS], DATA/FETCH [seq|-1|ALL [begin [end]]], END/ENDFETCH, GETCAPABILITIES, USERAGENT,
INFO in JSON, extended ``ERROR CODE message`` replies; packets are ``SE`` + format ``2`` + subformat ``D``
+ payload length (u32 LE) + sequence number (u64 LE) + station ID length (u8) + ``NET_STA`` + record.

Sequence numbers: one 64-bit counter for the whole ring (unique and increasing per station, as both
protocols require). A protocol 3 sequence number means the newest held with those 24 low bits. A
requested number older than the ring or beyond its head (a ring that was replaced) starts at the oldest
record held: a resuming client then gets everything that is left rather than waiting or losing data.
Each station request keeps its own start, so stations resumed from different numbers get no gap.

Everything a client can make the session hold is bounded (:class:`Limits`): line length, stations,
selectors per station, errors before disconnection, INFO document size.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import NamedTuple, Protocol

from idc.seedlink.info import (
    LEVELS_V3,
    LEVELS_V4,
    Identity,
    StationEntry,
    by_station,
    json_document,
    xml_document,
)
from idc.seedlink.record import RECORD_LENGTH, info_records
from idc.seedlink.ring import RingRecord, StreamSummary
from idc.seedlink.selection import (
    Selector,
    StationPattern,
    selector_v3,
    selector_v4,
    station_id,
    station_v3,
    station_v4,
    wanted,
)
from idc.seedlink.times import parse_time
from timeunits import NS_PER_S

V3_MASK = 0xFFFFFF
_V4_HEAD = struct.Struct("<IQB")  # payload length, sequence number, station ID length
_VERBS_HTTP = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "CONNECT", "PATCH"))
_SHOWN = re.compile(r"[^\x20-\x7e]")
_USAGE = {
    ("DATA", 3): "DATA takes at most a hexadecimal sequence number and the start time of its record",
    ("FETCH", 3): "FETCH takes at most a hexadecimal sequence number and the start time of its record",
    ("DATA", 4): "DATA takes at most a sequence number (or -1 or ALL), a begin time and an end time",
    ("FETCH", 4): "FETCH takes at most a sequence number (or -1 or ALL), a begin time and an end time",
    ("TIME", 3): "TIME takes a begin time and an optional end time",
}
CAPABILITIES = "SLPROTO:3.1 SLPROTO:4.0 CAP EXTREPLY NSWILDCARD BATCH MULTISTATION TIME " + " ".join(
    f"INFO:{level}" for level in ("ID", "CAPABILITIES", "STATIONS", "STREAMS")
)


class RingView(Protocol):
    """What a session reads of the ring besides records (which the adapter hands it)."""

    @property
    def next_seq(self) -> int: ...

    @property
    def oldest_seq(self) -> int: ...

    def first_seq_ending_after(self, time_ns: int) -> int: ...

    def start_of(self, seq: int) -> int | None: ...

    def streams(self) -> list[StreamSummary]: ...


class Phase(Enum):
    HANDSHAKE = "handshake"
    STREAMING = "streaming"
    ENDED = "ended"  # END sent after a dial-up or time-window request; only BYE is taken now
    CLOSED = "closed"  # BYE, or too many errors: the adapter closes the connection


class Event(NamedTuple):
    """Something the adapter should log: level ("debug", "info", "warning"), message, fields."""

    level: str
    message: str
    fields: dict[str, object]


@dataclass(frozen=True)
class Limits:
    max_line_bytes: int = 512  # one command line, terminator included
    max_stations: int = 1000  # STATION requests per client (an IMS network is ~300 stations)
    max_selectors: int = 64  # SELECT patterns per station (and for all-station mode)
    max_errors: int = 20  # refused commands before the connection is closed
    max_info_bytes: int = 8 << 20  # one INFO document
    window_grace_s: float = 60.0  # a time window ends this long after its end time, data or not


class FramedRecord:
    """A ring record with its packets built once, however many clients send it."""

    __slots__ = ("rec", "_v3", "_v4")

    def __init__(self, rec: RingRecord) -> None:
        self.rec = rec
        self._v3: bytes | None = None
        self._v4: bytes | None = None

    def v3(self) -> bytes:
        if self._v3 is None:
            self._v3 = b"SL%06X" % (self.rec.seq & V3_MASK) + self.rec.record
        return self._v3

    def v4(self) -> bytes:
        if self._v4 is None:
            sid = station_id(self.rec.network, self.rec.station).encode("ascii")
            self._v4 = b"SE2D" + _V4_HEAD.pack(RECORD_LENGTH, self.rec.seq, len(sid)) + sid + self.rec.record
        return self._v4


@dataclass
class _Request:
    """One STATION (None: every station) with its selectors and where and when its data start."""

    pattern: StationPattern | None
    selectors: list[Selector] = field(default_factory=list)
    start: int | None = None  # first sequence number wanted; None: decided when streaming starts
    begin_ns: int | None = None  # time window
    end_ns: int | None = None


class CommandError(Exception):
    """A refused command: SeedLink 4 error code and a message for the client and the log."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class Session:
    """One client connection's protocol state."""

    def __init__(
        self,
        ring: RingView,
        identity: Identity,
        limits: Limits | None = None,
        peer: str = "",
    ) -> None:
        self.ring = ring
        self.identity = identity
        self.limits = limits or Limits()
        self.peer = peer
        self.phase = Phase.HANDSHAKE
        self.protocol = 3
        self.cursor = 0  # next sequence number to look at while streaming
        self.dialup = False
        self.packets_sent = 0
        self.errors = 0
        self.user_agent = ""
        self._buffer = bytearray()
        self._discarding = False  # the rest of an overlong line is being dropped
        self._batch = False
        self._extreply = False
        self._requests: list[_Request] = []
        self._global: list[Selector] = []  # SELECT before any STATION (all-station mode)
        self._stop_seq: int | None = None  # dial-up: the ring head when streaming began
        self._routes: dict[tuple[str, str, str, str], _Request | None] = {}
        self._seen: set[tuple[str, str, str, str]] = set()  # channels with data in a time window
        self._passed: set[tuple[str, str, str, str]] = set()  # ... and past its end
        self._now = 0  # "now" given with the latest call, ns
        self._events: list[Event] = []

    def take_events(self) -> list[Event]:
        """What happened since the last call, for the adapter to log (the core does no I/O)."""
        events, self._events = self._events, []
        return events

    def _event(self, level: str, message: str, **fields: object) -> None:
        self._events.append(Event(level, message, {"peer": self.peer, **fields}))

    # ---- commands

    @property
    def hello(self) -> str:
        """First line of the HELLO reply: protocol versions and capabilities, as SeedLink 4 asks."""
        return f"SeedLink v4.0 ({self.identity.software}) :: {CAPABILITIES}"

    def feed(self, data: bytes, now_ns: int) -> bytes:
        """Take bytes from the client; returns what to send back (replies, INFO packets)."""
        self._now = now_ns
        out = bytearray()
        self._buffer += data
        too_long = CommandError("LIMIT", f"command line longer than {self.limits.max_line_bytes} bytes")
        while self.phase is not Phase.CLOSED:
            cut = _line_end(self._buffer)
            if cut < 0:
                if len(self._buffer) >= self.limits.max_line_bytes:
                    if not self._discarding:
                        out += self._refuse(too_long, "")
                    self._discarding = True
                    self._buffer.clear()
                break
            line = bytes(self._buffer[:cut])
            del self._buffer[: cut + 1]
            if self._discarding:
                self._discarding = False
                continue
            if len(line) >= self.limits.max_line_bytes:
                out += self._refuse(too_long, "")
                continue
            if line.strip():
                out += self._command(line)
        return bytes(out)

    def _command(self, raw: bytes) -> bytes:
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            return self._refuse(CommandError("ARGUMENTS", "command is not ASCII"), "")
        if _SHOWN.search(text.replace("\t", " ")):
            return self._refuse(CommandError("ARGUMENTS", "command has control characters"), "")
        words = text.split()
        verb, args = words[0].upper(), words[1:]
        if verb == "BYE":
            self.phase = Phase.CLOSED
            return b""
        if self.phase is Phase.ENDED:
            return b""
        try:
            if verb == "INFO":
                return self._info(args)
            if self.phase is not Phase.HANDSHAKE:
                self._event("debug", "command ignored while streaming", command=verb)
                return b""
            return self._handshake(verb, args)
        except CommandError as exc:
            return self._refuse(exc, verb)

    def _handshake(self, verb: str, args: list[str]) -> bytes:
        if verb == "HELLO":
            return f"{self.hello}\r\n{self.identity.organization}\r\n".encode("ascii", "replace")
        if verb == "SLPROTO":
            return self._slproto(args)
        if verb in ("CAPABILITIES", "ENABLE"):
            self._extreply = self._extreply or "EXTREPLY" in (a.upper() for a in args)
            return self._ok()
        if verb == "GETCAPABILITIES":
            return CAPABILITIES.encode("ascii") + b"\r\n"
        if verb == "USERAGENT":
            self.user_agent = " ".join(args)[:200]
            return self._ok()
        if verb == "BATCH" and self.protocol == 3:
            self._batch = True
            return b"OK\r\n"
        if verb == "CAT" and self.protocol == 3:
            lines = [f"{e.network} {e.station}\r\n" for e in by_station(self.ring.streams())]
            return ("".join(lines) + "END\r\n").encode("ascii")
        if verb == "STATION":
            return self._station(args)
        if verb == "SELECT":
            return self._select(args)
        if verb in ("DATA", "FETCH") or (verb == "TIME" and self.protocol == 3):
            return self._data(verb, args)
        if verb in ("END", "ENDFETCH"):
            self.dialup = self.dialup or verb == "ENDFETCH"
            if not self._requests:
                self._requests.append(_Request(None, list(self._global)))
            return self._start()
        if verb in _VERBS_HTTP:
            raise CommandError("UNSUPPORTED", "this port speaks SeedLink, not HTTP")
        raise CommandError("UNSUPPORTED", f"unknown command {_shown(verb)}")

    def _slproto(self, args: list[str]) -> bytes:
        if self._requests or self._global:
            raise CommandError("UNEXPECTED", "SLPROTO must come before STATION and SELECT")
        if len(args) != 1 or not re.fullmatch(r"[34](\.\d+)?", args[0]):
            raise CommandError("UNSUPPORTED", "protocol versions offered: 3.1 and 4.0")
        major, _, minor = args[0].partition(".")
        if major == "4" and minor not in ("", "0"):
            raise CommandError("UNSUPPORTED", "protocol versions offered: 3.1 and 4.0")
        self.protocol = int(major)
        return b"OK\r\n"

    def _station(self, args: list[str]) -> bytes:
        if len(self._requests) >= self.limits.max_stations:
            raise CommandError("LIMIT", f"more than {self.limits.max_stations} stations")
        try:
            if self.protocol == 4:
                if len(args) != 1:
                    raise ValueError("STATION takes one NET_STA argument")
                pattern = station_v4(args[0])
            else:
                if not 1 <= len(args) <= 2:
                    raise ValueError("STATION takes a station code and an optional network code")
                pattern = station_v3(args[0], args[1] if len(args) == 2 else None)
        except ValueError as exc:
            raise CommandError("ARGUMENTS", str(exc)) from None
        self._requests.append(_Request(pattern))
        return self._ok()

    def _select(self, args: list[str]) -> bytes:
        selectors = self._requests[-1].selectors if self._requests else self._global
        if not args:
            if self.protocol == 4:
                raise CommandError("ARGUMENTS", "SELECT needs a pattern in protocol 4")
            selectors.clear()
            return self._ok()
        if len(args) != 1:
            raise CommandError("ARGUMENTS", "SELECT takes one pattern")
        if len(selectors) >= self.limits.max_selectors:
            raise CommandError("LIMIT", f"more than {self.limits.max_selectors} selectors for one station")
        try:
            selectors.append(selector_v4(args[0]) if self.protocol == 4 else selector_v3(args[0]))
        except ValueError as exc:
            raise CommandError("ARGUMENTS", str(exc)) from None
        return self._ok()

    def _data(self, verb: str, args: list[str]) -> bytes:
        """DATA/FETCH/TIME: where (and, with a window, when) the current station's data start.

        Protocol 3: ``DATA|FETCH [seq [time]]``, the time being the start of the last record the client
        has, which checks the sequence number (to the second, as libslink sends it); ``TIME begin [end]``.
        Protocol 4: ``DATA|FETCH [seq|-1|ALL [begin [end]]]``, the times a window.
        """
        if not self._requests and self.protocol == 4:
            raise CommandError("UNEXPECTED", f"{verb} before STATION")
        most = 2 if verb == "TIME" or self.protocol == 3 else 3
        if len(args) > most or (verb == "TIME" and not args):
            raise CommandError("ARGUMENTS", _USAGE[verb, self.protocol])
        seq_arg = None if verb == "TIME" or not args else args[0]
        times = args if verb == "TIME" else args[1:]
        try:
            parsed = [parse_time(t) for t in times]
        except ValueError as exc:
            raise CommandError("ARGUMENTS", str(exc)) from None
        start = self._resolve(seq_arg) if seq_arg is not None else None
        begin = end = None
        if verb != "TIME" and self.protocol == 3 and parsed:
            start = self._checked(start, parsed[0])
        else:
            begin, end = (parsed + [None, None])[:2]
        if begin is not None and end is not None and end <= begin:
            raise CommandError("ARGUMENTS", "the end time is not after the begin time")
        request = self._requests[-1] if self._requests else _Request(None, list(self._global))
        request.start, request.begin_ns, request.end_ns = start, begin, end
        self.dialup = self.dialup or verb == "FETCH"
        if self._requests:
            return self._ok()
        self._requests.append(request)  # protocol 3 all-station mode: data flow starts now, no reply
        return self._start()

    def _checked(self, start: int | None, last_start_ns: int) -> int | None:
        """A protocol 3 resume point, kept if the record before it started at ``last_start_ns`` (to the
        second), else the first record ending after that time: the numbers belong to another ring."""
        if start is None:
            return None
        held = self.ring.start_of(start - 1)
        if held is not None and held // NS_PER_S == last_start_ns // NS_PER_S:
            return start
        self._event(
            "warning",
            "resume point does not match the time of the client's last record; resuming by time",
            seq=start,
            last_start_ns=last_start_ns,
        )
        return self.ring.first_seq_ending_after(last_start_ns)

    def _resolve(self, text: str) -> int | None:
        """The ring sequence number a DATA/FETCH argument asks for (None: the next one to come)."""
        head, oldest = self.ring.next_seq, self.ring.oldest_seq
        if self.protocol == 4:
            if text.upper() == "ALL":
                return oldest
            if text == "-1":
                return None
            if not text.isdigit() or len(text) > 20:
                raise CommandError("ARGUMENTS", f"sequence number {_shown(text)} is not a decimal number")
            wanted_seq = int(text)
        else:
            digits = text[2:] if text[:2].lower() == "0x" else text
            if not re.fullmatch(r"[0-9A-Fa-f]{1,16}", digits):
                raise CommandError("ARGUMENTS", f"sequence number {_shown(text)} is not hexadecimal")
            wanted_seq = int(digits, 16)
            if wanted_seq <= V3_MASK + 1:  # 24 bits (0x1000000: a client's last 0xFFFFFF plus one)
                wanted_seq = (head & ~V3_MASK) | (wanted_seq & V3_MASK)
                if wanted_seq > head:
                    wanted_seq -= V3_MASK + 1
        if oldest <= wanted_seq <= head:
            return wanted_seq
        self._event(
            "warning",
            "requested sequence number is not in the ring; starting at the oldest held",
            requested=text,
            oldest=oldest,
            next=head,
        )
        return oldest

    def _start(self) -> bytes:
        """End of handshaking: every request gets its start and the cursor the earliest of them."""
        head = self.ring.next_seq
        for request in self._requests:
            if request.start is None and request.begin_ns is not None:
                request.start = self.ring.first_seq_ending_after(request.begin_ns)
            elif request.start is None:
                request.start = head
        self.cursor = min(r.start if r.start is not None else head for r in self._requests)
        self._stop_seq = head if self.dialup else None
        self.phase = Phase.STREAMING
        self._event(
            "info",
            "client streaming",
            protocol=self.protocol,
            stations=len(self._requests),
            mode="dial-up" if self.dialup else "real-time",
            from_seq=self.cursor,
            user_agent=self.user_agent,
        )
        return b""

    def _info(self, args: list[str]) -> bytes:
        """An INFO reply (in either phase): XML in SLINFO records, or one JSON packet in protocol 4."""
        level = args[0].upper() if args else ""
        levels = LEVELS_V4 if self.protocol == 4 else LEVELS_V3
        error: tuple[str, str] | None = None
        if level not in levels:
            error = ("ARGUMENTS", f"INFO level {_shown(level) or 'missing'}; offered: {' '.join(levels)}")
        stations: list[StationEntry] = []
        if error is None and level in ("STATIONS", "STREAMS"):
            streams = self.ring.streams()
            if self.protocol == 4 and len(args) > 1:
                try:
                    pattern = station_v4(args[1])
                    selectors = [selector_v4(args[2])] if len(args) > 2 else []
                except ValueError as exc:
                    error = ("ARGUMENTS", str(exc))
                else:
                    streams = [
                        s
                        for s in streams
                        if pattern.matches(s.network, s.station) and wanted(selectors, s.location, s.channel)
                    ]
            stations = by_station(streams)
        if error is not None:  # answered by an error document, and counted like any refusal
            self._count_refusal("INFO", error[0], _shown(error[1]))
        if self.protocol == 4:
            doc = json_document(self.identity, self.hello, level, stations, error)
            if len(doc) > self.limits.max_info_bytes:
                error = ("LIMIT", "INFO document too large")
                doc = json_document(self.identity, self.hello, level, [], error)
            kind = b"SEJE" if error else b"SEJI"
            return kind + _V4_HEAD.pack(len(doc), 0, 0) + doc
        text = xml_document(self.identity, self.hello, level if error is None else "ID", stations)
        if len(text) > self.limits.max_info_bytes:
            text, error = xml_document(self.identity, self.hello, "ID", []), ("LIMIT", "")
        records = info_records(text, self._now, error is not None)
        return b"".join(
            (b"SLINFO *" if i < len(records) - 1 else b"SLINFO  ") + r for i, r in enumerate(records)
        )

    def _ok(self) -> bytes:
        return b"" if self._batch else b"OK\r\n"

    def _refuse(self, exc: CommandError, verb: str) -> bytes:
        in_stream = self.phase is not Phase.HANDSHAKE
        message = _shown(str(exc))
        self._count_refusal(verb, exc.code, message)
        if self.phase is Phase.CLOSED:
            message = f"{message}; too many errors, closing"
        if in_stream:
            return b""  # no reply line inside the packet stream, not even the last: logged and counted only
        if self._batch and self.phase is not Phase.CLOSED:
            return b""
        if self.protocol == 4:
            return f"ERROR {exc.code} {message}\r\n".encode("ascii")
        if self._extreply:
            return f"ERROR\r{exc.code} {message}\r\n".encode("ascii")
        return b"ERROR\r\n"

    def _count_refusal(self, verb: str, code: str, message: str) -> None:
        """Every refused command counts towards ``max_errors``, which closes the connection."""
        self.errors += 1
        self._event("warning", "command refused", command=_shown(verb), code=code, reason=message)
        if self.errors >= self.limits.max_errors:
            self.phase = Phase.CLOSED
            self._event("warning", "client closed after too many refused commands")

    # ---- streaming

    def stream(self, records: Sequence[FramedRecord], next_seq: int) -> bytes:
        """Packets for the wanted ones of ``records`` (the ring's records from ``cursor`` up to
        ``next_seq``, in order); the cursor moves to ``next_seq``."""
        if self.phase is not Phase.STREAMING:
            return b""
        out: list[bytes] = []
        v4 = self.protocol == 4
        for framed in records:
            rec = framed.rec
            if rec.seq < self.cursor:
                continue
            key = (rec.network, rec.station, rec.location, rec.channel)
            try:
                request = self._routes[key]
            except KeyError:
                request = self._route(key)
            if request is None or rec.seq < (request.start or 0):
                continue
            if request.begin_ns is not None and rec.end_ns <= request.begin_ns:
                continue
            if request.end_ns is not None:
                if rec.start_ns >= request.end_ns:
                    self._passed.add(key)
                    continue
                self._seen.add(key)
            out.append(framed.v4() if v4 else framed.v3())
        self.cursor = max(self.cursor, next_seq)
        self.packets_sent += len(out)
        return b"".join(out)

    def wants(self, network: str, station: str, location: str, channel: str) -> bool:
        """Whether the client asked for the channel at all (a ring read can skip the others' records)."""
        key = (network, station, location, channel)
        try:
            return self._routes[key] is not None
        except KeyError:
            return self._route(key) is not None

    def _route(self, key: tuple[str, str, str, str]) -> _Request | None:
        """The request a channel belongs to (the first STATION that matches it), if its selectors want it."""
        if len(self._routes) >= 100_000:
            self._routes.clear()
        found = None
        for request in self._requests:
            if request.pattern is None or request.pattern.matches(key[0], key[1]):
                found = request if wanted(request.selectors, key[2], key[3]) else None
                break
        self._routes[key] = found
        return found

    def skip_to(self, oldest: int) -> None:
        """The ring overwrote records this client had not been sent yet: go on from the oldest held."""
        if self.cursor < oldest:
            self._event(
                "warning",
                "client fell behind the ring; records lost to it",
                from_seq=self.cursor,
                lost=oldest - self.cursor,
            )
            self.cursor = oldest

    def caught_up(self, now_ns: int) -> bytes:
        """Called when the cursor has reached the ring's head: ``END`` once a dial-up request has had
        everything queued when it started, or every time window is over (see module docstring)."""
        if self.phase is not Phase.STREAMING:
            return b""
        done = self._stop_seq is not None and self.cursor >= self._stop_seq
        ends = [r.end_ns for r in self._requests]
        if not done and all(e is not None for e in ends):
            late = max(e for e in ends if e is not None) + int(self.limits.window_grace_s * NS_PER_S)
            done = (bool(self._seen) and self._seen <= self._passed) or now_ns > late
        if not done:
            return b""
        self.phase = Phase.ENDED
        self._event("info", "client request complete; END sent", packets=self.packets_sent)
        return b"END"


def _line_end(buffer: bytearray) -> int:
    """Index of the first CR or LF (a command's end), -1 if none yet."""
    cr = buffer.find(b"\r")
    lf = buffer.find(b"\n")
    return lf if cr < 0 else cr if lf < 0 else min(cr, lf)


def _shown(text: str) -> str:
    """Client text made safe for a log line or a reply: printable ASCII, at most 60 characters."""
    return _SHOWN.sub("?", text)[:60]
