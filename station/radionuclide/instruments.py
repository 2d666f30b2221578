"""The radionuclide instruments as the sample cycle sees them: a detector that counts, and a sampler.

The HPGe multichannel analyser speaks DP5 packets (digitizer/dp5_driver.py); the beta-gamma analyser,
the air sampler and the xenon unit speak the project's line protocol (digitizer/mca_driver.py). Here
both detectors become one interface: ``begin`` a count with a preset real time (the detector stops by
itself at the end, even while the station is down), ``state``, ``read`` (whole spectra or an exception:
the drivers never hand over half a spectrum) and ``soh``. Every method may raise one of
``INSTRUMENT_ERRORS``; the cycle reports those, it is never stopped by them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from digitizer import mca
from digitizer.dp5 import Dp5FormatError
from digitizer.dp5_driver import Dp5CommandError, Dp5Driver
from digitizer.mca_driver import McaDriver
from digitizer.serial_link import InstrumentUnavailable, LinkConfig
from station.radionuclide.settings import NOBLE_GAS, RadionuclideConfig

KELVIN = 273.15
INSTRUMENT_ERRORS = (
    InstrumentUnavailable, Dp5CommandError, Dp5FormatError, mca.InstrumentError, mca.McaProtocolError, OSError
)


@dataclass(frozen=True, slots=True)
class CountState:
    running: bool
    real_s: float


@dataclass(frozen=True, slots=True)
class Readout:
    """One latched set of spectra and the times counted into them (int64 arrays)."""

    real_s: float
    live_s: float
    gamma: np.ndarray
    beta: np.ndarray | None = None
    histogram: np.ndarray | None = None  # gamma rows x beta columns


@dataclass(frozen=True, slots=True)
class DetectorSoh:
    hv_v: float | None
    temperature_c: float | None


class Detector(Protocol):
    def begin(self, preset_real_s: float) -> None: ...

    def stop(self) -> None: ...

    def state(self) -> CountState: ...

    def read(self) -> Readout: ...

    def soh(self) -> DetectorSoh: ...

    def close(self) -> None: ...


class Sampler(Protocol):
    def soh(self) -> mca.Soh: ...

    def close(self) -> None: ...


class HpgeDetector:
    """A PX5-HPGe (or another DP5-family unit) counting on ``channels`` channels."""

    def __init__(self, driver: Dp5Driver, channels: int) -> None:
        self.driver = driver
        self.channels = channels

    def begin(self, preset_real_s: float) -> None:
        self.driver.stop()
        self.driver.configure({"MCAC": self.channels, "PRER": f"{preset_real_s:.1f}", "PRET": "OFF"})
        self.driver.clear()
        self.driver.start()

    def stop(self) -> None:
        self.driver.stop()

    def state(self) -> CountState:
        status = self.driver.status()
        return CountState(status.mca_enabled, status.real_time_s)

    def read(self) -> Readout:
        spectrum = self.driver.read_spectrum()
        status = spectrum.status
        assert status is not None  # read_spectrum asks for the status with the counts and checks it came
        return Readout(status.real_time_s, status.live_time_s, spectrum.counts.astype(np.int64))

    def soh(self) -> DetectorSoh:
        status = self.driver.status()
        return DetectorSoh(status.high_voltage_v, status.detector_temperature_k - KELVIN)

    def close(self) -> None:
        self.driver.close()


class BetaGammaDetector:
    """The beta-gamma coincidence analyser: histogram (gamma rows x beta columns) and both singles."""

    def __init__(self, driver: McaDriver) -> None:
        self.driver = driver

    def begin(self, preset_real_s: float) -> None:
        self.driver.stop()
        self.driver.set_presets(real_s=preset_real_s)
        self.driver.clear()
        self.driver.start()

    def stop(self) -> None:
        self.driver.stop()

    def state(self) -> CountState:
        status = self.driver.acquisition_status()
        return CountState(status.state == "RUNNING", status.real_s)

    def read(self) -> Readout:
        out = self.driver.read_spectrum()
        arrays = out.arrays
        missing = {"HIST", "GSGL", "BSGL"} - set(arrays)
        if missing:
            raise mca.McaProtocolError(f"snapshot {out.snap_id} lacks {', '.join(sorted(missing))}")
        return Readout(out.acquisition.real_s, out.acquisition.live_s, arrays["GSGL"].astype(np.int64),
                       arrays["BSGL"].astype(np.int64), arrays["HIST"].astype(np.int64))

    def soh(self) -> DetectorSoh:
        soh = self.driver.soh()
        return DetectorSoh(soh.hv_v, soh.detector_temp_c)

    def close(self) -> None:
        self.driver.close()


class LineSampler:
    """Air sampler (and xenon unit) state of health over the line protocol."""

    def __init__(self, driver: McaDriver) -> None:
        self.driver = driver

    def soh(self) -> mca.Soh:
        return self.driver.soh()

    def close(self) -> None:
        self.driver.close()


def open_instruments(config: RadionuclideConfig) -> tuple[Detector, Sampler]:
    """The drivers of one system (no port is opened before the first request)."""
    def line(port: str, baud: int) -> LinkConfig:
        return LinkConfig(port=port, baudrate=baud)

    sampler_driver = McaDriver(line(config.sampler.port, config.sampler.baud), name=f"{config.name}-sampler")
    detector: Detector
    if config.kind == NOBLE_GAS:
        driver = sampler_driver if config.shares_line else McaDriver(
            line(config.detector.port, config.detector.baud), name=f"{config.name}-detector")
        detector = BetaGammaDetector(driver)
    else:
        dp5 = Dp5Driver(line(config.detector.port, config.detector.baud), name=f"{config.name}-detector",
                        max_channels=config.spectra.channels)
        detector = HpgeDetector(dp5, config.spectra.channels)
    return detector, LineSampler(sampler_driver)
