"""IDC receiver configuration TOML through ``idc.config.load_config``.

Invariants:
- any bytes give an IdcConfig or an IdcConfigError whose every problem names the file; nothing
  else escapes (undecodable bytes included);
- an accepted configuration is usable by the receiver that reads it: finite positive intervals and
  rates, non-negative counts, a miniSEED record length, an acknack at least once a minute, an IPv4
  advertise address and a responder name that fit the CD-1.1 fields they go into, paths without NUL,
  station names of 1-8, SDS network codes of 1-2 and sites (each station's own name by default) of 1-5
  ASCII letters or digits.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from fuzz.config_file import TOML_SYNTAX, TOML_VALUES, as_file, finite
from idc.config import IdcConfig, IdcConfigError, load_config

NAME = "idc.toml"
_COUNTS = ("prometheus_port", "metrics_window_s", "quarantine_max_bytes", "max_frame_bytes",
           "max_reported_gaps", "connect_burst", "verify_workers")


def check(data: bytes) -> None:
    path = as_file(data, NAME)
    try:
        config = load_config(path)
    except IdcConfigError as exc:
        assert exc.problems and all(p.file == str(path) for p in exc.problems), f"unnamed file: {exc}"
        return
    _check_accepted(config)


def _check_accepted(c: IdcConfig) -> None:
    for p in (c.root, c.trust_dir) + ((c.curve.secret_key, c.curve.authorized_keys_dir) if c.curve else ()):
        assert isinstance(p, Path) and "\0" not in str(p), f"unusable path {p!r}"
    for name in _COUNTS:
        value = getattr(c, name)
        assert isinstance(value, int) and value >= 0, f"{name} = {value!r}"
    assert c.prometheus_port <= 65535
    assert finite(c.silence_timeout_s, c.acknack_interval_s, c.connect_rate_per_s), "non-finite accepted"
    assert c.silence_timeout_s > 0 and 0 < c.acknack_interval_s <= 60 and c.connect_rate_per_s > 0
    assert c.record_length in (256, 512, 1024, 2048, 4096)
    if c.advertise_address:  # empty: port and address 0 in Connection Responses, as 0.0.0.0
        ipaddress.IPv4Address(c.advertise_address)
    assert 1 <= len(c.responder_name) <= 8 and c.responder_name.isascii(), "responder name is a frame creator"
    for name, station in c.stations.items():
        assert name == station.name and 1 <= len(name) <= 8 and name.isascii() and name.isalnum()
        assert 1 <= len(station.network) <= 2 and station.network.isascii() and station.network.isalnum()
        for site in station.allowed_sites:  # the door compares frames' sites with these
            assert 1 <= len(site) <= 5 and site.isascii() and site.isalnum(), f"site {site!r} of {name}"
        assert isinstance(station.require_signatures, bool)


def seeds() -> list[bytes]:
    """The shipped example, with and without its CurveZMQ table, and a minimal valid configuration."""
    example = (Path(__file__).resolve().parents[1] / "idc" / "example_idc.toml").read_bytes()
    curve = example.replace(b"# [idc.curve]", b"[idc.curve]").replace(b"# secret_key", b"secret_key")
    curve = curve.replace(b"# authorized_keys_dir", b"authorized_keys_dir")
    minimal = b'[idc]\nroot = "r"\ntrust_dir = "t"\nconnection_endpoint = "tcp://127.0.0.1:1"\n'
    return [example, curve, minimal]


DICTIONARY = TOML_VALUES + TOML_SYNTAX + [b"[stations.", b"[idc.curve]", b"advertise_address",
                                         b"responder_name"]
