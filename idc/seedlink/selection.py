"""Which stations and streams a SeedLink client asked for: station patterns and stream selectors of
protocol 3 and 4, parsed into matchers. Every parse error says what is wrong with the argument.

Station patterns match the station ID ``NET_STA`` (``*`` any run, ``?`` one character). Selectors:

- protocol 3: ``[!][LL]CCC[.T]``: location (2, ``-`` a space, so ``--`` is the empty location) and
  channel (3) with ``?`` wildcards, matched against the space-padded codes; T is a type letter
  (D data, E event, C calibration, T timing, O opaque, L log) or ``?``;
- protocol 4: ``[!]LOC_B_S_SS[.FS]``: a pattern over the stream ID (``00_B_H_Z``; ``_B_H_Z`` with an
  empty location) with ``*`` and ``?``, and a format/subformat pattern matched from the start of
  ``2D`` (a lone type letter is taken as the subformat, as protocol 3 clients send it).

A record is wanted when it matches any positive selector (or there is none) and no negative one.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

RECORD_FORMAT = "2"  # miniSEED 2
RECORD_TYPE = "D"  # the ring carries data records only
_TYPES = frozenset("DECOTL")
_STATION_CHARS = re.compile(r"[A-Za-z0-9*?]+")
_V3_LOCATION = re.compile(r"[A-Za-z0-9?-]{2}")
_V3_CHANNEL = re.compile(r"[A-Za-z0-9?]{3}")
_V4_STREAM = re.compile(r"[A-Za-z0-9*?_]*")
_V4_TYPE = re.compile(r"[A-Za-z0-9*?]{1,2}")


def _glob(pattern: str) -> re.Pattern[str]:
    """Anchored regex of a pattern with ``*`` (any run) and ``?`` (one character). The standard library's
    translation matches each ``*`` atomically; one ``.*`` per star backtracked exponentially (a client's
    station pattern of 64 stars and one letter that does not match held a session for minutes)."""
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE)


def station_id(network: str, station: str) -> str:
    return f"{network}_{station}"


def stream_id(location: str, channel: str) -> str:
    """FDSN-style stream ID of SeedLink 4: location, then band, source and subsource of the channel."""
    return f"{location}_{'_'.join(channel)}" if len(channel) == 3 else f"{location}_{channel}"


@dataclass(frozen=True)
class StationPattern:
    """A requested station (pattern) over ``NET_STA``."""

    text: str
    regex: re.Pattern[str]

    def matches(self, network: str, station: str) -> bool:
        return self.regex.fullmatch(station_id(network, station)) is not None


def station_v3(station: str, network: str | None) -> StationPattern:
    """``STATION station [network]``; an omitted network matches any (as ringserver does)."""
    net = "*" if network is None else network
    for value, what, longest in ((station, "station", 5), (net, "network", 2)):
        if not _STATION_CHARS.fullmatch(value) or ("*" not in value and len(value) > longest):
            raise ValueError(f"{what} {value!r}: expected up to {longest} letters or digits, with * or ?")
    text = station_id(net, station)
    return StationPattern(text, _glob(text))


def station_v4(pattern: str) -> StationPattern:
    """``STATION NET_STA`` (a pattern with ``*`` and ``?``)."""
    if not re.fullmatch(r"[A-Za-z0-9*?_]{1,64}", pattern):
        raise ValueError(f"station ID {pattern!r}: expected NET_STA of letters, digits, _, * and ?")
    return StationPattern(pattern, _glob(pattern))


@dataclass(frozen=True)
class Selector:
    """One SELECT argument; ``padded`` says which subject its regex matches (see module docstring)."""

    text: str
    negative: bool
    regex: re.Pattern[str]
    padded: bool  # protocol 3: location and channel padded to 2 + 3 characters; else the stream ID
    kind: re.Pattern[str] | None  # over "2D" (format and subformat), None: any

    def matches(self, location: str, channel: str) -> bool:
        subject = f"{location:<2}{channel:<3}" if self.padded else stream_id(location, channel)
        if self.regex.fullmatch(subject) is None:
            return False
        return self.kind is None or self.kind.match(RECORD_FORMAT + RECORD_TYPE) is not None


def selector_v3(text: str) -> Selector:
    body, negative = (text[1:], True) if text.startswith("!") else (text, False)
    codes, dot, kind = body.partition(".")
    if dot and not (len(kind) == 1 and (kind in _TYPES or kind == "?")):
        raise ValueError(f"selector {text!r}: type after '.' must be one of D E C O T L or ?")
    if len(codes) == 5 and _V3_LOCATION.fullmatch(codes[:2]) and _V3_CHANNEL.fullmatch(codes[2:]):
        pattern = codes.replace("-", " ")
    elif len(codes) == 3 and _V3_CHANNEL.fullmatch(codes):
        pattern = "??" + codes
    elif not codes and dot:
        pattern = "?????"
    else:
        raise ValueError(f"selector {text!r}: expected [LL]CCC[.T] (location 2, channel 3, ? wildcards)")
    return Selector(text, negative, _glob(pattern), True, None if kind in ("", "?") else _kind(kind))


def selector_v4(text: str) -> Selector:
    body, negative = (text[1:], True) if text.startswith("!") else (text, False)
    body, colon, conversion = body.partition(":")
    if colon and (negative or conversion.lower() != "native"):
        raise ValueError(f"selector {text!r}: only the :native filter is offered, and not with '!'")
    stream, dot, kind = body.partition(".")
    if not _V4_STREAM.fullmatch(stream) or (dot and not _V4_TYPE.fullmatch(kind)):
        raise ValueError(f"selector {text!r}: expected [!]LOC_B_S_SS[.FS] of letters, digits, _, * and ?")
    return Selector(text, negative, _glob(stream or "*"), False, _kind(kind) if kind else None)


def _kind(pattern: str) -> re.Pattern[str]:
    """Format/subformat pattern matched from the start of ``2D``; a lone type letter is the subformat."""
    if len(pattern) == 1 and pattern.upper() in _TYPES:
        return re.compile(r"." + re.escape(pattern.upper()), re.IGNORECASE)
    return _glob(pattern + "*")


def wanted(selectors: list[Selector], location: str, channel: str) -> bool:
    """Matches a positive selector (or there is none) and no negative one."""
    positive = False
    any_positive = False
    for sel in selectors:
        if sel.negative:
            if sel.matches(location, channel):
                return False
        else:
            any_positive = True
            positive = positive or sel.matches(location, channel)
    return positive or not any_positive
