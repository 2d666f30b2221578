"""How a simulated detector turns decays into expected counts per channel: energy calibration,
resolution, efficiency and a Compton continuum; counting then draws Poisson numbers from them.

Defaults are the IDC particulate calibration of the spec sheet (§11.6, from the real SAMPML export
S2): energy polynomial, FWHM(E) = a + b sqrt(E) and the log-polynomial full-energy-peak efficiency.
The peak-to-total ratio and the flat continuum below each Compton edge are our own simple model
(good enough to put realistic counts under the peaks; not a transport calculation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.special import erf

from rn_analysis.library import Line, Nuclide

ELECTRON_MASS_KEV = 510.999


@dataclass(frozen=True, slots=True)
class EnergyCalibration:
    """E(c) = sum a_i c^i keV at the centre of channel index c (0-based). The default is S2's
    calibration, written for channels numbered from 1, re-expressed for c = number - 1."""

    coefficients: tuple[float, ...] = (-0.43208 + 0.330040 - 8.594e-9, 0.330040 - 2 * 8.594e-9, -8.594e-9)

    def energy(self, channel: np.ndarray | float) -> np.ndarray:
        c = np.asarray(channel, dtype=np.float64)
        return sum(a * c**i for i, a in enumerate(self.coefficients))  # type: ignore[return-value]

    def edges(self, channels: int) -> np.ndarray:
        """Energies of the channel boundaries (``channels + 1`` values)."""
        return self.energy(np.arange(channels + 1) - 0.5)

    def channel(self, energy_kev: float, channels: int) -> float:
        """Fractional channel index of an energy (inverse of ``energy`` over the channel range)."""
        grid = self.energy(np.arange(channels))
        return float(np.interp(energy_kev, grid, np.arange(channels)))


@dataclass(frozen=True, slots=True)
class Resolution:
    """FWHM(E) = a + b sqrt(E) keV, broadened by ``factor`` (a warm detector)."""

    a: float = 0.73936
    b: float = 0.041586

    def fwhm(self, energy_kev: float, factor: float = 1.0) -> float:
        return factor * (self.a + self.b * math.sqrt(max(energy_kev, 0.0)))


@dataclass(frozen=True, slots=True)
class Efficiency:
    """Full-energy-peak efficiency exp(sum T_i L^i), L = ln(E0/E)."""

    e0_kev: float = 947.795
    terms: tuple[float, ...] = (-3.52602, 0.861654, -0.151063, -0.230730, 0.236505, -0.067874)

    def __call__(self, energy_kev: float) -> float:
        lg = math.log(self.e0_kev / energy_kev)
        return math.exp(sum(t * lg**i for i, t in enumerate(self.terms)))


def peak_to_total(energy_kev: float) -> float:
    """Our model of an HPGe's peak-to-total ratio (0.8 at 100 keV, 0.34 at 662, 0.24 at 1461 keV)."""
    return min(0.95, (energy_kev / 60.0) ** -0.45)


def gaussian_in_channels(edges: np.ndarray, centre_kev: float, fwhm_kev: float) -> np.ndarray:
    """Fraction of a normal peak falling in each channel between ``edges``."""
    sigma = fwhm_kev / (2 * math.sqrt(2 * math.log(2)))
    cdf = 0.5 * (1 + erf((edges - centre_kev) / (math.sqrt(2) * sigma)))
    return np.diff(cdf)


@dataclass
class GammaResponse:
    """Expected counts per channel per decay for each nuclide, cached per resolution factor."""

    channels: int = 8192
    calibration: EnergyCalibration = field(default_factory=EnergyCalibration)
    resolution: Resolution = field(default_factory=Resolution)
    efficiency: Efficiency = field(default_factory=Efficiency)
    continuum: bool = True
    _cache: dict[tuple[str, float], np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._edges = self.calibration.edges(self.channels)

    def line_response(self, line: Line, fwhm_factor: float = 1.0) -> np.ndarray:
        """Counts per emitted photon: the full-energy peak plus, below the Compton edge, the rest."""
        eff = self.efficiency(line.energy_kev)
        out = eff * gaussian_in_channels(self._edges, line.energy_kev,
                                         self.resolution.fwhm(line.energy_kev, fwhm_factor))
        if self.continuum:
            e = line.energy_kev
            edge = e * (1 - 1 / (1 + 2 * e / ELECTRON_MASS_KEV))
            rest = eff * (1 / peak_to_total(e) - 1)
            lo, hi = np.clip(self._edges[:-1], 0, edge), np.clip(self._edges[1:], 0, edge)
            out += rest * (hi - lo) / edge
        return out

    def per_decay(self, nuclide: Nuclide, fwhm_factor: float = 1.0) -> np.ndarray:
        key = (nuclide.name, round(fwhm_factor, 3))
        cached = self._cache.get(key)
        if cached is None:
            cached = np.zeros(self.channels)
            for line in nuclide.gammas:
                cached += line.intensity * self.line_response(line, fwhm_factor)
            self._cache[key] = cached
        return cached

    def peak_counts_per_decay(self, line: Line) -> float:
        """Full-energy counts per decay of ``line`` (intensity x efficiency): what the truth test expects."""
        return line.intensity * self.efficiency(line.energy_kev)


def exponential_background(edges: Sequence[float] | np.ndarray, rate_cps: float,
                           scale_kev: float) -> np.ndarray:
    """Counts per second per channel of a detector continuum falling as exp(-E/scale), ``rate_cps`` in all."""
    e = np.asarray(edges, dtype=np.float64)
    cdf = -np.exp(-np.clip(e, 0, None) / scale_kev)
    shape = np.diff(cdf)
    return rate_cps * shape / shape.sum()
