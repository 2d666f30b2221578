"""The lines of a calibration source and the photons each one emitted during a count.

A CALIBPHD or QCPHD names its source in ``#Certificate``: one row per line with the nuclide, its
half-life, its activity at the certificate's reference time and the line's energy and emission
probability (spec sheet §4.2). Without a certificate (or with one kept verbatim because it does not
follow the layout) the nuclides named are looked up in ``rn_analysis.library``: their lines are then
known, their activities are not, which is enough for an energy calibration and not for an efficiency.

Assumptions where the spec leaves the certificate's layout open (§4.2, marked [U]): the activity is in
Bq (a ``KBQ`` or ``MBQ`` unit on the first line scales it), its uncertainty is a percentage of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gci_link.ims2 import Certificate, PhdMessage, RawBlock
from rn_analysis.library import NUCLIDES

HALF_LIFE_UNIT_S = {"S": 1.0, "M": 60.0, "H": 3600.0, "D": 86_400.0, "Y": 365.2422 * 86_400.0}
ACTIVITY_UNIT_BQ = {None: 1.0, "BQ": 1.0, "KBQ": 1e3, "MBQ": 1e6}


class SourceError(ValueError):
    """The message does not describe a calibration source that can be used."""


@dataclass(frozen=True, slots=True)
class SourceLine:
    nuclide: str
    energy_kev: float
    intensity: float  # photons per decay
    half_life_s: float
    activity_bq: float | None = None  # at ``reference_ns``; None when no certificate gives it
    activity_rel_unc: float = 0.0
    reference_ns: int | None = None

    @property
    def decay_constant(self) -> float:
        return math.log(2) / self.half_life_s

    def photons_counted(self, acquisition_ns: int, real_s: float, live_s: float) -> float:
        """Photons of this line emitted while the detector was live: the activity decayed from the
        reference time to the acquisition start, integrated over the real time, times t_l / t_r."""
        if self.activity_bq is None or self.reference_ns is None:
            raise SourceError(f"{self.nuclide} {self.energy_kev} keV has no certified activity")
        lam = self.decay_constant
        elapsed = (acquisition_ns - self.reference_ns) / 1e9
        during = real_s if lam * real_s < 1e-9 else -math.expm1(-lam * real_s) / lam
        return self.activity_bq * math.exp(-lam * elapsed) * during * (live_s / real_s) * self.intensity


def certificate_lines(certificate: Certificate) -> list[SourceLine]:
    unit = None if certificate.unit is None else certificate.unit.upper()
    if unit not in ACTIVITY_UNIT_BQ:
        raise SourceError(f"#Certificate activity unit {certificate.unit!r} is not one of Bq, kBq, MBq")
    out = []
    for row in certificate.lines:
        hl_unit = row.half_life_unit.upper()
        if hl_unit not in HALF_LIFE_UNIT_S:
            raise SourceError(f"#Certificate {row.nuclide}: half-life unit {row.half_life_unit!r} is not "
                              f"one of {', '.join(HALF_LIFE_UNIT_S)}")
        if not (row.half_life > 0 and row.activity > 0 and row.energy_kev > 0 and row.intensity_pct > 0):
            raise SourceError(f"#Certificate {row.nuclide} {row.energy_kev} keV: half-life, activity, energy "
                              "and intensity must be positive")
        out.append(SourceLine(row.nuclide, row.energy_kev, row.intensity_pct / 100.0,
                              row.half_life * HALF_LIFE_UNIT_S[hl_unit],
                              row.activity * ACTIVITY_UNIT_BQ[unit], row.activity_unc / 100.0,
                              certificate.reference_ns))
    if not out:
        raise SourceError("#Certificate lists no line")
    return out


def library_lines(names: list[str]) -> list[SourceLine]:
    """The gamma lines of nuclides named like ``Co-60`` or ``CO-60`` (no activities)."""
    by_upper = {k.upper(): n for k, n in NUCLIDES.items()}
    out = []
    for name in names:
        n = by_upper.get(name.strip().upper())
        if n is None or not n.gammas:
            raise SourceError(f"nuclide {name!r} has no gamma lines in rn_analysis.library")
        out += [SourceLine(n.name, ln.energy_kev, ln.intensity, n.half_life_s) for ln in n.gammas]
    return out


def source_lines(message: PhdMessage, nuclides: list[str] | None = None) -> list[SourceLine]:
    """The certificate's lines, else the library's lines of ``nuclides`` or of the words of a
    certificate kept verbatim (the real MIX CALIBPHD says only ``Xe-133``)."""
    cert = message.certificate
    if isinstance(cert, Certificate):
        return certificate_lines(cert)
    if nuclides is None and isinstance(cert, RawBlock):
        nuclides = [w for line in cert.lines for w in line.split()]
    if not nuclides:
        raise SourceError("the message has no #Certificate and no source nuclides were named")
    return library_lines(nuclides)
