"""Trust stores: which key ids a receiver accepts, for which station, until when; and which IDC keys a
station believes.

Layout of a trust store directory (``ims keys ca-init`` creates it as ``CA_DIR/trust``)::

    ca.pem                       the network CA certificate (self-signed)
    revoked.pem                  certificate revocation list signed by the CA
    stations/*.pem               station certificates issued by the CA (file names are informative only)
    legacy/<key id>.pem          optional: certificates of keys made outside this CA (legacy stations),
                                 whose key ids were assigned elsewhere and so are taken from the file
                                 name; ``ims keys import`` writes them, issued by the CA (so they can be
                                 revoked), or one is pinned by hand
    idc/*.pem                    IDC receiver certificates issued by the CA (``ims keys issue-idc``)

One directory serves both ends, loaded for one role at a time: a receiver loads the station
certificates (``Role.STATION``, the default) and never an IDC's; a station loads only the IDC
certificates (``Role.IDC``). Each certificate must carry the role of its folder (certificates.role_of).

Every file is checked when the store loads and a problem raises :class:`KeyMaterialError` naming the
file, because a trust store that silently skips a certificate turns into data rejected hours later.
Validity is checked at the time a frame arrives (not its data time): a station that sends a backlog
after an outage legitimately signs old data with its current key.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPublicKeyTypes

from gci_link.keys.algorithms import (
    InvalidSignatureValue,
    PublicKey,
    algorithm_of,
    raw_verifier,
    supported_public_key,
)
from gci_link.keys.certificates import (
    Role,
    check_issued_by,
    key_id_of,
    read_certificate,
    role_of,
    station_of,
    to_ns,
)
from gci_link.keys.errors import KeyMaterialError, Reason, SignatureError, UnsupportedKeyError

CA_FILE = "ca.pem"
CRL_FILE = "revoked.pem"
STATIONS_DIR = "stations"
LEGACY_DIR = "legacy"
IDC_DIR = "idc"
MAX_KEY_ID = 0x7FFF_FFFF  # CD-1.1 carries a signed 32-bit key id; 0 means unsigned


@dataclass(frozen=True)
class TrustedKey:
    key_id: int
    station: str
    algorithm: str
    not_before_ns: int
    not_after_ns: int
    revoked_ns: int | None
    path: Path
    public_key: PublicKey
    serial: int
    legacy: bool


@dataclass(frozen=True)
class VerifyResult:
    key_id: int
    station: str
    algorithm: str


class TrustStore:
    """Verifies signature values by key id against the certificates of one trust store directory."""

    def __init__(
        self, keys: dict[int, TrustedKey], ca_cert: x509.Certificate, clock: Callable[[], int] = time.time_ns
    ) -> None:
        self._keys = keys
        # key id -> its verifier: built once, since a receiver checks thousands of values a second
        self._verifiers = {key_id: raw_verifier(entry.public_key) for key_id, entry in keys.items()}
        # key id -> what a value that verifies with it means: immutable, so one object shared by all
        self._results = {
            key_id: VerifyResult(key_id, entry.station, entry.algorithm) for key_id, entry in keys.items()
        }
        self.ca_certificate = ca_cert
        self._clock = clock

    @classmethod
    def load(
        cls, directory: Path | str, clock: Callable[[], int] = time.time_ns, role: Role = Role.STATION
    ) -> TrustStore:
        """The certificates of ``role`` in a trust store directory: the stations' for a receiver (with
        the pinned legacy ones), the IDC receivers' for a station (there must be at least one)."""
        root = Path(directory)
        if not root.is_dir():
            raise KeyMaterialError(root, "trust store directory does not exist")
        ca_cert = _load_ca(root / CA_FILE)
        revoked = _load_revocations(root / CRL_FILE, ca_cert)
        keys: dict[int, TrustedKey] = {}
        folder = root / (IDC_DIR if role is Role.IDC else STATIONS_DIR)
        for path in sorted(folder.glob("*.pem")):
            cert = read_certificate(path)
            try:
                check_issued_by(cert, ca_cert)
            except ValueError as exc:
                raise KeyMaterialError(path, str(exc)) from None
            if role_of(cert) is not role:  # e.g. a station's certificate copied where IDC keys go
                raise KeyMaterialError(path, f"{role_of(cert)} certificate, not allowed in {folder.name}/")
            _add(keys, _trusted(path, cert, key_id_of(cert), revoked.get(cert.serial_number), legacy=False))
        if role is Role.IDC:
            if not keys:
                raise KeyMaterialError(folder, "no IDC certificate here; issue one with 'ims keys issue-idc'")
            return cls(keys, ca_cert, clock)
        for path in sorted((root / LEGACY_DIR).glob("*.pem")):
            if not path.stem.isdigit() or not 0 < int(path.stem) <= MAX_KEY_ID:
                raise KeyMaterialError(
                    path, f"legacy certificate files must be named <key id>.pem, 1..{MAX_KEY_ID}"
                )
            cert = read_certificate(path)
            revoked_ns = _revoked_if_ours(cert, ca_cert, revoked)
            _add(keys, _trusted(path, cert, int(path.stem), revoked_ns, legacy=True))
        return cls(keys, ca_cert, clock)

    @property
    def keys(self) -> list[TrustedKey]:
        return sorted(self._keys.values(), key=lambda k: (k.station, k.not_before_ns, k.key_id))

    def station_for(self, key_id: int) -> str:
        """Station named by the certificate of ``key_id``; SignatureError(UNKNOWN_KEY) if there is none."""
        return self._lookup(key_id).station

    def verify(self, key_id: int, data: bytes, signature: bytes, at_ns: int | None = None) -> VerifyResult:
        """Check ``signature`` over ``data`` with key ``key_id`` at ``at_ns`` (default: now).

        Raises :class:`SignatureError` with the key id and a :class:`Reason`. Safe to call from several
        threads at once (the store is read-only after loading).
        """
        result = self.admit(key_id, at_ns)
        try:
            self._verifiers[key_id](data, signature)
        except InvalidSignatureValue as exc:
            raise bad_signature(key_id, str(exc)) from None
        return result

    def admit(self, key_id: int, at_ns: int | None = None) -> VerifyResult:
        """Everything but the mathematics: what a value made with key ``key_id`` means if it verifies, when
        the key may be believed at ``at_ns`` (default: now); raises :class:`SignatureError` otherwise
        (unknown, revoked, not yet or no longer valid)."""
        entry = self._lookup(key_id)
        if entry.revoked_ns is not None:
            raise SignatureError(key_id, Reason.REVOKED, f"certificate of {entry.station} revoked")
        now = self._clock() if at_ns is None else at_ns
        if now < entry.not_before_ns:
            raise SignatureError(key_id, Reason.NOT_YET_VALID, f"certificate of {entry.station} starts later")
        if now > entry.not_after_ns:
            raise SignatureError(key_id, Reason.EXPIRED, f"certificate of {entry.station} has expired")
        return self._results[key_id]

    def _lookup(self, key_id: int) -> TrustedKey:
        entry = self._keys.get(key_id)
        if entry is None:
            raise _missing(key_id)
        return entry


