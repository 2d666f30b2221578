"""A simulated digitizer on a pseudo-terminal for calibration sessions, and a station configuration for it.

The simulated broadband (``hil.sensors.broadband_seismometer``) has known parameters; they are read
from its defaults here so the truth the tests compare with is the simulator's own. One 20 sps stream
in 10 s blocks (and its returned calibration signal) keeps the serial line light, so data time can run
hundreds of times faster than the wall: a 30-minute calibration takes a few seconds.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from hil import sensors
from hil.serialport import PtyLine
from hil.sim_digitizer import SimDigitizer, StreamSpec
from hil.simclock import SimClock
from timeunits import NS_PER_S

T0_NS = 1_700_000_000 * NS_PER_S
RATE = 20
_DEFAULTS = {name: p.default for name, p in
             inspect.signature(sensors.broadband_seismometer).parameters.items()}
TRUE_PERIOD = _DEFAULTS["period_s"]
TRUE_DAMPING = _DEFAULTS["damping"]
# flat-band counts per m/s: generator constant (V per m/s) times the digitizer's counts per volt
TRUE_SENSITIVITY = _DEFAULTS["generator_v_per_m_s"] * _DEFAULTS["counts_per_volt"]
# the returned calibration signal is digitised at 3.2 µV per count (hil.sim_digitizer._make_cal_block),
# and the coil turns volts into m/s² of equivalent ground acceleration
COIL_CONSTANT = _DEFAULTS["coil_m_s2_per_volt"] * 3.2e-6


class SimDigitizerRig:
    """A running simulated digitizer; ``port`` is the path a driver opens."""

    def __init__(self, speed: float, seed: int = 1) -> None:
        self.clock = SimClock(T0_NS, speed=speed)
        self.line = PtyLine(int(115200 * speed), seed=seed)
        self.sim = SimDigitizer(self.line, self.clock, seed=seed, streams=(StreamSpec("Z0", RATE, 10),),
                                status_every_s=60, probe_interval_s=0.2)

    @property
    def port(self) -> str:
        return self.line.path

    def __enter__(self) -> SimDigitizerRig:
        self.sim.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sim.stop()
        self.line.close()


def station_toml(port: str, *, calibration: str = "", extra: str = "", input_stream: str | None = None,
                 calib: float = 0.34, endpoint: str = "tcp://127.0.0.1:9") -> str:
    """A one-channel station (SIM.BHZ on SIMDZ0) whose channel has a calibration table with the
    simulated sensor's nominal response (or ``calibration`` instead, to judge it by another)."""
    table = calibration or (f"period_s = {TRUE_PERIOD}\ndamping = {TRUE_DAMPING}\n"
                            f"sensitivity = {TRUE_SENSITIVITY}\ncoil_constant = {COIL_CONSTANT}\n")
    if input_stream:
        table += f'input_stream_id = "{input_stream}"\n'
    return f"""
[station]
name = "SIM"
network = "XX"
latitude = 46.5
longitude = 6.6
elevation_m = 400.0
[acquisition]
lateness_budget_s = 30.0
buffer_s = 7200.0  # two hours of data: at 400 times the wall, a busy second must not overflow it
[[digitizers]]
name = "d"
system_id = "SIM1"
port = "{port}"
[[channels]]
digitizer = "d"
stream_id = "SIMDZ0"
site = "SIM"
channel = "BHZ"
sensor_type = "seismic"
calib = {calib}
calper = 1.0
sample_rate = {float(RATE)}
[channels.calibration]
{table}
[link]
endpoints = ["{endpoint}"]
[archive]
path = "archive"
[outbox]
path = "outbox/outbox.sqlite"
{extra}
"""


def write_config(folder: Path, text: str) -> Path:
    path = folder / "station.toml"
    path.write_text(text)
    return path
