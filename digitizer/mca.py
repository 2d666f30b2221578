"""The project's line protocol for radionuclide instruments (beta-gamma analyser, air sampler, xenon
processing unit), as a sans-I/O core. The instrument's view of it is in ``docs/mca-protocol.md``.

No public protocol exists for SAUNA, SPALAX or ARIX units, so this one is ours, in the style of SCPI
instruments, made to survive a noisy serial line:

- every line, both ways, is ``TAG BODY*CRC\\n``: a decimal tag the reply echoes (so a late reply to an
  abandoned command is never taken for the answer to the next one) and a CRC-16/CCITT-FALSE of
  ``TAG BODY`` in 4 hex digits (a damaged command is refused, not executed with a wrong number);
- every command is answered by one line, ``OK [payload]`` or ``ERR code message`` (SCPI error numbers);
- every command is idempotent, so the host may repeat it after a lost reply;
- a histogram is read from a snapshot latched by ``DATA:SNAP``, in chunks of at most
  ``CHUNK_CELLS`` uint32 cells, each with its own CRC-32; ``ReadoutAssembler`` hands the arrays over
  only when every chunk of one snapshot has arrived intact, so a spectrum is never half read.

Nothing here touches a port or a clock: bytes in, lines, commands, replies and decoded values out.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from dataclasses import dataclass, field
from math import isfinite, prod

import numpy as np

MAX_LINE = 8192  # bytes before the LF, CRC included
CHUNK_CELLS = 1024
MAX_SNAPSHOT_CELLS = 1 << 22  # every array of one snapshot: 16 MiB of uint32, 4096 chunks to read
MAX_TAG = 65535

# commands (canonical upper-case forms)
IDN = "*IDN?"
RST = "*RST"
PRESET_REAL = "PRES:REAL"
PRESET_LIVE = "PRES:LIVE"
PRESETS = "PRES?"
START = "ACQ:START"
STOP = "ACQ:STOP"
CLEAR = "ACQ:CLEAR"
ACQ_STATUS = "ACQ:STAT?"
SNAP = "DATA:SNAP"
CHUNK = "DATA:CHUNK?"
SOH = "SOH?"
COMMAND_ARGS = {IDN: 0, RST: 0, PRESET_REAL: 1, PRESET_LIVE: 1, PRESETS: 0, START: 0, STOP: 0, CLEAR: 0,
                ACQ_STATUS: 0, SNAP: 0, CHUNK: 3, SOH: 0}

# SCPI error numbers used by the instrument
E_SYNTAX = -102
E_MISSING_PARAMETER = -109
E_UNDEFINED_HEADER = -113
E_SETTINGS_CONFLICT = -221
E_OUT_OF_RANGE = -222
E_STALE_DATA = -230
E_HARDWARE = -240
E_LINE_CHECKSUM = -361
E_INPUT_OVERRUN = -363
ERROR_NAMES = {E_SYNTAX: "syntax error", E_MISSING_PARAMETER: "missing parameter",
               E_UNDEFINED_HEADER: "undefined header", E_SETTINGS_CONFLICT: "settings conflict",
               E_OUT_OF_RANGE: "data out of range", E_STALE_DATA: "data stale",
               E_HARDWARE: "hardware error", E_LINE_CHECKSUM: "line checksum error",
               E_INPUT_OVERRUN: "input buffer overrun"}

STATES = ("STOPPED", "RUNNING", "DONE")

_LINE = re.compile(rb"(\d{1,5}) ([\x20-\x7e]*)\*([0-9A-Fa-f]{4})")
_TOKEN = re.compile(r"[A-Z0-9_:.+\-*?,x/]+", re.IGNORECASE)


class McaProtocolError(ValueError):
    """A line, reply or payload that breaks the protocol; ``code`` is the SCPI error number for it."""

    def __init__(self, message: str, code: int = E_SYNTAX, tag: int = 0):
        super().__init__(message)
        self.code = code
        self.tag = tag


class InstrumentError(RuntimeError):
    """The instrument answered ``ERR``: it understood the command and refused it."""

    def __init__(self, command: str, code: int, message: str):
        super().__init__(f"{command}: error {code} ({ERROR_NAMES.get(code, 'device error')}): {message}")
        self.command = command
        self.code = code
        self.detail = message


# --------------------------------------------------------------------------------------------------
# lines


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF; ``crc16(b"123456789") == 0x29B1``)."""
    return binascii.crc_hqx(data, 0xFFFF)


