"""``ims cal seismometer``: a bench calibration session on one channel of the station; ``ims cal detector``:
a radionuclide detector's energy, resolution and efficiency calibration from a CALIBPHD or QCPHD file.

The session opens the channel's digitizer port itself, so it takes the station's lock first and
refuses while the station daemon holds it (the daemon calibrates a channel it acquires only on the
IDC's ``calibrate`` command). Progress goes to stderr, a line per minute of calibration signal; the
verdict and the report folder to stdout. This lives in ``station`` because it reads the station
configuration; the session itself is ``station.bench_calibration``.

Exit status: 0 pass (or no nominal response to judge by), 1 outside tolerance, 2 bad arguments or
configuration, 3 recording refused (no signal came back, clipped, too short, ...), 4 the daemon or
another session holds the station's digitizers, 5 the digitizer failed (console refused, port silent).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("cal", help="bench calibration sessions")
    kinds = parser.add_subparsers(dest="cal_command", required=True, metavar="SENSOR")
    seis = kinds.add_parser("seismometer", help="calibrate a seismometer through its calibration coil",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    seis.add_argument("--config", type=Path, required=True, help="station TOML file")
    seis.add_argument("--channel", required=True, help="BHZ, or SITE.CHA.LO when several sites have it")
    seis.add_argument("--signal", required=True, choices=("random", "sine", "step"))
    seis.add_argument("--minutes", type=int, required=True, help="length of the session (sine: shared "
                                                                 "out among the frequencies)")
    seis.add_argument("--frequencies", default="", help="sine only: comma-separated Hz, each 0.1..1 in "
                                                        "1/n steps or 1..10 in whole Hz, e.g. 0.1,0.2,0.5")
    seis.add_argument("--out", type=Path, help="report folder (default calibrations/NET.STA.LOC.CHA_TIME)")
    seis.add_argument("--operator", default="", help="name written in the report")
    seis.set_defaults(func=_seismometer)
    det = kinds.add_parser("detector", help="calibrate a radionuclide detector from a CALIBPHD/QCPHD file",
                           description="Fit energy, FWHM and efficiency curves to an HPGe calibration "
                                       "spectrum, or gamma and beta energy points and ROI channels to a "
                                       "beta-gamma one, and write the IMS 2.0 calibration blocks, a JSON "
                                       "result and PNG figures (docs/calibration.md). Bad input: one line "
                                       "on stderr, exit 2.")
    det.add_argument("phd", type=Path, help="CALIBPHD or QCPHD file (IMS 2.0) of a certified source")
    det.add_argument("--out", type=Path, help="output folder (default: calibration_DETECTOR)")
    det.add_argument("--nuclides", default="", help="source nuclides when the file has no usable "
                                                    "#Certificate, e.g. Co-60,Cs-137 (energy and FWHM only)")
    det.set_defaults(func=_detector)


def _seismometer(args: argparse.Namespace) -> int:
    from calibration.session import Plan
    from station.bench_calibration import EXIT, run_session
    from station.calibration_setup import calibration_target
    from station.config import ConfigError, load_config

    try:
        config = load_config(args.config)
        target = calibration_target(config, args.channel)
        frequencies = tuple(float(f) for f in args.frequencies.split(",") if f.strip())
        plan = Plan(args.signal, args.minutes, frequencies)
        plan.check_rate(target.channel.sample_rate)
    except (ConfigError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return EXIT["usage"]
    if args.out is not None and (args.out / "result.json").exists():
        print(f"{args.out} already holds a calibration report; choose another --out", file=sys.stderr)
        return EXIT["usage"]
    return run_session(config.daemon.state_dir, target, plan, args.out, args.operator)


def _detector(args: argparse.Namespace) -> int:
    from calibration.detector_betagamma import calibrate_betagamma
    from calibration.detector_calibration import calibrate_detector
    from calibration.detector_report import write_betagamma_report, write_detector_report
    from gci_link import ims2

    def refuse(why: str) -> int:
        print(f"ims cal detector: {args.phd}: {why}", file=sys.stderr)
        return 2

    try:
        message = ims2.parse(args.phd.read_text(encoding="ascii", errors="strict"))
    except (OSError, UnicodeDecodeError) as exc:
        return refuse(f"cannot read the file: {exc}")
    except ims2.Ims2FormatError as exc:
        return refuse(f"not a valid IMS 2.0 message: {exc}")
    if not isinstance(message, ims2.PhdMessage):
        return refuse(f"holds {message.data_type}, not pulse height data")
    if message.data_type not in ("CALIBPHD", "QCPHD"):
        return refuse(f"holds a {message.data_type}; a detector calibration needs a CALIBPHD or QCPHD")
    nuclides = [n for n in args.nuclides.split(",") if n.strip()] or None
    out = args.out or Path(f"calibration_{message.detector}")
    if (out / "detector_calibration.json").exists():
        return refuse(f"{out} already holds a detector calibration; choose another --out")
    try:
        if message.system_type == "B" or message.histogram is not None:
            written = write_betagamma_report(message, calibrate_betagamma(message, nuclides), out)
        else:
            written = write_detector_report(calibrate_detector(message, nuclides), out)
    except ValueError as exc:  # CalibrationError, SourceError
        return refuse(str(exc))
    for path in written:
        print(path)
    return 0
