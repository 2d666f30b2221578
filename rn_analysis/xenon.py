"""Beta-gamma constants of the four xenon isotopes and radon that the library does not carry.

Source (facts only): openSpex 1.0.7 ``const.py`` (FOI; it cites FOI-R--3451--SE, 2012), as quoted in
the project spec sheet ``ims2-radionuclide.md`` §11.4 (branching ratios), §11.5 (k) and §12 (xenon per
m3 of air). Decay constants come from ``rn_analysis.library``, which took them from the same file.
"""

from __future__ import annotations

from dataclasses import dataclass

from rn_analysis.library import nuclide

K_95 = 1.6449  # one-sided 95 % quantile: alpha = beta = 5 % for LC and LD
XE_ML_PER_M3_AIR = 0.087  # stable xenon in air: ml per m3


@dataclass(frozen=True, slots=True)
class Isotope:
    """An isotope of the beta-gamma analysis: the ROI it is measured in, the ROI whose ``#b-gEfficiency``
    row gives its efficiency there, and its beta-gamma branching ratio in that ROI."""

    name: str
    roi: int
    efficiency_roi: int
    branching: float

    @property
    def decay_constant(self) -> float:
        return nuclide(self.name).decay_constant


# the order of the unknowns; radon has no efficiency row and uses Xe-135's (ROI 2), as openSpex does:
# only ratios to ROI 1 matter for the xenon, so the radon scale cancels
ISOTOPES: tuple[Isotope, ...] = (
    Isotope("Rn-222", 1, 2, 0.376),
    Isotope("Xe-135", 2, 2, 0.90),
    Isotope("Xe-133", 3, 3, 0.37289),  # 81 keV gamma
    Isotope("Xe-131m", 5, 5, 0.54),
    Isotope("Xe-133m", 6, 6, 0.5577),
)
XE133_XRAY_BRANCHING = 0.48940  # Xe-133 beta with the 30 keV X-rays, measured in ROI 4