def frame_line(tag: int, body: str) -> bytes:
    """``TAG BODY*CRC\\n`` for printable ASCII ``body``."""
    if not 0 <= tag <= MAX_TAG:
        raise McaProtocolError(f"tag {tag} is not 0-{MAX_TAG}")
    if not (body.isascii() and body.isprintable()):
        raise McaProtocolError(f"line body {body[:40]!r} is not printable ASCII")
    text = f"{tag} {body}".encode("ascii")
    line = text + b"*%04X\n" % crc16(text)
    if len(line) - 1 > MAX_LINE:
        raise McaProtocolError(f"line of {len(line) - 1} bytes exceeds {MAX_LINE}", E_INPUT_OVERRUN, tag)
    return line


def unframe_line(line: bytes) -> tuple[int, str]:
    """(tag, body) of one line without its LF; ``McaProtocolError`` (with the tag when it was readable)."""
    m = _LINE.fullmatch(line)
    if m is None:
        tag_text = line.split(b" ", 1)[0]
        tag = int(tag_text) if tag_text.isdigit() and len(tag_text) <= 5 else 0
        raise McaProtocolError(f"line {line[:40]!r} is not 'TAG BODY*CRC'", E_LINE_CHECKSUM,
                               tag if tag <= MAX_TAG else 0)
    tag = int(m.group(1))
    if tag > MAX_TAG:  # could not be echoed: the reply would be refused by its own encoder
        raise McaProtocolError(f"tag {tag} is not 0-{MAX_TAG}", E_SYNTAX)
    text = line[:m.start(3) - 1]
    if crc16(text) != int(m.group(3), 16):
        raise McaProtocolError(f"line CRC {m.group(3).decode()} does not match {crc16(text):04X}",
                               E_LINE_CHECKSUM, tag)
    return tag, m.group(2).decode("ascii")


@dataclass(frozen=True, slots=True)
class Overrun:
    """A line longer than ``MAX_LINE`` was dropped (``dropped`` bytes, up to its LF)."""

    dropped: int


class LineReader:
    """Splits bytes into lines at LF (a CR before it is dropped); bounded: an over-long line is dropped
    and reported, never buffered. ``flush`` discards a partial line (after a time-out or a reopen)."""

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._dropping = 0  # bytes of an over-long line discarded so far (0: not dropping)

    def feed(self, data: bytes) -> list[bytes | Overrun]:
        out: list[bytes | Overrun] = []
        start = 0
        while start < len(data):
            nl = data.find(b"\n", start)
            piece = data[start:] if nl < 0 else data[start:nl]
            start = len(data) if nl < 0 else nl + 1
            if self._dropping:
                self._dropping += len(piece)
            else:
                self._buf += piece
                if len(self._buf) > self.max_line + 1:  # +1: a CR before the LF
                    self._dropping = len(self._buf)
                    self._buf.clear()
            if nl < 0:
                break
            if self._dropping:
                out.append(Overrun(self._dropping))
                self._dropping = 0
                continue
            line = bytes(self._buf[:-1] if self._buf.endswith(b"\r") else self._buf)
            self._buf.clear()
            if line:
                out.append(line)
        return out

    def flush(self) -> int:
        """Drop any partial line; returns how many bytes were dropped."""
        dropped = len(self._buf) + self._dropping
        self._buf.clear()
        self._dropping = 0
        return dropped


# --------------------------------------------------------------------------------------------------
# commands (host encodes, instrument parses)


def encode_command(tag: int, command: str, *args: object) -> bytes:
    """A command line; ``command`` is one of the canonical names, ``args`` as it takes them."""
    name = command.upper()
    if name not in COMMAND_ARGS:
        raise McaProtocolError(f"unknown command {command!r}", E_UNDEFINED_HEADER, tag)
    if len(args) != COMMAND_ARGS[name]:
        raise McaProtocolError(f"{name} takes {COMMAND_ARGS[name]} arguments, got {len(args)}",
                               E_MISSING_PARAMETER, tag)
    words = [str(a) for a in args]
    if any(not _TOKEN.fullmatch(w) for w in words):
        raise McaProtocolError(f"{name}: argument {words} is not a plain token", E_SYNTAX, tag)
    return frame_line(tag, " ".join([name, *words]))


@dataclass(frozen=True, slots=True)
class Command:
    tag: int
    name: str
    args: tuple[str, ...] = ()


