"""The SEED alphabet and lengths of the codes that name a channel.

A peer's site, channel and location codes become SDS directory and file names, miniSEED headers,
SeedLink station ids and metrics labels, so nothing outside these rules is admitted: ASCII letters
and digits only (no ``/``, ``..``, NUL, spaces or anything non-ASCII), site 1-5, channel 1-3 and
location 0-2 characters.
"""

from __future__ import annotations

import re

_SITE = re.compile(r"[A-Za-z0-9]{1,5}")
_CHANNEL = re.compile(r"[A-Za-z0-9]{1,3}")
_LOCATION = re.compile(r"[A-Za-z0-9]{0,2}")


def valid_site(code: str) -> bool:
    return _SITE.fullmatch(code) is not None


def code_problem(site: str, channel: str, location: str) -> str | None:
    """What is wrong with a channel's codes (for a rejection reason), or None if they are all right."""
    if not valid_site(site):
        return f"site {site!r} is not 1-5 ASCII letters or digits"
    if _CHANNEL.fullmatch(channel) is None:
        return f"channel {channel!r} is not 1-3 ASCII letters or digits"
    if _LOCATION.fullmatch(location) is None:
        return f"location {location!r} is not 0-2 ASCII letters or digits"
    return None
