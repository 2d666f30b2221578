"""Errors of the keys package: one for broken key material on disk, one for a signature that fails."""

from __future__ import annotations

from enum import Enum
from pathlib import Path


class KeyMaterialError(Exception):
    """Key, certificate, revocation list or directory that cannot be used; names the file and problem."""

    def __init__(self, path: Path | str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = Path(path)
        self.problem = problem


class UnsupportedKeyError(ValueError):
    """A key type or parameter set this project cannot sign or verify with."""


class Reason(Enum):
    """Why a signature was refused; receivers count and report these separately."""

    UNSIGNED = "unsigned"
    UNKNOWN_KEY = "unknown key"
    REVOKED = "revoked"
    EXPIRED = "expired"
    NOT_YET_VALID = "not yet valid"
    BAD_SIGNATURE = "bad signature"


class SignatureError(Exception):
    """A signature that does not verify, with the key id and the reason."""

    def __init__(self, key_id: int, reason: Reason, detail: str = "") -> None:
        text = f"key id {key_id}: {reason.value}"
        super().__init__(f"{text} ({detail})" if detail else text)
        self.key_id = key_id
        self.reason = reason
        self.detail = detail
