"""How ``ims idc rn list`` and ``show`` put a stored analysis into words: a short status per sample for
the list, a readable report for one sample, and one JSON object for tools."""

from __future__ import annotations

import dataclasses
from typing import Any

from gci_link.cd11.timefmt import iso_or_dash
from gci_link.texttable import columns
from idc.rn_store import IndexedMessage, StoredAnalysis

PEAK_FIGURES = ("energy_keV", "centroid_channel", "area", "area_unc", "fwhm_keV")
PENDING = "pending"  # a SAMPLEPHD the analysis has not reached yet (or the receiver runs without it)


def status(message: IndexedMessage, analysis: StoredAnalysis | None) -> str:
    """One cell for the list: the identified nuclides with their concentrations, an error, or pending."""
    if message.data_type != "SAMPLEPHD" or message.problem is not None:
        return ""
    if analysis is None:
        return PENDING
    if analysis.result is None:
        return f"error: {analysis.error}"
    found = [f"{n['name']} {n['concentration_uBq_m3']:.4g}" for n in analysis.result["nuclides"]
             if n["identified"]]
    text = ", ".join(found) + " uBq/m3" if found else "nothing identified"
    missing = [kind for kind, gone in (("gas", analysis.gasbk_missing), ("detector", analysis.detbk_missing))
               if gone]
    return text + (f" (no {' or '.join(missing)} background yet)" if missing else "")


def as_json(message: IndexedMessage, analysis: StoredAnalysis | None) -> dict[str, Any]:
    """The index row with its analysis (null when there is none)."""
    stored = None if analysis is None else dataclasses.asdict(analysis)
    return dataclasses.asdict(message) | {"analysis": stored}


def report(message: IndexedMessage, analysis: StoredAnalysis | None) -> str:
    """The analysis of one sample as an analyst reads it."""
    head = f"Analysis of {message.data_type} {message.station} seq {message.seq} (sample {message.sample_id})"
    if analysis is None:
        return f"{head}\n  not analysed yet\n"
    lines = [f"{head}, analysed {iso_or_dash(analysis.analysed_ns)}"]
    lines += [f"  {_background(message, analysis, 'gas')}", f"  {_background(message, analysis, 'detector')}"]
    if analysis.result is None:
        return "\n".join([*lines, f"  FAILED: {analysis.error}", ""])
    result = analysis.result
    lines.append(f"  method: {result['kind']}")
    lines += _table(("NUCLIDE", "IDENTIFIED", "CONC uBq/m3", "UNC uBq/m3", "LC uBq/m3", "MDC uBq/m3"),
                    [(n["name"], "yes" if n["identified"] else "no", *(_g(n[key]) for key in (
                        "concentration_uBq_m3", "uncertainty_uBq_m3", "lc_uBq_m3", "mdc_uBq_m3")))
                     for n in result["nuclides"]])
    if result["peaks"]:
        lines += _table(("ENERGY keV", "CHANNEL", "AREA", "AREA UNC", "FWHM keV", "NUCLIDE"),
                        [(*(_g(p[key]) for key in PEAK_FIGURES), p["nuclide"] or "-")
                         for p in result["peaks"]])
    lines += _table(("FLAG", "", "DETAIL"),
                    [(f["name"], "pass" if f["passed"] else "FAIL", f["detail"]) for f in result["flags"]])
    return "\n".join([*lines, ""])


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    return ["", *("  " + line for line in columns([head, *rows]))]


def _background(message: IndexedMessage, analysis: StoredAnalysis, kind: str) -> str:
    ref, seq, missing = ((message.gasbk_id, analysis.gasbk_seq, analysis.gasbk_missing) if kind == "gas"
                         else (message.detbk_id, analysis.detbk_seq, analysis.detbk_missing))
    if ref is None:
        return f"{kind} background: none referenced"
    if missing:
        return f"{kind} background: {ref} not received when analysed"
    return f"{kind} background: {ref} ({message.station} seq {seq})"


def _g(value: float) -> str:
    return f"{value:.4g}"


