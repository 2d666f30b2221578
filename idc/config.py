"""IDC receiver configuration from TOML; every error names the file, the key and what is wrong.

Relative paths are taken relative to the configuration file, so a config directory can be moved whole.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consoles.config import ConsoleConfig, console_setting
from gci_link.cd11 import MAX_IMS2_FRAME_BYTES
from gci_link.io.mseed2.limits import NETWORK, STATION, code_problem
from idc.seedlink.server import parse_listen
from opskit.tomlcheck import (
    Check,
    Table,
    TomlError,
    all_of,
    in_range,
    one_of,
    path_text,
    read_toml,
    tcp_endpoint,
    text,
)

# what max_frame_bytes may be: room for a frame header, trailer and a little data; SQLite rows hold at
# most 10**9 bytes and ZeroMQ's per-part limit is 4 x max_frame_bytes, so a quarter of a GiB at most
MIN_FRAME_BYTES = 1024
MAX_FRAME_BYTES = 1 << 28
UNVERIFIED_POLICIES = ("reject", "archive")
MIN_ANALYSIS_MB = 512  # the analysis process maps about 430 MiB for a beta-gamma sample; 256 cannot start
STATION_NAME = (1, 8)  # a CD-1.1 frame creator; the receiver's raw store and IMS 2.0 folders are named by it


class IdcConfigError(TomlError):
    """Every problem found in one IDC receiver configuration file."""

    what = "IDC receiver configuration"


RESPONSE_KINDS = ("velocity", "microbarometer", "hydrophone")


@dataclass(frozen=True)
class DeclaredResponse:
    """The shape of a channel's response as the station's operator declares it (``[stations.NAME.
    responses.CHA]``); the level comes from the calib/calper of the channel's subframes (idc/metadata.py)."""

    kind: str  # velocity (a seismometer: period_s, damping), microbarometer or hydrophone (corners)
    period_s: float = 0.0
    damping: float = 0.0
    low_corner_hz: float = 0.0
    high_corner_hz: float | None = None


@dataclass(frozen=True)
class StationPolicy:
    name: str
    network: str
    require_signatures: bool = True
    fresh_control: bool = True  # its control frames must be stamped and session-bound (docs/link.md)
    sites: tuple[str, ...] = ()  # sites its data frames may carry; empty: only its own name
    responses: tuple[tuple[str, DeclaredResponse], ...] = ()  # (channel code, declared shape)
    coordinates: tuple[float, float, float] = (0.0, 0.0, 0.0)  # latitude, longitude, elevation (m)
    # what becomes of a frame signed with a key the trust store does not know: "reject" (always the
    # default) or, for a migration period, "archive" it, logged and counted as unverified (docs/keys.md)
    unverified: str = "reject"

    @property
    def archive_unverified(self) -> bool:
        return self.unverified == "archive"

    @property
    def allowed_sites(self) -> tuple[str, ...]:
        return self.sites or (self.name,)

    def declared(self, channel: str) -> DeclaredResponse | None:
        return dict(self.responses).get(channel)


@dataclass(frozen=True)
class DataLimits:
    """What a data frame's contents must keep to before they may touch the archive or the metrics."""

    past_s: float = 10 * 365.25 * 86_400  # oldest data accepted, before the receiver's clock
    future_s: float = 86_400.0  # newest, after it
    max_span_s: float = 86_400.0  # one subframe's samples
    max_day_files: int = 4096  # day files one frame may append to


@dataclass(frozen=True)
class CurveConfig:
    secret_key: Path  # zmq.auth secret-key file of this receiver
    authorized_keys_dir: Path  # public-key files of the stations allowed to connect


@dataclass(frozen=True)
class SeedLinkConfig:
    """``[idc.seedlink]``: real-time SeedLink output of what was archived (docs/seedlink.md)."""

    listen: str = "127.0.0.1:18000"
    ring: Path = Path("seedlink.ring")  # resolved against root
    ring_bytes: int = 1 << 30
    sync: bool = True
    organization: str = "IMS IDC"
    max_clients: int = 100
    handshake_timeout_s: float = 120.0
    stall_timeout_s: float = 300.0
    max_stations: int = 1000
    max_selectors: int = 64


