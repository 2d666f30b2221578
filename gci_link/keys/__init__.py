"""Signing keys of the GCI link: network CA, station certificates, key ids, signing, verification.

Everything here signs and verifies plain bytes; which bytes a CD-1.1 frame or channel signature covers
is the codec's business (gci_link.cd11).
"""

from gci_link.keys.algorithms import (
    SIGNING_ALGORITHMS,
    InvalidSignatureValue,
    algorithm_of,
    generate_key,
    sign_raw,
    signature_size,
    verify_raw,
)
from gci_link.keys.authority import CertificateAuthority, IssuedKey
from gci_link.keys.certificates import Role, key_id_of, role_of, station_of
from gci_link.keys.errors import KeyMaterialError, Reason, SignatureError, UnsupportedKeyError
from gci_link.keys.signer import StationSigner
from gci_link.keys.trust import TrustedKey, TrustStore, VerifyResult

__all__ = [
    "SIGNING_ALGORITHMS",
    "CertificateAuthority",
    "InvalidSignatureValue",
    "IssuedKey",
    "KeyMaterialError",
    "Reason",
    "Role",
    "SignatureError",
    "StationSigner",
    "TrustStore",
    "TrustedKey",
    "UnsupportedKeyError",
    "VerifyResult",
    "algorithm_of",
    "generate_key",
    "key_id_of",
    "role_of",
    "sign_raw",
    "signature_size",
    "station_of",
    "verify_raw",
]
