"""The analysis is chosen by the sample's system type."""

from __future__ import annotations

import dataclasses

import pytest

from hil.betagamma_phd import simulate_set
from rn_analysis.betagamma import analyse_betagamma
from rn_analysis.dispatch import analyse_message, backgrounds_used
from rn_analysis.errors import AnalysisError


@pytest.fixture(scope="module")
def sim():
    return simulate_set(21)


def test_a_beta_gamma_sample_gets_the_beta_gamma_analysis_with_its_backgrounds(sim):
    result = analyse_message(sim.sample, gasbk=sim.gasbk, detbk=sim.detbk)
    assert result.kind == "beta-gamma" and result.sample_id == sim.sample.sample_id
    assert result == analyse_betagamma(sim.sample, sim.gasbk, sim.detbk)
    flags = {f.name: f.passed for f in result.flags}
    assert flags["gas_background"] and flags["detector_background"]
    alone = {f.name: f.passed for f in analyse_message(sim.sample).flags}
    assert not alone["gas_background"] and not alone["detector_background"]


def test_each_method_asks_for_the_backgrounds_it_subtracts():
    assert backgrounds_used("B") == ("GASBKPHD", "DETBKPHD")
    assert backgrounds_used("P") == ("DETBKPHD",) and backgrounds_used("G") == ()


def test_bad_beta_gamma_input_is_named(sim):
    with pytest.raises(AnalysisError, match="live time 0"):
        analyse_message(dataclasses.replace(sim.sample, live_time_s=0.0))


def test_a_system_type_without_a_method_is_named(sim):
    with pytest.raises(AnalysisError, match="system type 'G'"):
        analyse_message(dataclasses.replace(sim.sample, system_type="G"))


def test_a_particulate_sample_goes_to_the_particulate_method_with_its_detector_background(sim, monkeypatch):
    calls = []

    def analyse_particulate(sample, detbk):
        calls.append((sample, detbk))
        return "result"

    monkeypatch.setattr("rn_analysis.dispatch.analyse_particulate", analyse_particulate)
    particulate = dataclasses.replace(sim.sample, system_type="P")
    assert analyse_message(particulate, detbk=sim.detbk) == "result"
    assert calls == [(particulate, sim.detbk)]
    with pytest.raises(AnalysisError, match="gas background applies to beta-gamma samples only"):
        analyse_message(particulate, gasbk=sim.gasbk)
