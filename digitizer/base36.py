"""Base-36 labels used by Güralp for system and stream IDs (digits 0-9 then A-Z, no leading zeros)."""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_VALUES = {ch: i for i, ch in enumerate(ALPHABET)}


def to_base36(value: int) -> str:
    """Label of a non-negative integer; 0 is ``"0"`` (Güralp drops leading zero digits)."""
    if value < 0:
        raise ValueError(f"base-36 value must not be negative, got {value}")
    digits = []
    while True:
        value, digit = divmod(value, 36)
        digits.append(ALPHABET[digit])
        if value == 0:
            return "".join(reversed(digits))


def from_base36(label: str) -> int:
    """Integer of a label (case-insensitive); raises ValueError naming the first bad character."""
    if not label:
        raise ValueError("empty base-36 label")
    value = 0
    for pos, ch in enumerate(label.upper()):
        digit = _VALUES.get(ch)
        if digit is None:
            raise ValueError(f"character {ch!r} at position {pos} of {label!r} is not base-36")
        value = value * 36 + digit
    return value
