"""A bench calibration session on one of the station's channels (``ims cal seismometer``).

It takes the station's lock (refusing while the daemon or another session holds the digitizers),
opens the digitizer's port with its own driver, records the calibration while a thread pumps packets
into the capture, judges the recording and writes the report folder. Progress and refusals go to
stderr; the verdict, the fitted values against nominal, calib and the report's path to stdout.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from calibration.capture import Capture, DigitizerSilent
from calibration.recording import RecordingRejected
from calibration.session import ConsoleRefused, Listener, Outcome, Plan, Run, RunRecording, analyse, record
from calibration.session_report import write_session_report
from digitizer.guralp import DriverConfig, GuralpDriver
from digitizer.packet import Packet
from station.calibration_setup import CalibrationTarget
from station.lock import StationBusy, StationLock

# exit status by outcome; "fitted" (no nominal response to judge by) is not a failure
EXIT = {"pass": 0, "fitted": 0, "fail": 1, "usage": 2, "refused": 3, "busy": 4, "digitizer": 5}


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_session(state_dir: Path, target: CalibrationTarget, plan: Plan, out: Path | None,
                operator: str) -> int:
    """Run the whole session; returns the exit status (``EXIT``)."""
    try:
        lock = StationLock.acquire(state_dir, "bench calibration", channels=[target.code],
                                   ports=[target.digitizer.port])
    except StationBusy as exc:
        who = exc.holder.get("role", "another process")
        acquiring = target.code in exc.holder.get("channels", [target.code])
        remote = " ".join([f"calibrate {target.channel.channel} {plan.signal} {plan.minutes}",
                           *(f"{f:g}" for f in plan.frequencies)])
        _say(f"refused: {who} (pid {exc.holder.get('pid', '?')}) holds the station's digitizers"
             + (f" and is acquiring {target.code}" if acquiring else "") + f" ({exc.path}). "
             + ("Stop it first (systemctl stop ims-station), or have the IDC run a remote calibration: "
                + remote if who == "station daemon" else "Wait for it to finish."))
        return EXIT["busy"]
    except OSError as exc:  # e.g. the daemon's state dir is not writable for this user
        _say(f"refused: cannot take the station lock in {state_dir} ({exc}), so the station daemon may be "
             "using the digitizer; run as the daemon's user")
        return EXIT["busy"]
    with lock:
        return _run_with_port(target, plan, out, operator)


def _run_with_port(target: CalibrationTarget, plan: Plan, out: Path | None, operator: str) -> int:
    # no startup rewind: the session wants live data, not the digitizer's buffer from before
    driver = GuralpDriver(DriverConfig(target.digitizer.port, target.digitizer.baud, startup_rewind=False))
    capture = Capture(target.streams)
    stop = threading.Event()

    def pump() -> None:
        while not stop.is_set():
            item = driver.get(timeout=0.1)
            if isinstance(item, Packet):
                capture.feed(item)

    pumping = threading.Thread(target=pump, name="cal-pump", daemon=True)
    _say(f"{target.code}: {plan.signal} calibration, {plan.minutes} min, through {target.digitizer.port} "
         f"(coil {target.settings.component}, returned signal on {target.settings.input_stream_id})")
    driver.start()
    pumping.start()
    try:
        recorded = record(driver, capture, plan, target.settings.component, listener=_Printer(plan))
    except RecordingRejected as exc:
        recorded, outcome = [], Outcome("refused", problem=exc.problem,
                                        message=str(exc).removeprefix(f"{exc.problem}: "))
    except (ConsoleRefused, DigitizerSilent, TimeoutError) as exc:
        _say(f"digitizer: {exc}")
        return EXIT["digitizer"]
    else:
        _say("fitting" if plan.signal != "sine" else "measuring the sine runs")
        outcome = analyse(plan, recorded, target.nominal)
    finally:
        stop.set()
        driver.stop()
        pumping.join(5)
    start_ns = recorded[0].recording.start_ns if recorded else capture.progress().data_time_ns or 0
    return _report(target, plan, outcome, recorded, start_ns, out, operator)


class _Printer(Listener):
    """Progress on stderr: the console command, then a line per minute of returned signal."""

    def __init__(self, plan: Plan) -> None:
        self.runs = len(plan.runs())

    def started(self, index: int, run: Run, data_time_ns: int) -> None:
        _say(f"run {index + 1}/{self.runs}: {run.describe()} started")

    def progress(self, index: int, run: Run, recorded_s: float) -> None:
        _say(f"run {index + 1}/{self.runs}: {recorded_s / 60:.0f}/{run.signal_s / 60:g} min recorded")

    def ended(self, index: int, run: Run, end_ns: int) -> None:
        _say(f"run {index + 1}/{self.runs}: signal ended")


def _report(target: CalibrationTarget, plan: Plan, outcome: Outcome, recorded: list[RunRecording],
            start_ns: int, out: Path | None, operator: str) -> int:
    folder = out or target.report_folder(Path("calibrations"), start_ns)
    paths = write_session_report(folder, target.session(plan, start_ns, operator), plan, outcome, recorded,
                                 target.nominal, site=target.site(start_ns))
    for line in _verdict_lines(target, outcome):
        print(line)
    print(f"  report: {paths.get('html', paths['json'])}")
    if "stationxml" in paths:
        print(f"  StationXML: {paths['stationxml']}")
    return EXIT[outcome.verdict]


def _verdict_lines(target: CalibrationTarget, outcome: Outcome) -> list[str]:
    head = f"{target.code}: {outcome.verdict.upper()}"
    if outcome.verdict == "refused":
        return [f"{head} — {outcome.problem}: {outcome.message}"]
    lines = [head + (" (no nominal response configured: no verdict)" if outcome.verdict == "fitted" else "")]
    lines += [f"  {reason}" for reason in outcome.reasons]
    fit, s = outcome.fit, target.settings
    if fit is not None:
        u = fit.uncertainty
        k = s.coil_constant
        lines.append(f"  T0 = {fit.period:.6g} ± {u.period:.2g} s" + _versus(fit.period, s.period_s))
        lines.append(f"  h  = {fit.damping:.6g} ± {u.damping:.2g}" + _versus(fit.damping, s.damping))
        if k:
            lines.append(f"  G  = {fit.gain / k:.6g} ± {u.gain / abs(k):.2g} counts/(m/s)"
                         + _versus(fit.gain / k, s.sensitivity))
            calib = target.calib(fit)
            lines.append(f"  calib = {calib:.6g} nm/count at calper {target.channel.calper:g} s "
                         f"(configured {target.channel.calib:g})")
        else:
            lines.append(f"  gain = {fit.gain:.6g} ± {u.gain:.2g} counts per (input count · s); "
                         "no coil constant, so no absolute sensitivity")
    if outcome.sine is not None:
        lines += [f"  {p.frequency:g} Hz: amplitude {100 * p.amplitude_deviation:+.2f} %, phase "
                  f"{p.phase_deviation_deg:+.2f}° from nominal" for p in outcome.sine.points]
    return lines


def _versus(value: float, nominal: float | None) -> str:
    return "" if nominal is None else f"   (nominal {nominal:g}, {100 * (value / nominal - 1):+.3f} %)"
