"""A minimal station for the link crash and outage tests: a frame producer and a real Sender in one process.

Run as ``python -m tests.gci_link.link_station ...`` so a test can SIGKILL it like a real station daemon.
Frames are produced on the data-time grid of the shared simulated clock (``IMS_SIM_CLOCK``): a window is
framed once the clock has passed its end. After a restart the producer continues from the newest frame
in the outbox, so it never frames a window twice and never skips one; windows that passed while the
process was dead are framed at once, as a station does with its digitizer's buffered data. Samples are a
deterministic function of channel and sample time, so every frame's content is distinct and known.

SIGTERM stops the sender cleanly (alert, close) and exits 0. The status file (JSON, rewritten atomically)
carries the sender's counters and link state for the tests to read while it runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from timeunits import NS_PER_S

STATION = "STA1"
CHANNELS = ("BHZ", "BHN", "BHE")
SAMPLE_RATE = 40.0
FRAME_S = 10
STATUS_EVERY_S = 0.05

log = logging.getLogger(__name__)


def frame_samples(channel: int, start_ns: int, nsamp: int) -> np.ndarray:
    """Samples of one channel from ``start_ns``: a hash of the absolute sample index, so no two frames
    (nor two channels) carry the same values and a misplaced or doubled record cannot go unnoticed."""
    first = start_ns * int(SAMPLE_RATE) // NS_PER_S
    index = np.arange(first, first + nsamp, dtype=np.uint64) * np.uint64(len(CHANNELS)) + np.uint64(channel)
    mixed = (index * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)  # Fibonacci hashing, top 24 bits
    return (mixed.astype(np.int64) - (1 << 23)).astype(np.int32)


def draft_for(start_ns: int, channels: int = len(CHANNELS)):
    """The unsigned content of the data frame (the first ``channels`` channels) for the window at
    ``start_ns``."""
    from gci_link.cd11 import build_subframe
    from station.framer import FrameDraft

    nsamp = int(FRAME_S * SAMPLE_RATE)
    subframes = tuple(
        build_subframe(frame_samples(i, start_ns, nsamp), site=STATION, channel=code, location="00",
                       time_ns=start_ns, sample_rate=SAMPLE_RATE)
        for i, code in enumerate(CHANNELS[:channels])
    )
    return FrameDraft(start_ns, FRAME_S * 1000, subframes)


def _write_status(path: Path, sender, produced: int) -> None:
    status = {
        "counters": asdict(sender.counters),
        "state": sender.session.state.value,
        "pending": sender.session.pending,
        "produced": produced,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    from gci_link.clock import clock_from_env
    from gci_link.keys import Role, StationSigner, TrustStore
    from gci_link.link_session import SessionConfig
    from gci_link.station_end.outbox import Outbox
    from gci_link.station_end.sender import Sender
    from station import logfmt
    from station.publisher import DATA_KIND, publish

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--outbox", type=Path, required=True)
    parser.add_argument("--bundle", type=Path, required=True, help="station key bundle (key.pem, cert.pem)")
    parser.add_argument("--idc-trust", type=Path, required=True, help="trust store with the IDC's key")
    parser.add_argument("--endpoint", required=True, help="the IDC's well-known endpoint")
    parser.add_argument("--start-ns", type=int, required=True, help="data time of the first frame")
    parser.add_argument("--end-ns", type=int, required=True, help="no frame starts at or after this")
    parser.add_argument("--status", type=Path, required=True)
    parser.add_argument("--channels", type=int, choices=range(1, len(CHANNELS) + 1), default=len(CHANNELS))
    parser.add_argument("--timeout-scale", type=float, default=1.0,
                        help="multiply the link timeouts (data time) when the clock runs very fast")
    args = parser.parse_args(argv)
    logfmt.configure("info")

    clock = clock_from_env()
    scale = args.timeout_scale
    defaults = SessionConfig(station=STATION, endpoints=(args.endpoint,))
    config = SessionConfig(
        station=STATION, endpoints=(args.endpoint,),
        connect_timeout_ns=int(defaults.connect_timeout_ns * scale),
        response_timeout_ns=int(defaults.response_timeout_ns * scale),
        idle_timeout_ns=int(defaults.idle_timeout_ns * scale),
        resend_after_ns=int(defaults.resend_after_ns * scale),
        backlog_hold_ns=int(defaults.backlog_hold_ns * scale),
        backoff_base_ns=int(defaults.backoff_base_ns * scale),
        backoff_cap_ns=int(30 * NS_PER_S * scale),
    )
    signer = StationSigner.load(args.bundle)
    outbox = Outbox(args.outbox, 1 << 34, first_sequence=1, clock=clock)
    idc_keys = TrustStore.load(args.idc_trust, clock, Role.IDC)
    sender = Sender(config, outbox, clock=clock, signer=signer, idc_keys=idc_keys)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()
        sender.stop()

    signal.signal(signal.SIGTERM, on_signal)
    thread = threading.Thread(target=sender.run, name="sender")
    thread.start()

    newest = outbox.newest(1, DATA_KIND)
    next_ns = newest[0].nominal_time_ns + FRAME_S * NS_PER_S if newest else args.start_ns
    produced = 0
    status_due = 0.0
    while not stop.is_set():
        if next_ns < args.end_ns and clock() >= next_ns + FRAME_S * NS_PER_S:
            draft = draft_for(next_ns, args.channels)
            publish(outbox, draft, creator=STATION, destination="0", signer=signer)
            next_ns += FRAME_S * NS_PER_S
            produced += 1
        else:
            stop.wait(0.005)
        if time.monotonic() >= status_due:  # also while catching up, so the status never goes stale
            _write_status(args.status, sender, produced)
            status_due = time.monotonic() + STATUS_EVERY_S
    thread.join()
    _write_status(args.status, sender, produced)
    outbox.close()
    log.info("link station stopped", extra={"station": STATION, "produced": produced})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
