"""Calibration sessions without a port: the plan's console words, the capture's joining of packets, and
the session's waits, driven by a scripted console that answers a command with the packets a digitizer
would send (so every wait is decided by data time alone)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from calibration.capture import Capture, DigitizerSilent, Recording, SessionAborted, Streams
from calibration.recording import RecordingRejected
from calibration.response import Seismometer
from calibration.session import (
    Listener,
    Plan,
    Run,
    RunRecording,
    analyse,
    nominal_in_fit_units,
    record,
    sine_runs,
    sine_step,
    summary,
)
from calibration.signals import random_telegraph
from digitizer.packet import Packet
from tests.calibration import truth
from timeunits import NS_PER_S

T0 = 1_700_000_000 * NS_PER_S
STREAMS = Streams("SYS1", "SYSZ0", "SYSC0")
RATE = 10.0


def packet(stream: str, second: float, values, rate: float = RATE, system: str = "SYS1") -> Packet:
    return Packet(system, stream, T0 + round(second * NS_PER_S), rate, np.asarray(values, dtype=np.int32))


def second_of(stream: str, second: int, value: int = 0) -> Packet:
    return packet(stream, second, np.full(int(RATE), value))


# ------------------------------------------------------------------------------------------- plans


def test_sine_frequencies_map_to_the_dm24_steps_and_others_are_refused():
    assert sine_step(1.0) == (1, None) and sine_step(7.0) == (7, None)
    assert sine_step(0.1) == (None, 10) and sine_step(0.3333) == (None, 3) and sine_step(0.5) == (None, 2)
    for bad in (0.3, 11.0, 0.05, 0.0, -1.0, 1.5):
        with pytest.raises(ValueError, match="not one the calibrator makes"):
            sine_step(bad)


def test_plans_become_console_runs():
    assert Plan("random", 30).runs() == (Run("random", 30),)
    (step,) = Plan("step", 31).runs()
    assert step == Run("square", 15) and step.signal_s == 30 * 60  # up 15 min, down 15 min
    runs = Plan("sine", 20, (0.1, 2.0, 0.5)).runs()
    assert runs == (Run("sine", 6, None, 10), Run("sine", 6, 2, None), Run("sine", 6, None, 2))
    assert [r.frequency for r in runs] == [0.1, 2.0, 0.5]


@pytest.mark.parametrize(("args", "message"), [
    (("noise", 30), "signal 'noise' is not one of"),
    (("random", 0), "minutes must be 1..240"),
    (("random", 241), "minutes must be 1..240"),
    (("sine", 30), "needs at least one frequency"),
    (("sine", 2, (0.1, 0.2, 0.5)), "cannot give each of 3 frequencies a whole minute"),
    (("random", 30, (1.0,)), "frequencies are for sine calibrations"),
    (("step", 1), "at least 2 minutes"),
])
def test_bad_plans_are_refused_with_the_reason(args, message):
    with pytest.raises(ValueError, match=message):
        Plan(*args)


# ----------------------------------------------------------------------------------------- capture


def test_capture_joins_both_streams_over_a_span_and_puts_late_packets_in_place():
    capture = Capture(STREAMS)
    for s in (0, 2, 1, 3):  # one late packet
        capture.feed(second_of("SYSZ0", s, value=s))
        capture.feed(second_of("SYSC0", s, value=10 + s))
    capture.feed(second_of("OTHER", 4))
    capture.feed(packet("SYSZ0", 4, np.ones(10), system="SYS2"))  # another digitizer's stream
    progress = capture.progress(T0 + NS_PER_S)
    assert progress.data_time_ns == T0 + 4 * NS_PER_S
    assert (progress.input_start_ns, progress.input_end_ns) == (T0 + NS_PER_S, T0 + 4 * NS_PER_S)
    assert progress.longest_packet_ns == NS_PER_S
    rec = capture.recording(T0 + NS_PER_S // 2, T0 + 3 * NS_PER_S)
    assert rec.sample_rate == RATE and rec.duration_s == 2.5
    assert rec.output.tolist() == [0] * 5 + [1] * 10 + [2] * 10
    assert rec.cal_input.tolist() == [10] * 5 + [11] * 10 + [12] * 10


@pytest.mark.parametrize(("seconds", "end_s", "message"), [
    ((0, 2), 3.0, "sensor output SYSZ0 has a gap of 1.000 s"),
    ((0, 0.5, 1.5), 2.5, "sensor output SYSZ0 has a overlap of 0.500 s"),
    ((1, 2), 3.0, "does not cover the whole calibration"),
])
def test_capture_refuses_a_span_with_holes_or_overlaps(seconds, end_s, message):
    capture = Capture(STREAMS)
    for s in range(3):
        capture.feed(second_of("SYSC0", s))
    for second in seconds:
        capture.feed(packet("SYSZ0", second, np.zeros(10)))
    with pytest.raises(RecordingRejected, match=message) as info:
        capture.recording(T0, T0 + round(end_s * NS_PER_S))
    assert info.value.problem == "gap"


def test_capture_refuses_streams_at_different_rates():
    capture = Capture(STREAMS)
    capture.feed(packet("SYSZ0", 0, np.zeros(10)))
    capture.feed(packet("SYSC0", 0, np.zeros(20), rate=20.0))
    with pytest.raises(RecordingRejected, match="runs at 20 sps and the output SYSZ0 at 10 sps") as info:
        capture.recording(T0, T0 + NS_PER_S)
    assert info.value.problem == "rate-mismatch"


def test_waiting_ends_on_abort_or_when_the_digitizer_falls_silent():
    clock = [0.0]
    capture = Capture(STREAMS, monotonic=lambda: clock[0])
    abort = threading.Event()
    abort.set()
    with pytest.raises(SessionAborted):
        capture.wait_for(lambda p: False, None, abort=abort, stall_s=60)
    clock[0] = 61.0
    with pytest.raises(DigitizerSilent, match="no packet of SYSZ0 from SYS1 for 61 s"):
        capture.wait_for(lambda p: False, None, abort=threading.Event(), stall_s=60)


# ----------------------------------------------------------------------------------------- session


class ScriptedDigitizer:
    """A console whose calibration command makes the digitizer 'send' its data at once: ``lead_s`` of
    output before the returned signal starts, ``signal_s`` of both, then ``tail_s`` of output alone."""

    def __init__(self, capture: Capture, *, signal_s: int, lead_s: int = 3, tail_s: int = 80,
                 returns_signal: bool = True, stops_by_itself: bool = True) -> None:
        self.capture, self.signal_s, self.lead_s, self.tail_s = capture, signal_s, lead_s, tail_s
        self.returns_signal, self.stops_by_itself = returns_signal, stops_by_itself
        self.next_s = 0
        self.commands: list[tuple] = []
        self.stops = 0
        self.rng = np.random.default_rng(1)
        self.stream(5)  # data already flowing before the session

    def stream(self, seconds: int, signal: bool = False) -> None:
        for _ in range(seconds):
            x = self.rng.choice([-1000, 1000], int(RATE)) if signal else np.zeros(int(RATE))
            self.capture.feed(packet("SYSZ0", self.next_s, np.cumsum(x) // 7 + self.next_s))
            if signal and self.returns_signal:
                self.capture.feed(packet("SYSC0", self.next_s, x))
            self.next_s += 1

    def start_calibration(self, kind, component="Z", minutes=2, *, frequency_hz=None, period_s=None,
                          timeout=None) -> str:
        self.commands.append((kind, component, minutes, frequency_hz, period_s))
        self.stream(self.lead_s)
        self.stream(self.signal_s, signal=True)
        if self.stops_by_itself:
            self.stream(self.tail_s)
        return ""

    def stop_calibration(self, timeout=None) -> str:
        self.stops += 1
        if not self.stops_by_itself:
            self.stream(self.tail_s)
        return ""


class Events(Listener):
    def __init__(self) -> None:
        self.seen: list[tuple] = []

    def started(self, index, run, data_time_ns):
        self.seen.append(("started", index, (data_time_ns - T0) // NS_PER_S))

    def progress(self, index, run, recorded_s):
        self.seen.append(("progress", index, round(recorded_s)))

    def ended(self, index, run, end_ns):
        self.seen.append(("ended", index, (end_ns - T0) // NS_PER_S))


def test_a_session_sends_the_words_and_records_exactly_the_returned_signal():
    capture = Capture(STREAMS)
    digitizer = ScriptedDigitizer(capture, signal_s=150)
    events = Events()
    (recorded,) = record(digitizer, capture, Plan("random", 2), "Z", listener=events)
    assert digitizer.commands == [("random", "Z", 2, None, None)] and digitizer.stops == 0
    rec = recorded.recording
    assert rec.start_ns == T0 + 8 * NS_PER_S and rec.duration_s == 150  # 5 before + 3 lead, then 150 s
    assert len(rec.cal_input) == len(rec.output) == 1500 and set(np.unique(rec.cal_input)) == {-1000, 1000}
    # the scripted digitizer sent everything at once, so one progress line says where it stands
    assert events.seen == [("started", 0, 5), ("progress", 0, 150), ("ended", 0, 158)]


def test_sine_runs_one_after_the_other_each_with_its_own_span():
    capture = Capture(STREAMS)
    digitizer = ScriptedDigitizer(capture, signal_s=60)
    recorded = record(digitizer, capture, Plan("sine", 4, (0.2, 2.0)), "N")
    assert digitizer.commands == [("sine", "N", 2, None, 5), ("sine", "N", 2, 2, None)]
    assert [r.run.frequency for r in recorded] == [0.2, 2.0]
    first, second = (r.recording for r in recorded)
    assert first.start_ns + 60 * NS_PER_S <= second.start_ns and second.duration_s == 60


def test_no_returned_signal_is_refused_and_the_calibrator_stopped():
    capture = Capture(STREAMS)
    digitizer = ScriptedDigitizer(capture, signal_s=100, tail_s=400, returns_signal=False)
    with pytest.raises(RecordingRejected, match="no calibration signal came back on SYSC0") as info:
        record(digitizer, capture, Plan("random", 2), "Z")
    assert info.value.problem == "no-signal" and digitizer.stops == 1


def test_a_signal_that_outlasts_its_plan_is_stopped():
    capture = Capture(STREAMS)
    # a 1-minute plan whose signal goes on until STOPCAL: stopped once it runs 120 s over
    digitizer = ScriptedDigitizer(capture, signal_s=60 + 130, stops_by_itself=False)
    (recorded,) = record(digitizer, capture, Plan("random", 1), "Z")
    assert digitizer.stops == 1 and recorded.recording.duration_s == 190


def test_a_refused_console_command_is_reported_and_the_calibrator_stopped():
    capture = Capture(STREAMS)
    digitizer = ScriptedDigitizer(capture, signal_s=10)
    digitizer.start_calibration = lambda *a, **k: "Z RANDOMCAL undefined (unknown calibration)\r\n"
    with pytest.raises(RuntimeError, match="refused the calibration command"):
        record(digitizer, capture, Plan("random", 2), "Z")
    assert digitizer.stops == 1


# -------------------------------------------------------------------------------------- judgement


def test_a_sine_run_is_measured_up_to_where_its_input_stopped():
    t = np.arange(2000) / RATE
    x = np.where(t < 150, np.rint(1000 * np.sin(2 * np.pi * 0.5 * t)), 0.0)  # the last block goes on flat
    recorded = [RunRecording(Run("sine", 2, None, 2), Recording(T0, RATE, x, 3 * x))]
    (run,) = sine_runs(recorded)
    assert run.frequency == 0.5 and len(run.cal_input) == len(run.output) == 1501  # through the step to 0


def test_a_bad_recording_is_a_refused_outcome_never_a_fit():
    capture = Capture(STREAMS)
    digitizer = ScriptedDigitizer(capture, signal_s=150)
    recorded = record(digitizer, capture, Plan("random", 2), "Z")
    flat = [RunRecording(r.run, Recording(r.recording.start_ns, RATE, r.recording.cal_input,
                                          np.zeros_like(r.recording.output))) for r in recorded]
    outcome = analyse(Plan("random", 2), flat, None)
    assert (outcome.verdict, outcome.problem, outcome.fit) == ("refused", "no-output", None)
    result = summary(outcome, "SIM.BHZ.", "random", flat, 3.2e-8)
    assert result["verdict"] == "refused" and result["problem"] == "no-output"
    assert result["end_ns"] - result["start_ns"] == 150 * NS_PER_S and "T0_s" not in result
    assert analyse(Plan("sine", 2, (1.0,)), flat, None).problem == "no-nominal"


def test_the_summary_gives_ground_units_when_the_coil_constant_is_known():
    nominal = Seismometer(1.0, 0.6, 2000.0)
    rec = truth.record(lambda d, fs: random_telegraph(d, fs, 1.0, 0.05, seed=3), 100.0,
                       nominal.coil_response(), duration=120.0, preroll=10.0)
    run = RunRecording(Run("random", 2), Recording(T0, 100.0, rec.cal_input, rec.output))
    outcome = analyse(Plan("random", 2), [run], nominal)
    assert outcome.verdict == "pass"
    coil = 0.5  # m/s² per input unit
    result = summary(outcome, "SIM.BHZ.", "random", [run], coil)
    assert result["G_units"] == "counts/(m/s)" and result["verdict"] == "pass"
    assert result["G"][0] == pytest.approx(2000.0 / coil, rel=1e-3)
    assert result["T0_s"][0] == pytest.approx(1.0, rel=1e-3) and 0 < result["T0_s"][1] < 1e-3
    assert abs(result["worst"]["amplitude_pct"]) < 0.1
    assert summary(outcome, "SIM.BHZ.", "random", [run], None)["G_units"] == "counts/(cal unit*s)"
    unjudged = analyse(Plan("random", 2), [run], None)  # no nominal configured: a fit, no verdict
    assert unjudged.verdict == "fitted"
    assert "worst" not in summary(unjudged, "SIM.BHZ.", "random", [run], None)
    assert nominal_in_fit_units(120.0, 0.707, 4.6875e8, 3.2e-8).gain == pytest.approx(15.0)
    with pytest.raises(ValueError, match="finite and non-zero"):
        nominal_in_fit_units(120.0, 0.707, 4.6875e8, 0.0)
