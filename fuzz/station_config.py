"""Station configuration TOML through ``station.config.load_config``.

Invariants:
- any bytes give a StationConfig or a ConfigError listing at least one problem, each naming this file,
  a key and what is wrong; nothing else escapes;
- an accepted configuration honours every rule docs/station-config.md states (checked here again,
  independently): codes and lengths, finite numbers in their ranges, at least one channel, channels
  that name a configured digitizer, unique channels and streams, whole samples per frame, SOH bands
  with room for their hysteresis, tcp:// endpoints, absolute paths.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from fuzz.config_file import TOML_SYNTAX, TOML_VALUES, as_file, finite
from station.config import (
    BAUD_RATES,
    MAX_SAMPLE_RATE,
    SENSOR_TYPES,
    ConfigError,
    StationConfig,
    load_config,
)

NAME = "station.toml"


def check(data: bytes) -> None:
    path = as_file(data, NAME)
    try:
        config = load_config(path)
    except ConfigError as exc:
        assert exc.problems, "ConfigError without a problem"
        for p in exc.problems:
            assert p.file == str(path) and p.key and p.problem, f"problem without file, key or text: {p!r}"
        return
    _check_accepted(config)


def _code(value: str, low: int, high: int) -> bool:
    return low <= len(value) <= high and value.isascii() and (not value or value.isalnum())


def _check_accepted(c: StationConfig) -> None:
    assert _code(c.station.name, 1, 5) and _code(c.station.network, 1, 2)
    assert 1 <= c.frame.length_s <= 60 and 60 % c.frame.length_s == 0
    a = c.acquisition
    assert finite(a.lateness_budget_s, a.overlap_tolerance_s, a.jitter_tolerance_samples, a.buffer_s)
    assert 0 <= a.lateness_budget_s <= 3600 and 0 <= a.overlap_tolerance_s <= 3600
    assert 0 < a.jitter_tolerance_samples <= 0.5 and 10 <= a.buffer_s <= 86400
    names = {d.name for d in c.digitizers}
    assert len(names) == len(c.digitizers)
    for d in c.digitizers:
        assert _code(d.system_id, 1, 6) and d.port and d.baud in BAUD_RATES
    assert c.channels, "accepted without a channel"
    for ch in c.channels:
        assert ch.digitizer in names
        assert _code(ch.site, 1, 5) and _code(ch.channel, 1, 3) and _code(ch.location, 0, 2)
        assert _code(ch.stream_id, 1, 6) and ch.sensor_type in SENSOR_TYPES
        assert finite(ch.calib, ch.calper, ch.sample_rate), f"non-finite number accepted in {ch}"
        assert ch.calib > 0 and ch.calper > 0 and 0 < ch.sample_rate <= MAX_SAMPLE_RATE
        per_frame = Fraction(ch.sample_rate).limit_denominator(1_000_000) * c.frame.length_s
        assert per_frame.denominator == 1
    assert len({ch.code for ch in c.channels}) == len(c.channels)
    assert len({(ch.digitizer, ch.stream_id) for ch in c.channels}) == len(c.channels)
    link = c.link
    assert link.endpoints and all(e.startswith("tcp://") for e in link.endpoints)
    assert 1 <= len(link.frame_creator) <= 8 and link.frame_creator.isascii()
    assert 1 <= len(link.frame_destination) <= 8 and link.frame_destination.isascii()
    assert 1 <= link.window <= 10_000 and finite(link.bandwidth_kbps) and link.bandwidth_kbps >= 0
    assert link.key_bundle is None or link.key_bundle.is_absolute()
    for limit in (c.soh.clock_differential_us, c.soh.supply_volts, c.soh.temperature_c, c.soh.mass_position,
                  c.soh.backup_volts):
        assert finite(limit.min, limit.max, limit.hysteresis) and limit.hysteresis >= 0
        assert limit.min is not None or limit.max is not None
        if limit.min is not None and limit.max is not None:
            assert limit.min + 2 * limit.hysteresis < limit.max
    assert finite(c.soh.gps_unlocked_after_s, c.soh.link_down_after_s, c.soh.backlog_after_s)
    for store in (c.archive, c.outbox):
        assert isinstance(store.path, Path) and store.path.is_absolute()
        assert finite(store.budget_mb) and store.budget_mb > 0
    assert c.daemon.state_dir.is_absolute() and 0 <= c.daemon.metrics_port <= 65535
    assert finite(c.daemon.status_interval_s) and 0.1 <= c.daemon.status_interval_s <= 3600


def seeds() -> list[bytes]:
    """The shipped example, and a minimal valid configuration."""
    example = (Path(__file__).resolve().parents[1] / "station" / "example_station.toml").read_bytes()
    minimal = (b'[station]\nname = "A1"\nnetwork = "XX"\n[[digitizers]]\nname = "d"\nsystem_id = "S1"\n'
               b'port = "/dev/ttyS0"\n[[channels]]\ndigitizer = "d"\nstream_id = "S1Z2"\nsite = "A1"\n'
               b'channel = "BHZ"\nsensor_type = "seismic"\ncalib = 1.0\ncalper = 1.0\nsample_rate = 20.0\n'
               b'[link]\nendpoints = ["tcp://h:1"]\n[archive]\npath = "a"\n[outbox]\npath = "o"\n')
    return [example, minimal]


DICTIONARY = TOML_VALUES + TOML_SYNTAX
