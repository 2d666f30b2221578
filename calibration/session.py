"""A calibration session: drive the digitizer's calibrator through its console, record the returned
calibration signal and the sensor output by data time, and judge the recording.

The same code runs at the bench (``ims cal seismometer``, which owns the digitizer's port) and in the
station daemon (a ``calibrate`` command from the IDC, fed by the daemon's driver and main loop). It
waits on data time only, with the wall clock as a guard against a dead port, so it runs unchanged
against a simulated digitizer whose clock runs hundreds of times faster than the wall.

Signals and the Güralp console words they become (gcf-brp spec §11):

- ``random``: ``N MINUTE``, ``Z RANDOMCAL``; judged by ``fit_response`` (T0, h, G against nominal).
- ``step``: ``N MINUTE``, ``Z SQUAREWAVE`` with N half the session (up at the next clock minute, down
  N minutes later, off N minutes after that); judged by ``fit_response``.
- ``sine``: per frequency, ``N MINUTE`` and ``Z n HZ SINEWAVE`` or ``Z n SECOND SINEWAVE`` (n = 1..10,
  so 0.1 to 10 Hz), the session's minutes shared out; judged by ``sine_calibration`` against nominal.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from calibration.capture import Capture, Progress, Recording
from calibration.recording import RecordingRejected
from calibration.response import Seismometer
from calibration.seismometer import FitResult, fit_response
from calibration.sine import SineResult, SineRun, sine_calibration
from timeunits import NS_PER_S

SIGNALS = ("random", "sine", "step")
MAX_MINUTES = 240
# The DM24 takes sine steps of 1..10 Hz or 1..10 s; a frequency this close to one of them names it.
SINE_MATCH = 0.005
# Data time allowed between the data at hand when the console command goes out and the first returned
# calibration sample: a step waits up to a minute for the next clock minute, and the blocks the
# digitizer made while its console was open arrive first (minutes of data when a simulated clock runs
# hundreds of times faster than the wall).
SIGNAL_START_GRACE_S = 300.0
# The returned signal has ended when none of it came for this much data time, and for three of the
# longest packets (a slow stream's blocks can last minutes, and one stream's block may come a block
# ahead of the other's).
SIGNAL_END_GRACE_S = 60.0
END_GRACE_PACKETS = 3
# A signal running this much longer than planned is stopped with STOPCAL.
OVERRUN_S = 120.0
# Wall-clock guard: no packet of the calibrated channel for this long means the digitizer is gone.
STALL_S = 120.0
# Largest count of a 24-bit converter (the DM24's): a sample at it is clipped.
FULL_SCALE_COUNTS = 2**23 - 1


def sine_step(frequency: float) -> tuple[int | None, int | None]:
    """(frequency_hz, period_s) of the DM24's sine step nearest ``frequency`` Hz; ValueError if none is."""
    if frequency > 0:
        for n in range(1, 11):
            if abs(frequency / n - 1) <= SINE_MATCH:
                return n, None
            if abs(frequency * n - 1) <= SINE_MATCH:
                return None, n
    allowed = ", ".join(f"{1 / n:.3g}" for n in range(10, 1, -1)) + ", 1, 2, ... 10"
    raise ValueError(f"sine frequency {frequency!r} Hz is not one the calibrator makes ({allowed} Hz)")


@dataclass(frozen=True)
class Run:
    """One console calibration: the words' arguments and how long its signal lasts."""

    kind: str  # the console's: random | square | sine
    minutes: int  # the N MINUTE word
    frequency_hz: int | None = None
    period_s: int | None = None

    @property
    def frequency(self) -> float | None:
        """The sine's frequency in Hz (None for other kinds)."""
        if self.frequency_hz is not None:
            return float(self.frequency_hz)
        return None if self.period_s is None else 1.0 / self.period_s

    @property
    def signal_s(self) -> float:
        """Data time the signal lasts (a square wave: N minutes up, N down)."""
        return self.minutes * 60.0 * (2 if self.kind == "square" else 1)

    def describe(self) -> str:
        if self.kind == "sine":
            return f"sine {self.frequency:g} Hz for {self.minutes} min"
        return f"{self.kind} for {self.signal_s / 60:g} min"


