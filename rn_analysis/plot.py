"""``--plot``: the particulate spectrum with its fitted regions and peaks, or a beta-gamma histogram."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gci_link.ims2 import PhdMessage

from .result import AnalysisResult

if TYPE_CHECKING:
    from .particulate import ParticulateFit


def plot(path: Path, sample: PhdMessage, fit: ParticulateFit | None, result: AnalysisResult) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(14, 6))
    if fit is not None:
        energy = fit.calibration.energy.energy(np.arange(fit.counts.size))
        ax.step(energy, np.maximum(fit.counts, 0.5), where="mid", lw=0.5, color="0.4", label="counts")
        ax.plot(energy, fit.model(), lw=0.9, color="tab:red", label="fitted regions")
        for r in fit.regions:
            ax.axvspan(energy[r.lo], energy[r.hi], color="tab:blue", alpha=0.06, lw=0)
        for p in result.peaks:
            if p.nuclide:
                top = fit.counts[int(round(p.centroid_channel)) - fit.first_label]
                ax.annotate(p.nuclide, (p.energy_keV, top), rotation=90, fontsize=6, xytext=(0, 8),
                            textcoords="offset points")
        ax.set_yscale("log")
        ax.set_xlabel("energy (keV)")
        ax.set_ylabel("counts per channel")
        ax.legend(loc="upper right")
    elif sample.histogram is not None:
        image = ax.imshow(np.log10(sample.histogram + 1.0), origin="lower", aspect="auto", cmap="viridis")
        fig.colorbar(image, ax=ax, label="log10(counts + 1)")
        ax.set_xlabel("beta channel")
        ax.set_ylabel("gamma channel")
    ax.set_title(f"{result.sample_id} ({result.kind})")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
