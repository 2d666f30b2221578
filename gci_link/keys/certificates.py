"""X.509 certificates of the network CA, stations and IDC receivers: building, reading, writing, key ids.

A station certificate names the station in its subject CN (so a receiver can match the frame creator)
and is identified on the wire by a key id derived from the certificate itself, so nobody has to assign
or look up numbers: the same certificate gives the same id on every machine and after every reload.
An IDC receiver's certificate is built the same way (CN = the responder name its frames carry as
creator) and marked by its subject OU, so that a station key can never pass for the IDC nor the IDC's
key for a station, whatever folder a certificate file is copied into.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gci_link.durable import write_atomically
from gci_link.keys.algorithms import (
    LEGACY_DSA,
    SIGNING_ALGORITHMS,
    PrivateKey,
    PublicKey,
    algorithm_of,
    supported_public_key,
)
from gci_link.keys.errors import KeyMaterialError, UnsupportedKeyError

# The station name must fit the 8-byte CD-1.1 frame creator field and be safe in a file name.
_STATION_NAME = re.compile(r"[A-Za-z0-9_-]{1,8}")
_KEY_ID_MASK = 0x7FFF_FFFF  # CD-1.1 carries a signed 32-bit id; keep it positive

IDC_UNIT = "IDC receiver"  # subject OU of an IDC receiver's certificate; station certificates have no OU


class Role(StrEnum):
    """Whose frames a certificate's key signs."""

    STATION = "station"
    IDC = "idc"


# Certificates start an hour in the past so a CA clock slightly ahead of a receiver's does not
# produce a certificate that is "not yet valid" when first used.
CLOCK_SKEW_ALLOWANCE = dt.timedelta(hours=1)


def validate_station_name(name: str) -> str:
    if not _STATION_NAME.fullmatch(name):
        raise ValueError(f"station name {name!r} must be 1-8 characters of A-Z, a-z, 0-9, '_' or '-'")
    return name


def key_id_of(cert: x509.Certificate) -> int:
    """Stable, positive, non-zero 31-bit id: the first non-zero 31-bit word of SHA-256(certificate DER)."""
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
    words = (int.from_bytes(digest[i : i + 4], "big") & _KEY_ID_MASK for i in range(0, len(digest), 4))
    return next(word for word in words if word)


def station_of(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        raise ValueError("certificate subject has no common name (CN) naming the station")
    return str(names[0].value)


def role_of(cert: x509.Certificate) -> Role:
    units = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    return Role.IDC if any(unit.value == IDC_UNIT for unit in units) else Role.STATION


def to_ns(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def from_ns(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC)


def signing_hash(key: PrivateKey) -> hashes.SHA256 | None:
    """Hash argument cryptography expects when the CA signs with ``key`` (Ed25519 takes none)."""
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: PublicKey, now_ns: int, days: int
) -> x509.CertificateBuilder:
    if days < 1:
        raise ValueError(f"validity must be at least 1 day, got {days}")
    start = from_ns(now_ns)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start - CLOCK_SKEW_ALLOWANCE)
        .not_valid_after(start + dt.timedelta(days=days))
    )


def create_ca_certificate(key: PrivateKey, name: str, now_ns: int, days: int) -> x509.Certificate:
    """Self-signed certificate of the network CA (may sign certificates and revocation lists only)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        _builder(subject, subject, key.public_key(), now_ns, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return builder.sign(key, signing_hash(key))


def issue_station_certificate(
    ca_key: PrivateKey,
    ca_cert: x509.Certificate,
    station: str,
    public_key: PublicKey,
    now_ns: int,
    days: int,
    role: Role = Role.STATION,
) -> x509.Certificate:
    """Certificate binding a station's (or with ``Role.IDC`` an IDC receiver's) signing key to its name,
    signed by the network CA."""
    algorithm_of(public_key)
    names = [x509.NameAttribute(NameOID.COMMON_NAME, validate_station_name(station))]
    if role is Role.IDC:
        names.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, IDC_UNIT))
    subject = x509.Name(names)
    builder = (
        _builder(subject, ca_cert.subject, public_key, now_ns, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    return builder.sign(ca_key, signing_hash(ca_key))


def check_issued_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> None:
    """Raise ValueError unless ``ca_cert`` signed ``cert``."""
    try:
        cert.verify_directly_issued_by(ca_cert)
    except Exception as exc:  # cryptography raises ValueError, TypeError or InvalidSignature here
        raise ValueError(f"not issued by this network's CA ({cert.issuer.rfc4514_string()}): {exc}") from None


def read_certificate(path: Path) -> x509.Certificate:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyMaterialError(path, f"cannot read certificate: {exc.strerror}") from None
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise KeyMaterialError(path, f"not a PEM X.509 certificate ({exc})") from None


def read_public_key(path: Path) -> PublicKey:
    """A PEM public key (SubjectPublicKeyInfo) of a kind CD-1.1 links verify with."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyMaterialError(path, f"cannot read public key: {exc.strerror}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise KeyMaterialError(path, f"not a PEM public key ({exc})") from None
    try:
        return supported_public_key(key)
    except UnsupportedKeyError as exc:
        raise KeyMaterialError(path, str(exc)) from None


def read_private_key(path: Path) -> PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyMaterialError(path, f"cannot read private key: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyMaterialError(path, f"not an unencrypted PEM private key ({exc})") from None
    try:
        algorithm_of(key.public_key())
    except UnsupportedKeyError as exc:
        raise KeyMaterialError(path, str(exc)) from None
    if not isinstance(key, PrivateKey):  # a legacy DSA key passes algorithm_of but cannot sign here
        signing = " or ".join(SIGNING_ALGORITHMS)
        raise KeyMaterialError(path, f"{LEGACY_DSA} keys only verify legacy stations; sign with {signing}")
    return key


def write_private_key(path: Path, key: PrivateKey) -> None:
    """PKCS#8 PEM, readable by the owner only (0600)."""
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_atomically(path, pem, 0o600)


def write_certificate(path: Path, cert: x509.Certificate) -> None:
    write_atomically(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def write_crl(path: Path, crl: x509.CertificateRevocationList) -> None:
    write_atomically(path, crl.public_bytes(serialization.Encoding.PEM), 0o644)
