"""The IMS acceptance rule: a measured response within 5 % in amplitude and 5° in phase of nominal."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

AMPLITUDE_TOLERANCE = 0.05
PHASE_TOLERANCE_DEG = 5.0


@dataclass(frozen=True)
class Deviation:
    """The worst deviation from nominal over the compared frequencies, and where it occurs.

    ``amplitude`` is |H|/|H_nominal| − 1 (signed, e.g. −0.07 is 7 % low), ``phase_deg`` is
    arg(H/H_nominal) in degrees in (−180, 180].
    """

    amplitude: float
    amplitude_frequency: float
    phase_deg: float
    phase_frequency: float

    @property
    def passed(self) -> bool:
        return abs(self.amplitude) <= AMPLITUDE_TOLERANCE and abs(self.phase_deg) <= PHASE_TOLERANCE_DEG

    def failures(self) -> list[str]:
        """What is out of tolerance, in words for a report (empty when it passes)."""
        out = []
        if abs(self.amplitude) > AMPLITUDE_TOLERANCE:
            out.append(f"amplitude {self.amplitude:+.1%} of nominal at {self.amplitude_frequency:.4g} Hz "
                       f"(limit ±{AMPLITUDE_TOLERANCE:.0%})")
        if abs(self.phase_deg) > PHASE_TOLERANCE_DEG:
            out.append(f"phase {self.phase_deg:+.1f}° from nominal at {self.phase_frequency:.4g} Hz "
                       f"(limit ±{PHASE_TOLERANCE_DEG:g}°)")
        return out


def deviations(measured: npt.ArrayLike, nominal: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude ratio − 1 and phase difference (degrees) of two complex responses, element-wise."""
    ratio = np.asarray(measured, dtype=complex) / np.asarray(nominal, dtype=complex)
    return np.abs(ratio) - 1.0, np.degrees(np.angle(ratio))


def worst_deviation(frequencies: npt.ArrayLike, measured: npt.ArrayLike, nominal: npt.ArrayLike) -> Deviation:
    """The largest amplitude and phase deviations of ``measured`` from ``nominal`` at ``frequencies``."""
    frequencies = np.asarray(frequencies, dtype=float)
    amplitude, phase = deviations(measured, nominal)
    i, k = int(np.argmax(np.abs(amplitude))), int(np.argmax(np.abs(phase)))
    return Deviation(float(amplitude[i]), float(frequencies[i]), float(phase[k]), float(frequencies[k]))
