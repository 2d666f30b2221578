"""Station keys: signing and verification by key id, trust store checks, revocation, rotation, CLI."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import stat
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from gci_link.keys import (
    CertificateAuthority,
    KeyMaterialError,
    Reason,
    Role,
    SignatureError,
    StationSigner,
    TrustStore,
    key_id_of,
    verify_raw,
)
from gci_link.keys import certificates as certificates_module
from gci_link.keys.algorithms import InvalidSignatureValue, digest_function, raw_verifier
from gci_link.keys.certificates import issue_station_certificate, write_certificate, write_private_key

DATA = b"\x00\x00\x00\x05header and body bytes of a CD-1.1 data frame" * 20


@pytest.fixture
def ca(tmp_path):
    return CertificateAuthority.create(tmp_path / "ca")


def _signer(issued) -> StationSigner:
    return StationSigner.load(issued.bundle)


@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "ed25519"])
def test_sign_and_verify_each_algorithm(ca, algorithm):
    issued = ca.issue("LBTB", algorithm)
    signer = _signer(issued)
    assert signer.key_id == issued.key_id and signer.station == "LBTB" and signer.algorithm == algorithm
    signature = signer.sign(DATA)
    assert len(signature) == signer.signature_size == 64
    result = ca.trust_store().verify(signer.key_id, DATA, signature)
    assert (result.key_id, result.station, result.algorithm) == (issued.key_id, "LBTB", algorithm)
    # the raw value is r||s, not DER: the same value verifies with the certificate alone
    verify_raw(signer.certificate.public_key(), DATA, signature)


@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "ed25519"])
def test_tampering_is_detected(ca, algorithm):
    signer = _signer(ca.issue("LBTB", algorithm))
    other = _signer(ca.issue("KEST", algorithm))
    store = ca.trust_store()
    signature = signer.sign(DATA)
    flipped = bytearray(DATA)
    flipped[100] ^= 0x08
    forged_value = bytes(b ^ 0xFF for b in signature)
    cases = {
        "bit-flipped data": (bytes(flipped), signature),
        "forged value": (DATA, forged_value),
        "another station's signature": (DATA, other.sign(DATA)),
        "truncated value": (DATA, signature[:-1]),
    }
    for name, (data, value) in cases.items():
        with pytest.raises(SignatureError) as caught:
            store.verify(signer.key_id, data, value)
        assert caught.value.reason is Reason.BAD_SIGNATURE, name
        assert str(signer.key_id) in str(caught.value)
    with pytest.raises(SignatureError, match="63 bytes"):
        store.verify(signer.key_id, DATA, signature[:-1])


def test_unknown_and_unsigned_key_ids(ca):
    signer = _signer(ca.issue("LBTB"))
    store = ca.trust_store()
    with pytest.raises(SignatureError) as caught:
        store.verify(signer.key_id ^ 1, DATA, signer.sign(DATA))
    assert caught.value.reason is Reason.UNKNOWN_KEY and caught.value.key_id == signer.key_id ^ 1
    with pytest.raises(SignatureError) as caught:
        store.station_for(12345)
    assert caught.value.reason is Reason.UNKNOWN_KEY
    with pytest.raises(SignatureError) as caught:
        store.verify(0, DATA, b"")
    assert caught.value.reason is Reason.UNSIGNED
    assert store.station_for(signer.key_id) == "LBTB"


def test_revoked_key_is_refused_after_reload(ca):
    old = _signer(ca.issue("LBTB"))
    keep = _signer(ca.issue("GERES"))
    assert ca.revoke(old.key_id) == "LBTB"
    store = TrustStore.load(ca.trust_dir)
    with pytest.raises(SignatureError) as caught:
        store.verify(old.key_id, DATA, old.sign(DATA))
    assert caught.value.reason is Reason.REVOKED
    store.verify(keep.key_id, DATA, keep.sign(DATA))
    assert ca.revoke(old.key_id) == "LBTB"  # revoking twice is harmless and keeps the entry
    assert [k.key_id for k in TrustStore.load(ca.trust_dir).keys if k.revoked_ns] == [old.key_id]
    with pytest.raises(KeyError, match="not in the trust store"):
        ca.revoke(4242)


def test_validity_period_is_enforced(ca):
    signer = _signer(ca.issue("LBTB", days=30))
    store = ca.trust_store()
    signature = signer.sign(DATA)
    not_after = signer.certificate.not_valid_after_utc
    not_before = signer.certificate.not_valid_before_utc
    with pytest.raises(SignatureError) as caught:
        store.verify(signer.key_id, DATA, signature, at_ns=_ns(not_after + dt.timedelta(seconds=1)))
    assert caught.value.reason is Reason.EXPIRED
    with pytest.raises(SignatureError) as caught:
        store.verify(signer.key_id, DATA, signature, at_ns=_ns(not_before - dt.timedelta(seconds=1)))
    assert caught.value.reason is Reason.NOT_YET_VALID
    store.verify(signer.key_id, DATA, signature, at_ns=_ns(not_after - dt.timedelta(seconds=1)))
    # the store's clock decides when no time is given
    late = TrustStore.load(ca.trust_dir, clock=lambda: _ns(not_after + dt.timedelta(days=1)))
    with pytest.raises(SignatureError, match="expired"):
        late.verify(signer.key_id, DATA, signature)


def test_rotation_overlap_then_retirement(ca):
    old = _signer(ca.issue("LBTB"))
    new = _signer(ca.issue("LBTB", "ed25519"))
    assert old.key_id != new.key_id
    store = ca.trust_store()
    for signer in (old, new):  # during the overlap frames signed with either key verify
        assert store.verify(signer.key_id, DATA, signer.sign(DATA)).station == "LBTB"
    ca.revoke(old.key_id)
    store = ca.trust_store()
    assert store.verify(new.key_id, DATA, new.sign(DATA)).station == "LBTB"
    with pytest.raises(SignatureError, match="revoked"):
        store.verify(old.key_id, DATA, old.sign(DATA))


def test_certificate_from_another_ca_is_rejected_naming_the_file(ca, tmp_path):
    foreign = CertificateAuthority.create(tmp_path / "foreign")
    intruder = foreign.issue("LBTB")
    planted = ca.trust_dir / "stations" / "LBTB-planted.pem"
    shutil.copy(intruder.bundle / "cert.pem", planted)
    with pytest.raises(KeyMaterialError) as caught:
        TrustStore.load(ca.trust_dir)
    assert caught.value.path == planted and "not issued by this network's CA" in str(caught.value)
    planted.unlink()
    shutil.copy(foreign.trust_dir / "revoked.pem", ca.trust_dir / "revoked.pem")
    with pytest.raises(KeyMaterialError, match="revoked.pem: revocation list is not signed"):
        TrustStore.load(ca.trust_dir)


def test_broken_trust_store_files_give_clear_errors(ca, tmp_path):
    issued = ca.issue("LBTB")
    (ca.trust_dir / "stations" / "broken.pem").write_text("not a certificate")
    with pytest.raises(KeyMaterialError, match=r"broken\.pem: not a PEM X\.509 certificate"):
        TrustStore.load(ca.trust_dir)
    (ca.trust_dir / "stations" / "broken.pem").unlink()
    duplicate = ca.trust_dir / "stations" / "copy.pem"
    shutil.copy(issued.bundle / "cert.pem", duplicate)
    with pytest.raises(KeyMaterialError, match=f"key id {issued.key_id} is also claimed by"):
        TrustStore.load(ca.trust_dir)
    duplicate.unlink()
    (ca.trust_dir / "ca.pem").unlink()
    with pytest.raises(KeyMaterialError, match=r"ca\.pem: cannot read certificate"):
        TrustStore.load(ca.trust_dir)
    with pytest.raises(KeyMaterialError, match="does not exist"):
        TrustStore.load(tmp_path / "nowhere")
    with pytest.raises(KeyMaterialError, match="a CA already exists"):
        CertificateAuthority.create(ca.root)


def _legacy_dsa_station(station: str) -> tuple[dsa.DSAPrivateKey, x509.Certificate]:
    key = dsa.generate_private_key(1024)  # q is 160 bits: 40-byte signatures as in real CD-1.1 frames
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, station)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert


def test_legacy_dsa_signatures_verify_given_the_certificate(ca):
    key, cert = _legacy_dsa_station("LBTB")
    r, s = decode_dss_signature(key.sign(DATA, hashes.SHA1()))
    value = r.to_bytes(20, "big") + s.to_bytes(20, "big")
    verify_raw(cert.public_key(), DATA, value)
    with pytest.raises(InvalidSignatureValue):
        verify_raw(cert.public_key(), DATA[:-1], value)
    # pinned in the trust store under the key id the station already uses on the wire
    legacy = ca.trust_dir / "legacy"
    legacy.mkdir()
    (legacy / "1.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    store = ca.trust_store()
    result = store.verify(1, DATA, value)
    assert (result.station, result.algorithm) == ("LBTB", "dsa")
    with pytest.raises(SignatureError) as caught:
        store.verify(1, DATA + b"x", value)
    assert caught.value.reason is Reason.BAD_SIGNATURE
    with pytest.raises(ValueError, match="legacy"):
        ca.revoke(1)
    (legacy / "LBTB.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(KeyMaterialError, match=r"LBTB\.pem: legacy certificate files must be named"):
        ca.trust_store()


def test_legacy_dsa_private_key_is_refused_when_loaded_not_when_signing(ca):
    """DSA verifies legacy stations only; a station bundle holding a DSA key must fail at load, naming the
    file, not at the daemon's first signature."""
    key, _ = _legacy_dsa_station("LBTB")
    cert = issue_station_certificate(ca.key, ca.certificate, "LBTB", key.public_key(), time.time_ns(), 30)
    bundle = ca.root / "dsa-bundle"
    bundle.mkdir()
    write_certificate(bundle / "cert.pem", cert)
    write_private_key(bundle / "key.pem", key)
    with pytest.raises(KeyMaterialError, match=r"key\.pem: dsa keys only verify legacy stations"):
        StationSigner.load(bundle)