@dataclass(frozen=True)
class IdcConfig:
    root: Path
    trust_dir: Path
    connection_endpoint: str
    data_endpoint: str | None = None  # None: data arrives on the connection-manager socket itself
    advertise_address: str = "127.0.0.1"  # IPv4 named in Connection Responses for a separate data socket
    responder_name: str = "IDC"
    key_bundle: Path | None = None  # the IDC key (ims keys issue-idc) signing the frames sent to stations
    control_window_s: float = 300.0  # how far a connection request's stamp may be from the receiver clock
    prometheus_port: int = 0
    prometheus_address: str = "127.0.0.1"  # the exporter listens on this host only unless told otherwise
    metrics_window_s: int = 3600
    silence_timeout_s: float = 120.0
    acknack_interval_s: float = 55.0
    quarantine_max_bytes: int = 1 << 30
    quarantine_max_rows: int = 100_000  # oldest rejections forgotten beyond this
    record_length: int = 512
    max_frame_bytes: int = 1 << 20
    max_ims2_frame_bytes: int = MAX_IMS2_FRAME_BYTES  # IMS 2.0 message frames (type 100) may be larger
    max_reported_gaps: int = 1000
    connect_rate_per_s: float = 1.0
    connect_burst: int = 5
    verify_workers: int = 2  # processes checking signature values; 0: in the receiver process itself
    rn_analysis: bool = True  # analyse each SAMPLEPHD received (idc/rn_analyser.py)
    rn_analysis_timeout_s: float = 300.0  # one sample's analysis is stopped, and recorded failed, after this
    rn_analysis_memory_mb: int = 2048  # address space of the analysis process
    curve: CurveConfig | None = None
    seedlink: SeedLinkConfig | None = None
    console: ConsoleConfig | None = None  # [idc.console]: the operators' web page; off without the table
    limits: DataLimits = field(default_factory=DataLimits)
    stations: dict[str, StationPolicy] = field(default_factory=dict)

    @property
    def sds_root(self) -> Path:
        return self.root / "sds"


def load_config(path: str | Path) -> IdcConfig:
    """Read and validate an IDC receiver configuration file; IdcConfigError lists every problem."""
    path = Path(path)
    data, problems = read_toml(path)
    if data is None:
        raise IdcConfigError(problems)
    root = Table.root(data, str(path), path.resolve().parent)
    config = _idc(root.table("idc"), root.named_tables("stations"))
    root.done()
    if root.problems or config is None:
        raise IdcConfigError(root.problems)
    return config


_POSITIVE = in_range(0, None, low_open=True)
_COUNT = in_range(0, None)


def _idc(t: Table, stations: dict[str, Table]) -> IdcConfig | None:
    d = IdcConfig(Path(), Path(), "")  # the defaults
    values: dict[str, Any] = dict(
        root=t.path("root"),
        trust_dir=t.path("trust_dir"),
        connection_endpoint=t.get("connection_endpoint", str, check=tcp_endpoint(any_port=True)),
        data_endpoint=t.get("data_endpoint", str, default=None, check=tcp_endpoint(any_port=True)),
        advertise_address=t.get("advertise_address", str, default=d.advertise_address, check=_ipv4),
        responder_name=t.get("responder_name", str, default=d.responder_name, check=_responder),
        key_bundle=t.get("key_bundle", str, default=None, check=_key_bundle(t.base_dir)),
        control_window_s=t.get("control_window_s", float, default=d.control_window_s, check=_POSITIVE),
        prometheus_port=t.get("prometheus_port", int, default=d.prometheus_port, check=in_range(0, 65535)),
        prometheus_address=t.get("prometheus_address", str, default=d.prometheus_address,
                                 check=text(1, 255)),
        metrics_window_s=t.get("metrics_window_s", int, default=d.metrics_window_s, check=_COUNT),
        silence_timeout_s=t.get("silence_timeout_s", float, default=d.silence_timeout_s, check=_POSITIVE),
        acknack_interval_s=t.get("acknack_interval_s", float, default=d.acknack_interval_s,
                                 check=all_of(_POSITIVE, _acknack)),
        quarantine_max_bytes=t.get("quarantine_max_bytes", int, default=d.quarantine_max_bytes, check=_COUNT),
        quarantine_max_rows=t.get("quarantine_max_rows", int, default=d.quarantine_max_rows, check=_POSITIVE),
        record_length=t.get("record_length", int, default=d.record_length,
                            check=one_of((256, 512, 1024, 2048, 4096))),
        max_frame_bytes=t.get("max_frame_bytes", int, default=d.max_frame_bytes, check=_frame_bytes),
        max_ims2_frame_bytes=t.get("max_ims2_frame_bytes", int, default=d.max_ims2_frame_bytes,
                                   check=all_of(_COUNT, _ims2_frame_bytes)),
        max_reported_gaps=t.get("max_reported_gaps", int, default=d.max_reported_gaps, check=_COUNT),
        connect_rate_per_s=t.get("connect_rate_per_s", float, default=d.connect_rate_per_s, check=_POSITIVE),
        connect_burst=t.get("connect_burst", int, default=d.connect_burst, check=_COUNT),
        verify_workers=t.get("verify_workers", int, default=d.verify_workers, check=_COUNT),
        rn_analysis=t.get("rn_analysis", bool, default=d.rn_analysis),
        rn_analysis_timeout_s=t.get("rn_analysis_timeout_s", float, default=d.rn_analysis_timeout_s,
                                    check=_POSITIVE),
        rn_analysis_memory_mb=t.get("rn_analysis_memory_mb", int, default=d.rn_analysis_memory_mb,
                                    check=in_range(MIN_ANALYSIS_MB, None)),
        limits=_limits(t),
    )
    if values["key_bundle"] is not None:
        values["key_bundle"] = t.base_dir / values["key_bundle"]
    if "curve" in t.data:
        values["curve"] = _curve(t.table("curve"))
    if "seedlink" in t.data:
        values["seedlink"] = _seedlink(t.table("seedlink"), values["root"])
        if values["record_length"] not in (None, 512):
            t.problem("record_length", "SeedLink carries 512-byte records; [idc.seedlink] needs "
                                       f"record_length = 512, got {values['record_length']}")
    values["console"] = console_setting(t)
    t.done()
    values["stations"] = {name: _station(name, entry) for name, entry in stations.items()}
    if t.problems or t.absent:
        return None
    return IdcConfig(**values)