def parse_command(tag: int, body: str) -> Command:
    """Instrument side: the command in a verified line (``McaProtocolError`` names what is wrong)."""
    words = body.split()
    if not words:
        raise McaProtocolError("empty command", E_SYNTAX, tag)
    name = words[0].upper()
    if name not in COMMAND_ARGS:
        raise McaProtocolError(f"undefined header {words[0]!r}", E_UNDEFINED_HEADER, tag)
    args = tuple(words[1:])
    if len(args) < COMMAND_ARGS[name]:
        raise McaProtocolError(f"{name} needs {COMMAND_ARGS[name]} parameters", E_MISSING_PARAMETER, tag)
    if len(args) > COMMAND_ARGS[name]:
        raise McaProtocolError(f"{name} takes {COMMAND_ARGS[name]} parameters", E_SYNTAX, tag)
    return Command(tag, name, args)


def parse_seconds(tag: int, text: str) -> float:
    """A preset in seconds: finite and >= 0 (0 = no preset)."""
    try:
        value = float(text)
    except ValueError:
        raise McaProtocolError(f"{text!r} is not a number", E_SYNTAX, tag) from None
    if not isfinite(value) or value < 0:
        raise McaProtocolError(f"{text} is not a duration >= 0 s", E_OUT_OF_RANGE, tag)
    return value


# --------------------------------------------------------------------------------------------------
# replies (instrument encodes, host parses)


def encode_ok(tag: int, payload: str = "") -> bytes:
    return frame_line(tag, f"OK {payload}" if payload else "OK")


def encode_error(tag: int, code: int, message: str) -> bytes:
    clean = "".join(c if c.isascii() and c.isprintable() else "?" for c in message)[:200]
    return frame_line(tag, f"ERR {code} {clean}")


@dataclass(frozen=True, slots=True)
class Reply:
    tag: int
    ok: bool
    payload: str = ""  # after OK
    code: int = 0  # after ERR
    message: str = ""


def parse_reply(tag: int, body: str) -> Reply:
    head, _, rest = body.partition(" ")
    if head == "OK":
        return Reply(tag, True, rest)
    if head == "ERR":
        code_text, _, message = rest.partition(" ")
        try:
            code = int(code_text)
        except ValueError:
            raise McaProtocolError(f"ERR reply without a numeric code: {body[:60]!r}") from None
        return Reply(tag, False, code=code, message=message)
    raise McaProtocolError(f"reply is neither OK nor ERR: {body[:60]!r}")


def key_values(payload: str) -> dict[str, str]:
    """``"A=1 B=x"`` -> ``{"A": "1", "B": "x"}``; a token without '=' is an error."""
    out: dict[str, str] = {}
    for token in payload.split():
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise McaProtocolError(f"payload token {token!r} is not KEY=value")
        out[key.upper()] = value
    return out


def format_key_values(values: dict[str, object]) -> str:
    parts = []
    for key, value in values.items():
        text = "-" if value is None else (f"{value:.6g}" if isinstance(value, float) else str(value))
        if not text or any(c.isspace() for c in text) or "=" in text:
            raise McaProtocolError(f"value of {key} ({text!r}) cannot be sent")
        parts.append(f"{key}={text}")
    return " ".join(parts)


def _float(values: dict[str, str], key: str) -> float:
    try:
        value = float(values[key])
    except KeyError:
        raise McaProtocolError(f"payload lacks {key}") from None
    except ValueError:
        raise McaProtocolError(f"{key}={values[key]!r} is not a number") from None
    if not isfinite(value):
        raise McaProtocolError(f"{key}={values[key]!r} is not a finite number")
    return value


def _optional_float(values: dict[str, str], key: str) -> float | None:
    if values.get(key, "-") == "-":
        return None
    return _float(values, key)


def _optional_int(values: dict[str, str], key: str) -> int | None:
    text = values.get(key, "-")
    if text == "-":
        return None
    try:
        return int(text)
    except ValueError:
        raise McaProtocolError(f"{key}={text!r} is not an integer") from None


@dataclass(frozen=True, slots=True)
class Identity:
    maker: str
    model: str
    serial: str
    firmware: str


def parse_identity(payload: str) -> Identity:
    parts = payload.split(",")
    if len(parts) != 4 or not all(parts):
        raise McaProtocolError(f"*IDN? reply {payload!r} is not maker,model,serial,firmware")
    return Identity(*parts)


@dataclass(frozen=True, slots=True)
class Presets:
    real_s: float  # 0: none
    live_s: float


