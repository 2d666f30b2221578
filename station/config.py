"""Station configuration: one TOML file, validated at load into frozen dataclasses.

Validation collects every problem before failing, so an operator fixes the whole file in one pass; each
problem names the file, the key path (``channels[2].calper``) and what is wrong. Relative paths are
resolved against the config file's folder so the daemon does not depend on its working directory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consoles.config import ConsoleConfig, console_setting
from gci_link.keys import KeyMaterialError, Role, StationSigner, TrustStore
from opskit.tomlcheck import REQUIRED as _REQUIRED
from opskit.tomlcheck import Check, TomlError, parse_toml, read_toml, tcp_endpoint
from opskit.tomlcheck import Problem as ConfigProblem
from opskit.tomlcheck import Table as _Table
from opskit.tomlcheck import in_range as _range
from opskit.tomlcheck import nonzero as _nonzero
from opskit.tomlcheck import one_of as _one_of
from opskit.tomlcheck import path_text as _path_text
from opskit.tomlcheck import text as _text
from station.acquisition import exact_rate

if TYPE_CHECKING:
    from station.radionuclide.settings import RadionuclideConfig

EXAMPLE_CONFIG_NAME = "example_station.toml"

# CD-1.1 channel description byte 3 (cd11.md §6.3)
SENSOR_TYPES: dict[str, int] = {"seismic": 0, "hydroacoustic": 1, "infrasonic": 2, "weather": 3, "other": 4}
BAUD_RATES = frozenset({1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600})
SERIAL_URL_SCHEMES = frozenset({"socket", "rfc2217", "loop", "spy", "hwgrep", "alt"})  # pyserial URLs
MAX_SAMPLE_RATE = 1000.0


class ConfigError(TomlError):
    """Every problem found in one station configuration file."""

    what = "station configuration"


@dataclass(frozen=True, slots=True)
class StationInfo:
    name: str  # station code, e.g. "ABC1"
    network: str  # e.g. "IM"
    description: str
    latitude: float | None = None  # degrees north; with longitude and elevation, for StationXML
    longitude: float | None = None  # degrees east
    elevation_m: float | None = None


@dataclass(frozen=True, slots=True)
class FrameSettings:
    length_s: int  # CD-1.1 data frame length on the UTC grid


@dataclass(frozen=True, slots=True)
class AcquisitionSettings:
    lateness_budget_s: float  # how long (data time) a gap waits for late, out-of-order packets
    overlap_tolerance_s: float  # backward steps up to this are overlaps; beyond, a time tear
    jitter_tolerance_samples: float  # timing error, in samples, still treated as contiguous
    buffer_s: float  # cap on data held per channel awaiting extraction


@dataclass(frozen=True, slots=True)
class DigitizerConfig:
    name: str
    system_id: str  # the identity its packets carry (GCF system id)
    port: str  # device path (/dev/ttyUSB0) or pyserial URL (socket://host:port)
    baud: int


@dataclass(frozen=True, slots=True)
class SensorCalibration:
    """How a channel is calibrated through its sensor's calibration coil (``[channels.calibration]``).

    The nominal response (``period_s``, ``damping``, ``sensitivity``) is all there or all absent; the
    coil constant turns the fitted gain into counts per m/s, calib and StationXML.
    """

    input_stream_id: str  # stream of the returned calibration signal (GCF ...Cn)
    component: str  # calibration coil: Z, N or E
    period_s: float | None  # nominal free period T0
    damping: float | None  # nominal damping h
    sensitivity: float | None  # nominal flat-band counts per m/s, signed by polarity
    coil_constant: float | None  # m/s² of equivalent ground acceleration per count of the returned signal
    depth_m: float  # sensor depth below the surface, for StationXML


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    digitizer: str  # DigitizerConfig.name
    stream_id: str
    site: str
    channel: str
    location: str
    sensor_type: str
    calib: float  # CSS 3.0 calib, nm/count at calper
    calper: float  # s
    sample_rate: float
    calibration: SensorCalibration | None = None

    @property
    def code(self) -> str:
        """SITE.CHA.LO, the name used in logs, alarms and metrics."""
        return f"{self.site}.{self.channel}.{self.location}"

    @property
    def sensor_type_code(self) -> int:
        return SENSOR_TYPES[self.sensor_type]


@dataclass(frozen=True, slots=True)
class LinkSettings:
    endpoints: tuple[str, ...]  # IDC connection-manager endpoints (tcp://host:port), tried in turn
    frame_creator: str
    frame_destination: str
    key_bundle: Path | None  # station key + certificate from `ims keys issue`; None = unsigned (tests only)
    idc_trust: Path | None  # trust store whose IDC certificates must sign the IDC's frames; None = unchecked
    window: int  # frames sent but not yet acknowledged
    bandwidth_kbps: float  # cap on what the link may carry; 0 = uncapped
    # how long the IDC may stay silent before the link is given up and reconnected (slow, long links)
    connect_timeout_s: float  # for the connection and option responses
    response_timeout_s: float  # data sent and no acknack since
    idle_timeout_s: float  # nothing at all heard from the IDC


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    state_dir: Path  # status snapshot for `ims station status`
    metrics_port: int  # Prometheus endpoint on this port; 0 = off
    metrics_address: str  # the address it listens on (default: this host only)
    status_interval_s: float


@dataclass(frozen=True, slots=True)
class Limit:
    """Band with hysteresis: raise below ``min`` / above ``max``; clear only ``hysteresis`` back inside."""

    min: float | None
    max: float | None
    hysteresis: float


@dataclass(frozen=True, slots=True)
class SohSettings:
    gps_unlocked_after_s: float
    link_down_after_s: float  # link out of the data state this long -> gci_link_down
    digitizer_silent_after_s: float  # nothing from a digitizer this long -> digitizer_silent
    backlog_after_s: float  # oldest unacknowledged frame this old -> delivery_backlog
    clock_differential_us: Limit
    supply_volts: Limit
    temperature_c: Limit
    mass_position: Limit
    backup_volts: Limit


@dataclass(frozen=True, slots=True)
class CalibrationSettings:
    apply_accepted: bool  # a passing remote calibration's calib goes into later subframes
    report_dir: Path  # report folders of remote calibrations


@dataclass(frozen=True, slots=True)
class StoreSettings:
    path: Path
    budget_mb: float


@dataclass(frozen=True, slots=True)
class StationConfig:
    source: str  # file the configuration came from
    station: StationInfo
    frame: FrameSettings
    acquisition: AcquisitionSettings
    digitizers: tuple[DigitizerConfig, ...]
    channels: tuple[ChannelConfig, ...]
    link: LinkSettings
    soh: SohSettings
    archive: StoreSettings
    outbox: StoreSettings
    daemon: DaemonSettings
    calibration: CalibrationSettings
    radionuclide: tuple[RadionuclideConfig, ...] = ()  # particulate and noble-gas systems
    console: ConsoleConfig | None = None  # [console]: the web page for people on site; off without it

    def digitizer(self, name: str) -> DigitizerConfig:
        return next(d for d in self.digitizers if d.name == name)


# ---------------------------------------------------------------------------------------------- loading


def load_config(path: str | Path) -> StationConfig:
    """Read and validate a station configuration file; raises ConfigError listing every problem."""
    path = Path(path)
    data, problems = read_toml(path)
    if data is None:
        raise ConfigError(problems)
    return _parse(data, source=str(path), base_dir=path.resolve().parent)


def load_example_config(base_dir: str | Path | None = None) -> StationConfig:
    """The embedded example configuration; relative paths resolve against ``base_dir`` (default cwd)."""
    text = resources.files("station").joinpath(EXAMPLE_CONFIG_NAME).read_text(encoding="utf-8")
    return parse_config(text, source=f"station/{EXAMPLE_CONFIG_NAME}", base_dir=Path(base_dir or Path.cwd()))


def parse_config(text: str, source: str, base_dir: Path) -> StationConfig:
    """Validate TOML text; ``source`` names it in errors, ``base_dir`` anchors relative paths."""
    data, problems = parse_toml(text, source)
    if data is None:
        raise ConfigError(problems)
    return _parse(data, source, base_dir)


def _parse(data: dict[str, Any], source: str, base_dir: Path) -> StationConfig:
    root = _Table.root(data, source, base_dir)
    problems = root.problems
    station = _station(root.table("station"))
    frame = _frame(root.table("frame", required=False))
    acquisition = _acquisition(root.table("acquisition", required=False))
    digitizers = tuple(_digitizer(t) for t in root.tables("digitizers"))
    channels = tuple(_channel(t) for t in root.tables("channels"))
    link = _link(root.table("link"), station)
    daemon = _daemon(root.table("daemon", required=False))
    soh = _soh(root.table("soh", required=False))
    archive = _store(root.table("archive"), default_budget_mb=10_000.0)
    outbox = _store(root.table("outbox"), default_budget_mb=2_000.0)
    radionuclide = _radionuclide(root, station)
    calibration = _calibration(root.table("calibration", required=False), daemon)
    console = console_setting(root)
    root.done()
    _cross_check(root, digitizers, channels, frame, radionuclide)
    if problems:
        raise ConfigError(problems)
    return StationConfig(source, station, frame, acquisition, digitizers, channels, link, soh,
                         archive, outbox, daemon, calibration, radionuclide, console)


# --------------------------------------------------------------------------------------------- sections


def _station(t: _Table) -> StationInfo:
    info = StationInfo(
        name=t.get("name", str, check=_text(1, 5, alnum=True)),
        network=t.get("network", str, check=_text(1, 2, alnum=True)),
        description=t.get("description", str, default=""),
        latitude=t.get("latitude", float, default=None, check=_range(-90.0, 90.0)),
        longitude=t.get("longitude", float, default=None, check=_range(-180.0, 180.0)),
        elevation_m=t.get("elevation_m", float, default=None, check=_range(-12000.0, 9000.0)),
    )
    _all_or_none(t, ("latitude", "longitude", "elevation_m"))
    t.done()
    return info


def _all_or_none(t: _Table, keys: tuple[str, ...]) -> None:
    given = [k for k in keys if k in t.data]
    if given and len(given) != len(keys):
        missing = ", ".join(k for k in keys if k not in given)
        t.problem(missing.split(", ")[0], f"give {', '.join(keys)} together (missing {missing})")


def _frame(t: _Table) -> FrameSettings:
    length = t.get("length_s", int, default=10, check=_frame_length)
    t.done()
    return FrameSettings(length_s=length)


def _acquisition(t: _Table) -> AcquisitionSettings:
    settings = AcquisitionSettings(
        lateness_budget_s=t.get("lateness_budget_s", float, default=30.0, check=_range(0.0, 3600.0)),
        overlap_tolerance_s=t.get("overlap_tolerance_s", float, default=1.0, check=_range(0.0, 3600.0)),
        jitter_tolerance_samples=t.get("jitter_tolerance_samples", float, default=0.25,
                                       check=_range(0.0, 0.5, low_open=True)),
        buffer_s=t.get("buffer_s", float, default=600.0, check=_range(10.0, 86400.0)),
    )
    t.done()
    return settings


def _digitizer(t: _Table) -> DigitizerConfig:
    d = DigitizerConfig(
        name=t.get("name", str, check=_text(1, 32)),
        system_id=t.get("system_id", str, check=_text(1, 6, alnum=True)),
        port=t.get("port", str, check=_serial_port),
        baud=t.get("baud", int, default=115200, check=_one_of(BAUD_RATES)),
    )
    t.done()
    return d


def _channel(t: _Table) -> ChannelConfig:
    c = ChannelConfig(
        digitizer=t.get("digitizer", str, check=_text(1, 32)),
        stream_id=t.get("stream_id", str, check=_text(1, 6, alnum=True)),
        site=t.get("site", str, check=_text(1, 5, alnum=True)),
        channel=t.get("channel", str, check=_text(1, 3, alnum=True)),
        location=t.get("location", str, default="", check=_text(0, 2, alnum=True)),
        sensor_type=t.get("sensor_type", str, check=_one_of(SENSOR_TYPES)),
        calib=t.get("calib", float, check=_range(0.0, None, low_open=True)),
        calper=t.get("calper", float, check=_range(0.0, None, low_open=True)),
        sample_rate=t.get("sample_rate", float, check=_range(0.0, MAX_SAMPLE_RATE, low_open=True)),
    )
    if "calibration" in t.data:
        c = dataclasses.replace(c, calibration=_sensor_calibration(t.table("calibration"), c.stream_id))
    t.done()
    return c


CAL_COMPONENTS = ("Z", "N", "E")


def _sensor_calibration(t: _Table, stream_id: str | None) -> SensorCalibration:
    """``[channels.calibration]``; the returned-signal stream and the coil default from the stream id
    (``XMPLZ2`` -> ``XMPLC2``, coil ``Z``: the DM24 returns the signal on ``C`` + the tap digit)."""
    six = stream_id is not None and len(stream_id) == 6
    default_input = f"{stream_id[:4]}C{stream_id[5]}" if six and stream_id else _REQUIRED
    letter = stream_id[4] if six and stream_id else ""
    cal = SensorCalibration(
        input_stream_id=t.get("input_stream_id", str, default=default_input, check=_text(1, 6, alnum=True)),
        component=t.get("component", str, default=letter if letter in CAL_COMPONENTS else _REQUIRED,
                        check=_one_of(CAL_COMPONENTS)),
        period_s=t.get("period_s", float, default=None, check=_range(0.0, None, low_open=True)),
        damping=t.get("damping", float, default=None, check=_range(0.0, None, low_open=True)),
        sensitivity=t.get("sensitivity", float, default=None, check=_nonzero),
        coil_constant=t.get("coil_constant", float, default=None, check=_nonzero),
        depth_m=t.get("depth_m", float, default=0.0, check=_range(0.0, None)),
    )
    _all_or_none(t, ("period_s", "damping", "sensitivity"))
    if "period_s" in t.data and "coil_constant" not in t.data:
        t.problem("coil_constant", "required with a nominal response (it puts the nominal in the fit's "
                                   "units)")
    t.done()
    return cal


def _calibration(t: _Table, daemon: DaemonSettings) -> CalibrationSettings:
    state_dir: Path | None = daemon.state_dir
    settings = CalibrationSettings(
        apply_accepted=t.get("apply_accepted", bool, default=False),
        report_dir=t.path("report_dir") if "report_dir" in t.data else (
            (state_dir or t.base_dir.resolve() / "state") / "calibrations"),
    )
    t.done()
    return settings


def _link(t: _Table, station: StationInfo) -> LinkSettings:
    endpoints = t.strings("endpoints", check=tcp_endpoint())
    if endpoints == []:
        t.problem("endpoints", "must list at least one endpoint")
    bundle = t.get("key_bundle", str, default=None, check=_path_text)
    idc_trust = t.get("idc_trust", str, default=None, check=_idc_trust(t.base_dir))
    link = LinkSettings(
        endpoints=tuple(endpoints or ()),
        frame_creator=t.get("frame_creator", str, default=station.name, check=_text(1, 8)),
        frame_destination=t.get("frame_destination", str, default="0", check=_text(1, 8)),
        key_bundle=None if bundle is None else (t.base_dir / bundle).resolve(),
        idc_trust=None if idc_trust is None else (t.base_dir / idc_trust).resolve(),
        window=t.get("window", int, default=64, check=_range(1, 10_000)),
        bandwidth_kbps=t.get("bandwidth_kbps", float, default=0.0, check=_range(0.0, None)),
        connect_timeout_s=t.get("connect_timeout_s", float, default=10.0, check=_range(0.1, 86400.0)),
        response_timeout_s=t.get("response_timeout_s", float, default=60.0, check=_range(0.1, 86400.0)),
        idle_timeout_s=t.get("idle_timeout_s", float, default=130.0, check=_range(0.1, 86400.0)),
    )
    t.done()
    return link


def _daemon(t: _Table) -> DaemonSettings:
    daemon = DaemonSettings(
        state_dir=t.path("state_dir") if "state_dir" in t.data else t.base_dir.resolve() / "state",
        metrics_port=t.get("metrics_port", int, default=0, check=_range(0, 65535)),
        metrics_address=t.get("metrics_address", str, default="127.0.0.1", check=_text(1, 255)),
        status_interval_s=t.get("status_interval_s", float, default=5.0, check=_range(0.1, 3600.0)),
    )
    t.done()
    return daemon


def _soh(t: _Table) -> SohSettings:
    soh = SohSettings(
        gps_unlocked_after_s=t.get("gps_unlocked_after_s", float, default=60.0, check=_range(0.0, 86400.0)),
        link_down_after_s=t.get("link_down_after_s", float, default=120.0, check=_range(0.0, 86400.0)),
        digitizer_silent_after_s=t.get("digitizer_silent_after_s", float, default=60.0,
                                       check=_range(1.0, 86400.0)),
        backlog_after_s=t.get("backlog_after_s", float, default=600.0, check=_range(0.0, 864000.0)),
        clock_differential_us=_limit(t.table("clock_differential_us", required=False), None, 1000.0, 100.0),
        supply_volts=_limit(t.table("supply_volts", required=False), 11.0, 15.0, 0.3),
        temperature_c=_limit(t.table("temperature_c", required=False), -20.0, 50.0, 1.0),
        mass_position=_limit(t.table("mass_position", required=False), None, 0.7, 0.05),
        backup_volts=_limit(t.table("backup_volts", required=False), 11.5, 14.8, 0.2),
    )
    t.done()
    return soh


def _limit(t: _Table, low: float | None, high: float | None, hysteresis: float) -> Limit:
    lo = t.get("min", float, default=low)
    hi = t.get("max", float, default=high)
    hyst = t.get("hysteresis", float, default=hysteresis, check=_range(0.0, None))
    if lo is None and hi is None:
        t.problem("", "needs at least one of min, max")
    if lo is not None and hi is not None and hyst is not None and lo + 2 * hyst >= hi:
        t.problem("", f"min + 2*hysteresis must be below max (min={lo}, max={hi}, hysteresis={hyst})")
    t.done()
    return Limit(lo, hi, hyst)


def _radionuclide(root: _Table, station: StationInfo) -> tuple[RadionuclideConfig, ...]:
    from station.radionuclide.settings import parse_radionuclide  # it reads with this module's checks

    return tuple(parse_radionuclide(t, station.name) for t in root.tables("radionuclide"))


def _store(t: _Table, default_budget_mb: float) -> StoreSettings:
    store = StoreSettings(
        path=t.path("path"),
        budget_mb=t.get("budget_mb", float, default=default_budget_mb,
                        check=_range(0.0, None, low_open=True)),
    )
    t.done()
    return store


def _cross_check(root: _Table, digitizers: Iterable[DigitizerConfig], channels: Iterable[ChannelConfig],
                 frame: FrameSettings, radionuclide: tuple[RadionuclideConfig, ...]) -> None:
    """Uniqueness and references across entries (only the entries that parsed are checked)."""
    digitizers, channels = list(digitizers), list(channels)
    if not channels and not radionuclide:
        root.problem("channels", "at least one [[channels]] or [[radionuclide]] entry is required")
    for attr in ("name", "system_id"):
        _duplicates(root, "digitizers", attr, [getattr(d, attr) for d in digitizers])
    _duplicates(root, "radionuclide", "name", [r.name for r in radionuclide])
    _one_user_per_port(root, digitizers, radionuclide)
    names = {d.name for d in digitizers}
    seen_codes: dict[str, int] = {}
    seen_streams: dict[tuple[str, str], int] = {}
    # fields that failed to parse are None here, whatever their declared type
    frame_s: int | None = frame.length_s
    for i, ch in enumerate(channels):
        digitizer: str | None = ch.digitizer
        sample_rate: float | None = ch.sample_rate
        if digitizer is not None and digitizer not in names:
            root.problem(f"channels[{i}].digitizer", f"no [[digitizers]] entry is named {ch.digitizer!r}")
        if None not in (ch.site, ch.channel, ch.location):
            first = seen_codes.setdefault(ch.code, i)
            if first != i:
                root.problem(f"channels[{i}]", f"duplicate channel {ch.code} (also channels[{first}])")
        if None not in (ch.digitizer, ch.stream_id):
            first = seen_streams.setdefault((ch.digitizer, ch.stream_id), i)
            if first != i:
                root.problem(f"channels[{i}].stream_id",
                             f"stream {ch.stream_id} of {ch.digitizer} already mapped by channels[{first}]")
        if sample_rate is not None and frame_s is not None and sample_rate > 0:
            per_frame = exact_rate(sample_rate) * frame_s
            if per_frame.denominator != 1:
                root.problem(f"channels[{i}].sample_rate",
                             f"{ch.sample_rate} sps gives {float(per_frame):g} samples per "
                             f"{frame_s} s frame; must be a whole number")


def _one_user_per_port(root: _Table, digitizers: list[DigitizerConfig],
                       radionuclide: tuple[RadionuclideConfig, ...]) -> None:
    """A serial line serves one instrument; only a noble-gas system's units may share theirs."""
    users: dict[str, str] = {}
    keys: list[tuple[str | None, str]] = [(d.port, f"digitizers[{i}].port") for i, d in enumerate(digitizers)]
    for i, rn in enumerate(radionuclide):  # a shared line is one key
        keys += [(port, f"radionuclide[{i}].{unit}.port")
                 for port, unit in {rn.sampler.port: "sampler", rn.detector.port: "detector"}.items()]
    for port, key in keys:
        if port is not None and users.setdefault(port, key) != key:
            root.problem(key, f"port {port!r} is already used by {users[port]}")