def test_key_id_is_stable_positive_and_never_zero(ca, monkeypatch):
    issued = ca.issue("LBTB")
    first = {k.key_id for k in TrustStore.load(ca.trust_dir).keys}
    second = {k.key_id for k in TrustStore.load(ca.trust_dir).keys}
    cert = x509.load_pem_x509_certificate((issued.bundle / "cert.pem").read_bytes())
    assert first == second == {issued.key_id} == {key_id_of(cert)}
    assert 0 < issued.key_id < 2**31
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
    assert issued.key_id == int.from_bytes(digest[:4], "big") & 0x7FFFFFFF  # zero only with p = 2**-31

    class LeadingZeros:
        def __init__(self, data):
            self._digest = b"\x80\x00\x00\x00" + b"\x00\x00\x00\x07" + b"\x11" * 24

        def digest(self):
            return self._digest

    monkeypatch.setattr(certificates_module.hashlib, "sha256", LeadingZeros)
    assert key_id_of(cert) == 7  # a word that is zero once the sign bit is masked is skipped


def test_key_files_and_signer_checks(ca):
    issued = ca.issue("GERES")
    assert stat.S_IMODE(os.stat(issued.bundle / "key.pem").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(ca.root / "private" / "ca-key.pem").st_mode) == 0o600
    other = ca.issue("KEST")
    shutil.copy(other.bundle / "key.pem", issued.bundle / "key.pem")
    with pytest.raises(KeyMaterialError, match="private key does not match"):
        StationSigner.load(issued.bundle)
    with pytest.raises(ValueError, match="station name"):
        ca.issue("TOO-LONG-NAME")


