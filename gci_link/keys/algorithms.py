"""Raw, fixed-size signature values for the algorithms CD-1.1 links use.

CD-1.1 carries a signature as an opaque byte string of declared length, so values travel as raw
concatenated integers (r||s) rather than DER, whose length varies from one signature to the next:

========== ============== ======= ==================================================================
algorithm  hash           bytes   use
========== ============== ======= ==================================================================
ecdsa-p256 SHA-256        64      default for new stations
ed25519    (built in)     64      selectable
dsa        SHA-1          40      verification only: legacy stations (160-bit q, r||s of 20 bytes each)
========== ============== ======= ==================================================================

The DSA hash and r||s layout are inferred from the 40-byte values in real frames (specs/cd11.md §9).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)

from gci_link.keys.errors import UnsupportedKeyError

SIGNING_ALGORITHMS = ("ecdsa-p256", "ed25519")
LEGACY_DSA = "dsa"

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | dsa.DSAPublicKey

_ECDSA_COMPONENT = 32
_DSA_COMPONENT = 20


class InvalidSignatureValue(Exception):
    """The value does not verify; the message says whether the length or the mathematics failed."""


def generate_key(algorithm: str) -> PrivateKey:
    if algorithm == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise UnsupportedKeyError(
        f"cannot generate {algorithm!r} keys; choose one of {', '.join(SIGNING_ALGORITHMS)}"
    )


def algorithm_of(public_key: object) -> str:
    """Name of the algorithm a public key verifies with; refuses anything else (RSA, other curves...)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if isinstance(public_key.curve, ec.SECP256R1):
            return "ecdsa-p256"
        raise UnsupportedKeyError(f"ECDSA curve {public_key.curve.name} is not supported (only P-256)")
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(public_key, dsa.DSAPublicKey):
        q_bits = public_key.parameters().parameter_numbers().q.bit_length()
        if q_bits != 8 * _DSA_COMPONENT:
            raise UnsupportedKeyError(
                f"DSA key with a {q_bits}-bit q; only legacy 160-bit q (40-byte values)"
            )
        return LEGACY_DSA
    raise UnsupportedKeyError(f"{type(public_key).__name__} keys are not supported")


def supported_public_key(public_key: object) -> PublicKey:
    """``public_key`` typed as a key CD-1.1 links use; UnsupportedKeyError (see algorithm_of) if it is not.

    For keys taken from certificates, which cryptography types as any kind of key.
    """
    algorithm_of(public_key)  # returns only for the key types PublicKey names
    return cast(PublicKey, public_key)


def signature_size(public_key: PublicKey) -> int:
    """Length in bytes of every signature value made with this key's algorithm."""
    return {"ecdsa-p256": 2 * _ECDSA_COMPONENT, "ed25519": 64, LEGACY_DSA: 2 * _DSA_COMPONENT}[
        algorithm_of(public_key)
    ]


def sign_raw(private_key: PrivateKey, data: bytes) -> bytes:
    """Sign ``data``; the value has the fixed size of :func:`signature_size`."""
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(data)
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        algorithm_of(private_key.public_key())
        r, s = decode_dss_signature(private_key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(_ECDSA_COMPONENT, "big") + s.to_bytes(_ECDSA_COMPONENT, "big")
    raise UnsupportedKeyError(
        f"cannot sign with {type(private_key).__name__}; use {' or '.join(SIGNING_ALGORITHMS)}"
    )


def digest_function(public_key: PublicKey) -> Callable[[bytes], bytes]:
    """What a ``prehashed`` verifier of this key takes instead of the data: the algorithm's hash of it.
    Ed25519 hashes inside its own mathematics, so its verifier takes the data itself."""
    algorithm = algorithm_of(public_key)
    if algorithm == "ed25519":
        return bytes
    hash_name = "sha256" if algorithm == "ecdsa-p256" else "sha1"
    return lambda data: hashlib.new(hash_name, data).digest()


def raw_verifier(public_key: PublicKey, prehashed: bool = False) -> Callable[[bytes, bytes], None]:
    """A function ``check(data, value)`` for one key that raises :class:`InvalidSignatureValue` if the
    value fails; the algorithm, size and hash are settled once, so a receiver pays only for the maths.
    With ``prehashed`` it takes ``digest_function(public_key)(data)`` instead of the data, so a 32-byte
    digest, not the data, is what travels to a verifier process."""
    algorithm = algorithm_of(public_key)
    expected = signature_size(public_key)
    half = expected // 2

    def wrong_size(signature: bytes) -> InvalidSignatureValue:
        return InvalidSignatureValue(f"value is {len(signature)} bytes, {algorithm} needs {expected}")

    mismatch = "value does not match the data and public key"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        ed_key = public_key

        def check_ed25519(data: bytes, signature: bytes) -> None:
            if len(signature) != expected:
                raise wrong_size(signature)
            try:
                ed_key.verify(signature, data)
            except InvalidSignature:
                raise InvalidSignatureValue(mismatch) from None

        return check_ed25519
    # ECDSA and DSA verify DER; CD-1.1 carries r||s
    dss_key = public_key
    if isinstance(dss_key, ec.EllipticCurvePublicKey):
        ecdsa_key, ecdsa = dss_key, ec.ECDSA(Prehashed(hashes.SHA256()) if prehashed else hashes.SHA256())

        def verify_der(der: bytes, data: bytes) -> None:
            ecdsa_key.verify(der, data, ecdsa)
    else:
        dsa_key, sha1 = dss_key, Prehashed(hashes.SHA1()) if prehashed else hashes.SHA1()

        def verify_der(der: bytes, data: bytes) -> None:
            dsa_key.verify(der, data, sha1)

    def check_dss(data: bytes, signature: bytes) -> None:
        if len(signature) != expected:
            raise wrong_size(signature)
        der = encode_dss_signature(
            int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
        )
        try:
            verify_der(der, data)
        except InvalidSignature:
            raise InvalidSignatureValue(mismatch) from None

    return check_dss


def verify_raw(public_key: PublicKey, data: bytes, signature: bytes) -> None:
    """Check a raw signature value over ``data``; raises :class:`InvalidSignatureValue` if it fails.

    This is also the way to check a legacy DSA value given only the station's certificate:
    ``verify_raw(cert.public_key(), data, value)``. Callers checking many values per key keep a
    :func:`raw_verifier` instead.
    """
    raw_verifier(public_key)(data, signature)
