"""Remote calibration: the IDC's ``calibrate`` command run as a calibration session inside the daemon.

The command worker runs it (so the link goes on), the daemon's own digitizer driver takes the console
words, and the main loop hands every packet to the session's capture (``feed``). While the session
runs, ``CalibrationState`` marks the channel's data as "calibration underway"; when it ends, the report
folder is written under ``[calibration] report_dir`` and the command's answer is the result as one line
of compact JSON. With ``[calibration] apply_accepted``, a passing fit's calib goes into the channel's
later subframes.

The fit and the report run in a child process (``judged``, a fresh interpreter, at lower priority): what
they allocate while they work (the fit's matrices, matplotlib's figures and font caches, some 30 MiB
kept and 100 MiB at the peak) stays out of the daemon, whose memory must stay flat for months, and a
crash in them cannot take acquisition down. The recording goes to the child and the outcome comes back
by pickling, a few MB at most.

Command text (docs/calibration.md, "Remote calibration"):
``calibrate CHANNEL random|step|sine MINUTES [FREQUENCY_HZ ...]``
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from calibration.capture import Capture, DigitizerSilent, SessionAborted
from calibration.recording import RecordingRejected
from calibration.report import Session
from calibration.response import Seismometer
from calibration.session import (
    CALIBRATE_USAGE,
    Console,
    ConsoleRefused,
    Listener,
    Outcome,
    Plan,
    Run,
    RunRecording,
    analyse,
    parse_calibrate,
    record,
    summary,
)
from calibration.session_report import write_session_report
from calibration.stationxml import ChannelSite
from digitizer.packet import Packet
from station.calibration_setup import CalibrationTarget, calibration_target
from station.calibration_state import Accepted, CalibrationState, Window
from station.config import StationConfig

log = logging.getLogger(__name__)

NOT_RUN = "calibration not run: "


class _Marks(Listener):
    """Sets and clears the channel's "calibration underway" span as each run starts and ends."""

    def __init__(self, state: CalibrationState, code: str) -> None:
        self.state, self.code = state, code
        self.open: Window | None = None

    def started(self, index: int, run: Run, data_time_ns: int) -> None:
        self.open = self.state.begin(self.code, data_time_ns)
        log.info("remote calibration started", extra={"channel": self.code, "run": run.describe()})

    def progress(self, index: int, run: Run, recorded_s: float) -> None:
        log.info("remote calibration running", extra={"channel": self.code, "run": run.describe(),
                                                       "recorded_s": round(recorded_s)})

    def ended(self, index: int, run: Run, end_ns: int) -> None:
        self.close(end_ns)

    def close(self, end_ns: int) -> None:
        if self.open is not None:
            self.state.end(self.open, end_ns)
            self.open = None