def parse_presets(payload: str) -> Presets:
    kv = key_values(payload)
    return Presets(_float(kv, "REAL"), _float(kv, "LIVE"))


@dataclass(frozen=True, slots=True)
class AcquisitionStatus:
    state: str  # STOPPED, RUNNING or DONE (a preset was reached)
    real_s: float
    live_s: float
    start_ns: int | None  # instrument clock, UTC ns; None before the first start


def parse_acquisition_status(payload: str) -> AcquisitionStatus:
    kv = key_values(payload)
    state = kv.get("STATE", "")
    if state not in STATES:
        raise McaProtocolError(f"acquisition state {state!r} is not one of {STATES}")
    return AcquisitionStatus(state, _float(kv, "REAL"), _float(kv, "LIVE"), _optional_int(kv, "START"))


def format_acquisition_status(status: AcquisitionStatus) -> str:
    return format_key_values({"STATE": status.state, "REAL": f"{status.real_s:.3f}",
                              "LIVE": f"{status.live_s:.3f}", "START": status.start_ns})


@dataclass(frozen=True, slots=True)
class ArraySpec:
    shape: tuple[int, ...]
    chunks: int

    @property
    def cells(self) -> int:
        return prod(self.shape)


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """What ``DATA:SNAP`` latched: the times of that instant and the arrays to read in chunks."""

    snap_id: int
    acquisition: AcquisitionStatus
    arrays: dict[str, ArraySpec]
    chunk_cells: int


