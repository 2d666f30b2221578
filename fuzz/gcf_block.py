"""GCF: ``decode_block`` on arbitrary bytes, as a BRP frame carries them and as a padded file block.

Invariants:
- malformed bytes raise GcfFormatError naming a field and an offset inside the block; nothing else;
- a data block's samples are int32, as many as its records say, the first equal to the FIC and the last
  to the RIC, and equal to an independent integration of the differences in plain Python;
- a decoded block encodes again, and that encoding decodes to the same block (nothing the decoder
  accepts is lost or changed by the encoder);
- the same block padded to 1024 bytes (a file block) decodes to the same thing, unless its length is
  what marks 24-bit serial truncation.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from digitizer.gcf import (
    FILE_BLOCK_SIZE,
    HEADER_SIZE,
    GcfBlock,
    GcfFormatError,
    decode_block,
    encode_block,
)

_WIDTH_OF = {1: 4, 2: 2, 4: 1}  # samples per record -> bytes per difference


def check(data: bytes) -> None:
    try:
        block = decode_block(data)
    except GcfFormatError as exc:
        assert isinstance(exc.field, str) and exc.field, f"no field named: {exc!r}"
        assert 0 <= exc.offset <= len(data), f"offset {exc.offset} outside a {len(data)}-byte block: {exc}"
        return
    if not block.is_status:
        _check_samples(data, block)
    again = decode_block(encode_block(block))
    assert _same(block, again), f"decode(encode(block)) changed it: {block} -> {again}"
    if len(data) < FILE_BLOCK_SIZE and not block.serial24:
        padded = decode_block(data + bytes(FILE_BLOCK_SIZE - len(data)))
        assert _same(block, padded, as_found=True), "a padded file block decodes differently"


def _check_samples(data: bytes, block: GcfBlock) -> None:
    samples = block.samples
    n = data[15] * block.compression
    assert samples is not None and samples.dtype == np.int32 and samples.shape == (n,)
    if n:
        assert int(samples[0]) == block.fic and int(samples[-1]) == block.ric
    if block.serial24:
        steps = [int.from_bytes(data[20 + 3 * i : 23 + 3 * i], "big") for i in range(n)]
        x, expected = block.fic, []
        for step in steps:
            x = (x + step) & 0xFFFFFF
            expected.append(x - (1 << 24) if x >= 1 << 23 else x)
    else:
        width = _WIDTH_OF[block.compression]
        x, expected = block.fic, []
        for i in range(n):
            x = (x + int.from_bytes(data[20 + width * i : 20 + width * (i + 1)], "big", signed=True))
            x = (x + 2**31) % 2**32 - 2**31
            expected.append(x)
    assert samples.tolist() == expected, "samples differ from a plain integration of the differences"


_AS_FOUND = ("fic", "ric")


def _same(a: GcfBlock, b: GcfBlock, *, as_found: bool = False) -> bool:
    """Equal blocks; FIC/RIC (as found in the bytes) only count when there are samples, or ``as_found``.

    A status block's compression code is byte 14 as found (4 by convention, not a sample encoding): the
    encoder writes 4, so it is compared only ``as_found``.
    """
    skip = () if as_found or a.nsamp else _AS_FOUND
    if a.is_status and not as_found:
        skip += ("compression",)
    for f in dataclasses.fields(GcfBlock):
        if f.name in skip:
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            if x is None or y is None or not np.array_equal(x, y):
                return False
        elif x != y:
            return False
    return True


# ---------------------------------------------------------------------------------------------- corpus


def _obspy_gcf_files() -> list[Path]:
    """Real GCF files that ObsPy ships with its GCF reader's tests, when ObsPy is installed."""
    try:
        import obspy
    except ImportError:
        return []
    return sorted((Path(obspy.__file__).parent / "io" / "gcf" / "tests" / "data").glob("*.gcf"))


def seeds() -> list[bytes]:
    """Real file blocks (ObsPy's GCF test data), and blocks of every kind from the project's encoder."""
    out = []
    for path in _obspy_gcf_files()[:8]:
        raw = path.read_bytes()
        out += [raw[i : i + FILE_BLOCK_SIZE] for i in range(0, min(len(raw), 4096), FILE_BLOCK_SIZE)]
    t0 = 1_600_000_000 * 1_000_000_000
    walk = np.cumsum(np.arange(-50, 50)).astype(np.int32)
    leap = 1_609_459_199 * 1_000_000_000  # 2020-12-31T23:59:59Z
    for compression in (1, 2, 4):
        out.append(encode_block(GcfBlock("FUZZ1", "FUZZZ2", t0, 100.0, compression, walk)))
    out += [
        encode_block(GcfBlock("FUZZ1", "FUZZZ2", t0, 20.0, 1, walk[:20], serial24=True)),
        encode_block(GcfBlock("FUZZ1", "FUZZZ2", t0 + 250_000_000, 1000.0, 0, walk[:100] * 1000)),
        encode_block(GcfBlock("FUZZ1", "FUZZZ2", t0, 0.1, 4, walk[:4])),
        encode_block(GcfBlock("FUZZ1", "FUZZ00", t0, 0.0, status_text="GPS locked\r\nok")),
        encode_block(GcfBlock("FUZZ1", "FUZZZ2", leap, 1.0, 4, walk[:4], leap_second=True)),
        encode_block(GcfBlock("A1B2", "FUZZZ2", t0, 1.0, 4, walk[:4], sys_type=1, gain_code=3)),
        encode_block(GcfBlock("A1B2", "FUZZZ2", t0, 1.0, 4, walk[:4], sys_type=2, digitizer_type=1)),
    ]
    return out + [block[:HEADER_SIZE] for block in out[-3:]]


DICTIONARY = [b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00", b"\xfa", b"\xb0",
              b"\x01\x51\x80"]
