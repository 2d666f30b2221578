"""``[[radionuclide]]`` tables of the station configuration: what they hold, their defaults, their checks.

Read with the station configuration's own validator (station/config.py), so every problem names the
file, the key and what is wrong, and is reported together with the rest of the file's problems.
docs/station-config.md lists every key.
"""

from __future__ import annotations

from dataclasses import dataclass

from digitizer.dp5 import CHANNEL_COUNTS
from opskit.tomlcheck import Check
from opskit.tomlcheck import Table as _Table
from opskit.tomlcheck import in_range as _range
from opskit.tomlcheck import one_of as _one_of
from opskit.tomlcheck import text as _text
from station.config import BAUD_RATES, Limit, _limit, _serial_port
from station.radionuclide.calibration import Calibration, parse_calibration

PARTICULATE = "particulate"
NOBLE_GAS = "noble_gas"
KINDS = (PARTICULATE, NOBLE_GAS)
SYSTEM_TYPES = {PARTICULATE: "P", NOBLE_GAS: "B"}  # IMS 2.0 #Header system type


@dataclass(frozen=True, slots=True)
class Port:
    port: str  # device path or pyserial URL
    baud: int


@dataclass(frozen=True, slots=True)
class CycleTimes:
    """The schedule, in whole seconds of data time (station/radionuclide/schedule.py uses it)."""

    collection_s: int  # one filter or gas sample per period; collections follow each other without gap
    offset_s: int  # collections start at 1970-01-01 + offset_s + k * collection_s (UTC)
    decay_s: int  # from the end of a collection to the first count for it (noble gas: processing)
    acquisition_s: int  # the sample count
    prel_interval_s: int  # PREL SAMPLEPHD this often during the sample count; 0 = none
    gasbk_s: int  # noble gas: gas background count before every sample count
    qc_s: int  # QC count opening every qc_every-th slot
    qc_every: int  # 0 = no QC counts
    detbk_s: int  # detector background count after the QC count of every detbk_every-th slot
    detbk_every: int  # 0 = no detector backgrounds
    soh_poll_s: int  # the instruments' state of health is read this often
    rmssoh_s: int  # one RMSSOH message per period of this length

    @property
    def slot_s(self) -> int:
        """Detector time the busiest slot needs (every count kind in it)."""
        qc = self.qc_s if self.qc_every else 0
        detbk = self.detbk_s if self.detbk_every else 0
        return qc + detbk + self.gasbk_s + self.acquisition_s


@dataclass(frozen=True, slots=True)
class Spectra:
    """How the detector's spectra are written: channel count (HPGe) and energy spans."""

    channels: int  # HPGe MCA channels (DP5 MCAC); the beta-gamma analyser says its own
    g_energy_span_kev: float
    b_energy_span_kev: float  # beta-gamma only


@dataclass(frozen=True, slots=True)
class Limits:
    """State-of-health thresholds; crossing one raises an alarm and an ALERT_* message."""

    flow_m3h: Limit  # ALERT_FLOW (while the sampler runs or fails)
    detector_temp_c: Limit  # ALERT_TEMP
    trap_temp_c: Limit  # ALERT_TEMP (xenon unit)
    hv_v: Limit  # ALERT_SYSTEM (|high voltage|)


@dataclass(frozen=True, slots=True)
class RadionuclideConfig:
    name: str  # label of this system in logs, status, the outbox and state files
    kind: str  # PARTICULATE or NOBLE_GAS
    station: str  # IMS station code in the messages
    detector_code: str  # detector code in the messages and measurement ids
    srid_station: str  # two digits that open every sample reference id
    srid_digits: str  # the digits after the collection date and hour (11 in every real file)
    srid_letter: str  # closes a sample's SRID: none for particulate, X for noble gas (real files)
    geometry: str  # #Header sample geometry
    detector: Port
    sampler: Port  # air sampler (particulate); sampler and xenon unit (noble gas; may share the detector's)
    cycle: CycleTimes
    spectra: Spectra
    calibration: Calibration
    limits: Limits

    @property
    def system_type(self) -> str:
        return SYSTEM_TYPES[self.kind]

    @property
    def shares_line(self) -> bool:
        """The detector and the sampler answer on one serial line (a noble-gas system as one unit)."""
        return self.detector.port == self.sampler.port


