"""The report folder of a calibration session, whatever its outcome.

A fit gets ``report.write_report``'s folder, a sine calibration ``sine_report.write_sine_report``'s; a
refused recording gets a ``result.json`` that says why. Every folder also keeps what was recorded
(``recording.npz``: per run, the calibration input and sensor output in counts, the sample rate and
the first sample's time), so the calibration can be looked at again without the digitizer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from calibration.report import Session, write_report
from calibration.response import Seismometer
from calibration.session import Outcome, Plan, RunRecording, sine_runs
from calibration.sine_report import write_sine_report
from calibration.stationxml import ChannelSite


def save_recordings(path: Path, recorded: Sequence[RunRecording]) -> None:
    """Each run's two channels as int32 counts (``input_N``, ``output_N``) with ``rate_N``, ``start_ns_N``."""
    arrays: dict[str, np.ndarray] = {}
    for i, r in enumerate(recorded):
        rec = r.recording
        arrays |= {f"input_{i}": np.rint(rec.cal_input).astype(np.int32),
                   f"output_{i}": np.rint(rec.output).astype(np.int32),
                   f"rate_{i}": np.array(rec.sample_rate), f"start_ns_{i}": np.array(rec.start_ns)}
    with path.open("wb") as out:
        np.savez_compressed(out, allow_pickle=False, **arrays)


def write_session_report(folder: Path, session: Session, plan: Plan, outcome: Outcome,
                         recorded: Sequence[RunRecording], nominal: Seismometer | None, *,
                         site: ChannelSite | None = None) -> dict[str, Path]:
    """Write the folder for ``outcome``; returns the written paths by kind (``json``, ``html``, ...)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    if recorded:
        paths["recording"] = folder / "recording.npz"
        save_recordings(paths["recording"], recorded)
    if outcome.fit is not None:
        rec = recorded[0].recording
        paths |= write_report(folder, session, outcome.fit, rec.cal_input, rec.output, site=site)
    elif outcome.sine is not None and nominal is not None:
        paths |= write_sine_report(folder, session, outcome.sine, sine_runs(recorded),
                                   recorded[0].recording.sample_rate, nominal, site=site)
    else:
        paths["json"] = folder / "result.json"
        refusal = {"session": {**asdict(session), "start_utc": session.start_utc},
                   "plan": asdict(plan), "verdict": outcome.verdict,
                   "problem": outcome.problem, "message": outcome.message}
        paths["json"].write_text(json.dumps(refusal, indent=2) + "\n")
    return paths
