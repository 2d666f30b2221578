"""The report folder of a sine calibration: JSON result, PNG figures, one-page HTML and, when the sine
points confirm the nominal response, that response as StationXML.

A sine calibration measures the response at a few frequencies; it fits no model. So the StationXML it
can vouch for is the nominal response, and only when every point is within the IMS 5 %/5° of it.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from calibration.plots import sine_png, sine_traces_png
from calibration.report import STYLE, Session, html_image, html_table
from calibration.response import Seismometer, calib_from_response
from calibration.seismometer import ground_response
from calibration.sine import SineResult, SineRun
from calibration.stationxml import ChannelSite, write_stationxml
from calibration.tolerance import AMPLITUDE_TOLERANCE, PHASE_TOLERANCE_DEG


def sine_report_data(session: Session, result: SineResult, nominal: Seismometer) -> dict:
    """The JSON result: session, the nominal sensor, each point against it, the verdict, and the
    nominal calib at calper when the coil constant makes it absolute."""
    data: dict[str, object] = {"session": {**asdict(session), "start_utc": session.start_utc},
            "nominal": asdict(nominal), "sine": result.to_dict()}
    if session.coil_constant:
        data["nominal_calib"] = calib_from_response(ground_response(nominal, session.coil_constant),
                                                    session.calper)
        data["calper"] = session.calper
    return data


def sine_html(session: Session, result: SineResult, response_image: bytes, traces_image: bytes,
              stationxml_note: str) -> str:
    verdict_text = {"pass": "PASS — every point within IMS tolerance of nominal",
                    "fail": "FAIL — outside IMS tolerance"}[result.verdict]
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in result.reasons)
    session_rows = [("Channel", session.channel_id), ("Calibration input channel", session.input_channel),
                    ("Record start", session.start_utc), ("Signal", session.signal),
                    ("Operator", session.operator or "—")]
    points = [(f"{p.frequency:g}", f"{p.amplitude:.5g}", f"{p.nominal_amplitude:.5g}",
               f"{100 * p.amplitude_deviation:+.2f} %", f"{p.phase_deg:+.2f}°",
               f"{p.nominal_phase_deg:+.2f}°", f"{p.phase_deviation_deg:+.2f}°") for p in result.points]
    table = html_table(points, header=("Frequency (Hz)", "Amplitude", "Nominal", "Deviation", "Phase",
                                       "Nominal", "Deviation"))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Sine calibration {html.escape(session.channel_id)} {html.escape(session.start_utc)}</title>
<style>{STYLE}</style></head><body>
<h1>Sine calibration — {html.escape(session.channel_id)}</h1>
<div class="note">Electrical calibration through the calibration coil: amplitude and phase of the output
against the calibration input at each frequency, after the sensor's transient, against the nominal
response (limits ±{AMPLITUDE_TOLERANCE:.0%} and ±{PHASE_TOLERANCE_DEG:g}°).</div>
<div class="verdict {result.verdict}">{html.escape(verdict_text)}</div>
{f"<ul>{reasons}</ul>" if reasons else ""}
<h2>Session</h2>{html_table(session_rows)}
<h2>Points (output per input unit; phase includes any delay between the channels)</h2>{table}
<div class="note">{html.escape(stationxml_note)}</div>
<h2>Response</h2>{html_image(response_image, "measured points on the nominal response")}
<h2>Traces</h2>{html_image(traces_image, "sensor output and calibration input of each run")}
</body></html>
"""


def write_sine_report(folder: Path, session: Session, result: SineResult, runs: Sequence[SineRun],
                      sample_rate: float, nominal: Seismometer, *,
                      site: ChannelSite | None = None) -> dict[str, Path]:
    """Write result.json, response.png, traces.png, report.html and, for a passing calibration with
    a coil constant and a site, response.xml (the nominal response). Returns the paths by kind."""
    folder.mkdir(parents=True, exist_ok=True)
    response_image = sine_png(result, nominal.coil_response())
    traces_image = sine_traces_png(runs, sample_rate)
    vouched = result.verdict == "pass" and bool(session.coil_constant) and site is not None
    if vouched:
        note = "response.xml holds the nominal response, which these points confirm."
    else:
        note = ("No StationXML: " + ("the points do not confirm the nominal response."
                                     if result.verdict != "pass" else
                                     "the coil constant or the station's coordinates are not configured."))
    paths = {"json": folder / "result.json", "response_png": folder / "response.png",
             "traces_png": folder / "traces.png", "html": folder / "report.html"}
    paths["json"].write_text(json.dumps(sine_report_data(session, result, nominal), indent=2) + "\n")
    paths["response_png"].write_bytes(response_image)
    paths["traces_png"].write_bytes(traces_image)
    paths["html"].write_text(sine_html(session, result, response_image, traces_image, note))
    if vouched and site is not None and session.coil_constant:
        paths["stationxml"] = folder / "response.xml"
        write_stationxml(paths["stationxml"], site, ground_response(nominal, session.coil_constant),
                         frequency=1.0 / session.calper)
    return paths
