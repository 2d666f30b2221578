"""Data frame body (spec §6): channel subframe header, channel subframes, sample formats.

Fields are located by walking sizes and pad4, never through the subframe's authentication offset;
which of the two offset conventions (``AuthOffsetConvention``, spec §8) a subframe used is remembered so
that it is written back the way it came. Samples are decoded eagerly, so a frame that decodes is fully valid.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

import numpy as np

from . import canadian
from .errors import Cd11FormatError
from .status import ChannelStatus
from .timefmt import parse_time
from .wire import Reader, Writer, pad4, require_nul_padding, text_value

# uncompressed sample formats: code -> numpy dtype (s3 is handled separately)
RAW_FORMATS: dict[str, str | None] = {"s4": ">i4", "s3": None, "s2": ">i2", "i4": "<i4", "i2": "<i2"}
BYTES_PER_SAMPLE = {"s4": 4, "s3": 3, "s2": 2, "i4": 4, "i2": 2}
CHANNEL_ID_SIZE = 10
MIN_SUBFRAME = 80


class Transformation(IntEnum):
    """The subframe's transformation byte: how its data is compressed, and whether before or after signing.

    After signing, the channel signature covers the uncompressed samples (see signing.py).
    """

    NONE = 0
    CANADIAN_BEFORE_SIGNING = 1
    CANADIAN_AFTER_SIGNING = 2
    STEIM_BEFORE_SIGNING = 3
    STEIM_AFTER_SIGNING = 4


CANADIAN = (Transformation.CANADIAN_BEFORE_SIGNING, Transformation.CANADIAN_AFTER_SIGNING)


class AuthOffsetConvention(StrEnum):
    """What a subframe's authentication offset counts; real data uses both (docs/cd11.md)."""

    A = "A"  # the distance from the subframe's first byte to its key id (LBTB, KEST, GERES)
    B = "B"  # that distance minus 4 (H04N)

    @property
    def shift(self) -> int:
        """Authentication offset = (distance from the subframe's first byte to its key id) - shift."""
        return 4 if self is AuthOffsetConvention.B else 0


# the decoder's lookups, by byte value and by (key id position - authentication offset): dicts, since
# calling the enum costs more than the rest of a subframe's header
_TRANSFORMATION_OF = {t.value: t for t in Transformation}
_CONVENTION_OF_SHIFT = {c.shift: c for c in AuthOffsetConvention}


def raw_samples(data: bytes, nsamp: int, data_format: str, *, offset: int = 0) -> np.ndarray:
    """Uncompressed samples (transformation 0); up to 3 bytes after them are padding."""
    if data_format not in BYTES_PER_SAMPLE:
        raise Cd11FormatError(
            f"unsupported uncompressed data format {data_format!r}", field="data format", offset=offset
        )
    need = nsamp * BYTES_PER_SAMPLE[data_format]
    if not 0 <= len(data) - need < 4:
        raise Cd11FormatError(
            f"{nsamp} {data_format} samples need {need} bytes, data size is {len(data)}",
            field="data size",
            offset=offset,
        )
    if data_format == "s3":
        b = np.frombuffer(data, dtype=np.uint8, count=need).reshape(-1, 3).astype(np.int32)
        value = (b[:, 0] << 16) | (b[:, 1] << 8) | b[:, 2]
        return np.where(value >= 1 << 23, value - (1 << 24), value).astype(np.int32)
    return np.frombuffer(data, dtype=RAW_FORMATS[data_format], count=nsamp).astype(np.int32)


def fits_format(samples: np.ndarray, data_format: str) -> bool:
    """Whether every sample fits the integer width of a known uncompressed ``data_format``."""
    bits = 8 * BYTES_PER_SAMPLE[data_format]
    return not samples.size or (-(1 << (bits - 1)) <= samples.min() and samples.max() < 1 << (bits - 1))


