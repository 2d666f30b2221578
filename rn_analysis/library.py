"""The nuclide library: half-lives and gamma lines that both the analysis and the simulator use.

Sources (facts only; numbers typed from the evaluations as we know them, not machine-read):
- Gamma energies and emission probabilities per decay: ENSDF evaluations as tabulated by NuDat
  (NNDC), which for these nuclides agree with the DDEP recommended values to the digits kept here.
  The radon and thorium progeny energies and intensities (Pb-214 295.224 keV 18.41 % and
  351.932 keV 35.6 %, Bi-214 609.312 keV 45.49 %, K-40 1460.822 keV, Pb-212 238.632 keV, Tl-208
  583.187/2614.511 keV) were checked against public gamma-line tables; the other values were not
  re-read from the evaluation in this project (``docs/mca-protocol.md``, ``docs/rn-analysis.md``).
- Half-lives: ENSDF/DDEP as quoted by NuDat. Xenon and Rn-222 decay constants: openSpex 1.0.7
  (``const.py``), as quoted in the project spec sheet ``ims2-radionuclide.md`` section 11.4 (S6).
- Lines less sure than the rest, to be checked against NuDat before relying on them: the weaker
  lines of I-132 (522.65, 630.19, 954.55 keV), Cs-136 (153.246, 273.646 keV), Ce-143 (664.571,
  721.929 keV), Nd-147 (319.411 keV), Sb-125 (176.314, 463.365 keV), Bi-212 (785.37, 1620.50 keV),
  Np-239 (228.183 keV 10.7 %), I-135 (all lines), and the Ac-228 intensities (to about 0.3 % absolute).

Only lines at or above about 1 % are kept, and only those a filter spectrum can show (no X-rays).
Daughters that follow the parent's decay in a filter spectrum (Tl-208 and Bi-212 after Pb-212,
I-132 after Te-132) name it in ``decay_parent``: the analysis decay-corrects their lines with the
parent's half-life (transient equilibrium), as a short-lived daughter alone would be gone before the
count. Ru-106 and Ce-144 carry the lines of their short-lived daughters Rh-106 and Pr-144, and Cs-137
that of Ba-137m, per decay of the parent. ``kind`` is the IDC nuclide type (spec sheet section 11.6):
NATURAL, COSMIC, ACTIVATION or FISSION.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DAY_S = 86_400.0
YEAR_S = 365.2422 * DAY_S
HOUR_S = 3600.0
MIN_S = 60.0


@dataclass(frozen=True, slots=True)
class Line:
    energy_kev: float
    intensity: float  # photons per decay


@dataclass(frozen=True, slots=True)
class Nuclide:
    name: str
    half_life_s: float
    gammas: tuple[Line, ...] = ()
    kind: str = "FISSION"
    decay_parent: str | None = None  # a longer-lived parent whose decay this nuclide follows on a filter

    @property
    def decay_constant(self) -> float:
        return math.log(2) / self.half_life_s


def _from_lambda(lam: float) -> float:
    return math.log(2) / lam


def _lines(*pairs: tuple[float, float]) -> tuple[Line, ...]:
    return tuple(Line(e, i) for e, i in pairs)


NUCLIDES: dict[str, Nuclide] = {n.name: n for n in (
    # natural background
    Nuclide("Be-7", 53.22 * DAY_S, (Line(477.6035, 0.1044),), "COSMIC"),
    Nuclide("Na-22", 2.6018 * YEAR_S, _lines((1274.537, 0.9994)), "COSMIC"),
    Nuclide("K-40", 1.248e9 * YEAR_S, (Line(1460.822, 0.1066),), "NATURAL"),
    Nuclide("Pb-210", 22.20 * YEAR_S, _lines((46.539, 0.0425)), "NATURAL"),
    Nuclide("Pb-212", 10.64 * HOUR_S, _lines((238.632, 0.436), (300.087, 0.0318)), "NATURAL"),
    Nuclide("Bi-212", 60.55 * MIN_S, _lines((727.330, 0.0667), (785.37, 0.01102), (1620.50, 0.0147)),
            "NATURAL", "Pb-212"),
    Nuclide("Tl-208", 3.053 * MIN_S, _lines((583.187, 0.850), (860.557, 0.125), (2614.511, 0.9975)),
            "NATURAL", "Pb-212"),
    Nuclide("Pb-214", 26.8 * MIN_S, _lines((241.997, 0.0727), (295.224, 0.1841), (351.932, 0.356)),
            "NATURAL"),
    Nuclide("Bi-214", 19.9 * MIN_S, _lines((609.312, 0.4549), (1120.287, 0.1491), (1764.494, 0.1531)),
            "NATURAL"),
    Nuclide("Ra-226", 1600 * YEAR_S, _lines((186.211, 0.0364)), "NATURAL"),
    Nuclide("Ac-228", 6.15 * HOUR_S, _lines((338.320, 0.1127), (911.204, 0.258), (968.971, 0.158)),
            "NATURAL"),
    # activation products
    Nuclide("Na-24", 14.997 * HOUR_S, _lines((1368.626, 0.999936)), "ACTIVATION"),
    Nuclide("Cr-51", 27.704 * DAY_S, _lines((320.0824, 0.0991)), "ACTIVATION"),
    Nuclide("Mn-54", 312.20 * DAY_S, _lines((834.848, 0.99976)), "ACTIVATION"),
    Nuclide("Co-57", 271.74 * DAY_S, _lines((122.0607, 0.856), (136.4736, 0.1068)), "ACTIVATION"),
    Nuclide("Co-58", 70.86 * DAY_S, _lines((810.759, 0.9945)), "ACTIVATION"),
    Nuclide("Fe-59", 44.495 * DAY_S, _lines((1099.245, 0.565), (1291.590, 0.432)), "ACTIVATION"),
    Nuclide("Co-60", 5.2714 * YEAR_S, _lines((1173.228, 0.9985), (1332.492, 0.999826)), "ACTIVATION"),
    Nuclide("Zn-65", 243.93 * DAY_S, _lines((1115.539, 0.5004)), "ACTIVATION"),
    Nuclide("Ag-110m", 249.83 * DAY_S, _lines((657.760, 0.9438), (884.678, 0.740), (937.485, 0.3451)),
            "ACTIVATION"),
    Nuclide("Np-239", 2.356 * DAY_S, _lines((106.125, 0.259), (228.183, 0.107), (277.599, 0.1438)),
            "ACTIVATION"),
    # fission products
    Nuclide("Zr-95", 64.032 * DAY_S, _lines((724.192, 0.4427), (756.725, 0.5438))),
    Nuclide("Nb-95", 34.991 * DAY_S, _lines((765.803, 0.99808))),
    Nuclide("Mo-99", 65.976 * HOUR_S, _lines((181.068, 0.0605), (739.500, 0.1220), (777.921, 0.0431))),
    Nuclide("Tc-99m", 6.0072 * HOUR_S, _lines((140.511, 0.885))),
    Nuclide("Ru-103", 39.247 * DAY_S, _lines((497.085, 0.910), (610.333, 0.0576))),
    Nuclide("Ru-106", 371.8 * DAY_S, _lines((511.860, 0.204), (621.930, 0.0993), (1050.410, 0.0156))),
    Nuclide("Sb-125", 2.7586 * YEAR_S, _lines((176.314, 0.0684), (427.874, 0.296), (463.365, 0.1049),
                                              (600.597, 0.1776), (635.950, 0.1122))),
    Nuclide("Te-132", 3.204 * DAY_S, _lines((228.160, 0.880))),
    Nuclide("I-131", 8.0252 * DAY_S, _lines((284.305, 0.0612), (364.490, 0.815), (636.989, 0.0716),
                                            (722.911, 0.0177))),
    Nuclide("I-132", 2.295 * HOUR_S, _lines((522.65, 0.160), (630.19, 0.133), (667.714, 0.987),
                                            (772.60, 0.756), (954.55, 0.176)), "FISSION", "Te-132"),
    Nuclide("I-133", 20.83 * HOUR_S, _lines((529.872, 0.870), (875.329, 0.0447))),
    Nuclide("I-135", 6.58 * HOUR_S, _lines((1131.511, 0.2259), (1260.409, 0.287), (1678.027, 0.0956))),
    Nuclide("Cs-134", 2.0652 * YEAR_S, _lines((563.246, 0.0834), (569.331, 0.1537), (604.721, 0.9762),
                                              (795.864, 0.8546), (801.953, 0.0869), (1365.185, 0.0302))),
    Nuclide("Cs-136", 13.16 * DAY_S, _lines((153.246, 0.0746), (273.646, 0.1266), (340.547, 0.422),
                                            (818.514, 0.997), (1048.073, 0.7976), (1235.362, 0.197))),
    Nuclide("Cs-137", 30.08 * YEAR_S, (Line(661.657, 0.851),)),
    Nuclide("Ba-140", 12.7527 * DAY_S, _lines((162.660, 0.0622), (304.849, 0.0429), (423.722, 0.0315),
                                              (437.575, 0.0193), (537.261, 0.2439))),
    Nuclide("La-140", 1.67855 * DAY_S, _lines((328.762, 0.208), (487.021, 0.455), (815.772, 0.2328),
                                              (867.846, 0.0550), (925.189, 0.069), (1596.21, 0.954))),
    Nuclide("Ce-141", 32.511 * DAY_S, _lines((145.443, 0.4829))),
    Nuclide("Ce-143", 33.039 * HOUR_S, _lines((57.356, 0.117), (293.266, 0.428), (664.571, 0.0569),
                                              (721.929, 0.0539))),
    Nuclide("Ce-144", 284.91 * DAY_S, _lines((80.120, 0.0136), (133.515, 0.1109), (696.510, 0.01342))),
    Nuclide("Nd-147", 10.98 * DAY_S, _lines((91.105, 0.281), (319.411, 0.0213), (531.016, 0.134))),
    # noble gases (beta-gamma systems; the particulate analysis leaves them out)
    Nuclide("Xe-133", _from_lambda(1.52956e-6), (Line(80.997, 0.369),), "FISSION"),
    Nuclide("Xe-131m", _from_lambda(6.72467e-7), (), "FISSION"),
    Nuclide("Xe-133m", _from_lambda(3.66326e-6), (Line(233.221, 0.1012),), "FISSION"),
    Nuclide("Xe-135", _from_lambda(2.10657e-5), (Line(249.794, 0.90),), "FISSION"),
    Nuclide("Rn-222", _from_lambda(2.0974e-6), (), "NATURAL"),
)}

NOBLE_GASES = frozenset({"Xe-133", "Xe-131m", "Xe-133m", "Xe-135", "Rn-222"})


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
