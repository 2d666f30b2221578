"""A deterministic mutator: the bounded fuzz run in ``make test`` and the seeds of a reproducible corpus.

Not coverage-guided (atheris does that in ``make fuzz``); it applies the mutations that find most parser
bugs — bit flips, interesting integers at random offsets, truncation, insertion, splicing, dictionary
tokens — and, for TOML, swaps a value for one validators tend to forget (nan, inf, huge integers, wrong
types). The same seed gives the same inputs on every machine.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence

_INTERESTING = (0, 1, 2, 4, 16, 36, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000,
                0xFFFFFFFF)
_VALUE = re.compile(rb"(=[ \t]*)([^\n#]*)")


def mutants(seeds: Sequence[bytes], count: int, seed: int, dictionary: Sequence[bytes] = (),
            toml: bool = False) -> Iterator[bytes]:
    """``count`` inputs derived from ``seeds``, each by one to four stacked mutations."""
    rng = random.Random(seed)
    for _ in range(count):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            if toml and rng.random() < 0.6:
                _toml_mutation(rng, data, dictionary)
            else:
                _byte_mutation(rng, data, seeds, dictionary)
        yield bytes(data)


def _byte_mutation(rng: random.Random, data: bytearray, seeds: Sequence[bytes],
                   dictionary: Sequence[bytes]) -> None:
    op = rng.randrange(7)
    at = rng.randrange(len(data) + 1)
    if op == 0 and data:
        bit = rng.randrange(8 * len(data))
        data[bit // 8] ^= 1 << (bit % 8)
    elif op == 1 and len(data) >= 4:
        at = rng.randrange(len(data) - 3)
        value = rng.choice(_INTERESTING) + rng.choice((-1, 0, 0, 1))
        data[at : at + 4] = (value % 2**32).to_bytes(4, rng.choice(("big", "little")))
    elif op == 2 and data:
        data[rng.randrange(len(data))] = rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))
    elif op == 3:
        del data[at:]
    elif op == 4:
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    elif op == 5:
        other = rng.choice(seeds)
        data[at:] = other[rng.randrange(len(other) + 1) :]
    elif dictionary:
        data[at:at] = rng.choice(dictionary)


def _toml_mutation(rng: random.Random, data: bytearray, dictionary: Sequence[bytes]) -> None:
    values = list(_VALUE.finditer(data))
    lines = data.split(b"\n")
    op = rng.randrange(4)
    if op == 0 and values and dictionary:  # one value replaced by a token
        m = rng.choice(values)
        data[m.start(2) : m.end(2)] = rng.choice(dictionary)
    elif op == 1 and lines:  # a line dropped
        del lines[rng.randrange(len(lines))]
        data[:] = b"\n".join(lines)
    elif op == 2 and lines:  # a line repeated elsewhere
        line = rng.choice(lines)
        lines.insert(rng.randrange(len(lines) + 1), line)
        data[:] = b"\n".join(lines)
    elif values:  # a value's digits or text edited in place
        m = rng.choice(values)
        if m.end(2) > m.start(2):
            at = rng.randrange(m.start(2), m.end(2))
            data[at : at + 1] = rng.choice((b"9", b"0", b"-", b"e9", b"", b"x", b"\xc3\xa9"))
