"""The per-station ``unverified = "archive"`` policy for migration periods: frames signed with a key the
trust store does not know are archived, logged, counted and shown in ``ims idc status``; every other
signature failure is still refused, and so is an unknown key at a station without the policy."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from gci_link.cd11 import encode_frame
from gci_link.keys import CertificateAuthority, StationSigner
from idc.config import IdcConfigError, load_config
from tests.idc.conftest import SIGNERS, Running, data_frame, samples_for
from tests.idc.test_server import sds_samples

pytestmark = pytest.mark.timeout(60)


def _toml(tmp_path, trust_dir, sta1: str) -> str:
    return (
        f"[idc]\nroot = 'data'\ntrust_dir = '{trust_dir}'\nconnection_endpoint = 'tcp://127.0.0.1:*'\n"
        "verify_workers = 0\n"
        f"[stations.STA1]\nnetwork = 'XX'\nsites = ['STA1A']\n{sta1}"
        "[stations.STA2]\nnetwork = 'XX'\nsites = ['STA2A']\n"
    )


def test_unknown_keys_archived_logged_counted_and_shown_only_where_the_policy_says(
    tmp_path, keys, clock, monkeypatch, caplog, capsys
):
    caplog.set_level(logging.INFO)
    legacy = StationSigner.load(CertificateAuthority.create(tmp_path / "elsewhere").issue("STA1").bundle)
    legacy2 = StationSigner.load(CertificateAuthority.create(tmp_path / "elsewhere2").issue("STA2").bundle)
    path = tmp_path / "idc.toml"
    path.write_text(_toml(tmp_path, keys.ca.trust_dir, "unverified = 'archive'\n"))
    run = Running(load_config(path), keys.ca.trust_store(), clock)
    try:
        monkeypatch.setitem(SIGNERS, "STA1", legacy)  # its control frames too carry the unknown key
        sta = run.station()
        sta.connect()
        for seq in (3000, 3001):
            sta.send(encode_frame(data_frame(seq, legacy)))
        assert sta.acknack_covering(3001).gaps == ()
        # still refused under the policy: a known key that is another station's, and a revoked key
        sta.send(encode_frame(data_frame(3002, legacy, channel_signer=keys.sta2)))
        sta.send(encode_frame(data_frame(3003, keys.revoked)))
        sta.send(encode_frame(data_frame(3004, legacy)))
        assert sta.acknack_covering(3004).gaps == ((3002, 3004),)
        # a station without the policy refuses unknown keys, as always
        monkeypatch.setitem(SIGNERS, "STA2", legacy2)
        two = run.station("STA2")
        two.send(encode_frame(data_frame(3100, legacy2, creator="STA2")))
        counters = run.counters_reaching({("STA2", "rejected:frame_unknown_key"): 1})
        two.close()
        sta.close()
    finally:
        run.stop()
    for seq in (3000, 3001, 3004):
        np.testing.assert_array_equal(sds_samples(tmp_path / "data" / "sds", seq), samples_for(seq))
    assert counters[("STA1", "unverified_archived")] == 3
    assert counters[("STA1", "frames")] == 3
    assert counters[("STA1", "rejected:frame_revoked")] == 1
    assert counters[("STA1", "rejected:channel_signature")] == 1
    assert counters[("STA2", "rejected:frame_unknown_key")] == 1
    assert ("STA2", "unverified_archived") not in counters
    warned = [r for r in caplog.records if r.getMessage().startswith("archiving frames signed with a key")]
    assert len(warned) == 1 and warned[0].key_id == legacy.key_id and warned[0].levelno == logging.WARNING

    from station import ims

    assert ims.main(["idc", "status", "--config", str(path), "--window", "100000000"]) == 1  # not running
    out = capsys.readouterr().out
    assert any(line.split() == ["STA1", "unverified_archived", "3"] for line in out.splitlines()), out
    row = next(line.split() for line in out.splitlines() if line.startswith("STA1 ") and "BHZ" in line)
    assert row[-1] == "0.0"  # AUTH%: none of it authenticated


@pytest.mark.parametrize(("value", "problem"), [
    ("'maybe'", r"\"reject\" \(the default\) or \"archive\""),
    ("true", "must be a string, got bool True"),
    ("'Archive'", r"\"reject\" \(the default\) or \"archive\""),
])
def test_the_policy_is_validated_with_a_clear_error(tmp_path, keys, value, problem):
    path = tmp_path / "idc.toml"
    path.write_text(_toml(tmp_path, keys.ca.trust_dir, f"unverified = {value}\n"))
    with pytest.raises(IdcConfigError, match=r"idc.toml: stations.STA1.unverified: " + problem):
        load_config(path)
    path.write_text(_toml(tmp_path, keys.ca.trust_dir, ""))
    assert {s.unverified for s in load_config(path).stations.values()} == {"reject"}  # never the default
