"""gci_link.io.mseed2: records byte-exact as pymseed (libmseed) packs them, read back by pymseed and ObsPy."""

from __future__ import annotations

import calendar
import datetime as dt
import io
import struct
from fractions import Fraction

import numpy as np
import obspy
import pymseed
import pytest

from gci_link.io.mseed2 import PackedRecords, header_id, pack_records
from timeunits import NS_PER_S

CODES = ("IM", "ABCD", "00", "BHZ")
EXACT_RATES = (1.0, 20.0, 40.0, 100.0, 250.0, 0.1, 2.5)  # factor/multiplier hold them exactly
RATES = (*EXACT_RATES, 33.333)  # 33.333 needs blockette 100 (a float32) as well


def _ns(text: str, extra_ns: int = 0) -> int:
    """ns since 1970 of an ISO UTC time with up to microseconds, plus ``extra_ns``."""
    t = dt.datetime.fromisoformat(text)
    return calendar.timegm(t.timetuple()) * NS_PER_S + t.microsecond * 1000 + extra_ns


STARTS = (
    _ns("2024-02-29T12:00:00.000456", 789),  # leap day, sub-millisecond part
    _ns("2023-12-31T23:59:59.999999", 600),  # rounds up into the next year
    _ns("2024-12-31T23:59:59.999950"),  # day 366, offset -50 us against the next 0.0001 s
    _ns("2000-02-29T23:59:59.123456", 789),
    _ns("1970-01-01T00:00:00", 499),  # rounds down to the epoch
    _ns("2100-02-28T23:59:58.500049"),  # 2100 is not a leap year
)


def _walk(rng: np.random.Generator, n: int, step: int) -> np.ndarray:
    return np.cumsum(rng.integers(-step, step + 1, n)).astype(np.int32)


def _pymseed_records(
    x: np.ndarray, rate: float, start_ns: int, codes=CODES, record_length: int = 512
) -> list[bytes]:
    traces = pymseed.MS3TraceList()
    traces.add_data(pymseed.nslc2sourceid(*codes), x, "i", rate, starttime=start_ns)
    with traces:
        return list(
            traces.generate(
                max_record_length=record_length, encoding=pymseed.DataEncoding.STEIM2, format_version=2
            )
        )


def _ids(codes_list) -> np.ndarray:
    return np.frombuffer(b"".join(header_id(*c) for c in codes_list), dtype=np.uint8).reshape(-1, 12)


def _ours(x: np.ndarray, rate: float, start_ns: int, record_length: int = 512) -> list[bytes]:
    packed = pack_records(
        x, np.array([0, len(x)]), np.array([start_ns]), np.array([rate]), _ids([CODES]), record_length
    )
    assert packed.counts.tolist() == [len(packed.records)]
    return [r.tobytes() for r in packed.records]


def _fields(record: bytes) -> dict:
    """Fixed header and blockettes of a miniSEED 2 record, by name (SEED 2.4 chapter 8)."""
    names = (
        "year day hour minute second unused tenth_ms nsamp factor multiplier activity io quality "
        "blockettes correction data_offset blockette_offset"
    ).split()
    fields = dict(zip(names, struct.unpack(">HHBBBBHHhhBBBBiHH", record[20:48]), strict=True))
    fields.update(sequence=record[:6], indicator=record[6:8], ident=record[8:20])
    at = fields["blockette_offset"]
    while at:
        kind, nxt = struct.unpack(">HH", record[at : at + 4])
        if kind == 1000:
            fields["b1000"] = struct.unpack(">BBBB", record[at + 4 : at + 8])
        elif kind == 1001:
            fields["b1001"] = struct.unpack(">BbBB", record[at + 4 : at + 8])
        elif kind == 100:
            fields["b100"] = struct.unpack(">f4B", record[at + 4 : at + 12])
        else:
            raise AssertionError(f"unexpected blockette {kind}")
        fields[f"next_after_{kind}"] = nxt
        at = nxt
    return fields


