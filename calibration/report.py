"""The calibration report folder: JSON result, StationXML, PNG figures and a one-page HTML report.

The HTML page is self-contained (figures inlined as base64 PNG) so it can be filed or mailed as one
file. It states what a calibration engineer signs: which channel, when, with which signal, the
fitted values with their uncertainties next to the nominal ones, how far the response is from
nominal against the IMS 5 %/5° rule, and the verdict with its reasons.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from calibration.plots import response_png, traces_png
from calibration.response import calib_from_response
from calibration.seismometer import (
    COMPARISON_DECADES_BELOW_CORNER,
    FitResult,
    comparison_frequencies,
    ground_response,
    measured_transfer,
)
from calibration.stationxml import ChannelSite, write_stationxml
from calibration.tolerance import AMPLITUDE_TOLERANCE, PHASE_TOLERANCE_DEG
from timeunits import NS_PER_S


@dataclass(frozen=True)
class Session:
    """What the engineer records besides the numbers.

    ``coil_constant`` converts the calibration input's units to equivalent ground acceleration
    (m/s² per unit); without it the absolute sensitivity, calib and StationXML cannot be given.
    """

    network: str
    station: str
    location: str
    channel: str
    input_channel: str
    start_ns: int
    signal: str
    operator: str = ""
    coil_constant: float | None = None
    calper: float = 1.0

    @property
    def channel_id(self) -> str:
        return f"{self.network}.{self.station}.{self.location}.{self.channel}"

    @property
    def start_utc(self) -> str:
        seconds, ns = divmod(self.start_ns, NS_PER_S)
        stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")
        return f"{stamp}.{ns // 1_000_000:03d} UTC"


def calib_values(session: Session, fit: FitResult) -> dict:
    """Fitted and nominal calib (nm/count) at calper, when the coil constant makes them absolute."""
    if not session.coil_constant:
        return {}
    out = {"calper": session.calper,
           "calib": calib_from_response(fit.ground_response(session.coil_constant), session.calper)}
    if fit.nominal:
        nominal = ground_response(fit.nominal, session.coil_constant)
        out["nominal_calib"] = calib_from_response(nominal, session.calper)
    return out


def report_data(session: Session, fit: FitResult) -> dict:
    """The JSON result: session, fit (values, uncertainties, deviation, verdict) and calib/calper."""
    return {"session": {**asdict(session), "start_utc": session.start_utc}, "fit": fit.to_dict(),
            **calib_values(session, fit)}


def _with_sigma(value: float, sigma: float, unit: str = "") -> str:
    """value ± sigma, both rounded to the sigma's second significant digit."""
    if not sigma > 0 or not math.isfinite(sigma):
        return f"{value:.6g}{unit}"
    decimals = max(0, 1 - math.floor(math.log10(sigma)))
    return f"{value:.{decimals}f} ± {sigma:.{decimals}f}{unit}"


def _relative(deviation: float) -> str:
    """A relative deviation with the digits it needs: a good calibration's are thousandths of a percent,
    which two decimals would show as a bare "-0.00%"."""
    return f"{deviation:+.2%}" if abs(deviation) >= 1e-3 else f"{deviation:+.4%}"


def _compare(value: float, nominal: float | None, unit: str = "", digits: int = 6) -> tuple[str, str]:
    """Nominal value and the relative deviation from it, as report cells."""
    if nominal is None:
        return "—", "—"
    return f"{nominal:.{digits}g}{unit}", _relative((value - nominal) / abs(nominal))


def _parameter_rows(session: Session, fit: FitResult) -> list[tuple[str, ...]]:
    nominal, u = fit.nominal, fit.uncertainty
    rows: list[tuple[str, ...]] = [
        ("Free period T0", _with_sigma(fit.period, u.period, " s"),
         *_compare(fit.period, None if nominal is None else nominal.period, " s")),
        ("Damping h", _with_sigma(fit.damping, u.damping),
         *_compare(fit.damping, None if nominal is None else nominal.damping)),
        ("Gain (counts per input unit·s)", _with_sigma(fit.gain, u.gain),
         *_compare(fit.gain, None if nominal is None else nominal.gain)),
        ("Channel delay τ (output after input)", _with_sigma(fit.delay * 1e3, u.delay * 1e3, " ms"),
         *_compare(fit.delay, None)),
    ]
    if session.coil_constant:  # the absolute sensitivity, in the units the station's metadata uses
        k = session.coil_constant
        rows.insert(3, ("Sensitivity G (counts per m/s)", f"{fit.gain / k:.7g} ± {u.gain / k:.2g}",
                        *_compare(fit.gain / k, None if nominal is None else nominal.gain / k, digits=7)))
    calib = calib_values(session, fit)
    if calib:
        rows.append((f"calib at calper {calib['calper']:g} s (nm/count)", f"{calib['calib']:.5g}",
                     *_compare(calib["calib"], calib.get("nominal_calib"), digits=5)))
    return rows


