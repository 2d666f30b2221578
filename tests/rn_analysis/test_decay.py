"""The decay-corrected concentration formula against the IDC's own reported value (spec sheet 11.4)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from rn_analysis.decay import Timing, effective_decay_constant, log_concentration_per_decay
from rn_analysis.library import DAY_S, nuclide


def test_be7_of_the_idc_export_gives_the_idc_concentration() -> None:
    # S2 (IDC SAMPML export of a real USP74 sample): area 49,427.6, efficiency 0.047893, I 0.1052,
    # V 23,866.64 m3, t_c 86,400 s, t_p 86,406 s, t_r 84,305 s, t_l 84,162 s, T1/2 53.29 d -> 5,011.85 uBq/m3
    be7 = dataclasses.replace(nuclide("Be-7"), half_life_s=53.29 * DAY_S)
    t = Timing(collection_s=86_400, decay_s=86_406, real_s=84_305, live_s=84_162, air_volume_m3=23_866.64)
    decays = 49_427.6 / (0.047893 * 0.1052)
    assert decays * math.exp(log_concentration_per_decay(be7, t)) * 1e6 == pytest.approx(5011.85, rel=1e-5)


def test_long_half_lives_reduce_to_decays_per_second_and_volume() -> None:
    t = Timing(collection_s=86_400, decay_s=86_400, real_s=80_000, live_s=79_000, air_volume_m3=20_000)
    k40 = log_concentration_per_decay(nuclide("K-40"), t)
    assert math.exp(k40) == pytest.approx(1 / (79_000 * 20_000), rel=1e-9)


def test_daughters_decay_with_their_parent() -> None:
    assert effective_decay_constant(nuclide("Tl-208")) == nuclide("Pb-212").decay_constant
    assert effective_decay_constant(nuclide("I-132")) == nuclide("Te-132").decay_constant
    assert effective_decay_constant(nuclide("Cs-137")) == nuclide("Cs-137").decay_constant