def _assert_same_as_pymseed(ours: list[bytes], theirs: list[bytes]) -> None:
    assert len(ours) == len(theirs)
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert _fields(a) == _fields(b), f"record {i}"
        assert a == b, f"record {i}: header fields agree, data frames differ"


def _assert_reads_back(records: list[bytes], x: np.ndarray, rate: float, start_ns: int) -> None:
    """Each record through pymseed and ObsPy: samples, the rate, and a start on the microsecond within
    500.5 ns of exact (libmseed rounds a later record's offset to the ns, then the time to the us)."""
    done = 0
    for i, record in enumerate(records):
        (ms,) = list(pymseed.MS3Record.from_buffer(record, unpack_data=True))
        (trace,) = obspy.read(io.BytesIO(record), format="MSEED")
        n = ms.numsamples
        assert n > 0, f"record {i} is empty"
        assert np.array_equal(ms.np_datasamples, x[done : done + n]), f"record {i} (pymseed)"
        assert np.array_equal(trace.data, x[done : done + n]), f"record {i} (ObsPy)"
        exact = start_ns + Fraction(done * NS_PER_S) / Fraction(rate)
        for when in (ms.starttime, trace.stats.starttime.ns):
            assert when % 1000 == 0 and abs(when - exact) <= 500.5, f"record {i}: {when} vs {float(exact)}"
        for got in (ms.samprate, trace.stats.sampling_rate):
            assert np.float32(got) == np.float32(rate)
            if rate in EXACT_RATES:
                assert got == rate
        done += n
    assert done == len(x)


@pytest.mark.parametrize("width", [4, 5, 6, 8, 10, 15, 30])
def test_differences_at_every_steim2_width_edge(width: int) -> None:
    rng = np.random.default_rng(width)
    top = 2 ** (width - 1)
    edges = [top - 1, -top]  # the widest values that still fit
    if width < 30:
        edges += [top, -top - 1]  # the narrowest that need the next width
    diffs = []
    for _ in range(300):  # edge values among small ones, so every packing choice gets its turn
        diffs += rng.choice(edges, int(rng.integers(1, 8))).tolist()
        diffs += rng.integers(-3, 4, int(rng.integers(0, 9))).tolist()
    x = (np.cumsum(diffs, dtype=np.int64) % 2**32).astype(np.uint32).view(np.int32)  # int32 wrap
    ours = _ours(x, 40.0, STARTS[0])
    _assert_same_as_pymseed(ours, _pymseed_records(x, 40.0, STARTS[0]))
    _assert_reads_back(ours, x, 40.0, STARTS[0])


def test_samples_at_the_int32_and_30_bit_extremes() -> None:
    # from 2**31-1 across the int32 wrap both ways (libmseed takes differences modulo 2**32), then
    # back to 0 and around it in the widest steps 30 bits hold
    diffs = [2**31 - 1, -7, 8, 5, -6, 1] + [2**29 - 1] * 4 + [4] + [2**29 - 1, -(2**29)] * 3 + [0] * 9
    x = (np.cumsum(diffs, dtype=np.int64) % 2**32).astype(np.uint32).view(np.int32)
    assert x.min() == -(2**31) and x.max() == 2**31 - 1
    ours = _ours(x, 100.0, STARTS[3])
    _assert_same_as_pymseed(ours, _pymseed_records(x, 100.0, STARTS[3]))
    _assert_reads_back(ours, x, 100.0, STARTS[3])


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("start_ns", STARTS)
def test_rates_and_start_times_match_pymseed(rate: float, start_ns: int) -> None:
    x = _walk(np.random.default_rng(int(rate * 1000) + start_ns % 997), 1500, 2000)
    ours = _ours(x, rate, start_ns)
    _assert_same_as_pymseed(ours, _pymseed_records(x, rate, start_ns))
    _assert_reads_back(ours, x, rate, start_ns)


