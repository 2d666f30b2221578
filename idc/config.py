"""IDC receiver configuration from TOML; every error names the file, the key and what is wrong.

Relative paths are taken relative to the configuration file, so a config directory can be moved whole.
"""

from __future__ import annotations

import ipaddress
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gci_link.cd11 import MAX_IMS2_FRAME_BYTES
from gci_link.io.mseed2.limits import NETWORK, STATION, code_problem
from idc.seedlink.server import parse_listen

# what max_frame_bytes may be: room for a frame header, trailer and a little data; SQLite rows hold at
# most 10**9 bytes and ZeroMQ's per-part limit is 4 x max_frame_bytes, so a quarter of a GiB at most
MIN_FRAME_BYTES = 1024
MAX_FRAME_BYTES = 1 << 28
MIN_ANALYSIS_MB = 512  # the analysis process maps about 430 MiB for a beta-gamma sample; 256 cannot start
STATION_NAME = (1, 8)  # a CD-1.1 frame creator; the receiver's raw store and IMS 2.0 folders are named by it


class IdcConfigError(ValueError):
    """A configuration file that cannot be used; the message says file, key and problem."""


@dataclass(frozen=True)
class StationPolicy:
    name: str
    network: str
    require_signatures: bool = True
    fresh_control: bool = True  # its control frames must be stamped and session-bound (docs/link.md)
    sites: tuple[str, ...] = ()  # sites its data frames may carry; empty: only its own name

    @property
    def allowed_sites(self) -> tuple[str, ...]:
        return self.sites or (self.name,)


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


_SEEDLINK_KEYS: dict[str, type | tuple[type, ...]] = {
    "listen": str,
    "ring": str,
    "ring_bytes": int,
    "sync": bool,
    "organization": str,
    "max_clients": int,
    "handshake_timeout_s": (int, float),
    "stall_timeout_s": (int, float),
    "max_stations": int,
    "max_selectors": int,
}


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
    limits: DataLimits = field(default_factory=DataLimits)
    stations: dict[str, StationPolicy] = field(default_factory=dict)

    @property
    def sds_root(self) -> Path:
        return self.root / "sds"


_IDC_KEYS: dict[str, type | tuple[type, ...]] = {
    "root": str,
    "trust_dir": str,
    "connection_endpoint": str,
    "data_endpoint": str,
    "advertise_address": str,
    "responder_name": str,
    "key_bundle": str,
    "control_window_s": (int, float),
    "prometheus_port": int,
    "metrics_window_s": int,
    "silence_timeout_s": (int, float),
    "acknack_interval_s": (int, float),
    "quarantine_max_bytes": int,
    "quarantine_max_rows": int,
    "record_length": int,
    "max_frame_bytes": int,
    "max_ims2_frame_bytes": int,
    "max_reported_gaps": int,
    "connect_rate_per_s": (int, float),
    "connect_burst": int,
    "verify_workers": int,
    "rn_analysis": bool,
    "rn_analysis_timeout_s": (int, float),
    "rn_analysis_memory_mb": int,
    "curve": dict,
    "seedlink": dict,
    "data_past_days": (int, float),
    "data_future_s": (int, float),
    "max_subframe_span_s": (int, float),
    "max_day_files_per_frame": int,
}
_REQUIRED = ("root", "trust_dir", "connection_endpoint")


def _check_type(path: Path, key: str, value: Any, expected: type | tuple[type, ...]) -> None:
    if isinstance(value, bool) or not isinstance(value, expected):
        names = " or ".join(t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,)))
        raise IdcConfigError(f"{path}: key {key!r}: expected {names}, got {type(value).__name__} {value!r}")
    checked: Any = value  # of the expected type now
    if expected == (int, float) and not (abs(checked) < 2**1023 and math.isfinite(checked)):
        raise IdcConfigError(f"{path}: key {key!r}: must be a finite number, got {value!r}")
    if expected is str and "\0" in checked:
        raise IdcConfigError(f"{path}: key {key!r}: must not contain a NUL character")


