"""GCF codec against ObsPy's reader and writer, the spec's measured vectors, and malformed input."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import obspy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digitizer.base36 import from_base36, to_base36
from digitizer.gcf import (
    FILE_BLOCK_SIZE,
    SYS_EXTENDED,
    GcfBlock,
    GcfFormatError,
    block_to_packet,
    decode_block,
    encode_block,
    iter_file_blocks,
)
from timeunits import NS_PER_S

OBSPY_GCF = Path(obspy.__file__).parent / "io" / "gcf" / "tests" / "data"
T0 = 1_600_000_000 * NS_PER_S
FILES = ["20160603_1955n.gcf", "20160603_1910n.gcf"]


def _obspy_blocks(path: Path) -> list[obspy.Trace]:
    traces = sorted(obspy.read(str(path), format="GCF", blockmerge=False), key=lambda t: t.stats.gcf.blk)
    return list(traces)


@pytest.mark.parametrize("name", FILES)
def test_every_block_matches_obspy(name: str) -> None:
    data = (OBSPY_GCF / name).read_bytes()
    ours = iter_file_blocks(data)
    theirs = _obspy_blocks(OBSPY_GCF / name)
    assert len(ours) == len(theirs) == len(data) // FILE_BLOCK_SIZE
    for block, trace in zip(ours, theirs, strict=True):
        gcf = trace.stats.gcf
        assert (block.system_id, block.stream_id, block.ttl) == (gcf.system_id, gcf.stream_id, gcf.ttl)
        assert (block.fic, block.ric, block.sys_type, block.gain) == (
            gcf.FIC, gcf.RIC, gcf.sys_type, gcf.gain)
        assert block.start_ns == trace.stats.starttime.ns
        assert block.sample_rate == trace.stats.sampling_rate
        assert block.samples.dtype == np.int32
        np.testing.assert_array_equal(block.samples, trace.data)


def test_spec_vectors_of_the_obspy_files() -> None:
    a = (OBSPY_GCF / "20160603_1955n.gcf").read_bytes()
    assert hashlib.sha256(a).hexdigest() == "cc43307477c87a6eafdc4833f0e01c82569deadcecca6cf8b42e65312643e76a"
    first = decode_block(a[:FILE_BLOCK_SIZE])
    assert (first.system_id, first.stream_id, first.sys_type, first.gain_code) == (
        "6281", "6018N4", SYS_EXTENDED, 1)
    assert first.samples[:5].tolist() == [-49378, -49213, -49273, -49277, -49341]
    assert (first.fic, first.ric, first.compression, first.nsamp) == (-49378, -49489, 1, 200)
    assert first.start_ns == 1464983700 * NS_PER_S  # 2016-06-03T19:55:00Z
    # re-encoding reproduces the used part byte for byte (the file's padding is undefined)
    assert encode_block(first) == a[:824]
    assert hashlib.sha256(encode_block(first)).hexdigest() == (
        "a84614708db4df0d73fea63aaca1ee983b147059cdad354c86d8074ceaf799f0")
    b = (OBSPY_GCF / "20160603_1910n.gcf").read_bytes()
    second = decode_block(b[FILE_BLOCK_SIZE:])
    assert (second.stream_id, second.sample_rate, second.compression) == ("6018N2", 500.0, 2)
    assert second.samples[:5].tolist() == [-49519, -49394, -49328, -49698, -49680]
    assert encode_block(second, pad=True) == b[FILE_BLOCK_SIZE:]


def test_24bit_truncated_vector_from_spec() -> None:
    block = decode_block((OBSPY_GCF / "20160603_1955n.gcf").read_bytes()[:FILE_BLOCK_SIZE])
    truncated = encode_block(GcfBlock(**{**_fields(block), "serial24": True, "compression": 1}))
    assert len(truncated) == 624
    assert hashlib.sha256(truncated).hexdigest() == (
        "69c5eb64e58f0c72fec21ed254656ae4178e01769680d162609719cbff65b64a")
    assert truncated[20:32].hex() == "0000000000a5ffffc4fffffc"
    back = decode_block(truncated)
    assert back.serial24 and back.ric == -49489
    np.testing.assert_array_equal(back.samples, block.samples)


def test_24bit_sign_wrap_example() -> None:
    samples = np.array([8388600, 8388607, -8388608, -8388600], dtype=np.int32)
    block = GcfBlock("ABC", "ABCDZ0", 1_600_000_000 * NS_PER_S, 0.25, 1, samples, serial24=True)
    raw = encode_block(block)
    assert raw[20:32].hex() == "000000" "000007" "000001" "000008"
    np.testing.assert_array_equal(decode_block(raw).samples, samples)


def _fields(block: GcfBlock) -> dict:
    return {name: getattr(block, name)
            for name in GcfBlock.__dataclass_fields__ if name not in ("fic", "ric")}


WRITE_CASES = [  # (rate, samples, compression, start fraction ns)
    (100.0, 200, 1, 0),
    (100.0, 400, 2, 0),
    (100.0, 1000, 4, 0),
    (1.0, 12, 4, 0),
    (0.1, 3, 1, 0),  # special code 157
    (500.0, 500, 2, 500_000_000),  # code 174, start + 1/2 s
    (1000.0, 1000, 4, 750_000_000),  # code 176, start + 3/4 s
    (800.0, 200, 1, 937_500_000),  # code 175, numerator 15 of 16
    (5000.0, 1000, 4, 950_000_000),  # code 194, numerator 19 of 20 uses the value-16 bit
    (625.0, 500, 2, 200_000_000),  # code 182
]


@pytest.mark.parametrize(("rate", "n", "compression", "fraction"), WRITE_CASES)
def test_blocks_we_write_are_read_identically_by_obspy(tmp_path: Path, rate: float, n: int, compression: int,
                                                       fraction: int) -> None:
    rng = np.random.default_rng(n)
    limit = {1: 1 << 20, 2: 1 << 14, 4: 1 << 6}[compression]
    samples = np.cumsum(rng.integers(-limit, limit, n)).astype(np.int32) - 123456
    start = 1_700_000_000 * NS_PER_S + fraction
    block = GcfBlock("HPA1", "6018Z2", start, rate, compression, samples, ttl=6, sys_type=SYS_EXTENDED,
                     gain_code=3)
    path = tmp_path / "one.gcf"
    path.write_bytes(encode_block(block, pad=True))
    (trace,) = obspy.read(str(path), format="GCF", blockmerge=False)
    assert trace.stats.sampling_rate == rate
    assert round(trace.stats.starttime.ns, -3) == start  # ObsPy sums float seconds: compare to the µs
    assert (trace.stats.gcf.system_id, trace.stats.gcf.stream_id, trace.stats.gcf.gain) == (
        "HPA1", "6018Z2", 4)
    np.testing.assert_array_equal(trace.data, samples)
    again = decode_block(path.read_bytes())
    assert (again.compression, again.start_ns, again.sample_rate) == (compression, start, rate)
    np.testing.assert_array_equal(again.samples, samples)


def test_encoder_picks_the_narrowest_compression_and_32bit_wraps() -> None:
    quiet = np.arange(8, dtype=np.int32)
    assert decode_block(encode_block(GcfBlock("A", "AZ0", T0, 0.5, 0, quiet))).compression == 4
    wide = np.array([2**31 - 1, -(2**31), 0, 5], dtype=np.int32)  # differences wrap around int32
    raw = encode_block(GcfBlock("A", "AZ0", T0, 0.5, 0, wide))
    assert raw[14] & 7 == 1
    np.testing.assert_array_equal(decode_block(raw).samples, wide)


def test_leap_second_block_follows_obspy(tmp_path: Path) -> None:
    stamp = 1483228799 * NS_PER_S  # 2016-12-31T23:59:59Z, stands for 23:59:60
    block = GcfBlock("A", "AZ0", stamp, 1.0, 4, np.zeros(4, np.int32), leap_second=True)
    raw = encode_block(block, pad=True)
    assert raw[8:12].hex() == "4d655180"
    path = tmp_path / "leap.gcf"
    path.write_bytes(raw)
    (trace,) = obspy.read(str(path), format="GCF", blockmerge=False)
    assert trace.stats.gcf.t_leap and trace.stats.starttime.ns == stamp
    assert decode_block(raw).leap_second


def test_status_blocks_round_trip() -> None:
    text = "2006 1 18 14:56:15 External supply : 13.0V Temperature 24.68'C\r\n"
    raw = encode_block(GcfBlock("PLPGG", "SBHY00", 1_137_596_175 * NS_PER_S, 0.0, status_text=text))
    assert raw[13] == 0 and raw[15] == len(raw[16:]) // 4 and len(raw) % 4 == 0
    back = decode_block(raw)
    assert back.status_text == text and back.samples is None and back.is_status
    binary = bytes(range(16))
    cd = decode_block(encode_block(GcfBlock("PLPGG", "SBHYCD", T0, 0.0, status_bytes=binary)))
    assert cd.status_bytes == binary and cd.status_text is None


def test_base36_examples() -> None:
    assert from_base36("HPA1") == 825913 and to_base36(825913) == "HPA1"
    assert to_base36(0x15A0BA00) == "6018N4" and to_base36(2**31 - 1) == "ZIK0ZJ"
    with pytest.raises(ValueError, match="position 2"):
        from_base36("AB-")


def _good() -> bytearray:
    return bytearray((OBSPY_GCF / "20160603_1955n.gcf").read_bytes()[:824])


@pytest.mark.parametrize(("offset", "value", "field", "where"), [
    (14, 0x03, "compression", 14),
    (13, 251, "sample_rate", 13),
    (15, 251, "records", 15),
    (23, 0x01, "first_difference", 20),  # low byte of the first difference
    (823, 0x00, "RIC", 820),
    (10, 0xFF, "date_code", 8),  # seconds of day above 86400
    (4, 0x95, "stream_id", 4),
])
def test_malformed_fields_are_named(offset: int, value: int, field: str, where: int) -> None:
    raw = _good()
    raw[offset] = value
    with pytest.raises(GcfFormatError) as info:
        decode_block(raw)
    assert (info.value.field, info.value.offset) == (field, where)


def test_ric_mismatch_names_stream_and_block_time() -> None:
    raw = _good()
    raw[100] ^= 0x01
    with pytest.raises(GcfFormatError, match=r"stream 6018N4 block 2016-06-03T19:55:00Z.*RIC"):
        decode_block(raw)


def test_truncated_and_incomplete_blocks() -> None:
    with pytest.raises(GcfFormatError, match="header"):
        decode_block(b"\x00" * 10)
    with pytest.raises(GcfFormatError) as info:
        decode_block(_good()[:500])
    assert info.value.field == "data"
    with pytest.raises(GcfFormatError) as info:
        iter_file_blocks((OBSPY_GCF / "20160603_1955n.gcf").read_bytes()[:FILE_BLOCK_SIZE] + b"\x00")
    assert info.value.field == "file"


def test_samples_must_fill_whole_seconds_below_250_sps() -> None:
    with pytest.raises(GcfFormatError, match="whole seconds"):
        encode_block(GcfBlock("A", "AZ0", T0, 100.0, 1, np.zeros(50, np.int32)))
    raw = _good()
    raw[15] = 150  # 150 samples at 100 sps
    with pytest.raises(GcfFormatError, match="whole seconds"):
        decode_block(raw)


def test_block_to_packet() -> None:
    block = decode_block(_good())
    packet = block_to_packet(block, sequence=7)
    assert (packet.system_id, packet.stream_id, packet.start_ns, packet.sample_rate, packet.sequence) == (
        "6281", "6018N4", block.start_ns, 100.0, 7)
    assert packet.end_ns == block.end_ns == block.start_ns + 2 * NS_PER_S
    with pytest.raises(ValueError, match="status"):
        block_to_packet(decode_block(encode_block(GcfBlock("A", "A00", T0, 0.0, status_text="x"))))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=1100))
def test_arbitrary_bytes_raise_only_gcf_format_error(data: bytes) -> None:
    try:
        decode_block(data)
    except GcfFormatError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 823), st.integers(0, 255)), min_size=1, max_size=6),
       st.integers(16, 824))
def test_mutated_real_blocks_raise_only_gcf_format_error(edits: list[tuple[int, int]], cut: int) -> None:
    raw = _good()
    for offset, value in edits:
        raw[offset] = value
    try:
        decode_block(bytes(raw[:cut]))
    except GcfFormatError:
        pass