def _duplicates(root: _Table, section: str, attr: str, values: list[Any]) -> None:
    first: dict[Any, int] = {}
    for i, value in enumerate(values):
        if value is None:
            continue
        j = first.setdefault(value, i)
        if j != i:
            root.problem(f"{section}[{i}].{attr}", f"duplicate {value!r} (also {section}[{j}])")


# ----------------------------------------------------------------------------------------------- checks

def _frame_length(v: int) -> str | None:
    if not 1 <= v <= 60 or 60 % v:
        return f"must divide 60 s evenly (1, 2, 5, 10, ... 60), got {v!r}"
    return None


def _serial_port(v: str) -> str | None:
    if not v:
        return "must not be empty"
    if "://" in v and v.split("://", 1)[0] not in SERIAL_URL_SCHEMES:
        return f"URL scheme must be one of {', '.join(sorted(SERIAL_URL_SCHEMES))}; got {v!r}"
    return None


def _idc_trust(base_dir: Path) -> Check:
    """A trust store folder (a copy of the CA's ``trust/``) holding at least one IDC certificate."""

    def check(v: str) -> str | None:
        try:
            TrustStore.load(base_dir / v, role=Role.IDC)
        except KeyMaterialError as exc:
            return str(exc)
        return None

    return check


def key_problems(config: StationConfig) -> list[ConfigProblem]:
    """What stops the station's key bundle from signing (missing, unreadable, not a station's key): checked
    by ``check-config`` and before ``run`` creates anything, not at load, where a configuration is read
    also on machines without its keys (the example, status, tests)."""
    bundle = config.link.key_bundle
    if bundle is None:
        return []
    try:
        signer = StationSigner.load(bundle)
    except (KeyMaterialError, ValueError) as exc:
        return [ConfigProblem(config.source, "link.key_bundle", str(exc))]
    if signer.role is not Role.STATION:
        return [ConfigProblem(config.source, "link.key_bundle", f"{bundle}: an IDC's key, not a station's "
                                                                "('ims keys issue')")]
    if signer.station != config.link.frame_creator:  # the IDC would refuse every frame (creator_mismatch)
        problem = (f"{bundle}: certificate of station {signer.station!r}, but the frames are created as "
                   f"{config.link.frame_creator!r}")
        return [ConfigProblem(config.source, "link.key_bundle", problem)]
    return []