def test_later_record_starts_round_to_the_nanosecond_then_the_microsecond_as_libmseed() -> None:
    # libmseed puts record k at start + (k / rate * 1e9 + 0.5) ns (truncated), then rounds that to
    # the microsecond: pick a start where the rounded span lands exactly on a half microsecond
    x = np.full(2000, 5, dtype=np.int32)
    base = _ns("2024-03-01T00:00:00")
    k = struct.unpack(">H", _ours(x, 33.333, base)[0][30:32])[0]
    assert k == 616  # 7x4 in each word of 6 frames (the three blockettes take 128 bytes)
    span = k / 33.333 * NS_PER_S
    assert span % 1 >= 0.5  # rounding and truncating the span differ by 1 ns here
    start = base + (500 - int(span + 0.5)) % 1000
    ours = _ours(x, 33.333, start)
    _assert_same_as_pymseed(ours, _pymseed_records(x, 33.333, start))
    _assert_reads_back(ours, x, 33.333, start)


def _full_record_samples(x: np.ndarray) -> int:
    return struct.unpack(">H", _ours(x, 20.0, STARTS[0])[0][30:32])[0]


@pytest.mark.parametrize("kind", ["zeros", "constant", "walk"])
def test_one_full_record_then_one_sample_more(kind: str) -> None:
    rng = np.random.default_rng(7)
    long = {
        "zeros": np.zeros(3000, dtype=np.int32),
        "constant": np.full(3000, -123_456_789, dtype=np.int32),
        "walk": _walk(rng, 3000, 100),
    }[kind]
    full = _full_record_samples(long)
    if kind != "walk":
        assert full == 721  # 7x4 in every word: (13 + 6 * 15) words of 7 differences
    for n, records in ((1, 1), (full, 1), (full + 1, 2)):
        x = long[:n]
        ours = _ours(x, 20.0, STARTS[1])
        assert len(ours) == records
        _assert_same_as_pymseed(ours, _pymseed_records(x, 20.0, STARTS[1]))
        _assert_reads_back(ours, x, 20.0, STARTS[1])


@pytest.mark.parametrize("record_length", [128, 256, 4096])
def test_other_record_lengths(record_length: int) -> None:
    x = _walk(np.random.default_rng(record_length), 5000, 30_000)
    ours = _ours(x, 100.0, STARTS[0], record_length)
    assert {len(r) for r in ours} == {record_length}
    _assert_same_as_pymseed(ours, _pymseed_records(x, 100.0, STARTS[0], record_length=record_length))
    _assert_reads_back(ours, x, 100.0, STARTS[0])


def test_a_batch_of_many_segments_in_one_call() -> None:
    rng = np.random.default_rng(11)
    lengths = [0, 1, 2, 7, 8, 400, 1000, 2500] + rng.integers(0, 1200, 52).tolist()
    segments = [_walk(rng, n, int(rng.choice([0, 3, 60, 5000, 2**20]))) for n in lengths]
    codes = [("IM", f"ST{i:02d}", ["", "00", "10"][i % 3], "BHZ") for i in range(len(lengths))]
    rates = rng.choice(RATES, len(lengths))
    starts = np.array(
        [
            STARTS[i % len(STARTS)] + i * 10 * NS_PER_S + int(rng.integers(0, 10**6))
            for i in range(len(lengths))
        ]
    )
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    packed = pack_records(np.concatenate(segments), bounds, starts, rates, _ids(codes))
    assert isinstance(packed, PackedRecords) and packed.records.shape[1] == 512
    for i, x in enumerate(segments):
        ours = [r.tobytes() for r in packed.records[packed.first[i] : packed.first[i + 1]]]
        theirs = _pymseed_records(x, float(rates[i]), int(starts[i]), codes[i]) if len(x) else []
        assert packed.counts[i] == len(theirs), f"segment {i}"
        _assert_same_as_pymseed(ours, theirs)
    everything = packed.records.tobytes()
    read = obspy.read(io.BytesIO(everything), format="MSEED")
    assert sum(len(t.data) for t in read) == sum(lengths)