def raw_bytes(samples: np.ndarray, data_format: str) -> bytes:
    """Samples in an uncompressed format; ValueError if one does not fit."""
    if data_format not in BYTES_PER_SAMPLE:
        raise ValueError(f"unsupported uncompressed data format {data_format!r}")
    x = np.asarray(samples, dtype=np.int64)
    if not fits_format(x, data_format):
        raise ValueError(f"samples exceed the range of data format {data_format!r}")
    if data_format == "s3":
        u = (x & 0xFFFFFF).astype(np.uint32)
        return np.stack([(u >> 16) & 0xFF, (u >> 8) & 0xFF, u & 0xFF], axis=1).astype(np.uint8).tobytes()
    return x.astype(RAW_FORMATS[data_format]).tobytes()


@dataclass(frozen=True, slots=True)
class ChannelSubframe:
    """One channel's 10 s (or so) of data; ``data`` is the channel data as transmitted."""

    site: str
    channel: str
    location: str
    data_format: str
    transformation: Transformation
    sensor_type: int
    option_flag: int
    calib: float
    calper: float
    time_ns: int
    time_length_ms: int
    nsamp: int
    status: ChannelStatus
    data: bytes
    samples: np.ndarray = field(compare=False, repr=False)  # decoded from ``data`` (or what it encodes)
    subframe_count: int = 0
    authentication: int = 0  # description byte 1: 1 when the subframe is signed
    auth_key_id: int = 0
    auth_value: bytes = b""
    auth_offset_convention: AuthOffsetConvention = AuthOffsetConvention.A
    v0: int | None = field(default=None, compare=False)  # Canadian v0 recovered from ``data``
    # The received bytes the channel signature covers, set only by the decoder: init=False makes
    # dataclasses.replace drop it, so a modified copy never verifies against stale bytes.
    signed_span: bytes | None = field(default=None, init=False, compare=False, repr=False)

    @property
    def sample_rate(self) -> float:
        return self.nsamp * 1000.0 / self.time_length_ms if self.time_length_ms else 0.0

    @property
    def end_ns(self) -> int:
        """Time just after the last sample (the subframe's time stamp plus its time length)."""
        return self.time_ns + self.time_length_ms * 1_000_000


def _transformation_of(code: int, *, offset: int) -> Transformation:
    """The transformation byte ``code`` read at ``offset``; Cd11FormatError if it names none."""
    transformation = _TRANSFORMATION_OF.get(code)
    if transformation is None:
        raise Cd11FormatError(f"unknown transformation {code}", field="transformation", offset=offset)
    return transformation


def _require_signable(samples: np.ndarray, data_format: str, *, field: str, offset: int) -> None:
    """Transformation 2 signs the samples in their uncompressed format (spec §9), so they must fit it:
    otherwise no signature could be checked, and a verifier would fail on the frame instead of refusing it."""
    if data_format not in BYTES_PER_SAMPLE:
        raise Cd11FormatError(
            f"unknown data format {data_format!r}: Canadian-after-signing data cannot be signed in it",
            field=field,
            offset=offset,
        )
    if not fits_format(samples, data_format):
        raise Cd11FormatError(
            f"samples exceed the range of data format {data_format!r} they are signed in",
            field=field,
            offset=offset,
        )


def decode_samples(
    data: bytes,
    nsamp: int,
    transformation: Transformation,
    data_format: str,
    offset: int,
    *,
    transformation_offset: int,
) -> tuple[np.ndarray, int | None]:
    """(samples, v0) of channel data at ``offset``; refuses Steim."""
    if transformation in CANADIAN:
        decoded = canadian.decode_stream(data, nsamp, offset=offset)
        return decoded.samples, decoded.v0
    if transformation == Transformation.NONE:
        return raw_samples(data, nsamp, data_format, offset=offset), None
    raise Cd11FormatError(
        f"Steim compression (transformation {transformation}) is not supported",
        field="transformation",
        offset=transformation_offset,
    )


# subframe offsets 4..60: authentication offset, four description bytes, site, channel, location, data
# format, calib, calper, time stamp, subframe time length, samples; MIN_SUBFRAME guarantees they fit
_FIXED = struct.Struct(">i4B5s3s2s2sff20sii")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")