# ------------------------------------------------------------------------------------------- reading

DAY_S = 86_400
# per kind: cycle defaults (IMS practice: 24 h collection, 24 h decay and a 24 h count on HPGe with a
# daily QC count; 12 h collection on beta-gamma with a gas background before every sample)
CYCLE_DEFAULTS = {
    PARTICULATE: dict(collection_s=DAY_S, decay_s=DAY_S, acquisition_s=DAY_S - 1800, prel_interval_s=7200,
                      gasbk_s=0, qc_s=1800, qc_every=1, detbk_s=0, detbk_every=0),
    NOBLE_GAS: dict(collection_s=DAY_S // 2, decay_s=4 * 3600, acquisition_s=DAY_S // 2 - 2400,
                    prel_interval_s=3600, gasbk_s=2400, qc_s=0, qc_every=0, detbk_s=0, detbk_every=0),
}
GEOMETRY_DEFAULTS = {PARTICULATE: "FILTER", NOBLE_GAS: "CYLINDER"}
SRID_LETTER_DEFAULTS = {PARTICULATE: "", NOBLE_GAS: "X"}
# (min, max, hysteresis) per limit and kind; flows in standard m3/h, temperatures in degrees C
LIMIT_DEFAULTS: dict[str, dict[str, tuple[float | None, float | None, float]]] = {
    PARTICULATE: {"flow_m3h": (500.0, None, 20.0), "detector_temp_c": (None, -170.0, 2.0),
                  "trap_temp_c": (None, 30.0, 1.0), "hv_v": (100.0, None, 10.0)},
    NOBLE_GAS: {"flow_m3h": (0.5, None, 0.05), "detector_temp_c": (None, 40.0, 1.0),
                "trap_temp_c": (None, 5.0, 1.0), "hv_v": (100.0, None, 10.0)},
}
MAX_CYCLE_S = 7 * DAY_S


def parse_radionuclide(t: _Table, station: str | None) -> RadionuclideConfig:
    """One ``[[radionuclide]]`` table; ``station`` is the ``[station]`` name (the default IMS code)."""
    kind = t.get("kind", str, check=_one_of(KINDS))
    known = kind if kind in KINDS else PARTICULATE  # go on with a kind, so the other keys are checked
    det = t.table("detector")
    detector = _port(det)
    positive = _range(0.0, None, low_open=True)
    spectra = Spectra(
        channels=det.get("channels", int, default=8192, check=_one_of(CHANNEL_COUNTS)),
        g_energy_span_kev=det.get("g_energy_span_kev", float, default=720.0 if known == NOBLE_GAS else 2700.0,
                                  check=positive),
        b_energy_span_kev=det.get("b_energy_span_kev", float, default=550.0, check=positive),
    )
    det.done()
    sam = t.table("sampler")
    sampler = _port(sam)
    sam.done()
    config = RadionuclideConfig(
        name=t.get("name", str, check=_text(1, 16, alnum=True)),
        kind=kind,
        station=t.get("station", str, default=station, check=_text(1, 5, alnum=True)),
        detector_code=t.get("detector_code", str, check=_token(1, 16)),
        srid_station=t.get("srid_station", str, check=_digits(2, 2)),
        srid_digits=t.get("srid_digits", str, default="11", check=_digits(1, 4)),
        srid_letter=t.get("srid_letter", str, default=SRID_LETTER_DEFAULTS[known], check=_letter),
        geometry=t.get("geometry", str, default=GEOMETRY_DEFAULTS[known], check=_token(1, 17)),
        detector=detector,
        sampler=sampler,
        cycle=_cycle(t.table("cycle", required=False), known),
        spectra=spectra,
        calibration=parse_calibration(t.table("calibration", required=False), SYSTEM_TYPES[known],
                                      spectra.channels),
        limits=_limits(t.table("limits", required=False), known),
    )
    t.done()
    detector_port: str | None = detector.port  # None when its key failed to parse
    if config.kind == PARTICULATE and detector_port is not None and config.shares_line:
        t.problem("sampler.port", "a particulate system's air sampler needs a line of its own (the DP5 "
                                  "speaks only its packet protocol)")
    return config


