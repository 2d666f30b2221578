"""Instrument response models from poles and zeros, and the CSS 3.0 / CD-1.1 ``calib``/``calper`` pair.

Conventions (``docs/calibration.md``): Laplace variable s in rad/s (SEED/StationXML
"LAPLACE (RADIANS/SECOND)"), time dependence e^{+jωt}, so a positive phase means the output leads.
The overall factor ``scale`` keeps its sign: a sensor wired with reversed polarity has a negative
``scale`` and therefore a negative ``calib`` (CSS 3.0: positive calib = counts increase for ground
motion up, north or east).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

GROUND_MOTION_UNITS = {"m": 0, "m/s": 1, "m/s**2": 2}  # power of jω that turns the input into displacement
PRESSURE_UNITS = "Pa"
NM_PER_M = 1e9


@dataclass(frozen=True)
class PolesZeros:
    """H(s) = scale · Π(s − zeros) / Π(s − poles), from ``input_units`` to ``output_units``."""

    zeros: tuple[complex, ...]
    poles: tuple[complex, ...]
    scale: float
    input_units: str
    output_units: str

    def __post_init__(self) -> None:
        if not math.isfinite(self.scale) or self.scale == 0:
            raise ValueError(f"response scale must be finite and non-zero, not {self.scale!r}")
        if any(p.real >= 0 for p in self.poles):
            raise ValueError(f"poles must lie in the left half-plane (a stable sensor): {self.poles}")

    @classmethod
    def normalised(cls, zeros: Iterable[complex], poles: Iterable[complex], sensitivity: float,
                   frequency: float, input_units: str, output_units: str) -> PolesZeros:
        """The response whose value at ``frequency`` (Hz) has magnitude |sensitivity| and its sign."""
        shape = cls(tuple(complex(z) for z in zeros), tuple(complex(p) for p in poles), 1.0,
                    input_units, output_units)
        return shape.scaled(sensitivity / abs(complex(shape(frequency))))

    def __call__(self, frequency: npt.ArrayLike) -> np.ndarray:
        """Complex response at ``frequency`` (Hz, scalar or array)."""
        s = 2j * np.pi * np.asarray(frequency, dtype=float)
        value = np.full(s.shape, complex(self.scale))
        for z in self.zeros:
            value = value * (s - z)
        for p in self.poles:
            value = value / (s - p)
        return value

    def normalisation_factor(self, frequency: float) -> float:
        """SEED A0: the factor that makes |A0 · Π(s − z)/Π(s − p)| = 1 at ``frequency``."""
        return abs(self.scale) / abs(complex(self(frequency)))

    def sensitivity(self, frequency: float) -> float:
        """Gain at ``frequency`` (Hz): |H| with the sign of ``scale`` (the polarity)."""
        return math.copysign(abs(complex(self(frequency))), self.scale)

    def scaled(self, factor: float, output_units: str | None = None) -> PolesZeros:
        """This response followed by a flat gain ``factor`` (e.g. a digitizer's counts per volt)."""
        return PolesZeros(self.zeros, self.poles, self.scale * factor, self.input_units,
                          output_units or self.output_units)


def pendulum_poles(period: float, damping: float) -> tuple[complex, complex]:
    """The two poles of a damped pendulum of free period ``period`` (s) and damping ``damping``."""
    if not (period > 0 and damping > 0):
        raise ValueError(f"free period and damping must be positive, not {period!r} and {damping!r}")
    omega0 = 2 * math.pi / period
    root = np.sqrt(complex(damping * damping - 1.0))  # imaginary for h < 1, real for h > 1
    return (complex(-omega0 * (damping + root)), complex(-omega0 * (damping - root)))


@dataclass(frozen=True)
class Seismometer:
    """A velocity transducer described by free period T0 (s), damping h and gain.

    ``gain`` is the flat-band output per unit of ground velocity (the generator constant G for an
    electromagnetic sensor in V/(m/s); G·D in counts/(m/s) behind a digitizer). Behind a calibration
    coil the same number is the output per unit of integrated calibration input (see ``coil_response``).
    """

    period: float
    damping: float
    gain: float

    def velocity_response(self, output_units: str = "V") -> PolesZeros:
        """Ground velocity to output: gain · s² / (s² + 2hω0·s + ω0²)."""
        return PolesZeros((0j, 0j), pendulum_poles(self.period, self.damping), self.gain, "m/s", output_units)

    def coil_response(self, input_units: str = "cal", output_units: str = "counts") -> PolesZeros:
        """Calibration input to output: gain · s / (s² + 2hω0·s + ω0²).

        The coil injects an equivalent ground acceleration proportional to the recorded input, and
        velocity is acceleration / s, so one of the two zeros at the origin cancels.
        """
        return PolesZeros((0j,), pendulum_poles(self.period, self.damping), self.gain, input_units,
                          output_units)


def _first_order_band(sensitivity: float, low_corner_hz: float, high_corner_hz: float | None,
                      output_units: str) -> PolesZeros:
    if not low_corner_hz > 0 or (high_corner_hz is not None and not high_corner_hz > low_corner_hz):
        raise ValueError(f"corners must satisfy 0 < low < high, not {low_corner_hz!r}, {high_corner_hz!r}")
    low_pole = complex(-2 * math.pi * low_corner_hz)
    if high_corner_hz is None:  # s/(s − p) tends to 1 above the corner: scale is the flat-band gain
        return PolesZeros((0j,), (low_pole,), sensitivity, PRESSURE_UNITS, output_units)
    return PolesZeros.normalised([0.0], [low_pole, -2 * math.pi * high_corner_hz], sensitivity,
                                 math.sqrt(low_corner_hz * high_corner_hz), PRESSURE_UNITS, output_units)


def microbarometer(sensitivity: float, low_corner_hz: float, high_corner_hz: float | None = None,
                   output_units: str = "V") -> PolesZeros:
    """Nominal infrasound microbarometer: pressure (Pa) to output, flat between two first-order corners.

    The low corner is the leak that equalises the reference volume (a first-order high-pass on
    pressure); the optional high corner is the acoustic/electronic low-pass. Take the sensitivity and
    corners from the instrument's datasheet: the calibration reference names none for MB2005/MB3.
    """
    return _first_order_band(sensitivity, low_corner_hz, high_corner_hz, output_units)


def hydrophone(sensitivity: float, low_corner_hz: float, high_corner_hz: float | None = None,
               output_units: str = "V") -> PolesZeros:
    """Nominal hydrophone: pressure (Pa) to output, flat between two first-order corners.

    The low corner is the piezoelectric element's charge leaking through the preamplifier's input
    resistance; the high corner, if given, the preamplifier's low-pass. Piezo hydrophones are often
    of negative polarity: pass a negative sensitivity then. Values come from the datasheet.
    """
    return _first_order_band(sensitivity, low_corner_hz, high_corner_hz, output_units)


def _per_count_at(response: PolesZeros, calper: float) -> float:
    """Input units (displacement in m, or Pa) per count at period ``calper``, signed by polarity."""
    if response.output_units != "counts":
        raise ValueError(f"calib needs a response in counts, not in {response.output_units!r}")
    if not calper > 0:
        raise ValueError(f"calper must be positive, not {calper!r}")
    omega = 2 * math.pi / calper
    if response.input_units in GROUND_MOTION_UNITS:
        counts_per_metre = abs(complex(response(1.0 / calper))) * omega ** GROUND_MOTION_UNITS[
            response.input_units]
        return math.copysign(1.0 / counts_per_metre, response.scale)
    if response.input_units == PRESSURE_UNITS:
        return math.copysign(1.0 / abs(complex(response(1.0 / calper))), response.scale)
    raise ValueError(f"no calib convention for input units {response.input_units!r}")


def calib_from_response(response: PolesZeros, calper: float) -> float:
    """CSS 3.0 ``calib`` at ``calper`` (s): nm of ground displacement per count, or Pa per count.

    General form 1e9 / (ω^k · |H(jω)|), k the power of jω between the input units and displacement,
    so it stays right when calper is not in the flat band (e.g. calper = T0).
    """
    per_count = _per_count_at(response, calper)
    return per_count * NM_PER_M if response.input_units in GROUND_MOTION_UNITS else per_count


def response_from_calib(shape: PolesZeros, calib: float, calper: float) -> PolesZeros:
    """``shape`` (in counts) rescaled so that its ``calib`` at ``calper`` is the given one.

    The inverse of ``calib_from_response``: calib/calper fix one number, the level; the poles and
    zeros (the shape) must come from elsewhere (nominal model or a fit).
    """
    if not math.isfinite(calib) or calib == 0:
        raise ValueError(f"calib must be finite and non-zero, not {calib!r}")
    current = calib_from_response(shape, calper)
    return shape.scaled(current / calib)
