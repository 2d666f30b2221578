"""What ``ims cal detector`` writes: the fitted calibration blocks in IMS 2.0 form, a JSON result and
PNG figures (energy residuals, FWHM, efficiency), all into one folder.

The blocks are point tables, as IMS 2.0 carries calibrations: ``#g_Energy`` holds each matched line's
energy and fitted centroid (in the file's channel numbering) with the centroid's uncertainty,
``#g_Resolution`` the measured FWHM points, ``#g_Efficiency`` the measured efficiency points. A reader
that fits them as ``rn_analysis.curves`` does gets back the resolution and efficiency curves of the
JSON (same forms, same weights) and the energy curve within its uncertainty (the analysis fits the
energy points unweighted). Rows are formatted by ``gci_link.ims2``'s table writer.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gci_link.ims2 import PhdMessage
from gci_link.ims2.tables import TABLES, EfficiencyPoint, EnergyPoint, ResolutionPoint, format_table

from .detector_betagamma import BetaGammaCalibration
from .detector_calibration import DetectorCalibration
from .detector_efficiency import Points

BLOCKS_FILE = "calibration_blocks.txt"
RESULT_FILE = "detector_calibration.json"
FIGURES = ("energy_residuals.png", "fwhm.png", "efficiency.png")
BETAGAMMA_FIGURE = "betagamma.png"
POINTS, FIT = "#1f5fa8", "#d9480f"


def _sig(value: float, digits: int = 6) -> float:
    """``value`` to ``digits`` significant digits: the tables' text stays readable (the writer keeps
    every digit it is given)."""
    return float(f"{value:.{digits}g}")


def calibration_blocks(cal: DetectorCalibration) -> str:
    """The three blocks, each with its ``#`` line, as text ending in a newline."""
    e = cal.energy
    energy_rows = sorted(EnergyPoint(m.line.energy_kev, round(m.peak.centroid + cal.first_label, 4),
                                     _sig(m.peak.centroid_unc, 3)) for m in e.matches)
    out = ["#g_Energy", *format_table(TABLES["#g_Energy"], energy_rows),
           "#g_Resolution", *format_table(TABLES["#g_Resolution"], [
               ResolutionPoint(*row) for row in _rows(cal.resolution.points)])]
    if cal.efficiency is not None:
        out += ["#g_Efficiency", *format_table(TABLES["#g_Efficiency"], [
            EfficiencyPoint(*row) for row in _rows(cal.efficiency.points)])]
    return "\n".join(out) + "\n"


def _rows(p: Points) -> list[tuple[float, float, float]]:
    return [(float(e), _sig(float(v)), _sig(float(u), 3)) for e, v, u in zip(p.energy_kev, p.value, p.unc,
                                                                           strict=True)]


def _points(p: Points) -> list[dict[str, Any]]:
    return [{"energy_keV": float(e), "value": float(v), "unc": float(u), "nuclide": n}
            for e, v, u, n in zip(p.energy_kev, p.value, p.unc, p.nuclides, strict=True)]


def result_json(cal: DetectorCalibration) -> dict[str, Any]:
    m, e, r, f = cal.message, cal.energy, cal.resolution, cal.efficiency
    return {
        "data_type": m.data_type, "detector": m.detector, "sample_id": m.sample_id,
        "acquisition_start": m.acquisition_start_ns, "live_time_s": m.live_time_s,
        "peaks_found": len(cal.peaks),
        "energy": {
            "form": "E = sum c_i x^i keV, x = channel - first channel",
            "first_channel": cal.first_label,
            "coefficients": e.coefficients.tolist(), "covariance": e.covariance.tolist(),
            "chi2": e.chi2, "dof": e.dof, "gain_scan_keV_per_channel": e.gain_scan,
            "points": [{"nuclide": mt.line.nuclide, "energy_keV": mt.line.energy_kev,
                        "channel": mt.peak.centroid + cal.first_label, "channel_unc": mt.peak.centroid_unc,
                        "residual_keV": float(res), "residual_unc_keV": float(unc)}
                       for mt, res, unc in zip(e.matches, e.residuals_kev, e.residual_unc_kev, strict=True)],
        },
        "resolution": {"form": "FWHM = a + b sqrt(E) keV", "a": r.curve.a, "b": r.curve.b,
                       "covariance": r.covariance.tolist(), "chi2": r.chi2, "dof": r.dof,
                       "points": _points(r.points)},
        "efficiency": None if f is None else {
            "form": "ln eps = sum T_i L^i, L = ln(E0/E)", "e0_keV": f.curve.e0_kev,
            "terms": f.curve.terms.tolist(), "covariance": f.covariance.tolist(), "chi2": f.chi2,
            "dof": f.dof, "points": _points(f.points)},
    }


