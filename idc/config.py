"""IDC receiver configuration from TOML; every error names the file, the key and what is wrong.

Relative paths are taken relative to the configuration file, so a config directory can be moved whole.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class IdcConfigError(ValueError):
    """A configuration file that cannot be used; the message says file, key and problem."""


@dataclass(frozen=True)
class StationPolicy:
    name: str
    network: str
    require_signatures: bool = True
    fresh_control: bool = True  # its control frames must be stamped and session-bound (docs/link.md)


@dataclass(frozen=True)
class CurveConfig:
    secret_key: Path  # zmq.auth secret-key file of this receiver
    authorized_keys_dir: Path  # public-key files of the stations allowed to connect


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
    record_length: int = 512
    max_frame_bytes: int = 1 << 20
    max_reported_gaps: int = 1000
    connect_rate_per_s: float = 1.0
    connect_burst: int = 5
    verify_workers: int = 2  # processes checking signature values; 0: in the receiver process itself
    curve: CurveConfig | None = None
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
    "record_length": int,
    "max_frame_bytes": int,
    "max_reported_gaps": int,
    "connect_rate_per_s": (int, float),
    "connect_burst": int,
    "verify_workers": int,
    "curve": dict,
}
_REQUIRED = ("root", "trust_dir", "connection_endpoint")


def _check_type(path: Path, key: str, value: Any, expected: type | tuple[type, ...]) -> None:
    if isinstance(value, bool) or not isinstance(value, expected):
        names = " or ".join(t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,)))
        raise IdcConfigError(f"{path}: key {key!r}: expected {names}, got {type(value).__name__} {value!r}")


def load_config(path: str | Path) -> IdcConfig:
    """Read and validate an IDC receiver configuration file."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except OSError as exc:
        raise IdcConfigError(f"{path}: cannot read: {exc.strerror}") from exc
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
        _check_type(path, f"idc.{key}", value, _IDC_KEYS[key])
    for key in _REQUIRED:
        if key not in idc:
            raise IdcConfigError(f"{path}: key 'idc.{key}': required but missing")
    base = path.resolve().parent
    values = {k: v for k, v in idc.items() if k != "curve"}
    values["root"] = base / idc["root"]
    values["trust_dir"] = base / idc["trust_dir"]
    if "key_bundle" in idc:
        values["key_bundle"] = _key_bundle(path, base / idc["key_bundle"])
    for key in (
        "prometheus_port",
        "metrics_window_s",
        "quarantine_max_bytes",
        "record_length",
        "max_frame_bytes",
        "max_reported_gaps",
        "connect_burst",
        "verify_workers",
    ):
        if key in values and values[key] < 0:
            raise IdcConfigError(f"{path}: key 'idc.{key}': must not be negative, got {values[key]}")
    for key in ("silence_timeout_s", "acknack_interval_s", "connect_rate_per_s", "control_window_s"):
        if key in values and values[key] <= 0:
            raise IdcConfigError(f"{path}: key 'idc.{key}': must be positive, got {values[key]}")
    if values.get("record_length", 512) not in (256, 512, 1024, 2048, 4096):
        raise IdcConfigError(
            f"{path}: key 'idc.record_length': miniSEED 2 records of 256, 512, 1024, 2048 or 4096 bytes, "
            f"got {values['record_length']}"
        )
    if values.get("acknack_interval_s", 55.0) > 60:
        raise IdcConfigError(f"{path}: key 'idc.acknack_interval_s': CD-1.1 wants one at least every 60 s")
    if "curve" in idc:
        values["curve"] = _curve(path, base, idc["curve"])
    values["stations"] = _stations(path, doc.get("stations", {}))
    return IdcConfig(**values)


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


def _stations(path: Path, table: Any) -> dict[str, StationPolicy]:
    if not isinstance(table, dict):
        raise IdcConfigError(f"{path}: key 'stations': expected tables [stations.NAME]")
    stations = {}
    for name, entry in table.items():
        where = f"stations.{name}"
        if not isinstance(entry, dict):
            raise IdcConfigError(f"{path}: key {where!r}: expected a table")
        if not 1 <= len(name) <= 8 or not name.isascii():
            raise IdcConfigError(f"{path}: key {where!r}: a CD-1.1 station name has 1 to 8 ASCII characters")
        for key in entry:
            if key not in ("network", "require_signatures", "fresh_control"):
                raise IdcConfigError(f"{path}: key '{where}.{key}': unknown setting")
        network = entry.get("network")
        if network is None:
            raise IdcConfigError(f"{path}: key '{where}.network': required (SDS network code)")
        _check_type(path, f"{where}.network", network, str)
        if not 1 <= len(network) <= 2 or not network.isalnum():
            raise IdcConfigError(f"{path}: key '{where}.network': 1-2 letters or digits, got {network!r}")
        require = entry.get("require_signatures", True)
        if not isinstance(require, bool):
            raise IdcConfigError(f"{path}: key '{where}.require_signatures': expected true or false")
        fresh = entry.get("fresh_control", True)
        if not isinstance(fresh, bool):
            raise IdcConfigError(f"{path}: key '{where}.fresh_control': expected true or false")
        stations[name] = StationPolicy(name, network, require, fresh_control=fresh)
    return stations
