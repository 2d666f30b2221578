"""PNG figures of a seismometer fit (response against nominal, recorded traces with residual) and of a sine
calibration (measured points on the nominal response, and each run's traces).

Drawn on matplotlib ``Figure`` objects with the Agg canvas directly (no pyplot, no global backend
change), so it works headless and inside daemons.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from calibration.response import PolesZeros
from calibration.seismometer import COMPARISON_POINTS, FitResult, comparison_frequencies
from calibration.sine import SineResult, SineRun
from calibration.tolerance import AMPLITUDE_TOLERANCE, PHASE_TOLERANCE_DEG, deviations
from calibration.transfer import TransferEstimate

# Measured (Welch) points are drawn where the input drives the sensor and the output follows it.
MIN_PLOTTED_COHERENCE = 0.9
FITTED, NOMINAL, MEASURED, TOLERANCE = "#1f5fa8", "#d9480f", "#555555", "#2b8a3e"


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure)
    figure.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _phase_deg(response: np.ndarray) -> np.ndarray:
    """Phase in degrees, continuous along frequency, on the branch nearest zero at the top end."""
    phase = np.degrees(np.unwrap(np.angle(response)))
    return phase - 360.0 * np.round(phase[-1] / 360.0)


def response_png(fit: FitResult, estimate: TransferEstimate | None = None) -> bytes:
    """Amplitude and phase of the fitted response (input to output) against the nominal one, with the
    measured cross-spectral points, and the deviation from nominal against the IMS tolerance."""
    sensors = [fit.sensor()] + ([fit.nominal] if fit.nominal else [])
    freqs = comparison_frequencies(fit.sample_rate, *sensors)
    fitted = fit.sensor().coil_response()(freqs)
    reference_model = (fit.nominal or fit.sensor()).coil_response()
    reference = reference_model(freqs)
    reference_name = "nominal" if fit.nominal else "fitted"
    fitted_dev_a, fitted_dev_p = deviations(fitted, reference)
    figure = Figure(figsize=(11, 7.5), layout="constrained")
    (amp, phase), (amp_dev, phase_dev) = figure.subplots(2, 2, sharex=True)
    amp.loglog(freqs, np.abs(fitted), color=FITTED, lw=2, label="fitted")
    phase.semilogx(freqs, _phase_deg(fitted), color=FITTED, lw=2, label="fitted")
    if fit.nominal:
        amp.loglog(freqs, np.abs(reference), color=NOMINAL, lw=1.5, ls="--", label="nominal")
        phase.semilogx(freqs, _phase_deg(reference), color=NOMINAL, lw=1.5, ls="--", label="nominal")
        amp_dev.semilogx(freqs, 100 * fitted_dev_a, color=FITTED, lw=2, label="fitted − nominal")
        phase_dev.semilogx(freqs, fitted_dev_p, color=FITTED, lw=2, label="fitted − nominal")
    if estimate is not None:
        keep = estimate.driven & (estimate.coherence >= MIN_PLOTTED_COHERENCE)
        f = estimate.frequency[keep]
        measured = estimate.response[keep] * np.exp(2j * np.pi * f * fit.delay)  # channel delay removed
        marker = dict(ls="none", marker=".", ms=3, color=MEASURED, alpha=0.6, label="measured (Welch)")
        amp.loglog(f, np.abs(measured), **marker)
        at_f = reference_model(f)
        m_a, m_p = deviations(measured, at_f)
        phase.semilogx(f, _phase_deg(at_f) + m_p, **marker)  # on the same branch as the curves
        amp_dev.semilogx(f, 100 * m_a, **{**marker, "label": f"measured − {reference_name}"})
        phase_dev.semilogx(f, m_p, **{**marker, "label": f"measured − {reference_name}"})
    for axis, limit, curve in ((amp_dev, 100 * AMPLITUDE_TOLERANCE, 100 * fitted_dev_a),
                               (phase_dev, PHASE_TOLERANCE_DEG, fitted_dev_p)):
        axis.axhspan(-limit, limit, color=TOLERANCE, alpha=0.12, label="IMS tolerance")
        axis.axhline(0, color="black", lw=0.6)
        span = max(3 * limit, 1.15 * float(np.max(np.abs(curve))))  # the whole fitted curve, scatter may clip
        axis.set_ylim(-span, span)
    corner = 1.0 / fit.period
    for axis, place in ((amp, "upper right"), (phase, "upper right"), (amp_dev, "lower left"),
                        (phase_dev, "lower left")):  # where the curves leave room
        axis.axvline(corner, color=FITTED, lw=0.8, ls=":")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8, loc=place)
    amp.set_title(f"Amplitude (fitted corner {corner:.4g} Hz, dotted)")
    amp.set_ylabel("|output / input|  (counts per input unit)")
    phase.set_title("Phase" + (" (reversed polarity: includes 180°)" if fit.gain < 0 else ""))
    phase.set_ylabel("degrees")
    amp_dev.set_title(f"Amplitude deviation from {reference_name}")
    amp_dev.set_ylabel("%")
    phase_dev.set_title(f"Phase deviation from {reference_name}")
    phase_dev.set_ylabel("degrees")
    for axis in (amp_dev, phase_dev):
        axis.set_xlabel("frequency (Hz)")
    return _png(figure)


def _detail_window(fit: FitResult, n: int) -> slice:
    """About four free periods (at least 200 samples) from the middle of the fitted part."""
    skip = n - fit.samples
    width = min(fit.samples, max(int(4 * fit.period * fit.sample_rate), 200))
    first = skip + (fit.samples - width) // 2
    return slice(first, first + width)


def traces_png(fit: FitResult, cal_input: npt.ArrayLike, output: npt.ArrayLike) -> bytes:
    """Calibration input, recorded and modelled output (whole record and a detail), and the residual."""
    x, y = np.asarray(cal_input, dtype=float), np.asarray(output, dtype=float)
    model = fit.modelled_output(x)
    minutes = len(x) / fit.sample_rate > 600
    unit = 60.0 if minutes else 1.0
    t = np.arange(len(x)) / fit.sample_rate / unit
    settled = t >= fit.settle_s / unit
    figure = Figure(figsize=(11, 10), layout="constrained")
    top, middle, detail, bottom = figure.subplots(4, 1)
    top.plot(t, x, color=MEASURED, lw=0.7)
    top.set_title("Calibration input")
    top.set_ylabel("input units")
    middle.plot(t, y, color=MEASURED, lw=1.6, label="recorded output")
    middle.plot(t, model, color=FITTED, lw=0.7, label="fitted model")
    middle.set_title("Sensor output")
    middle.set_ylabel("counts")
    window = _detail_window(fit, len(x))
    middle.axvspan(t[window.start], t[window.stop - 1], color=TOLERANCE, alpha=0.15, label="detail below")
    drive = detail.twinx()
    drive.plot(t[window], x[window], color=TOLERANCE, lw=0.8, alpha=0.6)
    drive.set_ylabel("input units", color=TOLERANCE)
    detail.plot([], [], color=TOLERANCE, lw=0.8, alpha=0.6, label="calibration input (right axis)")
    detail.plot(t[window], y[window], color=MEASURED, lw=2.5, label="recorded output")
    detail.plot(t[window], model[window], color=FITTED, lw=1.0, label="fitted model")
    detail.set_zorder(drive.get_zorder() + 1)  # output over input, the twin's background hidden
    detail.patch.set_visible(False)
    detail.set_title("Sensor output, detail")
    detail.set_ylabel("counts")
    detail.set_xlim(t[window.start], t[window.stop - 1])
    residual = y - model
    bottom.plot(t[settled], residual[settled], color=NOMINAL, lw=0.4)
    rms = fit.residual_rms
    label = f"± rms {rms:.4g} ({fit.relative_residual:.2%} of output)"
    bottom.axhline(rms, color="black", lw=1.2, ls="--", zorder=3, label=label)
    bottom.axhline(-rms, color="black", lw=1.2, ls="--", zorder=3)
    spread = np.max(np.abs(residual[settled]))
    bottom.set_ylim(-1.3 * spread, 1.3 * spread)
    bottom.set_title("Residual (recorded − model), fitted part")
    bottom.set_ylabel("counts")
    for axis in (top, middle, bottom):
        axis.axvspan(0, fit.settle_s / unit, color="#cccccc", alpha=0.5,
                     label="settling, not fitted" if axis is middle else None)
        axis.set_xlim(t[0], t[-1])
    time_label = "time since record start (" + ("min" if minutes else "s") + ")"
    for axis in (top, middle, detail, bottom):
        axis.grid(True, alpha=0.3)
        axis.set_xlabel(time_label, fontsize=8)
    for axis in (middle, detail, drive, bottom):  # headroom above the data for a one-line legend
        low, high = axis.get_ylim()
        axis.set_ylim(low, high + 0.35 * (high - low))
    for axis in (middle, detail, bottom):
        axis.legend(fontsize=8, loc="upper left", ncol=4, framealpha=0.9)
    return _png(figure)


def sine_png(result: SineResult, nominal: PolesZeros) -> bytes:
    """Measured amplitude and phase at each sine frequency on the nominal curve, and their deviations
    from nominal against the IMS tolerance."""
    measured_f = np.array([p.frequency for p in result.points])
    low, high = measured_f.min() / 10, measured_f.max() * 10
    poles = [abs(p) / (2 * np.pi) for p in nominal.poles if p != 0]
    if poles:
        low, high = min(low, min(poles) / 10), max(high, max(poles) * 10)
    freqs = np.geomspace(low, high, COMPARISON_POINTS)
    curve = nominal(freqs)
    measured = np.array([p.amplitude * np.exp(1j * np.radians(p.phase_deg)) for p in result.points])
    figure = Figure(figsize=(11, 7.5), layout="constrained")
    (amp, phase), (amp_dev, phase_dev) = figure.subplots(2, 2, sharex=True)
    amp.loglog(freqs, np.abs(curve), color=NOMINAL, lw=1.5, ls="--", label="nominal")
    amp.loglog(measured_f, np.abs(measured), ls="none", marker="o", color=FITTED, label="measured")
    curve_phase = _phase_deg(curve)
    phase.semilogx(freqs, curve_phase, color=NOMINAL, lw=1.5, ls="--", label="nominal")
    at_points = np.interp(np.log(measured_f), np.log(freqs), curve_phase)
    phase_dev_deg = np.array([p.phase_deviation_deg for p in result.points])
    phase.semilogx(measured_f, at_points + phase_dev_deg, ls="none", marker="o", color=FITTED,
                   label="measured")
    for axis, limit, values in ((amp_dev, 100 * AMPLITUDE_TOLERANCE,
                                 100 * np.array([p.amplitude_deviation for p in result.points])),
                                (phase_dev, PHASE_TOLERANCE_DEG, phase_dev_deg)):
        axis.axhspan(-limit, limit, color=TOLERANCE, alpha=0.12, label="IMS tolerance")
        axis.axhline(0, color="black", lw=0.6)
        axis.semilogx(measured_f, values, ls="none", marker="o", color=FITTED, label="measured − nominal")
        span = max(3 * limit, 1.15 * float(np.max(np.abs(values))))
        axis.set_ylim(-span, span)
    for axis in (amp, phase, amp_dev, phase_dev):
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    amp.set_title("Amplitude at the sine frequencies")
    amp.set_ylabel("|output / input|  (counts per input unit)")
    phase.set_title("Phase (channel delay included)")
    phase.set_ylabel("degrees")
    amp_dev.set_title("Amplitude deviation from nominal")
    amp_dev.set_ylabel("%")
    phase_dev.set_title("Phase deviation from nominal")
    phase_dev.set_ylabel("degrees")
    for axis in (amp_dev, phase_dev):
        axis.set_xlabel("frequency (Hz)")
    return _png(figure)


def sine_traces_png(runs: Sequence[SineRun], sample_rate: float) -> bytes:
    """Each sine run: the sensor output with the calibration input behind it (right axis)."""
    figure = Figure(figsize=(11, 2.4 * len(runs) + 0.6), layout="constrained")
    axes = np.atleast_1d(figure.subplots(len(runs), 1))
    for axis, run in zip(axes, runs, strict=True):
        t = np.arange(len(run.output)) / sample_rate
        drive = axis.twinx()
        drive.plot(t, run.cal_input, color=TOLERANCE, lw=0.6, alpha=0.6)
        drive.set_ylabel("input units", color=TOLERANCE)
        axis.plot(t, run.output, color=MEASURED, lw=0.8)
        axis.set_zorder(drive.get_zorder() + 1)
        axis.patch.set_visible(False)
        axis.set_title(f"{run.frequency:g} Hz: sensor output (calibration input behind, right axis)")
        axis.set_ylabel("counts")
        axis.set_xlim(t[0], t[-1])
        axis.grid(True, alpha=0.3)
    axes[-1].set_xlabel("time since the run's start (s)")
    return _png(figure)
