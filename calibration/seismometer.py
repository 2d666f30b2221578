"""Fit free period, damping and gain of a seismometer to a calibration-coil recording (CALEX style).

The recorded input x is an equivalent ground acceleration (up to the coil constant), so the model
between the two recorded channels is

    y(t) = G·[s / (s² + 2hω0·s + ω0²)] x (t − τ) + offset + drift·t,      ω0 = 2π/T0

and T0, h, G, τ, offset and drift are found by ``scipy.optimize.least_squares`` on the time-domain
residual, with the simulation and its analytic Jacobian from ``calibration.simulation``. Any input
works (random telegraph, PRBS, step, a sweep) because it is measured, not assumed. The first
``settle_time`` seconds are left out of the misfit: there the sensor still rings from its unknown
state before the record. Starting values come from a grid search against the model-free
cross-spectral estimate, so a wrong or missing nominal cannot trap the fit.

Uncertainties are one standard deviation from the covariance s²·(JᵀJ)⁻¹, s² the residual variance:
right for white residuals, optimistic when the residual is coloured (drift, vault noise).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import least_squares
from threadpoolctl import threadpool_limits

from calibration.recording import RecordingRejected, check_output_follows_input, check_pair
from calibration.response import PolesZeros, Seismometer, pendulum_poles
from calibration.simulation import CoilSimulator, settle_time
from calibration.tolerance import Deviation, worst_deviation
from calibration.transfer import TransferEstimate, estimate_transfer, segment_length

# The fitted part of the record (after settling) must span this many free periods.
MIN_PERIODS = 5.0
# A residual above this fraction of the output (rms) means the model does not describe the record.
MAX_RELATIVE_RESIDUAL = 0.3
# The delay between the two channels is searched within this many samples.
MAX_DELAY_SAMPLES = 10.0
# The fit searches T0 and h within this factor of the starting values.
SEARCH_FACTOR = 3.0
# The response comparison with nominal runs from the lower corner / 100 up to Nyquist.
COMPARISON_DECADES_BELOW_CORNER = 2.0
COMPARISON_POINTS = 400


@dataclass(frozen=True)
class Uncertainty:
    """One standard deviation of each fitted parameter, in its own units."""

    period: float
    damping: float
    gain: float
    delay: float
    offset: float
    drift: float


@dataclass(frozen=True)
class FitResult:
    """A fitted seismometer. ``gain`` is output units per (input unit · s): the flat-band output per
    unit of integrated calibration input, i.e. counts per m/s when the input is in m/s².

    ``verdict`` is "pass" or "fail" against the nominal response (5 % / 5°, ``deviation`` says how
    far and where) or "fitted" when no nominal was given; ``reasons`` says why it failed.
    """

    period: float
    damping: float
    gain: float
    delay: float
    offset: float
    drift: float
    uncertainty: Uncertainty
    residual_rms: float
    relative_residual: float
    sample_rate: float
    samples: int
    settle_s: float
    evaluations: int
    nominal: Seismometer | None
    deviation: Deviation | None
    verdict: str
    reasons: tuple[str, ...]

    def sensor(self) -> Seismometer:
        return Seismometer(self.period, self.damping, self.gain)

    def ground_response(self, coil_constant: float, output_units: str = "counts") -> PolesZeros:
        """The fitted sensor's ground-velocity response (see ``ground_response``)."""
        return ground_response(self.sensor(), coil_constant, output_units)

    def modelled_output(self, cal_input: npt.ArrayLike) -> np.ndarray:
        """The fitted model's output for the whole record (it matches only after ``settle_s``)."""
        x = np.asarray(cal_input, dtype=np.float64)
        memory = self.settle_s + MAX_DELAY_SAMPLES / self.sample_rate
        simulator = CoilSimulator(x, self.sample_rate, memory)
        skip = len(x) - self.samples
        trend = self.offset + self.drift * _fit_time(skip, len(x), self.sample_rate)
        return simulator.output(self.period, self.damping, self.gain, self.delay) + trend

    def to_dict(self) -> dict:
        """Plain JSON-ready mapping (nested dicts of numbers and strings)."""
        out = asdict(self)
        out["reasons"] = list(self.reasons)
        return out


def ground_response(sensor: Seismometer, coil_constant: float, output_units: str = "counts") -> PolesZeros:
    """Ground velocity (m/s) to output of a sensor whose gain is per integrated calibration input.

    Only the coil constant K (m/s² of equivalent ground acceleration per input unit) turns that gain
    into an absolute sensitivity: G = gain / K.
    """
    if not coil_constant:
        raise ValueError("the coil constant (m/s² per input unit) must be non-zero")
    absolute = Seismometer(sensor.period, sensor.damping, sensor.gain / coil_constant)
    return absolute.velocity_response(output_units)


