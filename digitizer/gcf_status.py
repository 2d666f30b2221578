"""State of health from GCF status blocks: the text ``00`` stream and the binary CD status (spec §5).

Text status wording is firmware-specific, so each line is matched on its own and anything not
recognised is ignored (the whole text stays in ``Status.text``). Line forms follow the DM24 manuals:

    2006 9 4 13:13:00 2 MicroSeconds Fast Freq error 0 e-9 Auto 3D [-4]
    2005 8 10 12:36:00 GPS Control settling Auto 3-D [-5 Not sync'd]
    2006 1 18 14:38:00 o/s= 90 drift= 0 pwm= 8187 Auto 3D         (or ... Fix= "3D")
    2006 9 4 13:13:00 Lat= "51'21.6526N" Long="001'09.8148W"
    Boot Log : 143 Power cycles 294 Watchdog resets
    2006 1 18 14:56:15 External supply : 13.0V Temperature 24.68'C
    2006 1 18 14:56:15 Mass positions -486 -300 -424
    2005 8 10 17:06:27 GPS switched Off

Mass positions are reported in undocumented units, so they go to ``extra`` rather than to the
``mass_positions`` fractions of full scale.

Numbers no digitizer can mean are line noise, and such a reading is ignored like an unrecognised line:
a clock offset beyond int64 nanoseconds (the station's time arithmetic), a supply voltage or temperature
that is not finite, a temperature below absolute zero. A stamp that is no real date gives no GPS sync
time, and leaves one that an earlier line gave.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from digitizer.gcf import GcfBlock
from digitizer.packet import Status
from timeunits import NS_PER_S

CD_STATUS_SUFFIX = "CD"
CD_STATUS_SIZE = 16
CD_OFFSET_UNIT_NS = 500  # gps_offset counts 500 ns steps
_CD_FIX = {0: "no GPS", ord("1"): "none", ord("2"): "2D", ord("3"): "3D"}
_CD_FLAGS = ("locking", "unlocking", "cal_n", "cal_z", "cal_e", "centring")

_STAMP = r"(?P<stamp>\d{4} +\d{1,2} +\d{1,2} +\d{1,2}:\d{2}:\d{2})"
_FIX = r"(?P<fix>No Fix|[23]-?D)"
_CLOCK = re.compile(_STAMP + r"\s+(?P<us>-?\d{1,16}) +MicroSeconds +(?P<dir>Fast|Slow)"
                    r"(?: +Freq error +(?P<freq>-?\d+) +e-9)?(?: +\w+ +" + _FIX + r")?", re.I)
_SETTLING = re.compile(_STAMP + r"\s+GPS Control settling(?: +\w+ +" + _FIX + r")?", re.I)
_OSD = re.compile(_STAMP + r"\s+o/s= *(?P<os>-?\d+) +drift= *(?P<drift>-?\d+) +pwm= *(?P<pwm>-?\d+)"
                  r"(?: +(?:Fix= *\"?|\w+ +)" + _FIX + r")?", re.I)
_POSITION = re.compile(r"Lat= *\"(?P<lat>[^\"]+)\" +Long= *\"(?P<lon>[^\"]+)\"", re.I)
_BOOT = re.compile(r"Boot Log *: *(?:(?P<pc>\d+) +Power cycles +(?P<wd>\d+) +Watchdog resets|"
                   r"Power_cycles= *(?P<pc2>\d+) +Watchdog_resets= *(?P<wd2>\d+))", re.I)
_SUPPLY = re.compile(r"supply *: *(?P<volts>-?\d+(?:\.\d+)?) *V\s+Temperature\s+(?P<temp>-?\d+(?:\.\d+)?)",
                     re.I)
_MASSES = re.compile(r"Mass positions((?: +-?\d+)+)", re.I)
_GPS_OFF = re.compile(r"GPS switched Off", re.I)
MAX_CLOCK_OFFSET_US = (2**63 - 1) // 1000  # an offset in ns must fit int64
ABSOLUTE_ZERO_C = -273.15


def _stamp_ns(stamp: str) -> int | None:
    """The time of a status line's stamp; None for a stamp that matches the pattern but is no real date."""
    try:
        when = datetime.strptime(" ".join(stamp.split()), "%Y %m %d %H:%M:%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return int(when.timestamp()) * NS_PER_S


def _normal_fix(fix: str | None) -> str | None:
    if fix is None:
        return None
    return "none" if fix.lower() == "no fix" else fix.replace("-", "").upper()


def parse_status_text(system_id: str, time_ns: int, text: str) -> Status:
    """Status from the text of a ``00`` block; later lines override earlier ones."""
    fields: dict = {}
    extra: dict[str, str] = {}
    for line in text.replace("\r", "\n").split("\n"):
        line = line.strip()
        if not line:
            continue
        if (m := _CLOCK.search(line)) and abs(int(m["us"])) <= MAX_CLOCK_OFFSET_US:
            sign = 1 if m["dir"].lower() == "fast" else -1  # a fast clock is ahead of GPS
            fields.update(clock_offset_ns=sign * int(m["us"]) * 1000, gps_locked=True)
            if (synced := _stamp_ns(m["stamp"])) is not None:
                fields["last_gps_sync_ns"] = synced
            if m["freq"] is not None:
                extra["frequency_error_e9"] = m["freq"]
            if m["fix"]:
                fields["gps_fix"] = _normal_fix(m["fix"])
        elif m := _SETTLING.search(line):
            if "not sync" in line.lower():  # settling lines without it already steer the clock
                fields["gps_locked"] = False
            if m["fix"]:
                fields["gps_fix"] = _normal_fix(m["fix"])
        elif m := _OSD.search(line):
            extra.update(gps_offset_units=m["os"], gps_drift_units=m["drift"], pwm=m["pwm"])
            if m["fix"]:
                fields["gps_fix"] = _normal_fix(m["fix"])
        elif _GPS_OFF.search(line):
            extra["gps_power"] = "off"
        if m := _POSITION.search(line):
            extra.update(latitude=m["lat"], longitude=m["lon"])
        if m := _BOOT.search(line):
            extra.update(power_cycles=m["pc"] or m["pc2"], watchdog_resets=m["wd"] or m["wd2"])
        if m := _SUPPLY.search(line):
            volts, temp = float(m["volts"]), float(m["temp"])  # huge digit strings read as inf
            if math.isfinite(volts) and math.isfinite(temp) and temp >= ABSOLUTE_ZERO_C:
                fields.update(supply_volts=volts, temperature_c=temp)
        if m := _MASSES.search(line):
            extra["mass_positions_raw"] = " ".join(m[1].split())
    return Status(system_id=system_id, time_ns=time_ns, text=text, extra=extra, **fields)


def parse_cd_status(system_id: str, time_ns: int, body: bytes) -> Status:
    """Status from the 16-byte binary CD status body (libgcf2 layout, little-endian numbers)."""
    if len(body) < CD_STATUS_SIZE:
        raise ValueError(f"CD status body of {len(body)} bytes is shorter than {CD_STATUS_SIZE} (offset 16)")
    fix, mode, control, power = body[0], body[1], body[2], body[3]
    offset_units = int.from_bytes(body[4:8], "little", signed=True)
    busy = int.from_bytes(body[8:11], "little", signed=True)
    flags = body[11]
    set_flags = [name for bit, name in enumerate(_CD_FLAGS) if flags >> bit & 1]
    extra = {"gps_mode": chr(mode) if 32 < mode < 127 else str(mode), "gps_power": "on" if power else "off",
             "busy_counter": str(busy), "flags": ",".join(set_flags)}
    return Status(system_id=system_id, time_ns=time_ns, gps_locked=control == 0xFF,
                  gps_fix=_CD_FIX.get(fix, f"code {fix}"), clock_offset_ns=offset_units * CD_OFFSET_UNIT_NS,
                  calibration_active=bool(flags & 0b11100), extra=extra)


def status_from_block(block: GcfBlock) -> Status | None:
    """Status of a text or CD status block; None for other blocks (data, byte pipe, unknown status)."""
    if block.samples is not None or block.status_bytes is None:
        return None
    if block.status_text is not None:
        return parse_status_text(block.system_id, block.start_ns, block.status_text)
    if block.stream_id.endswith(CD_STATUS_SUFFIX) and len(block.status_bytes) >= CD_STATUS_SIZE:
        return parse_cd_status(block.system_id, block.start_ns, block.status_bytes)
    return None
