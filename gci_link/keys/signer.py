"""The signing end: sign bytes with the private key that matches a station's (or an IDC's) certificate."""

from __future__ import annotations

from pathlib import Path

from cryptography import x509

from gci_link.keys.algorithms import PrivateKey, algorithm_of, sign_raw, signature_size, supported_public_key
from gci_link.keys.certificates import key_id_of, read_certificate, read_private_key, role_of, station_of
from gci_link.keys.errors import KeyMaterialError


class StationSigner:
    """Signs with one station key (or an IDC's: ``role``); ``key_id`` is what goes in the CD-1.1
    authentication key id field."""

    def __init__(self, key: PrivateKey, cert: x509.Certificate) -> None:
        if key.public_key() != cert.public_key():
            raise ValueError("private key does not match the certificate's public key")
        public_key = supported_public_key(cert.public_key())
        self.algorithm = algorithm_of(public_key)
        self.key_id = key_id_of(cert)
        self.station = station_of(cert)
        self.role = role_of(cert)
        self.signature_size = signature_size(public_key)
        self.certificate = cert
        self._key = key

    @classmethod
    def load(cls, bundle: Path | str) -> StationSigner:
        """Read ``key.pem`` and ``cert.pem`` from a bundle directory written by ``ims keys issue``."""
        root = Path(bundle)
        key, cert = read_private_key(root / "key.pem"), read_certificate(root / "cert.pem")
        try:
            return cls(key, cert)
        except ValueError as exc:
            raise KeyMaterialError(root, str(exc)) from None

    def sign(self, data: bytes) -> bytes:
        """Raw signature value of exactly ``signature_size`` bytes."""
        return sign_raw(self._key, data)
