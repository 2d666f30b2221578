"""The network certificate authority's directory: create it, issue station keys, revoke them.

Layout (``CA_DIR``)::

    private/ca-key.pem                 CA private key (0600, folder 0700); never leaves this machine
    trust/                             the trust store (see gci_link.keys.trust); copy as is to every
                                       receiver, and to every station that checks the IDC's frames
    issued/<NAME>-<key id>/            one bundle per issued key, to install on the station (or receiver):
        key.pem (0600)  cert.pem  ca.pem

Rotation needs no special step: issuing again for the same station gives a second certificate with its
own key id, and both verify until the old one expires or is revoked, so stations switch at their pace.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from gci_link.keys.algorithms import PrivateKey, PublicKey, generate_key
from gci_link.keys.certificates import (
    Role,
    check_issued_by,
    create_ca_certificate,
    from_ns,
    issue_station_certificate,
    key_id_of,
    read_certificate,
    read_private_key,
    signing_hash,
    validate_station_name,
    write_certificate,
    write_crl,
    write_private_key,
)
from gci_link.keys.errors import KeyMaterialError
from gci_link.keys.trust import (
    CA_FILE,
    CRL_FILE,
    IDC_DIR,
    LEGACY_DIR,
    MAX_KEY_ID,
    STATIONS_DIR,
    TrustedKey,
    TrustStore,
)

PRIVATE_DIR = "private"
CA_KEY_FILE = "ca-key.pem"
TRUST_DIR = "trust"
ISSUED_DIR = "issued"
BUNDLE_KEY = "key.pem"
BUNDLE_CERT = "cert.pem"
BUNDLE_CA = "ca.pem"


@dataclass(frozen=True)
class IssuedKey:
    key_id: int
    station: str  # the certificate's name: a station's, or an IDC receiver's responder name
    bundle: Path


class CertificateAuthority:
    def __init__(self, root: Path, key: PrivateKey, cert: x509.Certificate, clock: Callable[[], int]) -> None:
        self.root = root
        self.key = key
        self.certificate = cert
        self._clock = clock

    @property
    def trust_dir(self) -> Path:
        return self.root / TRUST_DIR

    @classmethod
    def create(
        cls,
        directory: Path | str,
        name: str = "IMS network CA",
        algorithm: str = "ecdsa-p256",
        days: int = 3650,
        clock: Callable[[], int] = time.time_ns,
    ) -> CertificateAuthority:
        root = Path(directory)
        if (root / PRIVATE_DIR / CA_KEY_FILE).exists():
            raise KeyMaterialError(
                root / PRIVATE_DIR / CA_KEY_FILE, "a CA already exists here; refusing to replace it"
            )
        key = generate_key(algorithm)
        cert = create_ca_certificate(key, name, clock(), days)
        (root / PRIVATE_DIR).mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(root / PRIVATE_DIR, 0o700)
        (root / TRUST_DIR / STATIONS_DIR).mkdir(parents=True, exist_ok=True)
        (root / TRUST_DIR / IDC_DIR).mkdir(exist_ok=True)
        (root / ISSUED_DIR).mkdir(exist_ok=True)
        write_private_key(root / PRIVATE_DIR / CA_KEY_FILE, key)
        write_certificate(root / TRUST_DIR / CA_FILE, cert)
        ca = cls(root, key, cert, clock)
        ca._write_revocations([])
        return ca

    @classmethod
    def open(cls, directory: Path | str, clock: Callable[[], int] = time.time_ns) -> CertificateAuthority:
        root = Path(directory)
        key_path = root / PRIVATE_DIR / CA_KEY_FILE
        if not key_path.exists():
            raise KeyMaterialError(key_path, "no CA private key; run 'ims keys ca-init' first")
        key = read_private_key(key_path)
        cert = read_certificate(root / TRUST_DIR / CA_FILE)
        if key.public_key() != cert.public_key():
            raise KeyMaterialError(
                root / TRUST_DIR / CA_FILE, f"does not match the CA private key {key_path}"
            )
        return cls(root, key, cert, clock)

    def trust_store(self) -> TrustStore:
        return TrustStore.load(self.trust_dir, self._clock)

    def issue(self, station: str, algorithm: str = "ecdsa-p256", days: int = 365) -> IssuedKey:
        """New key pair and certificate for ``station``; writes its bundle and adds it to the trust store."""
        return self._issue(station, Role.STATION, algorithm, days)

    def issue_idc(self, name: str = "IDC", algorithm: str = "ecdsa-p256", days: int = 365) -> IssuedKey:
        """New key pair and certificate for an IDC receiver whose frames carry ``name`` as creator (its
        ``responder_name``); the bundle goes to the receiver, the certificate to the trust store's idc/."""
        return self._issue(name, Role.IDC, algorithm, days)

    def _issue(self, name: str, role: Role, algorithm: str, days: int) -> IssuedKey:
        validate_station_name(name)
        taken = {k.key_id for k in self._every_key()}
        key = generate_key(algorithm)

        def certificate() -> x509.Certificate:
            return issue_station_certificate(
                self.key, self.certificate, name, key.public_key(), self._clock(), days, role
            )

        cert = certificate()
        while key_id_of(cert) in taken:  # a 31-bit id can collide; a new serial gives a new id
            cert = certificate()
        key_id = key_id_of(cert)
        bundle = self.root / ISSUED_DIR / f"{name}-{key_id}"
        bundle.mkdir(parents=True, mode=0o700)
        write_private_key(bundle / BUNDLE_KEY, key)
        write_certificate(bundle / BUNDLE_CERT, cert)
        write_certificate(bundle / BUNDLE_CA, self.certificate)
        folder = self.trust_dir / (IDC_DIR if role is Role.IDC else STATIONS_DIR)
        folder.mkdir(exist_ok=True)  # a CA made before IDC keys existed has no idc/ yet
        write_certificate(folder / f"{name}-{key_id}.pem", cert)
        return IssuedKey(key_id, name, bundle)

    def import_key(self, station: str, key_id: int, public_key: PublicKey, days: int = 365) -> Path:
        """Trust a key made outside this CA (a real station's legacy key) under the key id its frames
        already carry: the CA certifies ``public_key`` for ``station`` and the certificate goes to
        ``trust/legacy/<key id>.pem``, where receivers read it as a pinned legacy key; being the CA's,
        it can be revoked like any other. Returns the certificate's path."""
        validate_station_name(station)
        if not 0 < key_id <= MAX_KEY_ID:
            raise ValueError(f"key id {key_id} is outside 1..{MAX_KEY_ID} (CD-1.1 ids are positive, 32-bit)")
        holder = next((k for k in self._every_key() if k.key_id == key_id), None)
        if holder is not None:
            raise ValueError(f"key id {key_id} is taken in the trust store ({holder.station}, {holder.path})")
        cert = issue_station_certificate(
            self.key, self.certificate, station, public_key, self._clock(), days, Role.STATION
        )
        path = self.trust_dir / LEGACY_DIR / f"{key_id}.pem"
        path.parent.mkdir(exist_ok=True)
        write_certificate(path, cert)
        return path

    def _every_key(self) -> list[TrustedKey]:
        """The stations' keys and the IDC receivers' alike (one key id space, one revocation list)."""
        keys = self.trust_store().keys
        if any((self.trust_dir / IDC_DIR).glob("*.pem")):
            keys += TrustStore.load(self.trust_dir, self._clock, Role.IDC).keys
        return keys

    def revoke(self, key_id: int) -> str:
        """Add the certificate of ``key_id`` to the revocation list; returns the station (or IDC) it
        belonged to."""
        keys = self._every_key()
        entry = next((k for k in keys if k.key_id == key_id), None)
        if entry is None:
            raise KeyError(f"key id {key_id} is not in the trust store {self.trust_dir}")
        if entry.legacy and not self._issued_here(entry.path):
            raise ValueError(f"key id {key_id} is a pinned legacy certificate: delete {entry.path} instead")
        if entry.revoked_ns is None:
            revoked = [(k.serial, k.revoked_ns) for k in keys if k.revoked_ns is not None]
            self._write_revocations([*revoked, (entry.serial, self._clock())])
        return entry.station

    def _issued_here(self, path: Path) -> bool:
        try:
            check_issued_by(read_certificate(path), self.certificate)
        except ValueError:
            return False
        return True

    def _write_revocations(self, revoked: list[tuple[int, int]]) -> None:
        now = from_ns(self._clock())
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(now)
            .next_update(max(self.certificate.not_valid_after_utc, now + dt.timedelta(days=1)))
        )
        for serial, revoked_ns in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(from_ns(revoked_ns))
                .build()
            )
        write_crl(self.trust_dir / CRL_FILE, builder.sign(self.key, signing_hash(self.key)))
