"""Sources the simulated detectors count from, and the beta-gamma branches they emit.

Half-lives and gamma lines come from the analysis's nuclide library (``rn_analysis.library``), so the
simulator and the analysis can never disagree on a number. Tl-208 is fed by 35.94 % of Bi-212 decays
(ENSDF), so in thorium-chain equilibrium its activity is 0.3594 x Pb-212.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rn_analysis.library import decays_between, nuclide

TL208_BRANCH = 0.3594


@dataclass(frozen=True, slots=True)
class Source:
    """``activity_bq`` of a nuclide at ``reference_ns``; ``supported`` keeps it constant (a parent
    long-lived enough to hold it in equilibrium, e.g. radon progeny in the shield air)."""

    nuclide: str
    activity_bq: float
    reference_ns: int
    supported: bool = False

    def decays(self, t0_ns: int, t1_ns: int) -> float:
        lam = 0.0 if self.supported else nuclide(self.nuclide).decay_constant
        return decays_between(self.activity_bq, lam, (t0_ns - self.reference_ns) / 1e9,
                              (t1_ns - self.reference_ns) / 1e9)

    def activity_at(self, t_ns: int) -> float:
        if self.supported:
            return self.activity_bq
        return self.activity_bq * math.exp(-nuclide(self.nuclide).decay_constant
                                           * (t_ns - self.reference_ns) / 1e9)


def radon_thoron_progeny(radon_bq: float, thoron_bq: float, reference_ns: int, *,
                         supported: bool) -> list[Source]:
    """Pb-214/Bi-214 at ``radon_bq`` and Pb-212/Tl-208 at ``thoron_bq`` (Pb-212 activity), in equilibrium."""
    return [Source("Pb-214", radon_bq, reference_ns, supported),
            Source("Bi-214", radon_bq, reference_ns, supported),
            Source("Pb-212", thoron_bq, reference_ns, supported),
            Source("Tl-208", TL208_BRANCH * thoron_bq, reference_ns, supported)]


@dataclass(frozen=True, slots=True)
class Branch:
    """A beta-gamma coincidence branch: an electron (beta continuum up to ``electron_kev``, or a
    conversion electron of that energy) with a photon of ``photon_kev``, ``fraction`` per decay."""

    nuclide: str
    fraction: float
    electron: str  # "beta" or "ce"
    electron_kev: float
    photon_kev: float


# openSpex branching ratios (S6); beta end-points are the ENSDF Q-value minus the fed level
BETA_GAMMA_BRANCHES: tuple[Branch, ...] = (
    Branch("Xe-133", 0.37289, "beta", 346.4, 80.997),
    Branch("Xe-133", 0.48940, "beta", 346.4, 30.6),  # Cs K X-rays after conversion of the 81 keV
    Branch("Xe-131m", 0.54, "ce", 129.4, 29.8),  # K conversion electron + Xe K X-ray
    Branch("Xe-133m", 0.5577, "ce", 199.2, 29.8),
    Branch("Xe-135", 0.90, "beta", 910.0, 249.794),
    Branch("Rn-222", 0.376, "beta", 672.0, 351.932),  # radon in the cell, through its Pb-214 progeny
)