def _ipv4(v: str) -> str | None:
    """An IPv4 address, or empty (port and address 0 in Connection Responses, as 0.0.0.0)."""
    try:
        if v:
            ipaddress.IPv4Address(v)
    except ValueError:
        return f"must be an IPv4 address like 192.0.2.7, got {v!r}"
    return None


def _responder(v: str) -> str | None:
    if not 1 <= len(v) <= 8 or not v.isascii():
        return f"a CD-1.1 frame creator has 1 to 8 ASCII characters, got {v!r}"
    return None


def _acknack(v: float) -> str | None:
    return None if v <= 60 else f"CD-1.1 wants one at least every 60 s, got {v:g}"


def _frame_bytes(v: int) -> str | None:
    if not MIN_FRAME_BYTES <= v <= MAX_FRAME_BYTES:
        return (f"{MIN_FRAME_BYTES} to {MAX_FRAME_BYTES} (a frame and its quarantined copy must fit an "
                f"SQLite row), got {v}")
    return None


def _ims2_frame_bytes(v: int) -> str | None:
    if v > MAX_IMS2_FRAME_BYTES:
        return f"at most {MAX_IMS2_FRAME_BYTES} (the largest frame the IMS 2.0 carrier makes), got {v}"
    return None


def _key_bundle(base: Path) -> Check:
    """The folder ``ims keys issue-idc`` wrote; its key and certificate are read and checked at start."""

    def check(v: str) -> str | None:
        missing = [base / v / name for name in ("key.pem", "cert.pem") if not (base / v / name).is_file()]
        return f"{missing[0]} does not exist" if missing else None

    return check


def _curve(t: Table) -> CurveConfig | None:
    secret, keys = t.path("secret_key"), t.path("authorized_keys_dir")
    t.done()
    return None if secret is None or keys is None else CurveConfig(secret, keys)


def _listen(v: str) -> str | None:
    try:
        parse_listen(v)
    except ValueError as exc:
        return str(exc)
    return None


def _seedlink(t: Table, root: Path | None) -> SeedLinkConfig:
    d = SeedLinkConfig()
    ring = t.get("ring", str, default=str(d.ring), check=path_text)
    config = SeedLinkConfig(
        listen=t.get("listen", str, default=d.listen, check=_listen),
        ring=(root or Path()) / (ring or d.ring),
        ring_bytes=t.get("ring_bytes", int, default=d.ring_bytes, check=_POSITIVE),
        sync=t.get("sync", bool, default=d.sync),
        organization=t.get("organization", str, default=d.organization),
        max_clients=t.get("max_clients", int, default=d.max_clients, check=_POSITIVE),
        handshake_timeout_s=t.get("handshake_timeout_s", float, default=d.handshake_timeout_s, check=_COUNT),
        stall_timeout_s=t.get("stall_timeout_s", float, default=d.stall_timeout_s, check=_COUNT),
        max_stations=t.get("max_stations", int, default=d.max_stations, check=_POSITIVE),
        max_selectors=t.get("max_selectors", int, default=d.max_selectors, check=_POSITIVE),
    )
    t.done()
    return config