def _sized_at(buf: memoryview, pos: int, end: int, index: int, what: str) -> tuple[bytes, int]:
    """(value, position after its padding) of channel ``index``'s size-prefixed field ``what`` at ``pos``."""
    if pos + 4 > end:
        raise Cd11FormatError(
            f"needs 4 bytes but only {end - pos} remain", field=f"channel {index} {what} size", offset=pos
        )
    n = _I32.unpack_from(buf, pos)[0]
    after = pos + 4 + pad4(n)
    if n < 0 or after > end:
        raise Cd11FormatError(
            f"size {n} does not fit in the {end - pos - 4} bytes that remain",
            field=f"channel {index} {what} size",
            offset=pos,
        )
    require_nul_padding(buf[pos + 4 + n : after], field=f"channel {index} {what} padding", offset=pos + 4 + n)
    return bytes(buf[pos + 4 : pos + 4 + n]), after


def read_subframe(r: Reader, index: int) -> ChannelSubframe:
    """One subframe at the reader's position; also remembers the bytes its signature covers."""
    s = r.pos
    buf = r.buf
    length = _I32.unpack_from(buf, s)[0] if s + 4 <= r.end else -1
    if length < MIN_SUBFRAME - 4 or length % 4 or s + 4 + length > r.end:
        raise Cd11FormatError(
            f"channel length {length} is not a multiple of 4 between {MIN_SUBFRAME - 4} and {r.end - s - 4}",
            field=f"channel {index} channel length",
            offset=s,
        )
    end = s + 4 + length
    (
        auth_offset,
        authentication,
        transformation,
        sensor_type,
        option_flag,
        site,
        channel,
        location,
        data_format,
        calib,
        calper,
        time_raw,
        time_length_ms,
        nsamp,
    ) = _FIXED.unpack_from(buf, s + 4)
    name = f"channel {index}"
    for value, what, at in ((calib, "calib", 24), (calper, "calper", 28)):
        if math.isnan(value):  # NaN != NaN: the frame would differ from itself (duplicates look like replays)
            raise Cd11FormatError("not a number (NaN)", field=f"{name} {what}", offset=s + at)
    data_format = text_value(data_format)
    time_ns = parse_time(time_raw, field=f"{name} time stamp", offset=s + 32)
    if nsamp < 0:
        raise Cd11FormatError(f"negative sample count {nsamp}", field=f"{name} samples", offset=s + 56)
    status_raw, pos = _sized_at(buf, s + 60, end, index, "channel status")
    data_offset = pos + 4
    data, pos = _sized_at(buf, pos, end, index, "channel data")
    if pos + 8 > end:
        raise Cd11FormatError(
            f"needs 8 bytes but only {end - pos} remain", field=f"{name} subframe count", offset=pos
        )
    subframe_count = _I32.unpack_from(buf, pos)[0]
    key_position = pos + 4 - s
    auth_key_id = _U32.unpack_from(buf, pos + 4)[0]
    auth_value, pos = _sized_at(buf, pos + 8, end, index, "authentication value")
    if pos != end:
        raise Cd11FormatError(
            f"{end - pos} bytes left over after the last field",
            field=f"{name} (walked fields vs channel length)",
            offset=pos,
        )
    convention = _CONVENTION_OF_SHIFT.get(key_position - auth_offset)
    if convention is None:
        raise Cd11FormatError(
            f"authentication offset {auth_offset} fits neither convention A ({key_position}) "
            f"nor B ({key_position - AuthOffsetConvention.B.shift})",
            field=f"{name} authentication offset",
            offset=s + 4,
        )
    try:
        kind = _transformation_of(transformation, offset=s + 9)
        samples, v0 = decode_samples(data, nsamp, kind, data_format, data_offset, transformation_offset=s + 9)
    except Cd11FormatError as exc:  # say which channel
        raise Cd11FormatError(exc.reason, field=f"{name} {exc.field}", offset=exc.offset) from None
    if kind is Transformation.CANADIAN_AFTER_SIGNING:
        _require_signable(samples, data_format, field=f"{name} data format", offset=s + 22)
    r.pos = end
    sub = ChannelSubframe(
        site=text_value(site),
        channel=text_value(channel),
        location=text_value(location),
        data_format=data_format,
        transformation=kind,
        sensor_type=sensor_type,
        option_flag=option_flag,
        calib=calib,
        calper=calper,
        time_ns=time_ns,
        time_length_ms=time_length_ms,
        nsamp=nsamp,
        status=ChannelStatus(status_raw),
        data=data,
        subframe_count=subframe_count,
        authentication=authentication,
        auth_key_id=auth_key_id,
        auth_value=auth_value,
        auth_offset_convention=convention,
        samples=samples,
        v0=v0,
    )
    if kind != Transformation.CANADIAN_AFTER_SIGNING:  # its scope holds the uncompressed samples instead
        object.__setattr__(sub, "signed_span", bytes(buf[s + 8 : s + key_position]))
    return sub


