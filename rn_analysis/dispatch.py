"""One entry point for every caller that holds a PHD message and wants its analysis (the IDC receiver,
the station): the method follows the #Header system type, so callers need not know the methods.

``B`` (beta-gamma coincidence) goes to ``rn_analysis.betagamma``, ``P`` (particulate HPGe) to
``rn_analysis.particulate``. ``G`` (noble gas on HPGe) has no method yet, and says so.
"""

from __future__ import annotations

from gci_link import ims2
from rn_analysis.betagamma import analyse_betagamma
from rn_analysis.errors import AnalysisError
from rn_analysis.particulate import analyse_particulate
from rn_analysis.result import AnalysisResult

# the backgrounds each method subtracts, by data type; a caller fetches only these
_BACKGROUNDS = {"B": ("GASBKPHD", "DETBKPHD"), "P": ("DETBKPHD",)}


def backgrounds_used(system_type: str) -> tuple[str, ...]:
    """The background data types (GASBKPHD, DETBKPHD) that the analysis of this system type uses."""
    return _BACKGROUNDS.get(system_type, ())


def analyse_message(sample: ims2.PhdMessage, *, gasbk: ims2.PhdMessage | None = None,
                    detbk: ims2.PhdMessage | None = None) -> AnalysisResult:
    """The analysis of ``sample`` by its system type; ``AnalysisError`` names what makes it impossible.
    Both methods subtract a detector background; only beta-gamma has a gas background."""
    if sample.system_type == "B":
        return analyse_betagamma(sample, gasbk=gasbk, detbk=detbk)
    if sample.system_type == "P":
        if gasbk is not None:
            raise AnalysisError("a gas background applies to beta-gamma samples only; "
                                "this one is particulate")
        return analyse_particulate(sample, detbk)
    raise AnalysisError(f"no analysis for system type {sample.system_type!r} "
                        "(B beta-gamma and P particulate are analysed)")
