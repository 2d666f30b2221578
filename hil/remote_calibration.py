"""A scenario's remote calibrations (``[[calibrations]]``): the operator's ``ims idc command`` at its time,
and what the IDC made of it, read from what the real processes left behind.

The command runs as the operator would run it, a process of its own against the running receiver, on
the network's simulated clock. Its answer is the station's command response (one line of JSON); the
IDC's evidence is the calibrated channel's subframes with the "calibration underway" bit in the raw
store, the miniSEED records with activity bit 0 in the SDS archive, and the channel's StationXML epochs
(a new one when the station applied the accepted calib).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from gci_link.cd11 import Cd11FormatError, DataBody, decode_frame
from gci_link.io.mseed2.flags import ACTIVITY_CALIBRATION
from hil.scenario import RemoteCalibration
from idc.stores import read_arrivals

SEND_WITHIN_S = 60.0  # real seconds the receiver has to send the request (the station may be reconnecting)
RECORD_BYTES = 512


@dataclass
class RunningCalibration:
    calibration: RemoteCalibration
    process: subprocess.Popen
    output: Path  # the command's stdout: the station's answer
    started_s: float  # simulated seconds into the run
    exit_code: int | None = None
    notes: list[str] = field(default_factory=list)


def start(calibration: RemoteCalibration, receiver_config: Path, env: dict[str, str], folder: Path,
          index: int, started_s: float) -> RunningCalibration:
    """``ims idc command STATION calibrate ...`` as a process; its answer goes to ``folder``."""
    output = folder / f"calibration-{index}.json"
    with output.open("wb") as out, (folder / f"calibration-{index}.log").open("ab") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "station.ims", "idc", "command", calibration.station, *calibration.words,
             "--config", str(receiver_config), "--send-within", str(SEND_WITHIN_S)],
            env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
    return RunningCalibration(calibration, process, output, started_s)


def finish(running: RunningCalibration, timeout_s: float = 30.0) -> None:
    """Wait for the command to end (the answer should be in by now, but a niced fit on a loaded machine may
    still be running), else stop it."""
    try:
        running.exit_code = running.process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        running.process.terminate()
        running.exit_code = running.process.wait()
        running.notes.append("no answer before the run ended")


def summary(running: RunningCalibration, idc: Path, network: str, site: str, location: str) -> dict:
    """What the operator got back and what the IDC archived of the calibration."""
    cal = running.calibration
    text = running.output.read_text(errors="replace").strip() if running.output.exists() else ""
    try:
        answer = json.loads(text) if text else None
    except json.JSONDecodeError:
        answer = None
    flagged, subframes = _flagged_subframes(idc / "raw" / f"{cal.station}.sqlite", cal.channel)
    records = _flagged_records(idc / "sds", network, site, location, cal.channel)
    return {
        "station": cal.station,
        "command": " ".join(cal.words),
        "sent_at_s": round(running.started_s, 1),
        "exit_code": running.exit_code,
        "response": answer if answer is not None else text,
        "verdict": answer.get("verdict") if isinstance(answer, dict) else None,
        "subframes_flagged_at_idc": flagged,
        "subframes_at_idc": subframes,
        "other_channels_flagged_at_idc": _flagged_subframes(idc / "raw" / f"{cal.station}.sqlite", None,
                                                            exclude=cal.channel)[0],
        "sds_records_flagged": records,
        "stationxml_epochs": _epochs(idc / "stationxml" / f"{network}.{site}.xml", cal.channel, location),
        "notes": running.notes,
    }


def _flagged_subframes(raw_store: Path, channel: str | None, exclude: str | None = None) -> tuple[int, int]:
    """(subframes with the calibration-underway bit, all subframes) of ``channel`` (or of every channel
    but ``exclude``) in a station's raw store at the IDC."""
    flagged = total = 0
    for _, _, raw in read_arrivals(raw_store):
        try:
            body = decode_frame(raw).body
        except Cd11FormatError:
            continue
        if not isinstance(body, DataBody):
            continue
        for sub in body.channels:
            if (channel is not None and sub.channel != channel) or sub.channel == exclude:
                continue
            total += 1
            flagged += bool(sub.status.is_format1 and sub.status.flag("calibration_underway"))
    return flagged, total


def _flagged_records(sds: Path, network: str, site: str, location: str, channel: str) -> int:
    """miniSEED records of the channel in the SDS archive whose activity flags say calibration signals
    were present (fixed header byte 36, bit 0)."""
    count = 0
    for path in sorted(sds.glob(f"*/{network}/{site}/{channel}.D/{network}.{site}.{location}.{channel}.D.*")):
        data = path.read_bytes()
        count += sum(1 for at in range(0, len(data) - RECORD_BYTES + 1, RECORD_BYTES)
                     if data[at + 36] & ACTIVITY_CALIBRATION)
    return count


def _epochs(path: Path, channel: str, location: str) -> list[dict]:
    """The channel's StationXML epochs as the receiver wrote them: start and the sensitivity's level."""
    if not path.exists():
        return []
    from obspy import read_inventory

    found = read_inventory(str(path)).select(channel=channel, location=location)
    return [{"start": str(c.start_date), "sensitivity": c.response.instrument_sensitivity.value
             if c.response is not None and c.response.instrument_sensitivity is not None else None}
            for net in found for sta in net for c in sta]
