"""StationXML for one channel from a response model, written with ObsPy so any FDSN tool can read it.

The sensor is one poles-and-zeros stage (Laplace, rad/s) normalised at ``frequency``; a digitizer
gain, when given, is a second, gain-only stage, so the file shows volts between the two as a
datasheet does. Gains keep their sign: ObsPy's evalresp reproduces a reversed-polarity response
exactly, and the overall sensitivity is the signed product of the stage gains.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from obspy import UTCDateTime
from obspy.core.inventory import Channel, Inventory, Network, Station
from obspy.core.inventory.response import (
    InstrumentSensitivity,
    PolesZerosResponseStage,
    Response,
    ResponseStage,
)

from calibration.response import PolesZeros

SEED_UNITS = {"m": "M", "m/s": "M/S", "m/s**2": "M/S**2", "Pa": "PA", "V": "V", "counts": "COUNTS"}


@dataclass(frozen=True)
class ChannelSite:
    """Where a channel is and from when the response holds (UTC, integer nanoseconds)."""

    network: str
    station: str
    location: str
    channel: str
    latitude: float
    longitude: float
    elevation: float
    depth: float
    sample_rate: float
    start_ns: int


def _seed_units(units: str) -> str:
    try:
        return SEED_UNITS[units]
    except KeyError:
        raise ValueError(f"no SEED name for units {units!r}") from None


def obspy_response(response: PolesZeros, frequency: float = 1.0,
                   digitizer_gain: float | None = None) -> Response:
    """ObsPy ``Response`` of ``response`` (in counts), split into sensor and digitizer stages if
    ``digitizer_gain`` (counts per volt) is given."""
    if response.output_units != "counts":
        raise ValueError(f"a channel response ends in counts, not in {response.output_units!r}")
    sensor = response.scaled(1.0 / digitizer_gain, "V") if digitizer_gain else response
    stages = [PolesZerosResponseStage(
        1, sensor.sensitivity(frequency), frequency, _seed_units(sensor.input_units),
        _seed_units(sensor.output_units), "LAPLACE (RADIANS/SECOND)", frequency, list(sensor.zeros),
        list(sensor.poles), normalization_factor=sensor.normalisation_factor(frequency))]
    if digitizer_gain:
        stages.append(ResponseStage(2, digitizer_gain, frequency, "V", "COUNTS"))
    total = InstrumentSensitivity(response.sensitivity(frequency), frequency,
                                  _seed_units(response.input_units), "COUNTS")
    return Response(instrument_sensitivity=total, response_stages=stages)


def inventory(site: ChannelSite, response: PolesZeros, frequency: float = 1.0,
              digitizer_gain: float | None = None, source: str = "ims-station calibration") -> Inventory:
    """A one-network, one-station, one-channel inventory carrying the response."""
    start = UTCDateTime(ns=site.start_ns)
    channel = Channel(site.channel, site.location, site.latitude, site.longitude, site.elevation, site.depth,
                      sample_rate=site.sample_rate, start_date=start,
                      response=obspy_response(response, frequency, digitizer_gain))
    station = Station(site.station, site.latitude, site.longitude, site.elevation, channels=[channel],
                      start_date=start)
    return Inventory(networks=[Network(site.network, stations=[station])], source=source)


def write_stationxml(path: Path, site: ChannelSite, response: PolesZeros, frequency: float = 1.0,
                     digitizer_gain: float | None = None) -> None:
    inventory(site, response, frequency, digitizer_gain).write(str(path), format="STATIONXML", validate=True)
