"""StationXML for every channel the receiver archives, from the calib/calper its subframes carry.

miniSEED 2 has no field for a calibration factor: the archive's records hold counts, and their time
picks the StationXML epoch whose response holds for them. So the receiver keeps, per channel (network,
site, location, channel), the epochs over which a subframe's calib, calper and sensor type stayed the
same: a new epoch begins at the first subframe (by data time, not arrival) that carries other values,
as when a station applies an accepted calibration (docs/calibration.md, "Remote calibration"). Backlog
that arrives late still falls into the epoch of its own time. Epochs are kept in ``metadata.sqlite``
and written as ``stationxml/NET.SITE.xml`` (ObsPy, one file per site) about once a second after a
change, by replacing the file whole.

Each epoch's response is the shape declared for the channel code in the receiver's configuration
(``[stations.NAME.responses.CHA]``: a velocity seismometer's T0 and h, a microbarometer's or
hydrophone's corners) scaled so that its calib at calper is the subframes' (``response_from_calib``).
Without a declared shape the response is flat, in displacement (seismic) or pressure (hydroacoustic,
infrasonic): the one thing calib/calper say, right at calper and nowhere else, and the channel's
StationXML comment says so. Weather and other sensor types have no calib convention and get no response.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from calibration.response import PolesZeros, Seismometer, hydrophone, microbarometer, response_from_calib
from gci_link.cd11 import ChannelSubframe
from idc.config import DeclaredResponse, StationPolicy
from idc.stores import open_wal

if TYPE_CHECKING:
    from obspy.core.inventory import Channel, Inventory

log = logging.getLogger(__name__)

METADATA_NAME = "metadata.sqlite"
STATIONXML_DIR = "stationxml"
MAX_EPOCHS = 1000  # per channel: a station changing calib on every frame must not grow the files for ever
# what a count of each CD-1.1 sensor type is calibrated in (calib: nm of displacement, or Pa, per count)
SENSOR_UNITS = {0: "m", 1: "Pa", 2: "Pa"}
SENSOR_NAMES = {0: "seismic", 1: "hydroacoustic", 2: "infrasonic", 3: "weather"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS epochs (
    network TEXT NOT NULL,
    site TEXT NOT NULL,
    location TEXT NOT NULL,
    channel TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    calib REAL NOT NULL,
    calper REAL NOT NULL,
    sensor_type INTEGER NOT NULL,
    sample_rate REAL NOT NULL,
    station TEXT NOT NULL,
    PRIMARY KEY (network, site, location, channel, start_ns)
);
"""


class ChannelKey(NamedTuple):  # a tuple: made and hashed once per archived subframe, it must be cheap
    network: str
    site: str
    location: str
    channel: str


@dataclass(frozen=True, slots=True)
class Epoch:
    """From ``start_ns`` on (until the next epoch's start) the channel's subframes carried these values."""

    start_ns: int
    calib: float
    calper: float
    sensor_type: int
    sample_rate: float  # of the subframe that began the epoch
    station: str  # the configured station whose frames carried it: its declared responses apply

    def same_calibration(self, other: Epoch) -> bool:
        return (self.calib, self.calper, self.sensor_type) == (other.calib, other.calper, other.sensor_type)


def _columns(key: ChannelKey) -> tuple[str, str, str, str]:
    return key.network, key.site, key.location, key.channel


def _name(key: ChannelKey) -> str:
    return f"{key.network}.{key.site}.{key.location}.{key.channel}"


def response_shape(declared: DeclaredResponse | None, sensor_type: int) -> PolesZeros | None:
    """The response's shape in counts at unit level, or None when the sensor type has no calib
    convention. A declared shape whose input is not what the sensor type measures is not used."""
    units = SENSOR_UNITS.get(sensor_type)
    if units is None:
        return None
    shape: PolesZeros | None = None
    if declared is not None and declared.kind == "velocity":
        shape = Seismometer(declared.period_s, declared.damping, 1.0).velocity_response("counts")
    elif declared is not None:
        make = microbarometer if declared.kind == "microbarometer" else hydrophone
        shape = make(1.0, declared.low_corner_hz, declared.high_corner_hz, "counts")
    if shape is None or (shape.input_units == "Pa") != (units == "Pa"):
        return PolesZeros((), (), 1.0, units, "counts")
    return shape


