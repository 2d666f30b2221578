"""Decay correction from counted decays to the activity concentration at the collection stop.

With t_c the collection time, t_p the decay time (acquisition start - collection stop), t_r and t_l
the acquisition real and live times, V the air volume and theta the decays of the nuclide during the
live time (net peak area / (efficiency x emission probability)):

    AC = theta / (t_l V) * f(lambda t_c) * exp(lambda t_p) * f(lambda t_r),   f(x) = x / (1 - e^-x)

which is the spec sheet's (section 11.4, the IDC ARR's decay factor, S5)
``N lambda^2 t_c (t_r/t_l) / [eps I V (1 - e^-lambda t_c) e^-lambda t_p (1 - e^-lambda t_r)]``
rewritten so that it stays finite for long half-lives (f(0) = 1) and is computed in logarithms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .library import Nuclide, nuclide


@dataclass(frozen=True, slots=True)
class Timing:
    collection_s: float  # t_c
    decay_s: float  # t_p
    real_s: float  # t_r
    live_s: float  # t_l
    air_volume_m3: float


def _log_f(x: float) -> float:
    if x < 1e-9:
        return 0.5 * x  # ln(x / (1 - e^-x)) = x/2 + O(x^2)
    return math.log(x) - math.log(-math.expm1(-x))


def effective_decay_constant(n: Nuclide) -> float:
    """The decay constant that governs the nuclide's lines on a filter (its parent's, see library)."""
    return nuclide(n.decay_parent).decay_constant if n.decay_parent else n.decay_constant


def log_concentration_per_decay(n: Nuclide, t: Timing) -> float:
    """ln(Bq/m3 at the collection stop per decay counted during the live time)."""
    lam = effective_decay_constant(n)
    return (-math.log(t.live_s * t.air_volume_m3) + _log_f(lam * t.collection_s) + lam * t.decay_s
            + _log_f(lam * t.real_s))
