"""State-of-health judgements of a radionuclide system, and the ALERT_* messages they cause.

Readings are judged with the waveform SOH's own band check (``station.soh.check_band``: raise outside
[min, max], clear only back inside by the hysteresis), on the system's own ``AlarmBoard``. Events that
are not readings (an instrument that stopped answering, a spectrum that could not be read, a message
quarantined, a count lost) are alarms on the same board. ``AlertWatch`` turns every change of an alarm
named in ``ALARMS`` into one ALERT message: RAISED when it is raised, CLEARED when it clears, never
more (spec sheet §10.3). After a restart ``restore`` puts back the alarms whose RAISED went out without
a CLEARED, so a condition that lasted across the restart is not announced twice, and one that ended
during it is announced as CLEARED.
"""

from __future__ import annotations

from dataclasses import dataclass

from calibration.detector_monitor import QcVerdict
from digitizer import mca
from station.alarms import AlarmBoard, Severity
from station.radionuclide.instruments import DetectorSoh
from station.radionuclide.ledger import Stored
from station.radionuclide.messages import AlertText
from station.radionuclide.settings import Limits
from station.soh import check_band
from timeunits import NS_PER_MS

DETECTOR = "detector"
SAMPLER = "sampler"
CYCLE = "cycle"
RAISED, CLEARED = "RAISED", "CLEARED"


@dataclass(frozen=True, slots=True)
class AlarmKind:
    category: str  # the ALERT_ data type it is sent as
    condition: str
    subject: str
    unit: str | None
    severity: Severity
    limit: str | None = None  # Limits field whose bound it is judged against
    side: str = ""  # "min" or "max" of that limit


ALARMS: dict[str, AlarmKind] = {
    "flow_low": AlarmKind("FLOW", "LOW", "SAMPLER", "M3/H", Severity.CRITICAL, "flow_m3h", "min"),
    "flow_high": AlarmKind("FLOW", "HIGH", "SAMPLER", "M3/H", Severity.WARNING, "flow_m3h", "max"),
    "sampler_failed": AlarmKind("FLOW", "FAIL", "SAMPLER", None, Severity.CRITICAL),
    "detector_temp_low": AlarmKind("TEMP", "LOW", "DETECTOR", "C", Severity.WARNING, "detector_temp_c",
                                   "min"),
    "detector_temp_high": AlarmKind("TEMP", "HIGH", "DETECTOR", "C", Severity.WARNING, "detector_temp_c",
                                    "max"),
    "trap_temp_low": AlarmKind("TEMP", "LOW", "XE_TRAP", "C", Severity.WARNING, "trap_temp_c", "min"),
    "trap_temp_high": AlarmKind("TEMP", "HIGH", "XE_TRAP", "C", Severity.WARNING, "trap_temp_c", "max"),
    "hv_low": AlarmKind("SYSTEM", "HV_LOW", "DETECTOR", "V", Severity.CRITICAL, "hv_v", "min"),
    "hv_high": AlarmKind("SYSTEM", "HV_HIGH", "DETECTOR", "V", Severity.CRITICAL, "hv_v", "max"),
    "on_battery": AlarmKind("UPS", "ON_BATTERY", "UPS", "%", Severity.CRITICAL),
    "instrument_unavailable": AlarmKind("SYSTEM", "FAIL", "INSTRUMENT", None, Severity.CRITICAL),
    "acquisition_stalled": AlarmKind("SYSTEM", "STALLED", "DETECTOR", "S", Severity.CRITICAL),
    "readout_failed": AlarmKind("SYSTEM", "READOUT_FAILED", "DETECTOR", None, Severity.CRITICAL),
    "count_lost": AlarmKind("SYSTEM", "COUNT_LOST", "DETECTOR", None, Severity.CRITICAL),
    "message_quarantined": AlarmKind("SYSTEM", "MESSAGE_QUARANTINED", "STATION", None, Severity.CRITICAL),
    # from a QC spectrum against the calibration (calibration.detector_monitor); the value is the figure
    "gain_drift": AlarmKind("SYSTEM", "GAIN_DRIFT", "DETECTOR", "FWHM", Severity.WARNING),
    "resolution_degraded": AlarmKind("SYSTEM", "RESOLUTION", "DETECTOR", None, Severity.WARNING),
}
RUNNING_OR_FAILED = ("RUNNING", "FAIL")


def judge_detector(alarms: AlarmBoard, limits: Limits, soh: DetectorSoh, now_ns: int) -> None:
    if soh.hv_v is not None:
        _band(alarms, DETECTOR, abs(soh.hv_v), limits, "hv_v", "hv_low", "hv_high", now_ns)
    if soh.temperature_c is not None:
        _band(alarms, DETECTOR, soh.temperature_c, limits, "detector_temp_c", "detector_temp_low",
              "detector_temp_high", now_ns)