def _fit_time(skip: int, n: int, sample_rate: float) -> np.ndarray:
    """Time (s) of each of the n samples, zero at the middle of the fitted part, so offset and drift
    are uncorrelated."""
    return (np.arange(n) - (skip + n - 1) / 2) / sample_rate


def comparison_frequencies(sample_rate: float, *sensors: Seismometer) -> np.ndarray:
    """Log-spaced frequencies from two decades below the lowest corner up to Nyquist."""
    lowest = min(1.0 / s.period for s in sensors) / 10**COMPARISON_DECADES_BELOW_CORNER
    return np.geomspace(lowest, sample_rate / 2, COMPARISON_POINTS)


def measured_transfer(x: np.ndarray, y: np.ndarray, sample_rate: float,
                      nominal: Seismometer | None) -> TransferEstimate:
    """The model-free estimate the fit starts from (Welch segments of four nominal periods)."""
    longest = nominal.period if nominal else len(x) / sample_rate / 8
    return estimate_transfer(x, y, sample_rate, segment_length(len(x), sample_rate, longest))


def _grid_start(estimate: TransferEstimate, sample_rate: float, duration: float,
                nominal: Seismometer | None) -> Seismometer:
    """Best (T0, h) on a log grid, G solved in closed form, by relative misfit to the Welch estimate."""
    f = estimate.frequency[estimate.driven]
    h_measured = estimate.response[estimate.driven]
    weight = 1.0 / np.maximum(np.abs(h_measured) ** 2, np.finfo(float).tiny)
    s = 2j * math.pi * f
    candidates = [(t0, h) for t0 in np.geomspace(4.0 / sample_rate, duration / MIN_PERIODS, 60)
                  for h in np.geomspace(0.05, 4.0, 24)]
    if nominal is not None:
        candidates.append((nominal.period, nominal.damping))
    best, best_cost = None, math.inf
    for t0, h in candidates:
        omega0 = 2 * math.pi / t0
        unit = s / (s * s + 2 * h * omega0 * s + omega0 * omega0)
        gain = float(np.real(np.sum(weight * np.conj(unit) * h_measured))
                     / np.sum(weight * np.abs(unit) ** 2))
        cost = float(np.sum(weight * np.abs(h_measured - gain * unit) ** 2))
        if cost < best_cost:
            best, best_cost = Seismometer(float(t0), float(h), gain), cost
    if best is None:
        raise RecordingRejected("fit-failed", "no (free period, damping) on the starting grid has a finite "
                                              "misfit to the measured transfer function")
    return best


def fit_response(cal_input: npt.ArrayLike, output: npt.ArrayLike, sample_rate: float, *,
                 nominal: Seismometer | None = None, full_scale: float | None = None) -> FitResult:
    """Fit T0, h, G (plus delay τ, offset, drift) to a recorded calibration input and sensor output.

    ``nominal`` (in the same units as the fit: output per integrated input) seeds the search and is
    what the verdict compares against. ``full_scale`` (the digitizer's largest count) lets clipping
    be recognised for certain. Raises ``RecordingRejected`` instead of returning a fit that the
    record cannot support (NaNs, too short, no input, dead or clipped output, output unrelated to
    the input, fit at a search bound or not describing the output).
    """
    # One BLAS thread: on these tall, six-column matrices OpenBLAS threads spin more than they work
    # (3 to 10 times the CPU on two cores, and slower), and a calibration must leave the station's
    # other core to acquisition.
    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(cal_input, output, sample_rate, nominal, full_scale)