def test_cli_round_trip(tmp_path, monkeypatch, capsys):
    from station import ims

    assert ims.COMMAND_MODULES["keys"] == "gci_link.keys_cli"
    # only this command, so the test does not depend on other packages' CLIs being present
    monkeypatch.setattr(ims, "COMMAND_MODULES", {"keys": "gci_link.keys_cli"})
    root = tmp_path / "netca"
    assert ims.main(["keys", "ca-init", str(root)]) == 0
    assert ims.main(["keys", "issue", str(root), "LBTB", "--algorithm", "ed25519", "--days", "10"]) == 0
    assert ims.main(["keys", "issue", str(root), "H04N"]) == 0
    store = TrustStore.load(root / "trust")
    ids = {k.station: k.key_id for k in store.keys}
    assert set(ids) == {"LBTB", "H04N"}
    assert ims.main(["keys", "revoke", str(root), str(ids["LBTB"])]) == 0
    capsys.readouterr()
    assert ims.main(["keys", "list", str(root / "trust")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["KEY", "ID", "STATION"]
    rows = {line.split()[1]: line.split() for line in lines[1:]}
    assert rows["LBTB"][0] == str(ids["LBTB"]) and rows["LBTB"][2] == "ed25519" and rows["LBTB"][-1] != "-"
    assert rows["H04N"][2] == "ecdsa-p256" and rows["H04N"][-1] == "-"
    signer = StationSigner.load(root / "issued" / f"H04N-{ids['H04N']}")
    assert TrustStore.load(root / "trust").verify(signer.key_id, DATA, signer.sign(DATA)).station == "H04N"
    assert ims.main(["keys", "revoke", str(root), "99"]) == 1
    assert "key id 99 is not in the trust store" in capsys.readouterr().err
    assert ims.main(["keys", "issue", str(tmp_path / "empty"), "LBTB"]) == 1
    assert "run 'ims keys ca-init' first" in capsys.readouterr().err


def _ns(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000


@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "ed25519", "dsa"])
def test_prehashed_verifier_agrees_with_the_plain_one(ca, algorithm):
    """The IDC's verifier workers get digests, not data: same verdicts for every algorithm."""
    if algorithm == "dsa":
        key, cert = _legacy_dsa_station("LBTB")
        r, s = decode_dss_signature(key.sign(DATA, hashes.SHA1()))
        public, value = cert.public_key(), r.to_bytes(20, "big") + s.to_bytes(20, "big")
    else:
        signer = _signer(ca.issue("LBTB", algorithm))
        public, value = signer.certificate.public_key(), signer.sign(DATA)
    digest = digest_function(public)
    expected = {"ecdsa-p256": hashlib.sha256(DATA).digest(), "dsa": hashlib.sha1(DATA).digest()}
    assert digest(DATA) == expected.get(algorithm, DATA)
    plain, prehashed = raw_verifier(public), raw_verifier(public, prehashed=True)
    plain(DATA, value)
    prehashed(digest(DATA), value)
    for check, data in ((plain, DATA[:-1]), (prehashed, digest(DATA[:-1]))):
        with pytest.raises(InvalidSignatureValue, match="does not match"):
            check(data, value)


# ---- IDC receiver keys ------------------------------------------------------------------------------


def test_idc_keys_and_station_keys_never_pass_for_each_other(ca):
    station = _signer(ca.issue("STA1"))
    idc = _signer(ca.issue_idc("IDC"))
    assert (idc.station, idc.role, station.role) == ("IDC", Role.IDC, Role.STATION)
    stations, idcs = ca.trust_store(), TrustStore.load(ca.trust_dir, role=Role.IDC)
    assert [k.key_id for k in idcs.keys] == [idc.key_id]
    assert idcs.verify(idc.key_id, DATA, idc.sign(DATA)).station == "IDC"
    with pytest.raises(SignatureError) as refused:
        idcs.verify(station.key_id, DATA, station.sign(DATA))  # a station key is no IDC key
    assert refused.value.reason is Reason.UNKNOWN_KEY
    with pytest.raises(SignatureError) as refused:
        stations.verify(idc.key_id, DATA, idc.sign(DATA))  # and the IDC's key signs no station frame
    assert refused.value.reason is Reason.UNKNOWN_KEY


def test_a_certificate_in_the_wrong_folder_is_refused_by_name(ca):
    station = ca.issue("STA1")
    shutil.copy(station.bundle / "cert.pem", ca.trust_dir / "idc" / "STA1.pem")
    with pytest.raises(KeyMaterialError, match=r"idc/STA1.pem: station certificate, not allowed in idc/"):
        TrustStore.load(ca.trust_dir, role=Role.IDC)
    (ca.trust_dir / "idc" / "STA1.pem").unlink()
    with pytest.raises(KeyMaterialError, match="no IDC certificate here; issue one"):
        TrustStore.load(ca.trust_dir, role=Role.IDC)
    idc = ca.issue_idc()
    shutil.copy(idc.bundle / "cert.pem", ca.trust_dir / "stations" / "IDC.pem")
    with pytest.raises(KeyMaterialError, match="IDC.pem: idc certificate, not allowed in stations/"):
        ca.trust_store()


def test_idc_key_revoked_like_a_station_key(ca):
    idc = _signer(ca.issue_idc())
    assert ca.revoke(idc.key_id) == "IDC"
    with pytest.raises(SignatureError) as refused:
        TrustStore.load(ca.trust_dir, role=Role.IDC).verify(idc.key_id, DATA, idc.sign(DATA))
    assert refused.value.reason is Reason.REVOKED


def test_cli_issues_and_lists_idc_keys(tmp_path, monkeypatch, capsys):
    from station import ims

    monkeypatch.setattr(ims, "COMMAND_MODULES", {"keys": "gci_link.keys_cli"})
    root = tmp_path / "netca"
    assert ims.main(["keys", "ca-init", str(root)]) == 0
    assert ims.main(["keys", "issue", str(root), "STA1"]) == 0
    assert ims.main(["keys", "issue-idc", str(root)]) == 0
    (idc,) = TrustStore.load(root / "trust", role=Role.IDC).keys
    assert f"issued key id {idc.key_id} for IDC IDC" in capsys.readouterr().out
    assert ims.main(["keys", "list", str(root)]) == 0
    rows = {line.split()[1]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["IDC"][:4] == [str(idc.key_id), "IDC", "ecdsa-p256", "(IDC)"]
    assert rows["STA1"][3] != "(IDC)"
    assert ims.main(["keys", "issue-idc", str(root), "bad/name"]) == 1
    assert "must be 1-8 characters" in capsys.readouterr().err


# ---- legacy keys from outside the CA: ims keys import ----------------------------------------------


def _dsa_value(key: dsa.DSAPrivateKey, data: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(data, hashes.SHA1()))
    return r.to_bytes(20, "big") + s.to_bytes(20, "big")


def test_cli_imports_a_legacy_public_key_under_its_key_id_and_revokes_it(tmp_path, monkeypatch, capsys):
    from station import ims

    monkeypatch.setattr(ims, "COMMAND_MODULES", {"keys": "gci_link.keys_cli"})
    root = tmp_path / "netca"
    assert ims.main(["keys", "ca-init", str(root)]) == 0
    legacy = dsa.generate_private_key(1024)  # a real station's kind of key: 40-byte values
    pem = tmp_path / "lbtb.pub.pem"
    pem.write_bytes(legacy.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
    capsys.readouterr()
    assert ims.main(["keys", "import", str(root), "LBTB", "4242", str(pem)]) == 0
    assert "imported key id 4242 for LBTB" in capsys.readouterr().out
    assert (root / "trust" / "legacy" / "4242.pem").is_file()
    result = TrustStore.load(root / "trust").verify(4242, DATA, _dsa_value(legacy, DATA))
    assert (result.station, result.algorithm) == ("LBTB", "dsa")
    assert ims.main(["keys", "list", str(root)]) == 0
    row = next(line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("4242"))
    assert row[1:4] == ["LBTB", "dsa", "(legacy)"]

    # what cannot be imported is refused, naming what is wrong, and changes nothing
    other = tmp_path / "ec.pub.pem"
    other.write_bytes(dsa.generate_private_key(2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    cases = [
        (["LBTB", "4242", str(pem)], "key id 4242 is taken in the trust store (LBTB"),
        (["LBTB", "0", str(pem)], "key id 0 is outside 1..2147483647"),
        (["LBTB", "77", str(tmp_path / "missing.pem")], "missing.pem: cannot read public key"),
        (["LBTB", "77", str(root / "trust" / "revoked.pem")], "revoked.pem: not a PEM public key"),
        (["LBTB", "77", str(other)], "ec.pub.pem: DSA key with a 256-bit q"),
        (["TOO-LONG-NAME", "77", str(pem)], "must be 1-8 characters"),
    ]
    for args, error in cases:
        assert ims.main(["keys", "import", str(root), *args]) == 1
        assert error in capsys.readouterr().err
    assert sorted(p.name for p in (root / "trust" / "legacy").iterdir()) == ["4242.pem"]

    # issued by the CA, an imported key is revoked like any other
    assert ims.main(["keys", "revoke", str(root), "4242"]) == 0
    with pytest.raises(SignatureError) as refused:
        TrustStore.load(root / "trust").verify(4242, DATA, _dsa_value(legacy, DATA))
    assert refused.value.reason is Reason.REVOKED