def _limits(t: Table) -> DataLimits:
    d = DataLimits()
    past_days = t.get("data_past_days", float, default=d.past_s / 86_400, check=_POSITIVE)
    return DataLimits(
        past_s=past_days * 86_400 if past_days is not None else d.past_s,
        future_s=t.get("data_future_s", float, default=d.future_s, check=_POSITIVE),
        max_span_s=t.get("max_subframe_span_s", float, default=d.max_span_s, check=_POSITIVE),
        max_day_files=t.get("max_day_files_per_frame", int, default=d.max_day_files, check=_POSITIVE),
    )


def _code(kind: tuple[int, int], what: str) -> Check:
    return lambda v: code_problem(v, kind, what)


def _station(name: str, t: Table) -> StationPolicy:
    if code_problem(name, STATION_NAME, "station name") is not None:  # it names files and directories
        t.problem("", "a station name has 1 to 8 ASCII letters or digits")
    policy = StationPolicy(
        name=name,
        network=t.get("network", str, check=_code(NETWORK, "network")),
        require_signatures=t.get("require_signatures", bool, default=True),
        fresh_control=t.get("fresh_control", bool, default=True),
        sites=_sites(name, t),
        responses=_responses(t),
        coordinates=_coordinates(t),
        unverified=t.get("unverified", str, default="reject", check=_unverified),
    )
    t.done()
    return policy


def _unverified(v: str) -> str | None:
    if v in UNVERIFIED_POLICIES:
        return None
    return ('"reject" (the default) or "archive" (archive frames signed with keys the trust store does not '
            f"know, for a migration period), got {v!r}")


def _coordinates(t: Table) -> tuple[float, float, float]:
    """Where the station is, for its StationXML (0, 0, 0 when not configured)."""
    found = [t.get(key, float, default=0.0, check=in_range(-bound, bound))
             for key, bound in (("latitude", 90.0), ("longitude", 180.0), ("elevation_m", 9000.0))]
    latitude, longitude, elevation = (v if v is not None else 0.0 for v in found)
    return latitude, longitude, elevation


def _responses(t: Table) -> tuple[tuple[str, DeclaredResponse], ...]:
    """``[stations.NAME.responses.CHA]``: per channel code, the declared shape of its response."""
    declared = []
    for code, entry in t.named_tables("responses").items():
        if not (1 <= len(code) <= 3 and code.isascii() and code.isalnum()):
            entry.problem("", "a table named by a channel code (1-3 letters or digits)")
            entry.used.update(entry.data)
            continue
        kind = entry.get("kind", str, check=one_of(RESPONSE_KINDS, ordered=True))
        numbers: dict[str, float | None] = {}
        if kind == "velocity":
            numbers = {name: entry.get(name, float, check=_POSITIVE) for name in ("period_s", "damping")}
        elif kind is not None:
            numbers["low_corner_hz"] = entry.get("low_corner_hz", float, check=_POSITIVE)
            high = entry.get("high_corner_hz", float, default=None, check=_POSITIVE)
            low = numbers["low_corner_hz"]
            if high is not None and low is not None and not high > low:
                entry.problem("high_corner_hz", "must be above low_corner_hz")
            elif high is not None:
                numbers["high_corner_hz"] = high
        else:
            entry.used.update(entry.data)  # its keys mean nothing without a kind
        entry.done()
        given = {name: value for name, value in numbers.items() if value is not None}
        if kind is not None and len(given) == len(numbers):
            declared.append((code, DeclaredResponse(kind, **given)))
    return tuple(declared)


def _sites(name: str, t: Table) -> tuple[str, ...]:
    """The sites a station's data frames may carry: ``sites``, or else the station's own name."""
    if "sites" not in t.data:
        t.used.add("sites")
        if code_problem(name, STATION, "site") is not None:
            t.problem("sites", f"required, since {name!r} is no site code (1-5 ASCII letters or digits) that "
                               "the station's frames could carry")
        return ()
    sites = t.strings("sites", check=_code(STATION, "site"))
    if sites == []:
        t.problem("sites", "a list of one or more site codes")
    return tuple(sites or ())
