"""What a calibration session needs to know about one of the station's channels, taken from the station
configuration: which channel an operator's name means, its two streams, its coil, its nominal response
and where it is. Shared by the bench session (``ims cal``) and the daemon's remote calibrations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from calibration.capture import Streams
from calibration.report import Session
from calibration.response import Seismometer, calib_from_response
from calibration.seismometer import FitResult
from calibration.session import Plan, nominal_in_fit_units
from calibration.stationxml import ChannelSite
from station.config import ChannelConfig, DigitizerConfig, SensorCalibration, StationConfig
from timeunits import NS_PER_S


def find_channel(config: StationConfig, name: str) -> ChannelConfig:
    """The channel ``name`` means: ``SITE.CHA.LO`` (``SITE.CHA`` for an empty location), or a channel
    code such as ``BHZ`` when only one site has it. ValueError names the choices otherwise."""
    exact = [c for c in config.channels if name in (c.code, c.code.rstrip("."))]
    by_code = [c for c in config.channels if c.channel == name]
    found = exact or by_code
    if len(found) == 1:
        return found[0]
    known = ", ".join(sorted(c.code for c in config.channels))
    if not found:
        raise ValueError(f"no channel {name!r} in {config.source} (channels: {known})")
    raise ValueError(f"{name!r} names {len(found)} channels ({', '.join(c.code for c in found)}); "
                     "give SITE.CHA.LO")


@dataclass(frozen=True)
class CalibrationTarget:
    """One channel made ready for a calibration session."""

    network: str
    channel: ChannelConfig
    digitizer: DigitizerConfig
    settings: SensorCalibration
    latitude: float | None
    longitude: float | None
    elevation_m: float | None

    @property
    def code(self) -> str:
        return self.channel.code

    @property
    def streams(self) -> Streams:
        return Streams(self.digitizer.system_id, self.channel.stream_id, self.settings.input_stream_id)

    @property
    def nominal(self) -> Seismometer | None:
        """The nominal sensor in the fit's units, when the configuration gives one."""
        s = self.settings
        if s.period_s is None or s.damping is None or s.sensitivity is None or s.coil_constant is None:
            return None
        return nominal_in_fit_units(s.period_s, s.damping, s.sensitivity, s.coil_constant)

    def session(self, plan: Plan, start_ns: int, operator: str = "") -> Session:
        """The report's description of the session."""
        signal = plan.signal + (" " + ", ".join(f"{f:g}" for f in plan.frequencies) + " Hz"
                                if plan.frequencies else "") + f", {plan.minutes} min"
        return Session(self.network, self.channel.site, self.channel.location, self.channel.channel,
                       self.settings.input_stream_id, start_ns, signal, operator,
                       self.settings.coil_constant, self.channel.calper)

    def site(self, start_ns: int) -> ChannelSite | None:
        """Where the channel is, from ``start_ns`` on, for StationXML; None without the coordinates."""
        if self.latitude is None or self.longitude is None or self.elevation_m is None:
            return None
        c = self.channel
        return ChannelSite(self.network, c.site, c.location, c.channel, self.latitude, self.longitude,
                           self.elevation_m, self.settings.depth_m, c.sample_rate, start_ns)

    def calib(self, fit: FitResult) -> float | None:
        """calib (nm/count) at the channel's calper from a fit; None without the coil constant."""
        if not self.settings.coil_constant:
            return None
        return calib_from_response(fit.ground_response(self.settings.coil_constant), self.channel.calper)

    def folder_name(self, start_ns: int) -> str:
        """``NET.STA.LOC.CHA_YYYYmmddTHHMMSSZ``: one report folder per channel and start."""
        stamp = datetime.fromtimestamp(start_ns // NS_PER_S, UTC).strftime("%Y%m%dT%H%M%SZ")
        c = self.channel
        return f"{self.network}.{c.site}.{c.location}.{c.channel}_{stamp}"

    def report_folder(self, parent: Path, start_ns: int) -> Path:
        return parent / self.folder_name(start_ns)


def calibration_target(config: StationConfig, name: str) -> CalibrationTarget:
    """The channel ``name`` ready for calibration; ValueError when it is unknown or has no
    ``[channels.calibration]`` table."""
    channel = find_channel(config, name)
    if channel.calibration is None:
        raise ValueError(f"channel {channel.code} has no [channels.calibration] table in {config.source}: "
                         "its calibration stream and coil are unknown")
    info = config.station
    return CalibrationTarget(info.network, channel, config.digitizer(channel.digitizer), channel.calibration,
                             info.latitude, info.longitude, info.elevation_m)