def _port(t: _Table) -> Port:
    """The port keys of an instrument table (the caller reads the rest and calls ``done``)."""
    return Port(port=t.get("port", str, check=_serial_port),
                baud=t.get("baud", int, default=115200, check=_one_of(BAUD_RATES)))


def _cycle(t: _Table, kind: str) -> CycleTimes:
    d = CYCLE_DEFAULTS[kind]
    seconds = _range(0, MAX_CYCLE_S)

    def get(name: str, default: int) -> int:
        return t.get(name, int, default=default, check=seconds)

    # an SRID names the hour a collection started: two collections must not start within one hour
    collection = t.get("collection_s", int, default=d["collection_s"], check=_range(3600, MAX_CYCLE_S))
    cycle = CycleTimes(
        collection_s=collection,
        offset_s=get("offset_s", 0),
        decay_s=get("decay_s", d["decay_s"]),
        acquisition_s=t.get("acquisition_s", int, default=d["acquisition_s"], check=_range(1, MAX_CYCLE_S)),
        prel_interval_s=get("prel_interval_s", d["prel_interval_s"]),
        gasbk_s=get("gasbk_s", d["gasbk_s"]),
        qc_s=get("qc_s", d["qc_s"]),
        qc_every=get("qc_every", d["qc_every"]),
        detbk_s=get("detbk_s", d["detbk_s"]),
        detbk_every=get("detbk_every", d["detbk_every"]),
        soh_poll_s=t.get("soh_poll_s", int, default=60, check=_range(1, 3600)),
        rmssoh_s=t.get("rmssoh_s", int, default=600, check=_range(60, DAY_S)),
    )
    t.done()
    if None in (cycle.collection_s, cycle.offset_s, cycle.acquisition_s, cycle.gasbk_s, cycle.qc_s,
                cycle.qc_every, cycle.detbk_s, cycle.detbk_every, cycle.soh_poll_s, cycle.rmssoh_s):
        return cycle  # the broken key is reported already; the relations below need every value
    if cycle.offset_s >= cycle.collection_s:
        t.problem("offset_s", f"must be below collection_s ({cycle.collection_s}), got {cycle.offset_s}")
    if cycle.slot_s > cycle.collection_s:
        t.problem("", f"the counts of one slot take {cycle.slot_s} s (QC, detector background, gas "
                      f"background and acquisition) but a slot lasts collection_s = {cycle.collection_s} s")
    if kind == NOBLE_GAS and cycle.gasbk_s == 0:
        t.problem("gasbk_s", "a noble-gas system counts a gas background before every sample (> 0)")
    if kind == PARTICULATE and cycle.gasbk_s:
        t.problem("gasbk_s", "only noble-gas systems count gas backgrounds (leave it out or 0)")
    for every, length in (("qc_every", cycle.qc_s), ("detbk_every", cycle.detbk_s)):
        if getattr(cycle, every) and not length:
            t.problem(every, f"{every.removesuffix('_every')}_s must be > 0 when {every} is set")
    if cycle.soh_poll_s > cycle.rmssoh_s:
        t.problem("soh_poll_s", f"must not exceed rmssoh_s ({cycle.rmssoh_s}), got {cycle.soh_poll_s}")
    return cycle


def _limits(t: _Table, kind: str) -> Limits:
    made = {}
    for name, (low, high, hysteresis) in LIMIT_DEFAULTS[kind].items():
        made[name] = _limit(t.table(name, required=False), low, high, hysteresis)
    t.done()
    return Limits(**made)


def _token(shortest: int, longest: int) -> Check:
    """Printable ASCII without blanks (IMS 2.0 header values are blank-separated tokens)."""
    length = _text(shortest, longest)

    def check(v: str) -> str | None:
        if (error := length(v)) is not None:
            return error
        return None if v.isprintable() and not any(c.isspace() for c in v) else f"must be one word, got {v!r}"
    return check


def _letter(v: str) -> str | None:
    return None if v == "" or (len(v) == 1 and v.isascii() and v.isupper()) else f"must be one capital " \
        f"letter or empty, got {v!r}"


def _digits(shortest: int, longest: int) -> Check:
    length = _text(shortest, longest)

    def check(v: str) -> str | None:
        return length(v) or (None if v.isdigit() else f"must be digits, got {v!r}")
    return check
