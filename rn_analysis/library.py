"""The nuclide library: half-lives and gamma lines that both the analysis and the simulator use.

Sources (facts only):
- Gamma energies and emission probabilities per decay: ENSDF evaluations as tabulated by NuDat
  (NNDC). The radon and thorium progeny energies and intensities (Pb-214 295.224 keV 18.41 % and
  351.932 keV 35.6 %, Bi-214 609.312 keV 45.49 %, K-40 1460.822 keV, Pb-212 238.632 keV, Tl-208
  583.187/2614.511 keV) were checked against public gamma-line tables; the other values are the
  ENSDF figures as we know them and were not re-read from the evaluation (``docs/mca-protocol.md``).
- Xenon and Rn-222 decay constants: openSpex 1.0.7 (``const.py``), as quoted in the project spec
  sheet ``ims2-radionuclide.md`` section 11.4 (S6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DAY_S = 86_400.0
YEAR_S = 365.2422 * DAY_S


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