def load_config(path: str | Path) -> IdcConfig:
    """Read and validate an IDC receiver configuration file."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise IdcConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise IdcConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise IdcConfigError(f"{path}: not valid TOML: {exc}") from exc
    for key in doc:
        if key not in ("idc", "stations"):
            raise IdcConfigError(f"{path}: unknown table [{key}] (expected [idc] and [stations.NAME])")
    idc = doc.get("idc")
    if not isinstance(idc, dict):
        raise IdcConfigError(f"{path}: missing table [idc]")
    for key, value in idc.items():
        if key not in _IDC_KEYS:
            raise IdcConfigError(f"{path}: key 'idc.{key}': unknown setting")
        if _IDC_KEYS[key] is bool:
            if not isinstance(value, bool):
                raise IdcConfigError(f"{path}: key 'idc.{key}': true or false, not {value!r}")
        else:
            _check_type(path, f"idc.{key}", value, _IDC_KEYS[key])
    for key in _REQUIRED:
        if key not in idc:
            raise IdcConfigError(f"{path}: key 'idc.{key}': required but missing")
    base = path.resolve().parent
    values = {k: v for k, v in idc.items() if k not in ("curve", "seedlink", *_LIMIT_KEYS)}
    values["limits"] = _limits(path, idc)
    values["root"] = base / idc["root"]
    values["trust_dir"] = base / idc["trust_dir"]
    if "key_bundle" in idc:
        values["key_bundle"] = _key_bundle(path, base / idc["key_bundle"])
    for key in (
        "prometheus_port",
        "metrics_window_s",
        "quarantine_max_bytes",
        "quarantine_max_rows",
        "record_length",
        "max_frame_bytes",
        "max_ims2_frame_bytes",
        "max_reported_gaps",
        "connect_burst",
        "verify_workers",
    ):
        if key in values and values[key] < 0:
            raise IdcConfigError(f"{path}: key 'idc.{key}': must not be negative, got {values[key]}")
    for key in ("silence_timeout_s", "acknack_interval_s", "connect_rate_per_s", "control_window_s",
                "quarantine_max_rows", "rn_analysis_timeout_s"):
        if key in values and values[key] <= 0:
            raise IdcConfigError(f"{path}: key 'idc.{key}': must be positive, got {values[key]}")
    if not MIN_FRAME_BYTES <= values.get("max_frame_bytes", MIN_FRAME_BYTES) <= MAX_FRAME_BYTES:
        raise IdcConfigError(
            f"{path}: key 'idc.max_frame_bytes': {MIN_FRAME_BYTES} to {MAX_FRAME_BYTES} "
            f"(a frame and its quarantined copy must fit an SQLite row), got {values['max_frame_bytes']}"
        )
    if values.get("record_length", 512) not in (256, 512, 1024, 2048, 4096):
        raise IdcConfigError(
            f"{path}: key 'idc.record_length': miniSEED 2 records of 256, 512, 1024, 2048 or 4096 bytes, "
            f"got {values['record_length']}"
        )
    if values.get("rn_analysis_memory_mb", 2048) < MIN_ANALYSIS_MB:
        raise IdcConfigError(f"{path}: key 'idc.rn_analysis_memory_mb': at least {MIN_ANALYSIS_MB} (numpy "
                             f"and numba alone map over 256 MiB), got {values['rn_analysis_memory_mb']}")
    if values.get("prometheus_port", 0) > 65535:
        raise IdcConfigError(f"{path}: key 'idc.prometheus_port': a TCP port is at most 65535")
    advertise = values.get("advertise_address", "")
    if advertise and not _is_ipv4(advertise):
        raise IdcConfigError(
            f"{path}: key 'idc.advertise_address': an IPv4 address like 192.0.2.7, got {advertise!r}"
        )
    responder = values.get("responder_name", "IDC")
    if not 1 <= len(responder) <= 8 or not responder.isascii():
        raise IdcConfigError(
            f"{path}: key 'idc.responder_name': a CD-1.1 frame creator has 1 to 8 ASCII characters, "
            f"got {responder!r}"
        )
    if values.get("max_ims2_frame_bytes", MAX_IMS2_FRAME_BYTES) > MAX_IMS2_FRAME_BYTES:
        raise IdcConfigError(
            f"{path}: key 'idc.max_ims2_frame_bytes': at most {MAX_IMS2_FRAME_BYTES} (the largest frame the "
            f"IMS 2.0 carrier makes), got {values['max_ims2_frame_bytes']}"
        )
    if values.get("acknack_interval_s", 55.0) > 60:
        raise IdcConfigError(f"{path}: key 'idc.acknack_interval_s': CD-1.1 wants one at least every 60 s")
    if "curve" in idc:
        values["curve"] = _curve(path, base, idc["curve"])
    if "seedlink" in idc:
        values["seedlink"] = _seedlink(path, values["root"], idc["seedlink"])
        if values.get("record_length", 512) != 512:
            raise IdcConfigError(
                f"{path}: key 'idc.record_length': SeedLink carries 512-byte records; "
                f"[idc.seedlink] needs record_length = 512, got {values['record_length']}"
            )
    values["stations"] = _stations(path, doc.get("stations", {}))
    return IdcConfig(**values)


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _key_bundle(path: Path, bundle: Path) -> Path:
    """The folder ``ims keys issue-idc`` wrote; its key and certificate are read and checked at start."""
    for name in ("key.pem", "cert.pem"):
        if not (bundle / name).is_file():
            raise IdcConfigError(f"{path}: key 'idc.key_bundle': {bundle / name} does not exist")
    return bundle


def _curve(path: Path, base: Path, table: dict[str, Any]) -> CurveConfig:
    for key in table:
        if key not in ("secret_key", "authorized_keys_dir"):
            raise IdcConfigError(f"{path}: key 'idc.curve.{key}': unknown setting")
    for key in ("secret_key", "authorized_keys_dir"):
        if key not in table:
            raise IdcConfigError(f"{path}: key 'idc.curve.{key}': required when [idc.curve] is present")
        _check_type(path, f"idc.curve.{key}", table[key], str)
    return CurveConfig(base / table["secret_key"], base / table["authorized_keys_dir"])


def _seedlink(path: Path, root: Path, table: dict[str, Any]) -> SeedLinkConfig:
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _SEEDLINK_KEYS:
            raise IdcConfigError(f"{path}: key 'idc.seedlink.{key}': unknown setting")
        if _SEEDLINK_KEYS[key] is bool:
            if not isinstance(value, bool):
                raise IdcConfigError(f"{path}: key 'idc.seedlink.{key}': true or false, not {value!r}")
        else:
            _check_type(path, f"idc.seedlink.{key}", value, _SEEDLINK_KEYS[key])
        values[key] = value
    try:
        parse_listen(values.get("listen", SeedLinkConfig.listen))
    except ValueError as exc:
        raise IdcConfigError(f"{path}: key 'idc.seedlink.listen': {exc}") from None
    for key in ("ring_bytes", "max_clients", "max_stations", "max_selectors"):
        if key in values and values[key] <= 0:
            raise IdcConfigError(f"{path}: key 'idc.seedlink.{key}': must be positive, got {values[key]}")
    values["ring"] = root / values.get("ring", SeedLinkConfig.ring)
    return SeedLinkConfig(**values)


_LIMIT_KEYS = ("data_past_days", "data_future_s", "max_subframe_span_s", "max_day_files_per_frame")


def _limits(path: Path, idc: dict[str, Any]) -> DataLimits:
    for key in _LIMIT_KEYS:
        if key in idc and idc[key] <= 0:
            raise IdcConfigError(f"{path}: key 'idc.{key}': must be positive, got {idc[key]}")
    defaults = DataLimits()
    return DataLimits(
        past_s=idc["data_past_days"] * 86_400 if "data_past_days" in idc else defaults.past_s,
        future_s=idc.get("data_future_s", defaults.future_s),
        max_span_s=idc.get("max_subframe_span_s", defaults.max_span_s),
        max_day_files=idc.get("max_day_files_per_frame", defaults.max_day_files),
    )


def _stations(path: Path, table: Any) -> dict[str, StationPolicy]:
    if not isinstance(table, dict):
        raise IdcConfigError(f"{path}: key 'stations': expected tables [stations.NAME]")
    stations = {}
    for name, entry in table.items():
        where = f"stations.{name}"
        if not isinstance(entry, dict):
            raise IdcConfigError(f"{path}: key {where!r}: expected a table")
        if code_problem(name, STATION_NAME, "station name") is not None:  # it names files and directories
            raise IdcConfigError(f"{path}: key {where!r}: a station name has 1 to 8 ASCII letters or digits")
        for key in entry:
            if key not in ("network", "require_signatures", "sites", "fresh_control"):
                raise IdcConfigError(f"{path}: key '{where}.{key}': unknown setting")
        network = entry.get("network")
        if network is None:
            raise IdcConfigError(f"{path}: key '{where}.network': required (SDS network code)")
        _check_type(path, f"{where}.network", network, str)
        problem = code_problem(network, NETWORK, "network")
        if problem is not None:
            raise IdcConfigError(f"{path}: key '{where}.network': {problem}")
        require = entry.get("require_signatures", True)
        if not isinstance(require, bool):
            raise IdcConfigError(f"{path}: key '{where}.require_signatures': expected true or false")
        fresh = entry.get("fresh_control", True)
        if not isinstance(fresh, bool):
            raise IdcConfigError(f"{path}: key '{where}.fresh_control': expected true or false")
        stations[name] = StationPolicy(name, network, require, fresh, _sites(path, where, name, entry))
    return stations


def _sites(path: Path, where: str, name: str, entry: dict[str, Any]) -> tuple[str, ...]:
    """The sites a station's data frames may carry: ``sites``, or else the station's own name."""
    if "sites" not in entry:
        if code_problem(name, STATION, "site") is not None:
            raise IdcConfigError(
                f"{path}: key '{where}.sites': required, since {name!r} is no site code "
                "(1-5 ASCII letters or digits) that the station's frames could carry"
            )
        return ()
    sites = entry["sites"]
    if not isinstance(sites, list) or not sites:
        raise IdcConfigError(f"{path}: key '{where}.sites': a list of one or more site codes, got {sites!r}")
    for site in sites:
        if not isinstance(site, str):
            raise IdcConfigError(f"{path}: key '{where}.sites': {site!r} is not a string")
        problem = code_problem(site, STATION, "site")
        if problem is not None:
            raise IdcConfigError(f"{path}: key '{where}.sites': {problem}")
    return tuple(sites)