def write_signed_part(w: Writer, sub: ChannelSubframe, data: bytes | None = None) -> None:
    """Description through subframe count: the bytes a channel signature covers (spec §9)."""
    for value, name in (
        (sub.authentication, "authentication"),
        (sub.transformation, "transformation"),
        (sub.sensor_type, "sensor type"),
        (sub.option_flag, "option flag"),
    ):
        if not 0 <= value <= 255:
            raise Cd11FormatError(f"{value} does not fit in one byte", field=name, offset=w.pos)
        w.raw(bytes([value]))
    w.text(sub.site, 5, "site")
    w.text(sub.channel, 3, "channel")
    w.text(sub.location, 2, "location")
    w.text(sub.data_format, 2, "data format")
    for factor, name in ((sub.calib, "calib"), (sub.calper, "calper")):
        if math.isnan(factor):
            raise Cd11FormatError("not a number (NaN)", field=name, offset=w.pos)
        w.f32(factor, name)
    w.time(sub.time_ns, "time stamp")
    w.i32(sub.time_length_ms, "subframe time length")
    w.i32(sub.nsamp, "samples")
    w.sized(sub.status.raw, "channel status")
    w.sized(sub.data if data is None else data, "channel data")
    w.i32(sub.subframe_count, "subframe count")


def write_subframe(w: Writer, sub: ChannelSubframe) -> None:
    try:
        convention = AuthOffsetConvention(sub.auth_offset_convention)
    except ValueError:
        raise Cd11FormatError(
            f"unknown convention {sub.auth_offset_convention!r}",
            field="authentication offset",
            offset=w.pos + 4,
        ) from None
    body = Writer(w.pos + 8)
    write_signed_part(body, sub)
    key_position = 8 + len(body.out)
    body.u32(sub.auth_key_id, "authentication key id")
    body.sized(bytes(sub.auth_value), "authentication value")
    w.i32(4 + len(body.out), "channel length")
    w.i32(key_position - convention.shift, "authentication offset")
    w.raw(body.out)


