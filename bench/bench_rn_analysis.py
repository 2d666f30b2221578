"""Particulate (HPGe) analysis: one full 8192-channel SAMPLEPHD through ``analyse_particulate``
(calibration curves, peak search, region fits, nuclide activities, limits, flags).

Two simulated 24/24/24 h filters (``hil.particulate_sample``): a routine one (Be-7, Cs-137 and the
shield's K-40 and radon/thoron progeny) and a fresh-fission one with twelve fission products on top,
which gives more peaks and multiplets to fit. The first call compiles (numba, cached on disk) and is
reported apart; the figures are the best of several calls after it, wall and CPU time. Issue 13's goal:
well under 1 s on one core, so ``*_over_1s_limit`` must stay far below 1.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import numpy as np

from hil.particulate_sample import simulated_sample
from rn_analysis.particulate import analyse_particulate

REPEATS = 20
LIMIT_S = 1.0
ROUTINE = {"Be-7": 3e-3, "Cs-137": 5e-6}
FISSION = {**ROUTINE, "Ba-140": 400e-6, "La-140": 300e-6, "I-131": 500e-6, "I-133": 300e-6, "Te-132": 200e-6,
           "Mo-99": 200e-6, "Zr-95": 60e-6, "Nb-95": 40e-6, "Ru-103": 80e-6, "Ce-141": 60e-6, "Ce-143": 80e-6,
           "Nd-147": 40e-6, "Cs-136": 30e-6}


def _best(fn: Callable[[], object]) -> tuple[float, float]:
    wall = cpu = float("inf")
    for _ in range(REPEATS):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
    return wall, cpu


def run(progress: Callable[[str], None]) -> dict:
    rng = np.random.default_rng(13)
    figures: dict[str, object] = {}
    for label, mix in (("routine", ROUTINE), ("fission", FISSION)):
        message = simulated_sample(mix, rng)
        progress(f"{label} filter: first call (compiles), then best of {REPEATS}")
        started = time.perf_counter()
        result = analyse_particulate(message)
        figures[f"{label}_first_call_s"] = time.perf_counter() - started
        wall, cpu = _best(functools.partial(analyse_particulate, message))
        figures[f"{label}_peaks"] = len(result.peaks)
        figures[f"{label}_identified"] = sum(n.identified for n in result.nuclides)
        figures[f"{label}_wall_s"] = wall
        figures[f"{label}_cpu_s"] = cpu
        figures[f"{label}_over_1s_limit"] = cpu / LIMIT_S
    figures["target"] = "*_over_1s_limit far below 1 (issue 13: well under 1 s on one core)"
    return figures