def bad_signature(key_id: int, detail: str) -> SignatureError:
    """The error of a value whose mathematics failed (wrong size, or no match)."""
    return SignatureError(key_id, Reason.BAD_SIGNATURE, detail)


def _missing(key_id: int) -> SignatureError:
    if key_id == 0:
        return SignatureError(0, Reason.UNSIGNED)
    return SignatureError(key_id, Reason.UNKNOWN_KEY, "no certificate in the trust store")


def _load_ca(path: Path) -> x509.Certificate:
    cert = read_certificate(path)
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is None or not constraints.ca:
        raise KeyMaterialError(path, "certificate is not a CA certificate (basicConstraints CA:TRUE missing)")
    try:
        check_issued_by(cert, cert)
    except ValueError:
        raise KeyMaterialError(path, "CA certificate is not self-signed") from None
    return cert


def _load_revocations(path: Path, ca_cert: x509.Certificate) -> dict[int, int]:
    """Serial number -> revocation time (ns) from the CA-signed revocation list."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyMaterialError(path, f"cannot read revocation list: {exc.strerror}") from None
    try:
        crl = x509.load_pem_x509_crl(data)
    except ValueError as exc:
        raise KeyMaterialError(path, f"not a PEM X.509 revocation list ({exc})") from None
    ca_key = cast(CertificateIssuerPublicKeyTypes, ca_cert.public_key())  # it signed itself (_load_ca)
    if crl.issuer != ca_cert.subject or not crl.is_signature_valid(ca_key):
        raise KeyMaterialError(path, "revocation list is not signed by this network's CA")
    return {entry.serial_number: to_ns(entry.revocation_date_utc) for entry in crl}


def _revoked_if_ours(
    cert: x509.Certificate, ca_cert: x509.Certificate, revoked: dict[int, int]
) -> int | None:
    """When a legacy key's certificate was issued by this CA (``ims keys import``), the revocation list
    covers it; one pinned by hand answers to nobody's list (it is removed by deleting its file)."""
    try:
        check_issued_by(cert, ca_cert)
    except ValueError:
        return None
    return revoked.get(cert.serial_number)


def _trusted(
    path: Path, cert: x509.Certificate, key_id: int, revoked_ns: int | None, legacy: bool
) -> TrustedKey:
    try:
        station = station_of(cert)
        public_key = supported_public_key(cert.public_key())
        algorithm = algorithm_of(public_key)
    except (ValueError, UnsupportedKeyError) as exc:
        raise KeyMaterialError(path, str(exc)) from None
    return TrustedKey(
        key_id=key_id,
        station=station,
        algorithm=algorithm,
        not_before_ns=to_ns(cert.not_valid_before_utc),
        not_after_ns=to_ns(cert.not_valid_after_utc),
        revoked_ns=revoked_ns,
        path=path,
        public_key=public_key,
        serial=cert.serial_number,
        legacy=legacy,
    )


def _add(keys: dict[int, TrustedKey], entry: TrustedKey) -> None:
    other = keys.get(entry.key_id)
    if other is not None:
        raise KeyMaterialError(entry.path, f"key id {entry.key_id} is also claimed by {other.path}")
    keys[entry.key_id] = entry
