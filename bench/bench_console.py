"""Station CPU with the web console open and streaming, against the same daemon with nobody watching.

The station of bench_station (30 channels x 100 sps on three simulated digitizers, signed 10 s frames to
a real receiver) runs at 1x with its console on localhost. Its CPU (utime + stime of all its threads,
from /proc) is measured over three windows of the same process: nobody watching, then ``VIEWERS``
browser pages streaming the console (server-sent events every second with the snapshot and a live
waveform), then nobody again. The figure is the streaming window's CPU over the mean of the two quiet
ones, so a drift of the machine's load shows as a difference between those two. The viewers are
headless Chromium (the distribution's) when available, else plain HTTP clients reading the stream.
What the console costs the main loop with nobody watching (feeding the wave tap and the availability
strips, per packet) is timed apart, as a share of a core at this station's 30 packets a second.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from bench.bench_station import DIGITIZERS, RATE, STREAMS_PER_DIGITIZER, _measure_cpu, _Run
from gci_link.keys import CertificateAuthority
from hil.network import free_port
from hil.screenshots import CHROMIUM, CHROMIUM_ARGS, browser_missing
from station.availability import AvailabilityStrips
from station.wavetap import WaveTap
from timeunits import NS_PER_S

WINDOW_S = 30.0  # real seconds per window
VIEWERS = 2
RATIO_TARGET = 1.25  # streaming may cost at most a quarter more than acquiring alone
CHANNELS = DIGITIZERS * STREAMS_PER_DIGITIZER  # one 1 s packet per channel per second
T0 = 1_800_000_000 * NS_PER_S


@contextmanager
def _browser_viewers(url: str, count: int) -> Iterator[str]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for _ in range(count):
                page = browser.new_page()
                page.goto(url)
                page.wait_for_selector("#wave[data-end]", timeout=30_000)
            yield "headless Chromium pages"
        finally:
            browser.close()


@contextmanager
def _http_viewers(url: str, count: int) -> Iterator[str]:
    stop = threading.Event()

    def read() -> None:
        with urllib.request.urlopen(url + "events", timeout=30) as stream:
            while not stop.is_set() and stream.readline():
                pass

    threads = [threading.Thread(target=read, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    try:
        yield "HTTP clients reading the event stream"
    finally:
        stop.set()


def _tap_cost_per_packet_s(packets: int = 20_000) -> float:
    """CPU seconds the main loop spends per packet feeding the console (wave tap and availability
    strips), for 1 s packets at 100 sps: the console's only cost when nobody watches."""
    tap, strips = WaveTap(), AvailabilityStrips()
    samples = np.random.default_rng(0).integers(-5000, 5000, RATE, dtype=np.int32)
    start = time.process_time()
    for i in range(packets):
        t = T0 + i * NS_PER_S
        tap.add("BNCH.HHZ.00", t, float(RATE), samples)
        strips.add("BNCH.HHZ.00", t, float(RATE), RATE)
    return (time.process_time() - start) / packets


def run(progress: Callable[[str], None]) -> dict:
    logging.getLogger("hil.sim_digitizer").setLevel(logging.ERROR)
    viewers = _http_viewers if browser_missing() else _browser_viewers
    with tempfile.TemporaryDirectory(prefix="bench-console-") as name:
        tmp = Path(name)
        ca = CertificateAuthority.create(tmp / "ca")
        port = free_port()
        url = f"http://127.0.0.1:{port}/"
        progress("station (with its console) and receiver at 1x, waiting for start-up")
        station = _Run(tmp / "run", ca, 1.0, station_extra=f'[console]\nbind = "127.0.0.1:{port}"\n')
        try:
            station.wait_frames(2, 120)
            quiet1, _ = _measure_cpu(station, WINDOW_S, progress, "nobody watching")
            with viewers(url, VIEWERS) as kind:
                time.sleep(2.0)  # the pages have connected and drawn once
                streaming, frames = _measure_cpu(station, WINDOW_S, progress, f"{VIEWERS} {kind} streaming")
            quiet2, _ = _measure_cpu(station, WINDOW_S, progress, "nobody watching again")
        finally:
            station.close()
    quiet = (quiet1 + quiet2) / 2
    per_packet = _tap_cost_per_packet_s()
    return {
        "station": "bench_station's: 30 channels x 100 sps, signed 10 s frames, at 1x",
        "viewers": f"{VIEWERS} {kind}",
        "window_real_s": WINDOW_S,
        "frames_while_streaming": frames,
        "cpu_quiet_pct_of_core": round(100 * quiet1, 2),
        "cpu_streaming_pct_of_core": round(100 * streaming, 2),
        "cpu_quiet_again_pct_of_core": round(100 * quiet2, 2),
        "cpu_ratio_streaming_over_quiet": round(streaming / quiet, 3),
        "ratio_target": f"< {RATIO_TARGET:g}",
        "tap_us_per_packet": round(per_packet * 1e6, 2),
        "tap_pct_of_core_at_30_packets_per_s": round(100 * per_packet * CHANNELS, 4),
    }
