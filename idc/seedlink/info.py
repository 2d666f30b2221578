"""SeedLink INFO documents: XML for protocol 3 (as SeisComP's seedlink writes them, which ObsPy and
slinktool read), JSON for protocol 4 (the FDSN SeedLink 4 schema)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

from idc.seedlink.ring import StreamSummary
from idc.seedlink.selection import RECORD_FORMAT, RECORD_TYPE, station_id, stream_id
from idc.seedlink.times import format_iso, format_v3

# the levels each protocol answers; others get an error document
LEVELS_V3 = ("ID", "CAPABILITIES", "STATIONS", "STREAMS")
LEVELS_V4 = ("ID", "FORMATS", "STATIONS", "STREAMS")
LEGACY_CAPABILITIES = (
    "dialup",
    "multistation",
    "window-extraction",
    "info:id",
    "info:capabilities",
    "info:stations",
    "info:streams",
)


@dataclass(frozen=True)
class Identity:
    """How the server introduces itself (HELLO and INFO)."""

    software: str  # e.g. "IMS-IDC 0.1.0"
    organization: str  # the second line of HELLO: data centre description
    started_ns: int


@dataclass(frozen=True)
class StationEntry:
    network: str
    station: str
    first_seq: int
    last_seq: int
    streams: tuple[StreamSummary, ...]


def by_station(streams: Sequence[StreamSummary]) -> list[StationEntry]:
    """Group channel summaries by station, in network and station order."""
    grouped: dict[tuple[str, str], list[StreamSummary]] = {}
    for s in streams:
        grouped.setdefault((s.network, s.station), []).append(s)
    return [
        StationEntry(net, sta, min(s.first_seq for s in group), max(s.last_seq for s in group), tuple(group))
        for (net, sta), group in sorted(grouped.items())
    ]


def xml_document(identity: Identity, hello: str, level: str, stations: Sequence[StationEntry]) -> bytes:
    """Protocol 3 INFO document of ``level`` (ID for any level not in LEVELS_V3: an error goes out
    as the ID document in ERR records, as SeedLink 3 servers do)."""
    root = ET.Element(
        "seedlink", software=hello, organization=identity.organization, started=format_v3(identity.started_ns)
    )
    if level == "CAPABILITIES":
        for name in LEGACY_CAPABILITIES:
            ET.SubElement(root, "capability", name=name)
    elif level in ("STATIONS", "STREAMS"):
        for entry in stations:
            node = ET.SubElement(
                root,
                "station",
                name=entry.station,
                network=entry.network,
                description=f"{entry.network} {entry.station}",
                begin_seq=f"{entry.first_seq & 0xFFFFFF:06X}",
                end_seq=f"{(entry.last_seq + 1) & 0xFFFFFF:06X}",
                stream_check="enabled",
            )
            if level == "STREAMS":
                for s in entry.streams:
                    ET.SubElement(
                        node,
                        "stream",
                        location=s.location,
                        seedname=s.channel,
                        type=RECORD_TYPE,
                        begin_time=format_v3(s.start_ns),
                        end_time=format_v3(s.end_ns),
                    )
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode").encode("utf-8")


def json_document(
    identity: Identity,
    hello: str,
    level: str,
    stations: Sequence[StationEntry],
    error: tuple[str, str] | None,
) -> bytes:
    """Protocol 4 INFO document of ``level``; ``error`` (code, message) makes it an error document."""
    doc: dict[str, object] = {"software": hello, "organization": identity.organization}
    if error is not None:
        doc["error"] = {"code": error[0], "message": error[1]}
    elif level == "FORMATS":
        subformats = {RECORD_TYPE: "data/generic"}
        doc["format"] = {RECORD_FORMAT: {"mimetype": "application/vnd.fdsn.mseed", "subformat": subformats}}
        doc["filter"] = {"native": "data in the format it was archived in (miniSEED 2)"}
    elif level in ("STATIONS", "STREAMS"):
        doc["station"] = [_station_json(entry, level == "STREAMS") for entry in stations]
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


def _station_json(entry: StationEntry, with_streams: bool) -> dict[str, object]:
    out: dict[str, object] = {
        "id": station_id(entry.network, entry.station),
        "description": f"{entry.network} {entry.station}",
        "begin_seq": entry.first_seq,
        "end_seq": entry.last_seq + 1,
        "backfill": -1,
    }
    if with_streams:
        out["stream"] = [
            {
                "id": stream_id(s.location, s.channel),
                "format": RECORD_FORMAT,
                "subformat": RECORD_TYPE,
                "origin": "native",
                "begin_time": format_iso(s.start_ns),
                "end_time": format_iso(s.end_ns),
            }
            for s in entry.streams
        ]
    return out
