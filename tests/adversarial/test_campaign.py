"""Issue 11's adversarial suite, its four checks for every attack class at once: against a real
``ims idc run`` (and a second one with CurveZMQ), each attack of tests/adversarial/campaign.py runs for a
moment beside an honest station. Every attack must be refused with the reasons expected of it, counted
and logged; nothing of it may reach the archive or the raw stores; the receiver's memory (with its
verifier workers) may not grow past a generous bound over its no-attack baseline; and every honest frame
sent during the attacks must be acknowledged and archived. Latency is measured but not judged here:
``python -m bench bench_attacks`` compares it with the baseline.
"""

from __future__ import annotations

import pytest

from idc.stores import Quarantine
from tests.adversarial.campaign import ATTACKER, problems, run_campaign, table
from tests.adversarial.test_station_key_attacks import ATTACKS as OWN_KEY_ATTACKS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def test_every_attack_is_refused_and_the_honest_station_is_complete(tmp_path, keys):
    result = run_campaign(tmp_path, keys, seconds=0.6, baseline_s=1.0, every_s=0.1)
    print(table(result))
    assert problems(result) == []
    assert len(result.phases) == 15  # two baselines, twelve attack classes, CurveZMQ's wrong keys

    quarantine = Quarantine(tmp_path / "plain" / "data" / "quarantine.sqlite", max_bytes=0,
                            max_item_bytes=0, max_rows=1 << 62)
    try:
        reasons = [reason for _, station, _, reason, _ in quarantine.entries() if station == ATTACKER]
    finally:
        quarantine.close()
    for name, (_, kind, text) in OWN_KEY_ATTACKS.items():  # each own-key frame refused for its own reason
        assert any(r.startswith(f"{kind}:") and text in r for r in reasons), (name, set(reasons))


def test_a_phase_that_counted_none_of_a_group_is_a_problem():
    """Where a race decides which of two counters rises, one of them must; neither is a failure."""
    from tests.adversarial.campaign import Attack, CampaignResult, Phase

    group = frozenset({"handshake_failed:mechanism_mismatch", "handshake_failed:no_detail"})
    attack = Attack("plaintext", lambda t: 1, frozenset(), allowed=group, one_of=(group,))

    def verdict(counted: dict[str, int]) -> list[str]:
        phase = Phase("plaintext", "curve", 1.0, 3, counted, dict(counted), 0, sent=5, acked=5, archived=5,
                      attack=attack)
        return problems(CampaignResult([phase], {"curve": 0}, [], [], [], {}, []))

    assert verdict({"handshake_failed:no_detail": 3}) == []
    assert verdict({"handshake_failed:mechanism_mismatch": 1}) == []
    assert any("none of" in p for p in verdict({}))