def judge_sampler(alarms: AlarmBoard, limits: Limits, soh: mca.Soh, now_ns: int) -> None:
    """Flow is judged while the sampler runs or says it failed, not while it is stopped on purpose
    (a xenon unit processing its sample)."""
    if soh.flow_m3h is not None and (soh.sampler is None or soh.sampler in RUNNING_OR_FAILED):
        _band(alarms, SAMPLER, soh.flow_m3h, limits, "flow_m3h", "flow_low", "flow_high", now_ns)
    if soh.sampler is not None:
        switch(alarms, "sampler_failed", SAMPLER, soh.sampler == "FAIL", now_ns, value=soh.flow_m3h,
               message="the air sampler reports a failure")
    if soh.trap_temp_c is not None:
        _band(alarms, SAMPLER, soh.trap_temp_c, limits, "trap_temp_c", "trap_temp_low", "trap_temp_high",
              now_ns)
    if soh.power is not None:
        switch(alarms, "on_battery", SAMPLER, soh.power == "UPS", now_ns, value=soh.ups_charge_pct,
               message="mains power lost: running on the UPS")


def judge_qc(alarms: AlarmBoard, verdict: QcVerdict, now_ns: int) -> None:
    """A QC spectrum's peaks against the calibration: a line shifted beyond the limit (in FWHM) raises
    ``gain_drift``, a mean FWHM ratio beyond the limit ``resolution_degraded``; a good QC clears them."""
    limits = verdict.limits
    switch(alarms, "gain_drift", DETECTOR, verdict.gain_drifted, now_ns, value=verdict.max_shift_fwhm,
           threshold=limits.max_shift_fwhm, message=verdict.summary())
    switch(alarms, "resolution_degraded", DETECTOR, verdict.resolution_degraded, now_ns,
           value=verdict.fwhm_ratio, threshold=limits.max_fwhm_ratio, message=verdict.summary())


def switch(alarms: AlarmBoard, name: str, source: str, on: bool, now_ns: int, *, value: float | None = None,
           message: str = "", threshold: float | None = None) -> None:
    if on:
        alarms.raise_alarm(name, source, ALARMS[name].severity, now_ns, value=value, threshold=threshold,
                           message=message)
    else:
        alarms.clear_alarm(name, source, now_ns, value=value)


def _band(alarms: AlarmBoard, source: str, value: float, limits: Limits, limit: str, low: str, high: str,
          now_ns: int) -> None:
    for low_name, high_name in ((low, None), (None, high)):  # each side with its own severity
        name = low_name or high_name
        assert name is not None
        check_band(alarms, source, value, getattr(limits, limit), now_ns, low=low_name, high=high_name,
                   severity=ALARMS[name].severity)


class AlertWatch:
    """The alarms of ``ALARMS`` already announced, and the changes still to announce."""

    def __init__(self, alarms: AlarmBoard, limits: Limits) -> None:
        self.alarms = alarms
        self.limits = limits
        self._announced: set[tuple[str, str]] = set()  # (alarm, source) whose RAISED went out

    def restore(self, stored: list[Stored]) -> None:
        """Take back the alarms announced RAISED and never CLEARED, from the messages the outbox holds."""
        last: dict[tuple[str, str], tuple[str, int]] = {}
        for item in stored:
            words = item.event.split()
            if len(words) == 4 and words[0] == "ALERT" and words[1] in ALARMS:
                last[(words[1], words[2])] = (words[3], item.msg_ms * NS_PER_MS)
        for (name, source), (state, time_ns) in last.items():
            if state != RAISED:
                continue
            kind = ALARMS[name]
            threshold = getattr(getattr(self.limits, kind.limit), kind.side) if kind.limit else None
            self.alarms.raise_alarm(name, source, kind.severity, time_ns, threshold=threshold,
                                    message=f"{source}: {name} (active before the restart)")
            self._announced.add((name, source))

    def changes(self) -> list[tuple[str, AlertText]]:
        """(event, alert) for every alarm raised or cleared since the last call; the caller stores each
        and then calls ``announced``."""
        active = {(a.name, a.source): a for a in self.alarms.active() if a.name in ALARMS}
        out = []
        for key in sorted(set(active) - self._announced):
            alarm = active[key]
            out.append((_event(key, RAISED), self._text(key, RAISED, alarm.value, alarm.threshold,
                                                        alarm.message)))
        for key in sorted(self._announced - set(active)):
            closed = next((a for a in reversed(self.alarms.history) if (a.name, a.source) == key), None)
            value = None if closed is None else closed.value
            threshold = None if closed is None else closed.threshold
            out.append((_event(key, CLEARED), self._text(key, CLEARED, value, threshold, "condition ended")))
        return out

    def announced(self, event: str) -> None:
        _, name, source, state = event.split()
        (self._announced.add if state == RAISED else self._announced.discard)((name, source))

    @staticmethod
    def _text(key: tuple[str, str], state: str, value: float | bool | None, threshold: float | None,
              message: str) -> AlertText:
        name, source = key
        kind = ALARMS[name]
        number = None if value is None or isinstance(value, bool) else float(value)
        subject = source.upper() if kind.subject == "INSTRUMENT" else kind.subject
        return AlertText(kind.category, kind.condition, state, subject, number, threshold, kind.unit,
                         message or name)


def _event(key: tuple[str, str], state: str) -> str:
    return f"ALERT {key[0]} {key[1]} {state}"