@dataclass(frozen=True, slots=True)
class DataBody:
    """Body of a data frame (also used for CD-1 encapsulation frames, parsed the same way)."""

    nominal_time_ns: int
    channels: tuple[ChannelSubframe, ...]
    frame_time_length_ms: int = 10_000
    # (site, channel, location) of the channel string when it differs from the subframes' own
    # (LBTB says BW there and US in the subframes); None = taken from the subframes.
    channel_ids: tuple[tuple[str, str, str], ...] | None = None

    @property
    def ids(self) -> tuple[tuple[str, str, str], ...]:
        if self.channel_ids is not None:
            return self.channel_ids
        return tuple((c.site, c.channel, c.location) for c in self.channels)

    @classmethod
    def read(cls, r: Reader) -> DataBody:
        at = r.pos
        nchan = r.i32("number of channels")
        if nchan < 0 or nchan * (MIN_SUBFRAME + CHANNEL_ID_SIZE) > r.end - r.pos:
            raise Cd11FormatError(
                f"{nchan} channels cannot fit in {r.end - r.pos} bytes", field="number of channels", offset=at
            )
        frame_time_length_ms = r.i32("frame time length")
        nominal_time_ns = r.time("nominal time")
        at = r.pos
        size = r.size("channel string size")
        if size != CHANNEL_ID_SIZE * nchan:  # checked first: a wrong size also misplaces the padding
            raise Cd11FormatError(
                f"{size} bytes disagree with {nchan} channels (10 bytes each)",
                field="channel string size",
                offset=at,
            )
        ids = bytes(r.take(size, "channel string"))
        r.nul(pad4(size) - size, "channel string padding")
        channel_ids = tuple(
            (text_value(ids[i : i + 5]), text_value(ids[i + 5 : i + 8]), text_value(ids[i + 8 : i + 10]))
            for i in range(0, len(ids), CHANNEL_ID_SIZE)
        )
        channels = tuple(read_subframe(r, i) for i in range(nchan))
        own_ids = tuple((c.site, c.channel, c.location) for c in channels)
        return cls(
            nominal_time_ns, channels, frame_time_length_ms, None if channel_ids == own_ids else channel_ids
        )

    def write(self, w: Writer) -> None:
        ids = self.ids
        if len(ids) != len(self.channels):
            raise Cd11FormatError(
                f"{len(ids)} channel ids for {len(self.channels)} channels",
                field="channel string",
                offset=w.pos,
            )
        w.i32(len(self.channels), "number of channels")
        w.i32(self.frame_time_length_ms, "frame time length")
        w.time(self.nominal_time_ns, "nominal time")
        ids_writer = Writer(w.pos + 4)
        for site, channel, location in ids:
            ids_writer.text(site, 5, "site")
            ids_writer.text(channel, 3, "channel")
            ids_writer.text(location, 2, "location")
        w.sized(bytes(ids_writer.out), "channel string")
        for sub in self.channels:
            write_subframe(w, sub)


def build_subframe(
    samples: Sequence[int] | np.ndarray,
    *,
    site: str,
    channel: str,
    time_ns: int,
    sample_rate: float,
    location: str = "",
    calib: float = 1.0,
    calper: float = 1.0,
    sensor_type: int = 0,
    data_format: str = "s4",
    transformation: Transformation = Transformation.CANADIAN_BEFORE_SIGNING,
    status: ChannelStatus | None = None,
    option_flag: int = 1,
    subframe_count: int = 0,
    v0: int | None = None,
) -> ChannelSubframe:
    """A subframe from int32 samples and metadata, compressed as asked, unsigned (for a signer to fill)."""
    x = np.ascontiguousarray(samples, dtype=np.int32)
    if transformation in CANADIAN:
        if data_format not in BYTES_PER_SAMPLE:
            raise ValueError(f"unsupported data format {data_format!r}")
        if transformation == Transformation.CANADIAN_AFTER_SIGNING and not fits_format(x, data_format):
            raise ValueError(f"samples exceed data format {data_format!r}, which transformation 2 signs")
        data = canadian.encode(x, v0)
        # the encoder's own default, or what it stored of the given v0 (decoding tells exactly)
        v0 = canadian.extrapolated_v0(x) if v0 is None else canadian.decode_stream(data, len(x)).v0
    elif transformation == Transformation.NONE:
        data, v0 = raw_bytes(x, data_format), None
    else:
        raise ValueError(f"cannot build subframes with transformation {transformation} (only 0, 1, 2)")
    return ChannelSubframe(
        site=site,
        channel=channel,
        location=location,
        data_format=data_format,
        transformation=Transformation(transformation),
        sensor_type=sensor_type,
        option_flag=option_flag,
        calib=float(np.float32(calib)),
        calper=float(np.float32(calper)),
        time_ns=time_ns,
        time_length_ms=round(len(x) * 1000 / sample_rate),
        nsamp=len(x),
        status=status or ChannelStatus.format1(),
        data=data,
        subframe_count=subframe_count,
        samples=x,
        v0=v0,
    )
