"""Simulated sensors: ground/pressure signals through analog responses to int32 digitizer counts.

Every source and filter keeps its state between calls, so a stream generated block by block is one
continuous signal, and everything derives from a seed, so the counts a test compares against are
reproducible. The analog responses are s-plane poles/zeros discretised with the bilinear transform.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

import numpy as np
from scipy import signal

ADC_MAX = 2**23 - 1  # a 24-bit converter


@dataclass(frozen=True, slots=True)
class AnalogResponse:
    """Input unit → volts, as s-plane zeros and poles (rad/s) and an overall gain."""

    zeros: tuple[complex, ...]
    poles: tuple[complex, ...]
    gain: float

    def sos(self, fs: float) -> np.ndarray:
        z, p, k = signal.bilinear_zpk(np.array(self.zeros), np.array(self.poles), self.gain, fs)
        return signal.zpk2sos(z, p, k)


def broadband_velocity_response(period_s: float, damping: float,
                                 generator_v_per_m_s: float) -> AnalogResponse:
    """Velocity seismometer: G·s² / (s² + 2hω₀s + ω₀²), flat to velocity above 1/T0."""
    w0 = 2 * math.pi / period_s
    root = complex(-damping * w0, w0 * math.sqrt(max(0.0, 1 - damping**2)))
    return AnalogResponse((0j, 0j), (root, root.conjugate()), generator_v_per_m_s)


def highpass_response(corner_hz: float, sensitivity_v_per_unit: float) -> AnalogResponse:
    """First-order high-pass, e.g. a microbarometer's leak or a hydrophone's preamplifier."""
    return AnalogResponse((0j,), (complex(-2 * math.pi * corner_hz, 0),), sensitivity_v_per_unit)


class ColouredNoise:
    """Background: red broadband noise plus a resonant peak (the microseism or microbarom band)."""

    def __init__(self, fs: float, rng: np.random.Generator, level: float, peak_hz: float, peak_q: float,
                 peak_level: float):
        self._red_rng, self._peak_rng = rng.spawn(2)  # separate streams: output independent of chunking
        self.level, self.peak_level = level, peak_level
        self._red = signal.butter(1, min(1.0, 0.4 * fs / 2), fs=fs, output="sos")
        self._peak = signal.iirpeak(peak_hz, peak_q, fs=fs)
        self._red_zi = np.zeros((self._red.shape[0], 2))
        self._peak_zi = np.zeros(max(len(self._peak[0]), len(self._peak[1])) - 1)

    def generate(self, n: int) -> np.ndarray:
        red, self._red_zi = signal.sosfilt(self._red, self._red_rng.standard_normal(n), zi=self._red_zi)
        peak, self._peak_zi = signal.lfilter(*self._peak, self._peak_rng.standard_normal(n), zi=self._peak_zi)
        return self.level * red + self.peak_level * peak


class Events:
    """Occasional transients (decaying wave trains) at Poisson times."""

    def __init__(self, fs: float, rng: np.random.Generator, per_hour: float, amplitude: float):
        self.fs, self._rng, self.amplitude = fs, rng.spawn(1)[0], amplitude
        self._mean_gap = 3600.0 * fs / per_hour if per_hour > 0 else math.inf
        self._index = 0
        self._next_onset = self._draw_gap()
        self._active: list[tuple[int, float, float, float]] = []  # onset, amplitude, freq, decay

    def _draw_gap(self) -> float:
        return self._rng.exponential(self._mean_gap) if math.isfinite(self._mean_gap) else math.inf

    def generate(self, n: int) -> np.ndarray:
        end = self._index + n
        while self._next_onset < end:
            amp = self.amplitude * self._rng.lognormal(0.0, 1.0)
            self._active.append((int(self._next_onset), amp, self._rng.uniform(0.5, 5.0),
                                 self._rng.uniform(3.0, 20.0)))
            self._next_onset += self._draw_gap()
        out = np.zeros(n)
        t_idx = np.arange(self._index, end)
        keep = []
        for onset, amp, freq, decay in self._active:
            t = (t_idx - onset) / self.fs
            live = t >= 0
            out[live] += amp * np.exp(-t[live] / decay) * np.sin(2 * math.pi * freq * t[live])
            if (end - onset) / self.fs < 10 * decay:
                keep.append((onset, amp, freq, decay))
        self._active = keep
        self._index = end
        return out


class Sensor:
    """One sensor component feeding one digitizer channel."""

    def __init__(self, name: str, response: AnalogResponse, fs: float, counts_per_volt: float,
                 background: ColouredNoise, events: Events | None = None,
                 cal_response: AnalogResponse | None = None):
        self.name, self.fs, self.counts_per_volt = name, fs, counts_per_volt
        self.response = response
        self.background, self.events = background, events
        self._sos = response.sos(fs)
        self._zi = np.zeros((self._sos.shape[0], 2))
        self._cal_sos = cal_response.sos(fs) if cal_response is not None else None
        self._cal_zi = np.zeros((self._cal_sos.shape[0], 2)) if self._cal_sos is not None else None

    def generate(self, n: int, cal_input: np.ndarray | None = None) -> np.ndarray:
        """Next ``n`` samples in counts; ``cal_input`` drives the calibration coil (same length)."""
        x = self.background.generate(n)
        if self.events is not None:
            x = x + self.events.generate(n)
        volts, self._zi = signal.sosfilt(self._sos, x, zi=self._zi)
        if self._cal_sos is not None:
            drive = np.zeros(n) if cal_input is None else cal_input
            cal_volts, self._cal_zi = signal.sosfilt(self._cal_sos, drive, zi=self._cal_zi)
            volts = volts + cal_volts
        return np.clip(np.rint(volts * self.counts_per_volt), -ADC_MAX - 1, ADC_MAX).astype(np.int32)


def broadband_seismometer(name: str, fs: float, rng: np.random.Generator, *, period_s: float = 120.0,
                          damping: float = 0.707, generator_v_per_m_s: float = 1500.0,
                          counts_per_volt: float = 1 / 3.2e-6, coil_m_s2_per_volt: float = 0.01,
                          events_per_hour: float = 2.0) -> Sensor:
    """A broadband velocity sensor (ground velocity m/s in) with a calibration coil (volts in).

    The coil adds an acceleration, so its path is the velocity response divided by s.
    """
    vel = broadband_velocity_response(period_s, damping, generator_v_per_m_s)
    cal = AnalogResponse(vel.zeros[1:], vel.poles, vel.gain * coil_m_s2_per_volt)
    noise = ColouredNoise(fs, rng, level=3e-8, peak_hz=0.18, peak_q=2.0, peak_level=2e-5)
    return Sensor(name, vel, fs, counts_per_volt, noise, Events(fs, rng, events_per_hour, 5e-6), cal)


CAL_VOLTS_PER_COUNT = 3.2e-6  # the digitizer's returned calibration signal (stream ...C0)


def broadband_calibration_table() -> str:
    """The ``[channels.calibration]`` table of a channel on the simulated broadband seismometer, from the
    simulator's own defaults: nominal T0, h, counts per m/s and the coil's m/s² per count of the returned
    signal, so a remote calibration is judged against the truth."""
    defaults = {n: p.default for n, p in inspect.signature(broadband_seismometer).parameters.items()}
    sensitivity = defaults["generator_v_per_m_s"] * defaults["counts_per_volt"]
    coil = defaults["coil_m_s2_per_volt"] * CAL_VOLTS_PER_COUNT
    return (f"period_s = {defaults['period_s']}\ndamping = {defaults['damping']}\n"
            f"sensitivity = {sensitivity!r}\ncoil_constant = {coil!r}\n")


def declared_response_lines(sensor: str) -> str:
    """The body of a receiver's ``[stations.NAME.responses.CHA]`` table for a simulated sensor kind (the
    shape of its response, from the simulator's defaults), so the IDC's StationXML matches it."""
    if sensor == "seismometer":
        defaults = {n: p.default for n, p in inspect.signature(broadband_seismometer).parameters.items()}
        return f'kind = "velocity"\nperiod_s = {defaults["period_s"]}\ndamping = {defaults["damping"]}\n'
    make = {"microbarometer": microbarometer, "hydrophone": hydrophone}[sensor]
    corner = inspect.signature(make).parameters["corner_hz"].default
    return f'kind = "{sensor}"\nlow_corner_hz = {corner}\n'


def microbarometer(name: str, fs: float, rng: np.random.Generator, *, corner_hz: float = 0.01,
                   v_per_pa: float = 0.2, counts_per_volt: float = 1 / 2.5e-6) -> Sensor:
    """An infrasound microbarometer (Pa in): leak high-pass and the microbarom peak near 0.2 Hz."""
    noise = ColouredNoise(fs, rng, level=5e-3, peak_hz=0.2, peak_q=3.0, peak_level=5e-2)
    return Sensor(name, highpass_response(corner_hz, v_per_pa), fs, counts_per_volt, noise,
                  Events(fs, rng, 1.0, 0.5))


def hydrophone(name: str, fs: float, rng: np.random.Generator, *, corner_hz: float = 1.0,
               v_per_pa: float = 1e-3, counts_per_volt: float = 1 / 1e-6) -> Sensor:
    """A hydrophone (Pa in): high-passed ocean noise with a peak in the shipping band near 20 Hz."""
    peak = min(20.0, 0.4 * fs)
    noise = ColouredNoise(fs, rng, level=1.0, peak_hz=peak, peak_q=1.5, peak_level=3.0)
    return Sensor(name, highpass_response(corner_hz, v_per_pa), fs, counts_per_volt, noise,
                  Events(fs, rng, 3.0, 20.0))
