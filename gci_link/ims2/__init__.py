"""IMS 2.0 radionuclide data messages (PHD, RMSSOH, ALERT_*, MET): ``parse(text)`` and ``write(message)``.

Formats, tolerance rules and project conventions: docs/ims2.md. Spectra and histograms are numpy
int64 arrays; times are integer nanoseconds UTC.
"""

from .codec import parse, write
from .errors import Ims2FormatError
from .messages import (
    ALERT_TYPES,
    DATA_TYPES,
    PHD_TYPES,
    AlertMessage,
    Certificate,
    CertificateLine,
    Chromatogram,
    Message,
    MetMessage,
    MetRow,
    PhdMessage,
    RawBlock,
    SohMessage,
    SohRow,
)
from .soh import SOH_COLUMNS
from .tables import (
    BetaEnergyPoint,
    BgEfficiency,
    EfficiencyPoint,
    EnergyPoint,
    Ratio,
    ResolutionPoint,
    RoiLimits,
)

__all__ = [
    "ALERT_TYPES",
    "DATA_TYPES",
    "PHD_TYPES",
    "SOH_COLUMNS",
    "AlertMessage",
    "BetaEnergyPoint",
    "BgEfficiency",
    "Certificate",
    "CertificateLine",
    "Chromatogram",
    "EfficiencyPoint",
    "EnergyPoint",
    "Ims2FormatError",
    "Message",
    "MetMessage",
    "MetRow",
    "PhdMessage",
    "Ratio",
    "RawBlock",
    "ResolutionPoint",
    "RoiLimits",
    "SohMessage",
    "SohRow",
    "parse",
    "write",
]