def _fit(cal_input: npt.ArrayLike, output: npt.ArrayLike, sample_rate: float, nominal: Seismometer | None,
         full_scale: float | None) -> FitResult:
    min_duration = MIN_PERIODS * nominal.period if nominal else 64 / sample_rate
    x, y = check_pair(cal_input, output, sample_rate, min_duration, full_scale)
    n, duration = len(x), len(x) / sample_rate
    estimate = measured_transfer(x, y, sample_rate, nominal)
    check_output_follows_input(estimate)
    start = _grid_start(estimate, sample_rate, duration, nominal)
    settle = _refuse_if_too_short(start, duration)
    skip = int(math.ceil(settle * sample_rate))
    simulator = CoilSimulator(x, sample_rate, settle + MAX_DELAY_SAMPLES / sample_rate)
    observed = y[skip:]
    time = _fit_time(skip, n, sample_rate)[skip:]

    def residual(p: np.ndarray) -> np.ndarray:
        return simulator.output(*p[:4])[skip:] + p[4] + p[5] * time - observed

    def jacobian(p: np.ndarray) -> np.ndarray:
        return np.column_stack([simulator.derivatives(*p[:4])[skip:], np.ones_like(time), time])

    max_delay = MAX_DELAY_SAMPLES / sample_rate
    lower = [start.period / SEARCH_FACTOR, start.damping / SEARCH_FACTOR, -np.inf, -max_delay, -np.inf,
             -np.inf]
    upper = [start.period * SEARCH_FACTOR, start.damping * SEARCH_FACTOR, np.inf, max_delay, np.inf, np.inf]
    p0 = [start.period, start.damping, start.gain, 0.0, float(observed.mean()), 0.0]
    fit = least_squares(residual, p0, jac=jacobian, bounds=(lower, upper), x_scale="jac", method="trf")
    _refuse_bound_hits(fit.x, fit.active_mask)
    period, damping, gain, delay, offset, drift = (float(v) for v in fit.x)
    fitted = Seismometer(period, damping, gain)
    _refuse_if_too_short(fitted, duration)
    rms = float(np.sqrt(np.mean(fit.fun**2)))
    relative = rms / float(np.std(observed))
    if relative > MAX_RELATIVE_RESIDUAL:
        raise RecordingRejected("poor-fit", f"residual is {relative:.0%} of the output (rms), more than "
                                            f"{MAX_RELATIVE_RESIDUAL:.0%}: the model does not describe it")
    sigma = _standard_errors(fit.jac, fit.fun)
    deviation, verdict, reasons = _judge(fitted, nominal, sample_rate)
    return FitResult(period=period, damping=damping, gain=gain, delay=delay, offset=offset, drift=drift,
                     uncertainty=Uncertainty(*(float(v) for v in sigma)), residual_rms=rms,
                     relative_residual=relative, sample_rate=sample_rate, samples=len(observed),
                     settle_s=skip / sample_rate, evaluations=int(fit.nfev), nominal=nominal,
                     deviation=deviation, verdict=verdict, reasons=reasons)


def _judge(fitted: Seismometer, nominal: Seismometer | None,
           sample_rate: float) -> tuple[Deviation | None, str, tuple[str, ...]]:
    """Deviation from nominal, verdict and reasons; "fitted" and no deviation without a nominal."""
    if nominal is None:
        return None, "fitted", ()
    freqs = comparison_frequencies(sample_rate, fitted, nominal)
    deviation = worst_deviation(freqs, fitted.coil_response()(freqs), nominal.coil_response()(freqs))
    return deviation, "pass" if deviation.passed else "fail", tuple(deviation.failures())


def _refuse_if_too_short(sensor: Seismometer, duration: float) -> float:
    """The sensor's settling time, if the record leaves MIN_PERIODS free periods after it."""
    settle = settle_time(pendulum_poles(sensor.period, sensor.damping))
    if duration - settle < MIN_PERIODS * sensor.period:
        raise RecordingRejected("too-short", f"{duration:.4g} s recorded; a {sensor.period:.3g} s sensor "
                                             f"needs {settle:.4g} s to settle and {MIN_PERIODS:g} periods "
                                             "after")
    return settle


def _refuse_bound_hits(p: np.ndarray, active: np.ndarray) -> None:
    names = ("free period", "damping", "gain", "delay", "offset", "drift")
    hits = [f"{names[i]} {p[i]:.4g}" for i in np.flatnonzero(active)]
    if hits:
        raise RecordingRejected("fit-failed", "the fit ended at the edge of its search range ("
                                + ", ".join(hits) + "): the output does not behave as a pendulum's "
                                "response, or the record does not constrain it")


def _standard_errors(jac: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """sqrt(diag(s²·(JᵀJ)⁻¹)) with s² = Σr²/(m − p), through the SVD of J for numerical safety."""
    m, p = jac.shape
    variance = float(residual @ residual) / max(m - p, 1)
    _, singular, vt = np.linalg.svd(jac, full_matrices=False)
    inverse = np.where(singular > singular[0] * 1e-12, 1.0 / singular, 0.0)
    return np.sqrt(variance * np.sum((vt.T * inverse) ** 2, axis=1))