def chunks_for(cells: int, chunk_cells: int = CHUNK_CELLS) -> int:
    return max(1, -(-cells // chunk_cells))


def format_snapshot(info: SnapshotInfo) -> str:
    arrays = ",".join(f"{name}:{'x'.join(map(str, spec.shape))}:{spec.chunks}"
                      for name, spec in info.arrays.items())
    return f"SNAP={info.snap_id} {format_acquisition_status(info.acquisition)} ARRAYS={arrays} " \
           f"CHUNK={info.chunk_cells}"


def parse_snapshot(payload: str) -> SnapshotInfo:
    kv = key_values(payload)
    snap = _optional_int(kv, "SNAP")
    chunk_cells = _optional_int(kv, "CHUNK")
    if snap is None or chunk_cells is None:
        raise McaProtocolError(f"snapshot reply lacks SNAP or CHUNK: {payload[:80]!r}")
    if not 1 <= chunk_cells <= CHUNK_CELLS:
        raise McaProtocolError(f"snapshot CHUNK={chunk_cells} is not 1-{CHUNK_CELLS} cells")
    arrays: dict[str, ArraySpec] = {}
    cells = 0
    for item in kv.get("ARRAYS", "").split(","):
        try:
            name, shape_text, chunks_text = item.split(":")
            shape = tuple(int(n) for n in shape_text.split("x", 2))
            chunks = int(chunks_text)
        except ValueError:
            raise McaProtocolError(f"snapshot array {item!r} is not NAME:AxB:CHUNKS") from None
        if len(shape) > 2:
            raise McaProtocolError(f"snapshot array {item!r} has more than two dimensions")
        if not name or any(n < 1 for n in shape) or chunks != chunks_for(prod(shape), chunk_cells):
            raise McaProtocolError(f"snapshot array {item!r} is inconsistent with CHUNK={chunk_cells}")
        cells += prod(shape)
        if cells > MAX_SNAPSHOT_CELLS:  # bounds the read-out: chunks to ask for, arrays to assemble
            raise McaProtocolError(f"snapshot arrays hold more than {MAX_SNAPSHOT_CELLS} cells at {item!r}")
        arrays[name] = ArraySpec(shape, chunks)
    return SnapshotInfo(snap, parse_acquisition_status(payload), arrays, chunk_cells)


@dataclass(frozen=True, slots=True)
class Chunk:
    snap_id: int
    array: str
    index: int
    first: int  # index of its first cell in the flattened array
    data: np.ndarray = field(repr=False)  # uint32


def format_chunk(snap_id: int, array: str, index: int, first: int, cells: np.ndarray) -> str:
    raw = np.ascontiguousarray(cells, dtype="<u4").tobytes()
    return (f"SNAP={snap_id} ARRAY={array} INDEX={index} FIRST={first} CELLS={len(raw) // 4} "
            f"CRC32={zlib.crc32(raw):08X} DATA={base64.b64encode(raw).decode('ascii')}")


def parse_chunk(payload: str) -> Chunk:
    """A chunk reply, its CRC-32 and cell count verified (``McaProtocolError`` when they disagree)."""
    kv = key_values(payload)
    try:
        raw = base64.b64decode(kv["DATA"], validate=True)
        declared_crc = int(kv["CRC32"], 16)
        cells = int(kv["CELLS"])
        snap, index, first = int(kv["SNAP"]), int(kv["INDEX"]), int(kv["FIRST"])
        array = kv["ARRAY"]
    except KeyError as exc:
        raise McaProtocolError(f"chunk reply lacks {exc.args[0]}") from None
    except (ValueError, binascii.Error) as exc:
        raise McaProtocolError(f"chunk reply has a malformed field: {exc}") from None
    if len(raw) != 4 * cells:
        raise McaProtocolError(f"chunk {array}[{index}] declares {cells} cells but carries {len(raw)} bytes")
    if zlib.crc32(raw) != declared_crc:
        raise McaProtocolError(f"chunk {array}[{index}] CRC-32 {zlib.crc32(raw):08X} != {declared_crc:08X}")
    return Chunk(snap, array, index, first, np.frombuffer(raw, dtype="<u4").astype(np.uint32))


@dataclass(frozen=True, slots=True)
class Readout:
    """Every array of one snapshot, whole; times are those latched with it."""

    snap_id: int
    acquisition: AcquisitionStatus
    arrays: dict[str, np.ndarray] = field(repr=False)


class ReadoutAssembler:
    """Collects the chunks of one snapshot; ``result`` only once every chunk arrived and fitted."""

    def __init__(self, info: SnapshotInfo) -> None:
        self.info = info
        self._parts: dict[tuple[str, int], np.ndarray] = {}

    def wanted(self) -> list[tuple[str, int]]:
        """(array, chunk index) still missing, in reading order."""
        return [(name, i) for name, spec in self.info.arrays.items() for i in range(spec.chunks)
                if (name, i) not in self._parts]

    @property
    def complete(self) -> bool:
        return not self.wanted()

    def add(self, chunk: Chunk) -> None:
        """Accept one verified chunk; ``McaProtocolError`` if it belongs elsewhere or does not fit."""
        spec = self.info.arrays.get(chunk.array)
        if chunk.snap_id != self.info.snap_id:
            raise McaProtocolError(f"chunk of snapshot {chunk.snap_id} while reading {self.info.snap_id}")
        if spec is None or not 0 <= chunk.index < spec.chunks:
            raise McaProtocolError(f"chunk {chunk.array}[{chunk.index}] is not part of the snapshot")
        first = chunk.index * self.info.chunk_cells
        size = min(self.info.chunk_cells, spec.cells - first)
        if chunk.first != first or chunk.data.shape[0] != size:
            raise McaProtocolError(f"chunk {chunk.array}[{chunk.index}] covers cells {chunk.first}+"
                                   f"{chunk.data.shape[0]}, expected {first}+{size}")
        self._parts[(chunk.array, chunk.index)] = chunk.data

    def result(self) -> Readout:
        missing = self.wanted()
        if missing:
            raise McaProtocolError(f"readout incomplete: {len(missing)} chunks missing, first {missing[0]}")
        arrays = {name: np.concatenate([self._parts[(name, i)] for i in range(spec.chunks)])
                  .reshape(spec.shape) for name, spec in self.info.arrays.items()}
        return Readout(self.info.snap_id, self.info.acquisition, arrays)


def chunk_of(array: np.ndarray, index: int, chunk_cells: int = CHUNK_CELLS) -> tuple[int, np.ndarray]:
    """Instrument side: (first cell, cells) of chunk ``index`` of ``array`` (flattened, row-major)."""
    flat = np.asarray(array).reshape(-1)
    first = index * chunk_cells
    if not 0 <= first < max(1, flat.shape[0]):
        raise McaProtocolError(f"chunk {index} is outside the array", E_OUT_OF_RANGE)
    return first, flat[first:first + chunk_cells]


# --------------------------------------------------------------------------------------------------
# state of health

SOH_FIELDS: dict[str, tuple[str, type]] = {
    # attribute: (key on the wire, type)
    "time_ns": ("TIME", int),
    "hv_v": ("HV_V", float),
    "detector_temp_c": ("DET_TEMP_C", float),
    "flow_m3h": ("FLOW_M3H", float),
    "filter_dp_hpa": ("FILTER_DP_HPA", float),
    "volume_m3": ("VOLUME_M3", float),
    "sampler": ("SAMPLER", str),
    "stage": ("STAGE", str),
    "sample_id": ("SAMPLE", str),
    "xe_volume_ml": ("XE_ML", float),
    "xe_volume_unc_ml": ("XE_ML_UNC", float),
    "xe_yield": ("XE_YIELD", float),
    "xe_yield_unc": ("XE_YIELD_UNC", float),
    "trap_temp_c": ("TRAP_TEMP_C", float),
    "power": ("POWER", str),
    "ups_charge_pct": ("UPS_PCT", float),
}


@dataclass(frozen=True, slots=True)
class Soh:
    """State of health; a subsystem the instrument lacks leaves its fields None. Unknown keys go to
    ``extra`` (a newer instrument may report more)."""

    time_ns: int | None = None
    hv_v: float | None = None
    detector_temp_c: float | None = None
    flow_m3h: float | None = None  # air sampler flow, standard m3/h
    filter_dp_hpa: float | None = None  # pressure drop across the filter
    volume_m3: float | None = None  # air sampled since the sample started
    sampler: str | None = None  # RUNNING, STOPPED or FAIL
    stage: str | None = None  # xenon unit: IDLE, COLLECT, PROCESS, TRANSFER, COUNT
    sample_id: str | None = None
    xe_volume_ml: float | None = None  # stable xenon of the last processed sample
    xe_volume_unc_ml: float | None = None
    xe_yield: float | None = None
    xe_yield_unc: float | None = None
    trap_temp_c: float | None = None
    power: str | None = None  # what powers the unit: MAIN or UPS
    ups_charge_pct: float | None = None
    extra: dict[str, str] = field(default_factory=dict)


def parse_soh(payload: str) -> Soh:
    kv = key_values(payload)
    values: dict[str, object] = {}
    for attr, (key, kind) in SOH_FIELDS.items():
        if key not in kv:
            continue
        text = kv.pop(key)
        if text == "-":
            continue
        if kind is str:
            values[attr] = text
        elif kind is int:
            values[attr] = _optional_int({key: text}, key)
        else:
            values[attr] = _float({key: text}, key)
    return Soh(**values, extra=kv)  # type: ignore[arg-type]


def format_soh(soh: Soh) -> str:
    values: dict[str, object] = {key: getattr(soh, attr) for attr, (key, _) in SOH_FIELDS.items()
                                 if getattr(soh, attr) is not None}
    values.update(soh.extra)
    return format_key_values(values)


# --------------------------------------------------------------------------------------------------
# host-side line handling


@dataclass(frozen=True, slots=True)
class ReplyReceived:
    reply: Reply


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that failed its CRC or form, or an over-long line; ``tag`` when it could be read."""

    reason: str
    tag: int = 0


class ReplyParser:
    """Host side: bytes -> ``ReplyReceived`` / ``BadLine`` events."""

    def __init__(self) -> None:
        self.lines = LineReader()

    def feed(self, data: bytes) -> list[ReplyReceived | BadLine]:
        out: list[ReplyReceived | BadLine] = []
        for line in self.lines.feed(data):
            if isinstance(line, Overrun):
                out.append(BadLine(f"line over {MAX_LINE} bytes dropped ({line.dropped} bytes)"))
                continue
            try:
                tag, body = unframe_line(line)
                out.append(ReplyReceived(parse_reply(tag, body)))
            except McaProtocolError as exc:
                out.append(BadLine(str(exc), exc.tag))
        return out


@dataclass(frozen=True, slots=True)
class CommandReceived:
    command: Command


@dataclass(frozen=True, slots=True)
class CommandRejected:
    """Instrument side: answer this with ``encode_error(tag, code, message)``."""

    tag: int
    code: int
    message: str


class CommandParser:
    """Instrument side: bytes -> ``CommandReceived`` / ``CommandRejected`` events."""

    def __init__(self) -> None:
        self.lines = LineReader()

    def feed(self, data: bytes) -> list[CommandReceived | CommandRejected]:
        out: list[CommandReceived | CommandRejected] = []
        for line in self.lines.feed(data):
            if isinstance(line, Overrun):
                out.append(CommandRejected(0, E_INPUT_OVERRUN, f"line over {MAX_LINE} bytes"))
                continue
            try:
                tag, body = unframe_line(line)
                out.append(CommandReceived(parse_command(tag, body)))
            except McaProtocolError as exc:
                out.append(CommandRejected(exc.tag, exc.code, str(exc)))
        return out
