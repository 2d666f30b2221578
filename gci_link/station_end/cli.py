"""``ims link replay``: send frame files, byte for byte, through a real sender to an IDC.

For testing a receiver and for re-injecting data an IDC lost. Frames are never rebuilt or re-signed:
their sequence numbers and signatures are what the station produced. Each run of consecutive sequence
numbers of one station goes through its own temporary outbox (numbered from the run's first frame), so
the sender's rule "outbox sequence = header sequence" holds and acknowledgements mean what they say.
``--key/--cert`` only sign the link-control frames (connection request, acknacks, alert) for an IDC that
insists on signed control traffic; the certificate must be the frames' station's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from collections import defaultdict
from pathlib import Path

from gci_link.cd11 import Cd11FormatError, FrameType, decode_frame
from gci_link.gaplist import consecutive_runs
from gci_link.keys import KeyMaterialError, Role, StationSigner, TrustStore
from gci_link.keys.certificates import read_certificate, read_private_key
from gci_link.link_session import SessionConfig
from gci_link.station_end.outbox import Outbox
from gci_link.station_end.sender import CurveKeys, Sender
from timeunits import NS_PER_S

# frame types that carry a station sequence number the IDC acknowledges
_SEQUENCED = {FrameType.DATA, FrameType.CD1_ENCAPSULATION, FrameType.IMS2_MESSAGE}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("link", help="the station end of the GCI link")
    sub = parser.add_subparsers(dest="link_command", required=True, metavar="ACTION")
    replay = sub.add_parser("replay", help="send CD-1.1 frame files as they are to an IDC and wait for acks")
    replay.add_argument("frames", nargs="+", type=Path, help="files holding one CD-1.1 frame each")
    replay.add_argument("--to", required=True, metavar="ENDPOINT",
                        help="the IDC's well-known endpoint, e.g. tcp://idc.example:8041")
    replay.add_argument("--key", type=Path, help="station private key (PEM) to sign link-control frames")
    replay.add_argument("--cert", type=Path, help="the matching station certificate (PEM)")
    replay.add_argument("--idc-trust", type=Path,
                        help="trust store with IDC certificates: only acknacks signed by an IDC key count")
    replay.add_argument("--curve-cert", type=Path, help="CurveZMQ client certificate with secret key")
    replay.add_argument("--curve-server", type=Path, help="CurveZMQ public certificate of the IDC")
    replay.add_argument("--bandwidth", type=float, help="cap in bytes per second (default: none)")
    replay.add_argument("--timeout", type=float, default=60.0,
                        help="seconds to wait for all acknowledgements of one run (default 60)")
    replay.add_argument("--no-options", action="store_true", help="skip the CD-1.1 option exchange")
    replay.set_defaults(func=_replay)


def _load_runs(paths: list[Path]) -> list[tuple[str, list[tuple[int, bytes]]]]:
    """Frames grouped per station and cut into runs of consecutive sequence numbers."""
    by_station: dict[str, dict[int, bytes]] = defaultdict(dict)
    for path in paths:
        raw = path.read_bytes()
        try:
            frame = decode_frame(raw)
        except Cd11FormatError as exc:
            raise ValueError(f"{path}: not a CD-1.1 frame: {exc}") from None
        kind, creator, seq = frame.header.frame_type, frame.header.creator, frame.header.sequence
        if kind not in _SEQUENCED:
            raise ValueError(f"{path}: frame type {kind} is link control, not data; only data is replayed")
        known = by_station[creator].get(seq)
        if known is not None and known != raw:
            raise ValueError(f"{path}: another file holds a different frame {creator} #{seq}")
        by_station[creator][seq] = raw
    return [
        (station, [(seq, frames[seq]) for seq in run])
        for station, frames in sorted(by_station.items())
        for run in consecutive_runs(sorted(frames))
    ]


def _replay(args: argparse.Namespace) -> int:
    try:
        runs = _load_runs(args.frames)
        signer = None
        if args.key or args.cert:
            if not (args.key and args.cert):
                raise ValueError("--key and --cert go together")
            signer = StationSigner(read_private_key(args.key), read_certificate(args.cert))
        idc_keys = None if args.idc_trust is None else TrustStore.load(args.idc_trust, role=Role.IDC)
        curve = None
        if args.curve_cert or args.curve_server:
            if not (args.curve_cert and args.curve_server):
                raise ValueError("--curve-cert and --curve-server go together")
            curve = CurveKeys(args.curve_cert, args.curve_server)
    except (OSError, ValueError, KeyMaterialError) as exc:
        print(f"ims link replay: {exc}", file=sys.stderr)
        return 2
    failed = 0
    for station, run in runs:
        if signer is not None and signer.station != station:
            print(f"ims link replay: certificate is for {signer.station}, frames are from {station}",
                  file=sys.stderr)
            return 2
        config = SessionConfig(station=station, endpoints=(args.to,), option_exchange=not args.no_options,
                               bandwidth_bytes_per_s=args.bandwidth, backoff_cap_ns=10 * NS_PER_S)
        first, last = run[0][0], run[-1][0]
        with tempfile.TemporaryDirectory(prefix="ims-replay-") as tmp:
            with Outbox(Path(tmp) / "outbox.db", 2**40, first_sequence=first) as outbox:
                for _, raw in run:
                    outbox.append("replay", 0, raw)
                sender = Sender(config, outbox, signer=signer, idc_keys=idc_keys, curve=curve)
                with _Progress(f"{station} {first}..{last}", outbox, len(run)):
                    done = sender.run_until_drained(int(args.timeout * NS_PER_S))
                left = outbox.stats().unacked_frames
        status = "acknowledged" if done else f"NOT acknowledged ({left} frames left{_why(sender)})"
        print(f"{station} {first}..{last}: {len(run)} frames {status}, "
              f"{sender.counters.frames_sent} sent, {sender.counters.reconnects} reconnects")
        failed += not done
    return 1 if failed else 0


def _why(sender: Sender, shown: int = 3) -> str:
    """What the IDC said it rejected (its rejection notices, docs/link.md), or else the last reason the
    link was lost; empty if neither is known."""
    reasons = list(dict.fromkeys(sender.session.rejections_by_idc))  # distinct, oldest first
    if reasons:
        more = f"; and {len(reasons) - shown} more" if len(reasons) > shown else ""
        return "; the IDC rejected " + "; ".join(reasons[:shown]) + more
    problem = sender.session.last_link_problem
    return f"; last link problem: {problem}" if problem else ""


class _Progress:
    """Prints how much of a replay run the IDC has acknowledged, every few seconds, on stderr."""

    def __init__(self, label: str, outbox: Outbox, total: int, every_s: float = 2.0) -> None:
        self.label, self.outbox, self.total, self.every_s = label, outbox, total, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            acked = self.total - self.outbox.stats().unacked_frames
            print(f"  {self.label}: {acked}/{self.total} acknowledged", file=sys.stderr, flush=True)
