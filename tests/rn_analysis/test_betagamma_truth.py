"""Beta-gamma analysis against the simulator's truth over 100 seeded sample sets (sample, gas background,
detector background): 1-sigma coverage of the concentrations, no bias, the false detection rate that LC
promises, and detection at the MDC as Currie's LD promises.

The simulator does not model the decay of Xe-133m into Xe-133, so the analyses run with
``ingrowth=False`` (the correction would subtract Xe-133 that the simulator never made).
"""

from __future__ import annotations

import numpy as np
import pytest

from hil.betagamma_phd import DEFAULT_UBQ_M3, simulate_set
from rn_analysis.betagamma import analyse_betagamma

REALISATIONS = 100
# 68.3 % +- 3 binomial sigmas of 100 realisations (4.7 % each): the seeds are fixed, so this never flakes,
# and a real change of the uncertainties by 15 % moves the coverage out of it
COVERAGE = (0.54, 0.82)
NAMES = {"XE-135": "Xe-135", "XE-133": "Xe-133", "XE-131M": "Xe-131m", "XE-133M": "Xe-133m"}


def _run(truth: dict[str, float], first_seed: int) -> dict[str, np.ndarray]:
    """Per isotope, rows (concentration, uncertainty, MDC, identified) of every realisation."""
    rows: dict[str, list] = {name: [] for name in NAMES.values()}
    for seed in range(first_seed, first_seed + REALISATIONS):
        s = simulate_set(seed, truth)
        for n in analyse_betagamma(s.sample, s.gasbk, s.detbk, ingrowth=False).nuclides:
            row = (n.concentration_uBq_m3, n.uncertainty_uBq_m3, n.mdc_uBq_m3, n.identified)
            rows[NAMES[n.name]].append(row)
    return {name: np.array(v, dtype=float) for name, v in rows.items()}


@pytest.fixture(scope="module")
def all_present():
    # Xe-133m at about its MDC (the median MDC found is 419 uBq/m3): Currie promises 95 % detection there
    return _run(DEFAULT_UBQ_M3, 1000)


@pytest.fixture(scope="module")
def two_absent():
    return _run({"Xe-133": 5000.0, "Xe-135": 0.0, "Xe-131m": 600.0, "Xe-133m": 0.0}, 2000)


@pytest.mark.parametrize("name", NAMES.values())
def test_one_sigma_coverage_and_no_bias(all_present, name):
    c, u, _, _ = all_present[name].T
    pull = (c - DEFAULT_UBQ_M3[name]) / u
    coverage = np.mean(np.abs(pull) <= 1)
    assert COVERAGE[0] <= coverage <= COVERAGE[1], (name, coverage)
    assert abs(pull.mean()) < 0.3, (name, pull.mean())  # the standard error of the mean pull is 0.1
    assert 0.75 < pull.std() < 1.25, (name, pull.std())


def test_detection_at_the_mdc_is_what_currie_promises(all_present):
    _, _, mdc, identified = all_present["Xe-133m"].T
    assert 0.9 < DEFAULT_UBQ_M3["Xe-133m"] / np.median(mdc) < 1.1
    assert 0.85 <= identified.mean() <= 1.0  # 95 % at the MDC; 93 % at 0.95 MDC
    for name in ("Xe-133", "Xe-135", "Xe-131m"):  # well above their MDCs
        assert all_present[name][:, 3].mean() >= 0.97
    assert np.all(all_present["Xe-133"][:, 2] <= 1000)  # the IMS requirement, met by this system


@pytest.mark.parametrize("name", ["Xe-135", "Xe-133m"])
def test_absent_isotopes_are_detected_at_the_lc_rate(two_absent, name):
    c, u, _, identified = two_absent[name].T
    assert identified.mean() <= 0.12  # alpha = 5 %; 100 realisations
    assert COVERAGE[0] <= np.mean(np.abs(c) <= u) <= COVERAGE[1]  # an absent isotope's zero is covered too
