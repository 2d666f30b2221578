"""The identifiers that tie the messages of a sample together (spec sheet ims2-radionuclide.md §4.1, §10.1).

- **SRID** (sample reference id): two station digits, the date and hour its collection started
  (``YYYYMMDDhh``), two digits (``11`` in every real file) and a letter: ``74200812230011`` (a
  particulate sample, no letter), ``01202403010111X`` (a noble-gas sample). A gas background carries the
  SRID of the sample it precedes. QC counts and detector backgrounds are not samples; they get an SRID
  built the same way from the hour their count started, with the letter ``Q`` or ``D`` (project
  convention, docs/radionuclide-station.md).
- **Measurement id**: ``<detector>-YYYY/MM/DD-hh:mm:ss.s`` of the count's acquisition start. A sample's
  header lists its own, the detector background's in force and (noble gas) its gas background's.
- **MSG_ID**: ``YYYYMMDDhhmmssSSS`` of the transmit time and the station code, strictly increasing per
  system (a message in the same millisecond as the previous one takes the next millisecond).
"""

from __future__ import annotations

import time

from gci_link.ims2.fields import format_time
from station.radionuclide.schedule import CountKind
from timeunits import NS_PER_MS, NS_PER_S

TENTH_NS = NS_PER_S // 10
COUNT_LETTERS = {CountKind.QC: "Q", CountKind.DETBK: "D"}  # letters of the counts that are not samples


def to_tenth(t_ns: int) -> int:
    """Times in messages have tenths of a second, as the real files do."""
    return t_ns - t_ns % TENTH_NS


def srid(srid_station: str, start_ns: int, digits: str, letter: str = "") -> str:
    hour = time.strftime("%Y%m%d%H", time.gmtime(start_ns // NS_PER_S))
    return f"{srid_station}{hour}{digits}{letter}"


def measurement_id(detector_code: str, acquisition_start_ns: int) -> str:
    return f"{detector_code}-{format_time(to_tenth(acquisition_start_ns), separator='-')}"


def msg_id_ms(transmit_ns: int, last_ms: int | None) -> int:
    """The MSG_ID time (ms) for a message sent at ``transmit_ns`` after one with ``last_ms``."""
    ms = transmit_ns // NS_PER_MS
    return ms if last_ms is None or ms > last_ms else last_ms + 1


def format_msg_id(ms: int) -> str:
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(ms // 1000))
    return f"{stamp}{ms % 1000:03d}"