class RemoteCalibration:
    """``feed`` from the main loop; ``run`` from the command worker or the station console's thread, one
    session at a time (a second is refused while one runs: both would drive the same calibrator)."""

    def __init__(self, config: StationConfig, consoles: Mapping[str, Console], state: CalibrationState,
                 stop: threading.Event) -> None:
        self.config = config
        self.consoles = consoles
        self.state = state
        self.stop = stop
        self._captures: tuple[Capture, ...] = ()  # replaced whole, so the main loop reads it without a lock
        self._one_at_a_time = threading.Lock()

    def feed(self, packet: Packet) -> None:
        for capture in self._captures:
            capture.feed(packet)

    def check(self, words: list[str]) -> tuple[CalibrationTarget, Plan]:
        """The channel and plan of ``calibrate ...``; ValueError says what is wrong with it."""
        name, plan = parse_calibrate(words)
        target = calibration_target(self.config, name)
        plan.check_rate(target.channel.sample_rate)
        return target, plan

    def run(self, words: list[str], requested_by: str = "IDC remote calibration") -> str:
        """Run ``calibrate ...``: the compact JSON result, or a line starting ``calibration not run:``."""
        try:
            target, plan = self.check(words)
        except ValueError as exc:
            return f"{NOT_RUN}{exc}; usage: {CALIBRATE_USAGE}"
        if not self._one_at_a_time.acquire(blocking=False):
            return f"{NOT_RUN}another calibration session is running"
        try:
            return self._session(target, plan, requested_by)
        finally:
            self._one_at_a_time.release()

    def _session(self, target: CalibrationTarget, plan: Plan, requested_by: str) -> str:
        console = self.consoles[target.digitizer.name]
        capture = Capture(target.streams)
        marks = _Marks(self.state, target.code)
        self._captures += (capture,)
        refused: Outcome | None = None
        try:
            recorded = record(console, capture, plan, target.settings.component, listener=marks,
                              abort=self.stop)
        except RecordingRejected as exc:
            recorded, refused = [], Outcome("refused", problem=exc.problem,
                                            message=str(exc).removeprefix(f"{exc.problem}: "))
        except (ConsoleRefused, DigitizerSilent, SessionAborted, TimeoutError) as exc:
            log.error("remote calibration failed", extra={"channel": target.code, "error": str(exc)})
            return f"{NOT_RUN}{target.code}: {exc}"
        finally:
            self._captures = tuple(c for c in self._captures if c is not capture)
            marks.close(capture.progress().data_time_ns or 0)
        start_ns = recorded[0].recording.start_ns if recorded else capture.progress().data_time_ns or 0
        folder = target.report_folder(self.config.calibration.report_dir, start_ns)
        session, site = target.session(plan, start_ns, requested_by), target.site(start_ns)
        if refused is not None:
            outcome = refused
            problem = write_report(folder, session, plan, outcome, recorded, target.nominal, site)
        else:
            try:
                outcome, problem = judged(plan, recorded, target.nominal, folder, session, site)
            except OSError as exc:  # no outcome from the child: nothing to answer with
                log.error("calibration analysis failed", extra={"channel": target.code, "error": str(exc)})
                return f"{NOT_RUN}{target.code}: the analysis failed: {type(exc).__name__}: {exc}"
        return self._answer(target, plan, outcome, recorded, capture, folder, problem)

    def _answer(self, target: CalibrationTarget, plan: Plan, outcome: Outcome, recorded: list[RunRecording],
                capture: Capture, folder: Path, report_problem: str | None) -> str:
        start_ns = recorded[0].recording.start_ns if recorded else capture.progress().data_time_ns or 0
        result = summary(outcome, target.code, plan.signal, recorded, target.settings.coil_constant)
        if report_problem is None:
            result["report"] = str(folder)
        else:
            log.error("calibration report not written",
                      extra={"folder": str(folder), "error": report_problem})
        calib = target.calib(outcome.fit) if outcome.fit is not None else None
        if calib is not None:
            result |= {"calib": float(f"{calib:.6g}"), "calper": target.channel.calper}
            result["applied"] = False
            if self.config.calibration.apply_accepted and outcome.verdict == "pass":
                from_ns = capture.progress().data_time_ns or start_ns
                try:
                    accepted = Accepted(from_ns, calib, target.channel.calper, str(folder))
                    self.state.accept(target.code, accepted)
                    result["applied"] = True
                except OSError as exc:  # not kept, so not applied either
                    log.error("accepted calibration not stored", extra={"channel": target.code,
                                                                        "error": str(exc)})
        log.info("remote calibration done", extra={"channel": target.code, "verdict": outcome.verdict,
                                                    "report": str(folder)})
        return json.dumps(result, separators=(",", ":"))


def write_report(folder: Path, session: Session, plan: Plan, outcome: Outcome,
                 recorded: Sequence[RunRecording], nominal: Seismometer | None,
                 site: ChannelSite | None) -> str | None:
    """The session's report folder; None when written, else why not."""
    try:
        write_session_report(folder, session, plan, outcome, recorded, nominal, site=site)
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def judge(plan: Plan, recorded: Sequence[RunRecording], nominal: Seismometer | None, folder: Path,
          session: Session, site: ChannelSite | None) -> tuple[Outcome, str | None]:
    """Fit or measure the recording and write the report folder: (outcome, why the report is missing)."""
    outcome = analyse(plan, recorded, nominal)
    return outcome, write_report(folder, session, plan, outcome, recorded, nominal, site)


def judged(plan: Plan, recorded: Sequence[RunRecording], nominal: Seismometer | None, folder: Path,
           session: Session, site: ChannelSite | None) -> tuple[Outcome, str | None]:
    """``judge`` in a fresh child process (``python -m station.remote_calibration``; not a fork of the
    threaded daemon, which could inherit a held lock), niced so acquisition keeps its core. OSError
    when the child cannot start or gives no outcome."""
    request = pickle.dumps((plan, recorded, nominal, folder, session, site))
    child = subprocess.run([sys.executable, "-m", "station.remote_calibration"], input=request,
                           capture_output=True, check=False)
    if child.returncode != 0:
        raise OSError(f"analysis process exited with {child.returncode}: "
                      f"{child.stderr.decode(errors='replace').strip()[-500:]}")
    outcome, problem = pickle.loads(child.stdout)
    return outcome, problem


def _judge_request() -> None:
    """The child's side of ``judged``: the request pickled on stdin, (outcome, problem) on stdout."""
    os.nice(10)
    args = pickle.loads(sys.stdin.buffer.read())
    sys.stdout.buffer.write(pickle.dumps(judge(*args)))


if __name__ == "__main__":
    _judge_request()