def _png(figure: Figure, path: Path) -> None:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure)
    figure.savefig(buffer, format="png", dpi=110)
    path.write_bytes(buffer.getvalue())


def _energy_figure(cal: DetectorCalibration) -> Figure:
    e = cal.energy
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    energies = np.array([m.line.energy_kev for m in e.matches])
    ax.errorbar(energies, e.residuals_kev, e.residual_unc_kev, fmt="o", color=POINTS,
                label="line energy - fitted energy at the centroid")
    grid = np.linspace(0, e.channels - 1, 400)
    band = e.energy_unc(grid)
    ax.fill_between(e.curve().energy(grid), -band, band, color=FIT, alpha=0.25,
                    label="fit uncertainty (1 sigma)")
    ax.axhline(0, color="black", lw=0.8)
    for m, x, y in zip(e.matches, energies, e.residuals_kev, strict=True):
        ax.annotate(m.line.nuclide, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set(xlabel="energy (keV)", ylabel="residual (keV)",
           title=f"{cal.message.detector}: energy, degree {len(e.coefficients) - 1}, "
                 f"chi2/dof {e.chi2:.1f}/{e.dof}")
    ax.legend(fontsize=8)
    return fig


def _curve_figure(points: Points, energy: np.ndarray, value: np.ndarray, unc: np.ndarray, ylabel: str,
                  title: str, log: bool) -> Figure:
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.fill_between(energy, value - unc, value + unc, color=FIT, alpha=0.25)
    ax.plot(energy, value, color=FIT, label="fit (band: 1 sigma)")
    ax.errorbar(points.energy_kev, points.value, points.unc, fmt="o", color=POINTS, label="measured")
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set(xlabel="energy (keV)", ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return fig


def write_detector_report(cal: DetectorCalibration, out: Path) -> list[Path]:
    """Write the blocks, the JSON and the figures into ``out`` (created); the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / BLOCKS_FILE, out / RESULT_FILE, out / FIGURES[0], out / FIGURES[1]]
    written[0].write_text(calibration_blocks(cal))
    written[1].write_text(json.dumps(result_json(cal), indent=1, allow_nan=False) + "\n")
    _png(_energy_figure(cal), written[2])
    r = cal.resolution
    lo, hi = float(r.points.energy_kev.min()), float(r.points.energy_kev.max())
    grid = np.linspace(lo, hi, 300)
    _png(_curve_figure(r.points, grid, r.curve.fwhm(grid), r.fwhm_unc(grid), "FWHM (keV)",
                       f"FWHM = {r.curve.a:.4f} + {r.curve.b:.5f} sqrt(E), chi2/dof {r.chi2:.1f}/{r.dof}",
                       False), written[3])
    if cal.efficiency is not None:
        f = cal.efficiency
        grid = np.geomspace(float(f.points.energy_kev.min()), float(f.points.energy_kev.max()), 300)
        eff = np.asarray(f.curve(grid))
        _png(_curve_figure(f.points, grid, eff, eff * f.rel_unc(grid), "full-energy-peak efficiency",
                           f"log-polynomial, degree {len(f.curve.terms) - 1}, chi2/dof {f.chi2:.1f}/{f.dof}\n"
                           "(point uncertainties: peak area and certified activity)",
                           True), out / FIGURES[2])
        written.append(out / FIGURES[2])
    return written


def betagamma_blocks(cal: BetaGammaCalibration) -> str:
    out = ["#g_Energy", *format_table(TABLES["#g_Energy"], cal.g_points)]
    if cal.b_points:
        out += ["#b_Energy", *format_table(TABLES["#b_Energy"], cal.b_points)]
    return "\n".join(out) + "\n"


def betagamma_json(message: PhdMessage, cal: BetaGammaCalibration) -> dict[str, Any]:
    def rois(limits: np.ndarray | None) -> list[list[int]] | None:
        return None if limits is None else limits.tolist()

    return {
        "data_type": message.data_type, "detector": message.detector, "sample_id": message.sample_id,
        "kind": "beta-gamma",
        "gamma_points": [{"nuclide": m.line.nuclide, "energy_keV": m.line.energy_kev,
                          "channel": m.peak.centroid, "channel_unc": m.peak.centroid_unc,
                          "fwhm_channels": m.peak.fwhm_channels} for m in cal.gamma.matches],
        "gamma_coefficients": cal.gamma.coefficients.tolist(),
        "beta_gate_gamma_rows": list(cal.gate),
        "beta_points": [{"nuclide": p.nuclide, "energy_keV": p.energy_kev, "channel": p.peak.centroid,
                         "channel_unc": p.peak.centroid_unc, "fwhm_channels": p.peak.fwhm_channels,
                         "file_channel": p.file_channel} for p in cal.beta],
        "roi_channels": rois(cal.roi_channels), "file_roi_channels": rois(cal.file_roi_channels),
        "roi_columns": ["beta_lo", "beta_hi", "gamma_lo", "gamma_hi"],
    }


def _betagamma_figure(message: PhdMessage, cal: BetaGammaCalibration) -> Figure:
    fig = Figure(figsize=(7, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1)
    gamma = np.asarray(message.g_spectrum, dtype=np.float64)
    top.step(np.arange(gamma.size), gamma, where="mid", color=POINTS, lw=0.8)
    for m in cal.gamma.matches:
        top.axvline(m.peak.centroid, color=FIT, lw=0.8)
        top.annotate(f"{m.line.energy_kev:g} keV", (m.peak.centroid, gamma.max()), fontsize=7, rotation=90,
                     va="top")
    top.set(xlabel="gamma channel", ylabel="counts",
            title=f"{message.detector}: gamma singles, matched lines")
    hist = np.asarray(message.histogram, dtype=np.float64)
    beta = hist[cal.gate[0]:cal.gate[1] + 1].sum(axis=0)
    bottom.step(np.arange(beta.size), beta, where="mid", color=POINTS, lw=0.8)
    for p in cal.beta:
        bottom.axvline(p.peak.centroid, color=FIT, lw=0.8)
        bottom.annotate(f"{p.nuclide} {p.energy_kev:g} keV", (p.peak.centroid, beta.max()), fontsize=7,
                        rotation=90, va="top")
    bottom.set(xlabel="beta channel", ylabel="counts",
               title=f"coincidences in gamma rows {cal.gate[0]}-{cal.gate[1]} (K X-ray): conversion "
                     "electrons")
    return fig


def write_betagamma_report(message: PhdMessage, cal: BetaGammaCalibration, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / BLOCKS_FILE, out / RESULT_FILE, out / BETAGAMMA_FIGURE]
    written[0].write_text(betagamma_blocks(cal))
    written[1].write_text(json.dumps(betagamma_json(message, cal), indent=1, allow_nan=False) + "\n")
    _png(_betagamma_figure(message, cal), written[2])
    return written