def test_header_times_against_python_datetime() -> None:
    rng = np.random.default_rng(5)
    starts = rng.integers(0, 4_102_444_800 * NS_PER_S, 2000)  # 1970 .. 2100
    n = len(starts)
    packed = pack_records(
        np.zeros(n, dtype=np.int32), np.arange(n + 1), starts, np.full(n, 40.0), _ids([CODES] * n)
    )
    for start, record in zip(starts.tolist(), packed.records, strict=True):
        f = _fields(record.tobytes())
        us = (start + 500) // 1000
        when = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=us)
        offset = f["b1001"][1] if "b1001" in f else 0
        assert -50 <= offset <= 49
        assert (f["year"], f["day"], f["hour"], f["minute"], f["second"]) == (
            when.year,
            when.timetuple().tm_yday,
            when.hour,
            when.minute,
            when.second,
        )
        assert f["tenth_ms"] * 100 + offset == when.microsecond


def test_a_difference_beyond_30_bits_is_refused_naming_the_segment() -> None:
    x = np.array([5, 6, 7, 0, 2**29, 1], dtype=np.int32)
    with pytest.raises(ValueError, match=r"segment 1: difference 536870912 between samples 0 and 1"):
        pack_records(x, np.array([0, 3, 6]), np.array([0, 0]), np.array([1.0, 1.0]), _ids([CODES] * 2))
    with pytest.raises(pymseed.MiniSEEDError, match="30 bits"):  # libmseed refuses it too
        _pymseed_records(x[3:], 1.0, 0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"samples": np.zeros(4, dtype=np.int64)}, "int32"),
        ({"bounds": np.array([0, 3, 2])}, "segment 1: bounds decrease"),
        ({"bounds": np.array([0, 2, 5])}, "samples has 4"),
        ({"start_ns": np.array([0, -1])}, "segment 1: start -1 ns is before 1970"),
        ({"rates": np.array([40.0, 0.0])}, "sample rate 0 sps is outside"),
        ({"rates": np.array([40.0, np.nan])}, "sample rate nan"),
        ({"rates": np.array([40.0, 50_000.0])}, "50000 sps is outside the 3.05e-05 to 32767 sps"),
        ({"rates": np.array([40.0, 1 / 32768])}, "3.05175781e-05 sps is outside"),
        ({"ids": np.zeros((2, 11), dtype=np.uint8)}, r"ids \(2, 12\)"),
        ({"ids": np.zeros((2, 12), dtype=np.int64)}, "uint8"),
        ({"record_length": 1000}, "power of 2"),
        (
            {"record_length": 128, "rates": np.array([40.0, 33.333]), "start_ns": np.array([0, 1000])},
            "no room",
        ),
    ],
)
def test_bad_input_is_named(change: dict, message: str) -> None:
    args = {
        "samples": np.arange(4, dtype=np.int32),
        "bounds": np.array([0, 2, 4]),
        "start_ns": np.array([0, 0]),
        "rates": np.array([40.0, 40.0]),
        "ids": _ids([CODES] * 2),
        "record_length": 512,
    }
    with pytest.raises(ValueError, match=message):
        pack_records(**(args | change))


def test_header_id_spells_the_fixed_header_codes() -> None:
    assert header_id("IM", "ABCD", "", "BHZ") == b"ABCD   BHZIM"
    assert header_id("IM", "ABCD", "", "BZ") == b"ABCD   BZ IM"  # CD-1.1 allows a shorter channel
    with pytest.raises(ValueError, match="network 'IMS' is not 1-2 ASCII letters or digits"):
        header_id("IMS", "ABCD", "00", "BHZ")
    with pytest.raises(ValueError, match="channel 'BHZE' is not 1-3"):
        header_id("IM", "ABCD", "00", "BHZE")
    for station in ("../..", "/tmp", "A\0B", "ÄBC", "A B"):  # codes become SDS paths: letters and digits only
        with pytest.raises(ValueError, match="station .* is not 1-5 ASCII letters or digits"):
            header_id("IM", station, "00", "BHZ")
