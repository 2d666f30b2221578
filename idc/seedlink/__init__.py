"""Real-time SeedLink output of the IDC receiver: what it archived, from an on-disk ring, to SeedLink 3
and 4 clients (SeisComP, ObsPy, slinktool, Swarm). See docs/seedlink.md."""

from idc.seedlink.protocol import Limits
from idc.seedlink.ring import Ring, RingError, capacity_for
from idc.seedlink.server import RunningServer, SeedLinkServer, SeedLinkServerError, ServerConfig, start_server

__all__ = [
    "Limits",
    "Ring",
    "RingError",
    "RunningServer",
    "SeedLinkServer",
    "SeedLinkServerError",
    "ServerConfig",
    "capacity_for",
    "start_server",
]