def html_table(rows: Iterable[tuple[str, ...]], header: tuple[str, ...] | None = None) -> str:
    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def html_image(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


STYLE = """
body { font-family: sans-serif; max-width: 1000px; margin: 1.5em auto; color: #222; font-size: 14px; }
h1 { font-size: 20px; margin-bottom: 0.2em; } h2 { font-size: 16px; margin: 1.2em 0 0.4em; }
table { border-collapse: collapse; margin: 0.4em 0; } td, th { border: 1px solid #bbb; padding: 3px 9px; }
th { background: #eee; text-align: left; } td { font-variant-numeric: tabular-nums; }
.verdict { font-size: 18px; font-weight: bold; padding: 8px 12px; border-radius: 4px; margin: 0.8em 0; }
.pass { background: #d3f9d8; color: #2b8a3e; } .fail { background: #ffe3e3; color: #c92a2a; }
.fitted { background: #e9ecef; color: #495057; } img { width: 100%; margin-top: 0.5em; }
.note { color: #666; font-size: 12px; }
"""


def html_report(session: Session, fit: FitResult, response_image: bytes, traces_image: bytes) -> str:
    """One self-contained HTML page for the calibration file."""
    verdict_text = {"pass": "PASS — within IMS tolerance of nominal", "fail": "FAIL — outside IMS tolerance",
                    "fitted": "FITTED — no nominal response given, no verdict"}[fit.verdict]
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in fit.reasons)
    duration = (fit.samples + round(fit.settle_s * fit.sample_rate)) / fit.sample_rate
    session_rows = [
        ("Channel", session.channel_id), ("Calibration input channel", session.input_channel),
        ("Record start", session.start_utc),
        ("Record length", f"{duration:.0f} s; {fit.samples} samples fitted after {fit.settle_s:.0f} s "
                          "of settling"),
        ("Sample rate", f"{fit.sample_rate:g} sps"), ("Signal", session.signal),
        ("Coil constant", f"{session.coil_constant:g} m/s² per input unit" if session.coil_constant
         else "not given: absolute sensitivity not determined"),
        ("Operator", session.operator or "—"),
    ]
    deviation = ""
    if fit.deviation:
        if fit.nominal is None:
            raise ValueError("the fit has a deviation from nominal but no nominal response to compare with")
        d = fit.deviation
        band = comparison_frequencies(fit.sample_rate, fit.sensor(), fit.nominal)
        deviation = html_table([
            ("Largest amplitude deviation", _relative(d.amplitude), f"at {d.amplitude_frequency:.4g} Hz",
             f"±{AMPLITUDE_TOLERANCE:.0%}"),
            ("Largest phase deviation", f"{d.phase_deg:+.2f}°" if abs(d.phase_deg) >= 0.01
             else f"{d.phase_deg:+.4f}°", f"at {d.phase_frequency:.4g} Hz",
             f"±{PHASE_TOLERANCE_DEG:g}°")], header=("Response vs nominal", "Value", "Where", "IMS limit"))
        deviation += (f'<div class="note">Fitted and nominal responses (calibration input to output, channel '
                      f"delay excluded) compared at {len(band)} frequencies from {band[0]:.3g} Hz, "
                      f"{COMPARISON_DECADES_BELOW_CORNER:g} decades below the lower corner, up to Nyquist "
                      f"({band[-1]:g} Hz).</div>")
    residual = f"{fit.residual_rms:.4g} counts ({fit.relative_residual:.2%} of output)"
    quality = html_table([("Residual rms", residual),
                      ("Offset, drift", f"{fit.offset:.4g} counts, {fit.drift:.4g} counts/s"),
                      ("Function evaluations", str(fit.evaluations))])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Calibration {html.escape(session.channel_id)} {html.escape(session.start_utc)}</title>
<style>{STYLE}</style></head><body>
<h1>Seismometer calibration — {html.escape(session.channel_id)}</h1>
<div class="note">Electrical calibration through the calibration coil; least-squares fit of free period,
damping and gain to the recorded input and output.</div>
<div class="verdict {fit.verdict}">{html.escape(verdict_text)}</div>
{f"<ul>{reasons}</ul>" if reasons else ""}
<h2>Session</h2>{html_table(session_rows)}
<h2>Fitted parameters (± one standard deviation)</h2>
{html_table(_parameter_rows(session, fit), header=("Parameter", "Fitted", "Nominal", "Deviation"))}
{deviation}
<h2>Fit quality</h2>{quality}
<div class="note">Uncertainties are formal (covariance of the least-squares fit scaled by the residual
variance); coloured noise or drift makes them optimistic. Gain is output counts per unit of integrated
calibration input: counts per m/s when the input is expressed as ground acceleration.</div>
<h2>Response</h2>{html_image(response_image, "amplitude and phase against nominal")}
<h2>Traces</h2>{html_image(traces_image, "calibration input, output, model and residual")}
</body></html>
"""


def write_report(folder: Path, session: Session, fit: FitResult, cal_input: npt.ArrayLike,
                 output: npt.ArrayLike, *, site: ChannelSite | None = None,
                 digitizer_gain: float | None = None) -> dict[str, Path]:
    """Write result.json, response.png, traces.png, report.html and, when the coil constant and the
    site are known, response.xml (StationXML). Returns the written paths by kind."""
    folder.mkdir(parents=True, exist_ok=True)
    x, y = np.asarray(cal_input, dtype=float), np.asarray(output, dtype=float)
    response_image = response_png(fit, measured_transfer(x, y, fit.sample_rate, fit.nominal))
    traces_image = traces_png(fit, x, y)
    paths = {"json": folder / "result.json", "response_png": folder / "response.png",
             "traces_png": folder / "traces.png", "html": folder / "report.html"}
    paths["json"].write_text(json.dumps(report_data(session, fit), indent=2) + "\n")
    paths["response_png"].write_bytes(response_image)
    paths["traces_png"].write_bytes(traces_image)
    paths["html"].write_text(html_report(session, fit, response_image, traces_image))
    if site is not None and session.coil_constant:
        paths["stationxml"] = folder / "response.xml"
        write_stationxml(paths["stationxml"], site, fit.ground_response(session.coil_constant),
                         frequency=1.0 / session.calper, digitizer_gain=digitizer_gain)
    return paths
