"""Decay data the simulated detectors count from: half-lives, gamma lines, beta-gamma branches.

Sources (facts only):
- Gamma energies and emission probabilities per decay: ENSDF evaluations as tabulated by NuDat
  (NNDC). The radon and thorium progeny energies and intensities (Pb-214 295.224 keV 18.41 % and
  351.932 keV 35.6 %, Bi-214 609.312 keV 45.49 %, K-40 1460.822 keV, Pb-212 238.632 keV, Tl-208
  583.187/2614.511 keV) were checked against public gamma-line tables during this work; the other
  values are the ENSDF figures as we know them and were not re-read from the evaluation here
  (``docs/mca-protocol.md`` lists them as such).
- Xenon decay constants and beta-gamma branching ratios: openSpex 1.0.7 (``const.py``), as quoted in
  the project spec sheet ``ims2-radionuclide.md`` §11.4 (S6); Rn-222 likewise.
- Tl-208 is fed by 35.94 % of Bi-212 decays (ENSDF), so in thorium-chain equilibrium its activity is
  0.3594 x Pb-212.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DAY_S = 86_400.0
YEAR_S = 365.2422 * DAY_S
TL208_BRANCH = 0.3594


@dataclass(frozen=True, slots=True)
class Line:
    energy_kev: float
    intensity: float  # photons per decay


@dataclass(frozen=True, slots=True)
class Nuclide:
    name: str
    half_life_s: float
    gammas: tuple[Line, ...] = ()

    @property
    def decay_constant(self) -> float:
        return math.log(2) / self.half_life_s


def _from_lambda(lam: float) -> float:
    return math.log(2) / lam


NUCLIDES: dict[str, Nuclide] = {n.name: n for n in (
    Nuclide("Be-7", 53.22 * DAY_S, (Line(477.6035, 0.1044),)),
    Nuclide("K-40", 1.248e9 * YEAR_S, (Line(1460.822, 0.1066),)),
    Nuclide("Pb-212", 10.64 * 3600, (Line(238.632, 0.436), Line(300.087, 0.0318))),
    Nuclide("Tl-208", 3.053 * 60, (Line(583.187, 0.850), Line(860.557, 0.125), Line(2614.511, 0.9975))),
    Nuclide("Pb-214", 26.8 * 60, (Line(241.997, 0.0727), Line(295.224, 0.1841), Line(351.932, 0.356))),
    Nuclide("Bi-214", 19.9 * 60, (Line(609.312, 0.4549), Line(1120.287, 0.1491), Line(1764.494, 0.1531))),
    Nuclide("Cs-137", 30.08 * YEAR_S, (Line(661.657, 0.851),)),
    Nuclide("Ba-140", 12.7527 * DAY_S, (Line(162.660, 0.0622), Line(537.261, 0.2439))),
    Nuclide("La-140", 1.67855 * DAY_S, (Line(487.021, 0.455), Line(815.772, 0.2328), Line(1596.21, 0.954))),
    Nuclide("I-131", 8.0252 * DAY_S, (Line(364.490, 0.815), Line(636.989, 0.0716))),
    Nuclide("Xe-133", _from_lambda(1.52956e-6), (Line(80.997, 0.369),)),
    Nuclide("Xe-131m", _from_lambda(6.72467e-7)),
    Nuclide("Xe-133m", _from_lambda(3.66326e-6), (Line(233.221, 0.1012),)),
    Nuclide("Xe-135", _from_lambda(2.10657e-5), (Line(249.794, 0.90),)),
    Nuclide("Rn-222", _from_lambda(2.0974e-6)),
)}


def nuclide(name: str) -> Nuclide:
    try:
        return NUCLIDES[name]
    except KeyError:
        raise ValueError(f"nuclide {name!r} is not in the table ({', '.join(NUCLIDES)})") from None


def decays_between(activity_bq: float, lam: float, t0_s: float, t1_s: float) -> float:
    """Decays in [t0, t1] (seconds after the reference time at which the activity is ``activity_bq``)."""
    if t1_s <= t0_s:
        return 0.0
    if lam * (t1_s - t0_s) < 1e-9:
        return activity_bq * math.exp(-lam * t0_s) * (t1_s - t0_s)
    return activity_bq / lam * (math.exp(-lam * t0_s) - math.exp(-lam * t1_s))


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