@dataclass(frozen=True)
class Plan:
    """What an operator asks for: a signal, the session's length in minutes and, for sines, the
    frequencies (the minutes are shared out among them)."""

    signal: str
    minutes: int
    frequencies: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.signal not in SIGNALS:
            raise ValueError(f"signal {self.signal!r} is not one of {', '.join(SIGNALS)}")
        if not 1 <= self.minutes <= MAX_MINUTES:
            raise ValueError(f"minutes must be 1..{MAX_MINUTES}, not {self.minutes}")
        if self.signal == "sine":
            if not self.frequencies:
                raise ValueError("a sine calibration needs at least one frequency")
            for f in self.frequencies:
                sine_step(f)
            if self.minutes // len(self.frequencies) < 1:
                raise ValueError(f"{self.minutes} min cannot give each of {len(self.frequencies)} "
                                 "frequencies a whole minute")
        elif self.frequencies:
            raise ValueError(f"frequencies are for sine calibrations, not {self.signal}")
        if self.signal == "step" and self.minutes < 2:
            raise ValueError("a step calibration needs at least 2 minutes (one up, one down)")

    def check_rate(self, sample_rate: float) -> None:
        """ValueError when a sine frequency is not below the channel's Nyquist frequency."""
        above = [f for f in self.frequencies if f >= sample_rate / 2]
        if above:
            raise ValueError(f"sine frequencies {', '.join(f'{f:g}' for f in above)} Hz are not below the "
                             f"channel's Nyquist frequency ({sample_rate / 2:g} Hz)")

    def runs(self) -> tuple[Run, ...]:
        if self.signal == "random":
            return (Run("random", self.minutes),)
        if self.signal == "step":
            return (Run("square", self.minutes // 2),)
        each = self.minutes // len(self.frequencies)
        return tuple(Run("sine", each, *sine_step(f)) for f in self.frequencies)


CALIBRATE_USAGE = f"calibrate CHANNEL {'|'.join(SIGNALS)} MINUTES [FREQUENCY_HZ ...]"


def parse_calibrate(words: Sequence[str]) -> tuple[str, Plan]:
    """(channel name, plan) from the words of ``calibrate CHANNEL SIGNAL MINUTES [FREQUENCY_HZ ...]``, the
    IDC's command (docs/calibration.md): the IDC checks a command with it before sending, the station
    before running; ValueError says what is wrong."""
    if len(words) < 4:
        raise ValueError(f"expected {CALIBRATE_USAGE}")
    _, channel, signal, minutes, *frequencies = words
    if not minutes.isdigit():
        raise ValueError(f"MINUTES must be a whole number, not {minutes!r}")
    try:
        hz = tuple(float(f) for f in frequencies)
    except ValueError:
        raise ValueError(f"frequencies must be numbers in Hz, not {' '.join(frequencies)!r}") from None
    return channel, Plan(signal, int(minutes), hz)


class Console(Protocol):
    """The calibrator's console: ``digitizer.guralp.GuralpDriver`` is one."""

    def start_calibration(self, kind: str, component: str = "Z", minutes: int = 2, *,
                          frequency_hz: int | None = None, period_s: int | None = None,
                          timeout: float | None = None) -> str: ...

    def stop_calibration(self, timeout: float | None = None) -> str: ...


class Listener:
    """What a session reports while it runs (all data time); the bench prints it, the station flags
    the channel's subframes. The default does nothing."""

    def started(self, index: int, run: Run, data_time_ns: int) -> None:
        """The console accepted the run's command when the newest data was at ``data_time_ns``."""

    def progress(self, index: int, run: Run, recorded_s: float) -> None:
        """Once per minute of returned calibration signal."""

    def ended(self, index: int, run: Run, end_ns: int) -> None:
        """The returned signal stopped; its last sample ended at ``end_ns``."""


class ConsoleRefused(RuntimeError):
    """The digitizer's console did not take a calibration command."""


@dataclass(frozen=True)
class RunRecording:
    run: Run
    recording: Recording


def record(console: Console, capture: Capture, plan: Plan, component: str, *,
           listener: Listener | None = None, abort: threading.Event | None = None,
           stall_s: float = STALL_S) -> list[RunRecording]:
    """Run each of the plan's calibrations in turn and return what was recorded during each.

    Raises ``RecordingRejected`` (no signal came back, gaps), ``ConsoleRefused``, ``SessionAborted``
    or ``DigitizerSilent``; on any of them a ``STOPCAL`` is sent first so the sensor is left quiet.
    """
    listener = listener or Listener()
    abort = abort or threading.Event()
    done: list[RunRecording] = []
    try:
        for index, run in enumerate(plan.runs()):
            done.append(_record_run(console, capture, index, run, component, listener, abort, stall_s))
    except BaseException:
        _stop_quietly(console)
        raise
    return done


def _record_run(console: Console, capture: Capture, index: int, run: Run, component: str,
                listener: Listener, abort: threading.Event, stall_s: float) -> RunRecording:
    def wait(ready: Callable[[Progress], bool], since_ns: int | None) -> Progress:
        return capture.wait_for(ready, since_ns, abort=abort, stall_s=stall_s)

    since = _data_time(wait(lambda p: p.data_time_ns is not None, None))
    reply = console.start_calibration(run.kind, component, run.minutes, frequency_hz=run.frequency_hz,
                                      period_s=run.period_s)
    if "undefined" in reply.lower():
        raise ConsoleRefused(f"the digitizer refused the calibration command: {reply.strip()!r}")
    listener.started(index, run, since)
    deadline = since + round(SIGNAL_START_GRACE_S * NS_PER_S)
    started = wait(lambda p: p.input_start_ns is not None or _data_time(p) >= deadline, since)
    if started.input_start_ns is None:
        raise RecordingRejected("no-signal", f"no calibration signal came back on "
                                             f"{capture.streams.cal_input} within {SIGNAL_START_GRACE_S:g} s "
                                             "of data after the command")
    first = started.input_start_ns
    overrun_at = first + round((run.signal_s + OVERRUN_S) * NS_PER_S)

    def end_grace(p: Progress) -> int:
        return max(round(SIGNAL_END_GRACE_S * NS_PER_S), END_GRACE_PACKETS * p.longest_packet_ns)

    minute = 60 * NS_PER_S
    reported = 0
    stop_sent = False
    while True:
        def something_to_do(p: Progress, overrun: int = overrun_at, shown: int = reported) -> bool:
            """The signal stopped, overran, or one more minute of it came."""
            now, end = _data_time(p), _input_end(p)
            return now >= end + end_grace(p) or now >= overrun or (end - first) // minute > shown

        p = wait(something_to_do, since)
        now, end = _data_time(p), _input_end(p)
        if (end - first) // minute > reported:
            reported = int((end - first) // minute)
            listener.progress(index, run, (end - first) / NS_PER_S)
        if now >= end + end_grace(p):
            break
        if now >= overrun_at:
            if stop_sent:
                raise RecordingRejected("no-signal", f"the calibration signal on {capture.streams.cal_input} "
                                                     "does not stop, not even after STOPCAL")
            console.stop_calibration()
            stop_sent = True
            overrun_at = now + round(OVERRUN_S * NS_PER_S)
    listener.ended(index, run, end)
    return RunRecording(run, capture.recording(first, end))


def _data_time(p: Progress) -> int:
    if p.data_time_ns is None:
        raise AssertionError("waited for data before asking its time")
    return p.data_time_ns


def _input_end(p: Progress) -> int:
    if p.input_end_ns is None:
        raise AssertionError("waited for the calibration input before asking its end")
    return p.input_end_ns


def _stop_quietly(console: Console) -> None:
    try:
        console.stop_calibration()
    except Exception:  # the port may be what failed; the original error is the one to report
        pass


@dataclass(frozen=True)
class Outcome:
    """The session's result: ``verdict`` pass, fail, fitted (no nominal to judge by) or refused."""

    verdict: str
    fit: FitResult | None = None
    sine: SineResult | None = None
    problem: str | None = None
    message: str = ""

    @property
    def reasons(self) -> tuple[str, ...]:
        if self.fit is not None:
            return self.fit.reasons
        if self.sine is not None:
            return self.sine.reasons
        return (f"{self.problem}: {self.message}",) if self.problem else ()


def analyse(plan: Plan, recorded: Sequence[RunRecording], nominal: Seismometer | None) -> Outcome:
    """Fit (random, step) or measure against nominal (sine); a recording that cannot be trusted gives a
    ``refused`` outcome naming the problem, never a fit."""
    try:
        if plan.signal == "sine":
            if nominal is None:
                raise RecordingRejected("no-nominal", "a sine calibration is judged against the nominal "
                                                      "response, and none is configured")
            rate = recorded[0].recording.sample_rate
            sine = sine_calibration(sine_runs(recorded), rate, nominal.coil_response(),
                                    full_scale=FULL_SCALE_COUNTS)
            return Outcome(sine.verdict, sine=sine)
        rec = recorded[0].recording
        fit = fit_response(rec.cal_input, rec.output, rec.sample_rate, nominal=nominal,
                           full_scale=FULL_SCALE_COUNTS)
        return Outcome(fit.verdict, fit=fit)
    except RecordingRejected as exc:
        return Outcome("refused", problem=exc.problem, message=str(exc).removeprefix(f"{exc.problem}: "))


def sine_runs(recorded: Sequence[RunRecording]) -> list[SineRun]:
    """Each sine run up to its input's last change: the returned signal's last block goes on, flat,
    after the sine stopped, and that tail (the sensor ringing down) is no steady state to measure."""
    runs = []
    for r in recorded:
        x, y = r.recording.cal_input, r.recording.output
        changes = np.flatnonzero(np.diff(x))
        live = int(changes[-1]) + 2 if changes.size else len(x)
        runs.append(SineRun(float(r.run.frequency or 0.0), x[:live], y[:live]))
    return runs


def _pair(value: float, sigma: float) -> list[float]:
    return [float(f"{value:.7g}"), float(f"{sigma:.2g}")]


def summary(outcome: Outcome, channel: str, signal: str, recorded: Sequence[RunRecording],
            coil_constant: float | None) -> dict:
    """The compact result an IDC command response carries: the recorded span (data time), [value, one
    sigma] pairs, G in counts per m/s when the coil constant is known (else per unit of integrated
    calibration input), the worst deviation from nominal, and the verdict."""
    out: dict = {"channel": channel, "signal": signal, "verdict": outcome.verdict}
    if recorded:
        last = recorded[-1].recording
        out["start_ns"] = recorded[0].recording.start_ns
        out["end_ns"] = last.start_ns + round(last.duration_s * NS_PER_S)
    fit = outcome.fit
    if fit is not None:
        scale = 1.0 / coil_constant if coil_constant else 1.0
        out |= {"T0_s": _pair(fit.period, fit.uncertainty.period),
                "h": _pair(fit.damping, fit.uncertainty.damping),
                "G": _pair(fit.gain * scale, fit.uncertainty.gain * abs(scale)),
                "G_units": "counts/(m/s)" if coil_constant else "counts/(cal unit*s)",
                "delay_ms": _pair(fit.delay * 1e3, fit.uncertainty.delay * 1e3),
                "residual": float(f"{fit.relative_residual:.3g}")}
    deviation = fit.deviation if fit is not None else outcome.sine.deviation if outcome.sine else None
    if deviation is not None:
        out["worst"] = {"amplitude_pct": round(100 * deviation.amplitude, 3),
                        "phase_deg": round(deviation.phase_deg, 3)}
    if outcome.sine is not None:
        out["points"] = [[p.frequency, round(100 * p.amplitude_deviation, 3), round(p.phase_deviation_deg, 3)]
                         for p in outcome.sine.points]
    if outcome.problem:
        out |= {"problem": outcome.problem, "message": outcome.message}
    return out


def nominal_in_fit_units(period_s: float, damping: float, sensitivity: float,
                         coil_constant: float) -> Seismometer:
    """The nominal sensor as the fit sees it: gain in output counts per unit of integrated calibration
    input, i.e. the flat-band sensitivity (counts per m/s) times the coil constant (m/s² per input unit)."""
    if not all(math.isfinite(v) and v != 0 for v in (period_s, damping, sensitivity, coil_constant)):
        raise ValueError("nominal period, damping, sensitivity and coil constant must be finite and non-zero")
    return Seismometer(period_s, damping, sensitivity * coil_constant)