def describe(declared: DeclaredResponse | None, shape: PolesZeros, epoch: Epoch) -> str:
    level = f"level from CD-1.1 calib {epoch.calib:.6g} {'nm' if shape.input_units != 'Pa' else 'Pa'}" \
            f"/count at calper {epoch.calper:g} s"
    if not shape.poles:
        return f"no declared response shape: flat, right at calper only; {level}"
    assert declared is not None
    if declared.kind == "velocity":
        what = f"velocity seismometer T0 {declared.period_s:g} s, h {declared.damping:g}"
    else:
        high = f" to {declared.high_corner_hz:g} Hz" if declared.high_corner_hz else ""
        what = f"{declared.kind} from {declared.low_corner_hz:g} Hz{high}"
    return f"shape declared in the receiver's configuration ({what}); {level}"


class ChannelMetadata:
    """Epochs of every archived channel and the StationXML files made of them. One user (the receiver's
    loop); ``observe`` per archived subframe, ``flush`` to write the files of sites that changed."""

    def __init__(self, root: Path, stations: Mapping[str, StationPolicy]) -> None:
        self.stations = stations
        self.folder = root / STATIONXML_DIR
        self.folder.mkdir(parents=True, exist_ok=True)
        self._db = open_wal(root / METADATA_NAME)
        self._db.executescript(_SCHEMA)
        self._epochs: dict[ChannelKey, list[Epoch]] = {}
        self._starts: dict[ChannelKey, list[int]] = {}
        self._full: set[ChannelKey] = set()  # channels at MAX_EPOCHS, logged once
        self._dirty: set[tuple[str, str]] = set()  # (network, site) whose file must be written
        rows = self._db.execute("SELECT network, site, location, channel, start_ns, calib, calper, "
                                "sensor_type, sample_rate, station FROM epochs ORDER BY start_ns").fetchall()
        for network, site, location, channel, *values in rows:
            key = ChannelKey(network, site, location, channel)
            self._epochs.setdefault(key, []).append(Epoch(*values))
            self._starts.setdefault(key, []).append(values[0])
        # every file once at start: the declared shapes and coordinates may have changed, and a crash
        # before a flush may have left one unwritten
        self._dirty = {(key.network, key.site) for key in self._epochs}

    def close(self) -> None:
        self._db.close()

    def path(self, network: str, site: str) -> Path:
        return self.folder / f"{network}.{site}.xml"

    def observe(self, station: str, sub: ChannelSubframe) -> None:
        """Note an archived subframe of ``station``: a new epoch begins at it when its values differ from
        those of the epoch its time falls in (an epoch that then begins later with the same values as the
        new one is merged into it: late backlog moved the change earlier)."""
        key = ChannelKey(self.stations[station].network, sub.site, sub.location, sub.channel)
        epochs, starts = self._epochs.get(key), self._starts.get(key)
        if epochs is None or starts is None:
            epochs, starts = self._epochs[key], self._starts[key] = [], []
        at = bisect.bisect_right(starts, sub.time_ns) - 1
        before = epochs[at] if at >= 0 else None
        if before is not None and (before.calib, before.calper, before.sensor_type) == (
                sub.calib, sub.calper, sub.sensor_type):
            return  # the common case, once per archived subframe: nothing built
        new = Epoch(sub.time_ns, sub.calib, sub.calper, sub.sensor_type, sub.sample_rate, station)
        if len(epochs) >= MAX_EPOCHS:
            if key not in self._full:
                self._full.add(key)
                log.warning("calibration changes no longer recorded: too many epochs",
                            extra={"station": station, "channel": _name(key), "epochs": len(epochs)})
            return
        if before is not None and before.start_ns == new.start_ns:  # other values, same start: newer stand
            epochs[at] = new
        else:
            at += 1
            epochs.insert(at, new)
            starts.insert(at, new.start_ns)
        if at + 1 < len(epochs) and epochs[at + 1].same_calibration(new):
            merged = epochs.pop(at + 1)
            starts.pop(at + 1)
            self._db.execute("DELETE FROM epochs WHERE network = ? AND site = ? AND location = ? "
                             "AND channel = ? AND start_ns = ?", (*_columns(key), merged.start_ns))
        self._db.execute("INSERT OR REPLACE INTO epochs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (*_columns(key), new.start_ns, new.calib, new.calper, new.sensor_type,
                          new.sample_rate, station))
        if before is not None:
            log.info("channel calibration changed", extra={
                "station": station, "channel": _name(key), "from_ns": new.start_ns, "calib": new.calib,
                "calper": new.calper, "was_calib": before.calib})
        self._dirty.add((key.network, key.site))

    def epochs(self, key: ChannelKey) -> list[Epoch]:
        return list(self._epochs.get(key, ()))

    def flush(self) -> list[Path]:
        """Write the StationXML of every site whose epochs changed; the files written."""
        written = []
        for network, site in sorted(self._dirty):
            path = self.path(network, site)
            tmp = path.with_suffix(".tmp")
            self.inventory(network, site).write(str(tmp), format="STATIONXML", validate=True)
            os.replace(tmp, path)
            self._dirty.discard((network, site))
            written.append(path)
        return written

    def inventory(self, network: str, site: str) -> Inventory:
        from obspy.core.inventory import Inventory, Network, Station  # ObsPy loads slowly: only when needed

        channels = []
        latitude = longitude = elevation = 0.0
        for key, epochs in sorted(self._epochs.items(), key=lambda item: (item[0].channel, item[0].location)):
            if (key.network, key.site) != (network, site):
                continue
            for index, epoch in enumerate(epochs):
                policy = self.stations.get(epoch.station)
                if policy is not None:
                    latitude, longitude, elevation = policy.coordinates
                # ends a microsecond (StationXML's resolution) before the next begins: ObsPy takes both
                # ends of an epoch as inside it, and a record starting at the change must find one response
                end = epochs[index + 1].start_ns - 1000 if index + 1 < len(epochs) else None
                channels.append(self._channel(key, epoch, end, policy, (latitude, longitude, elevation)))
        start = min(c.start_date for c in channels)
        station = Station(site, latitude, longitude, elevation, channels=channels, start_date=start)
        return Inventory(networks=[Network(network, stations=[station])],
                         source="IMS IDC receiver: CD-1.1 calib/calper of the archived subframes")

    @staticmethod
    def _channel(key: ChannelKey, epoch: Epoch, end_ns: int | None, policy: StationPolicy | None,
                 where: tuple[float, float, float]) -> Channel:
        from obspy import UTCDateTime
        from obspy.core.inventory import Channel, Comment

        from calibration.stationxml import obspy_response

        latitude, longitude, elevation = where
        declared = policy.declared(key.channel) if policy is not None else None
        shape = response_shape(declared, epoch.sensor_type)
        response = None
        note = f"sensor type {epoch.sensor_type} ({SENSOR_NAMES.get(epoch.sensor_type, 'other')})"
        if shape is None:
            note += ": no calib convention, no response"
        elif not (math.isfinite(epoch.calib) and epoch.calib != 0 and math.isfinite(epoch.calper)
                  and epoch.calper > 0):
            note += f": calib {epoch.calib!r} at calper {epoch.calper!r} give no response"
        else:
            level = response_from_calib(shape, epoch.calib, epoch.calper)
            response = obspy_response(level, 1.0 / epoch.calper)
            note += f"; {describe(declared, shape, epoch)}"
        return Channel(key.channel, key.location, latitude, longitude, elevation, 0.0,
                       sample_rate=epoch.sample_rate, start_date=UTCDateTime(ns=epoch.start_ns),
                       end_date=None if end_ns is None else UTCDateTime(ns=end_ns), response=response,
                       comments=[Comment(note)])
