"""What an analysis returns, for particulate and beta-gamma samples alike.

One shape for both kinds so that `ims rn analyse --json`, the IDC's stored results and the station's
preliminary results are read the same way; the JSON keys are those the operators' tools rely on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Peak:
    """A fitted gamma peak (particulate), or a beta-gamma ROI's net counts (``energy_keV`` its gamma)."""

    energy_keV: float
    centroid_channel: float
    area: float
    area_unc: float
    fwhm_keV: float
    nuclide: str | None


@dataclass(frozen=True, slots=True)
class NuclideResult:
    """A nuclide's activity concentration at the collection stop, with its Currie limits."""

    name: str
    identified: bool
    concentration_uBq_m3: float
    uncertainty_uBq_m3: float
    mdc_uBq_m3: float
    lc_uBq_m3: float


@dataclass(frozen=True, slots=True)
class Flag:
    """An IDC-style QC or timeliness check: its name, pass or fail, and the figure that decided it."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    sample_id: str
    kind: str  # "particulate" or "beta-gamma"
    peaks: list[Peak] = field(default_factory=list)
    nuclides: list[NuclideResult] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
