"""``ims rn analyse SAMPLE.PHD``: analyse a particulate (HPGe) or beta-gamma sample with the calibration
blocks the file carries, and print a readable report or one JSON object (docs/rn-analysis.md).

Bad input (an unreadable file, a message that is not PHD, a missing calibration block, zero live time,
an empty spectrum) is reported on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from gci_link import ims2

from .dispatch import analyse_message
from .errors import AnalysisError
from .result import AnalysisResult

BAD_INPUT = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("rn", help="radionuclide analysis of IMS 2.0 PHD samples")
    sub = parser.add_subparsers(dest="rn_command", required=True, metavar="ACTION")
    analyse = sub.add_parser("analyse", help="peaks, nuclides, concentrations, MDCs and QC flags of a sample")
    analyse.add_argument("sample", type=Path, help="SAMPLEPHD file (IMS 2.0)")
    analyse.add_argument("--detbk", type=Path, help="detector background PHD (beta-gamma)")
    analyse.add_argument("--gasbk", type=Path, help="gas background PHD (beta-gamma)")
    analyse.add_argument("--qc", type=Path, help="QC PHD of the same detector (read and checked)")
    analyse.add_argument("--json", action="store_true", help="print one JSON object")
    analyse.add_argument("--plot", type=Path, metavar="OUT.png", help="draw the spectrum and fits")
    analyse.set_defaults(func=cmd_analyse)


class _Refused(Exception):
    """Input the command cannot analyse; the text says why."""


def _read_phd(path: Path, what: str) -> ims2.PhdMessage:
    try:
        text = path.read_text(encoding="ascii", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise _Refused(f"cannot read the {what} {path}: {exc}") from None
    try:
        message = ims2.parse(text)
    except ims2.Ims2FormatError as exc:
        raise _Refused(f"{path} is not a valid IMS 2.0 message: {exc}") from None
    if not isinstance(message, ims2.PhdMessage):
        raise _Refused(f"{path} holds {message.data_type}, not pulse height data (PHD)")
    return message


def analyse(args: argparse.Namespace) -> tuple[AnalysisResult, Any, ims2.PhdMessage]:
    """The result, what the plot draws from (a particulate fit or None), and the sample."""
    sample = _read_phd(args.sample, "sample")
    detbk = _read_phd(args.detbk, "detector background") if args.detbk else None
    gasbk = _read_phd(args.gasbk, "gas background") if args.gasbk else None
    qc = _read_phd(args.qc, "QC spectrum") if args.qc else None
    for other in (detbk, gasbk, qc):
        if other is not None and other.detector != sample.detector:
            raise _Refused(f"{other.data_type} is from detector {other.detector}, the sample from "
                           f"{sample.detector}")
    if detbk is not None and detbk.data_type != "DETBKPHD":
        raise _Refused(f"--detbk {args.detbk} holds {detbk.data_type}, not DETBKPHD")
    if sample.system_type == "P" and gasbk is None:  # the plot draws the fit behind the result
        from .particulate import analyse_particulate_fit

        result, fit = analyse_particulate_fit(sample, detbk)
        return result, fit, sample
    try:
        return analyse_message(sample, gasbk=gasbk, detbk=detbk), None, sample
    except ValueError as exc:  # AnalysisError, or a method's own input error
        raise _Refused(str(exc)) from None


def cmd_analyse(args: argparse.Namespace) -> int:
    try:
        result, fit, sample = analyse(args)
    except (_Refused, AnalysisError) as exc:
        print(f"ims rn analyse: {args.sample}: {exc}", file=sys.stderr)
        return BAD_INPUT
    if args.plot:
        from .plot import plot
        plot(args.plot, sample, fit, result)
    if args.json:
        print(json.dumps(result.to_json(), allow_nan=False))
    else:
        print(report(result))
    return 0


def report(result: AnalysisResult) -> str:
    lines = [f"sample {result.sample_id} ({result.kind})", "", "peaks:",
             f"  {'keV':>9} {'channel':>9} {'area':>10} {'+-':>8} {'FWHM':>6}  nuclide"]
    lines += [f"  {p.energy_keV:9.2f} {p.centroid_channel:9.2f} {p.area:10.1f} {p.area_unc:8.1f} "
              f"{p.fwhm_keV:6.3f}  {p.nuclide or '-'}" for p in result.peaks]
    lines += ["", "identified nuclides (uBq/m3 at the collection stop):",
              f"  {'nuclide':<9} {'concentration':>14} {'+-':>10} {'LC':>10} {'MDC':>10}"]
    found = [n for n in result.nuclides if n.identified]
    lines += [f"  {n.name:<9} {n.concentration_uBq_m3:14.4g} {n.uncertainty_uBq_m3:10.3g} "
              f"{n.lc_uBq_m3:10.3g} {n.mdc_uBq_m3:10.3g}" for n in found] or ["  none"]
    others = [n for n in result.nuclides if not n.identified]
    if others:
        lines += ["", "not identified (MDC, uBq/m3):"]
        lines += ["  " + ", ".join(f"{n.name} {n.mdc_uBq_m3:.3g}" for n in others)]
    lines += ["", "flags:"]
    lines += [f"  {'PASS' if f.passed else 'FAIL'}  {f.name:<16} {f.detail}" for f in result.flags]
    return "\n".join(lines)
