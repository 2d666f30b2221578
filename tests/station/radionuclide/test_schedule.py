"""The schedule is a pure function of the configuration and data time: slots, count order, PREL times."""

from __future__ import annotations

import pytest

from station.radionuclide.schedule import CountKind, Schedule
from tests.station.radionuclide.conftest import system_config
from timeunits import NS_PER_S

H = 3600
T = 1_800_000_000 * NS_PER_S


def test_particulate_defaults_collect_decay_and_count_a_day_each_with_a_daily_qc():
    config = system_config("particulate")
    schedule = Schedule(config.cycle)
    k = schedule.collecting(T)
    start, end = schedule.collection(k)
    assert start <= T < end and end - start == 24 * H * NS_PER_S and start % (24 * H * NS_PER_S) == 0
    qc, sample = schedule.counts(k)
    assert (qc.kind, sample.kind) == (CountKind.QC, CountKind.SAMPLE)
    assert qc.start_ns == end + 24 * H * NS_PER_S  # 24 h of decay
    assert (qc.length_s, sample.length_s) == (1800, 24 * H - 1800)
    assert sample.end_ns == schedule.slot_start(k + 1)  # the detector goes straight to the next filter
    assert [t - sample.start_ns for t in schedule.prel_times(sample)] == [
        n * 2 * H * NS_PER_S for n in range(1, 12)]


def test_noble_gas_defaults_count_a_gas_background_before_every_sample():
    schedule = Schedule(system_config("noble_gas").cycle)
    for k in range(schedule.collecting(T), schedule.collecting(T) + 4):
        gasbk, sample = schedule.counts(k)
        assert (gasbk.kind, sample.kind) == (CountKind.GASBK, CountKind.SAMPLE)
        assert gasbk.cycle == sample.cycle == k
        assert gasbk.end_ns == sample.start_ns
        assert gasbk.start_ns == schedule.collection(k)[1] + 4 * H * NS_PER_S


@pytest.mark.parametrize("kind", ["particulate", "noble_gas"])
def test_every_instant_maps_to_at_most_one_count_and_counts_never_overlap(kind):
    cycle = dict(collection_s=3600, decay_s=700, acquisition_s=2400, prel_interval_s=500, qc_s=300,
                 qc_every=2, detbk_s=400, detbk_every=3)
    if kind == "noble_gas":
        cycle["gasbk_s"] = 300
    schedule = Schedule(system_config(kind, **cycle).cycle)
    first = schedule.slot_at(T)
    counts = [c for k in range(first, first + 12) for c in schedule.counts(k)]
    for a, b in zip(counts, counts[1:], strict=False):
        assert a.end_ns <= b.start_ns
    kinds = [c.kind for c in counts]
    assert kinds.count(CountKind.QC) == 6 and kinds.count(CountKind.DETBK) == 4
    assert kinds.count(CountKind.SAMPLE) == 12
    for t in range(counts[0].start_ns, counts[-1].end_ns, 37 * NS_PER_S):
        inside = [c for c in counts if c.start_ns <= t < c.end_ns]
        assert schedule.count_at(t) == (inside[0] if inside else None)
        later = [c for c in counts if c.start_ns >= t]
        if later:
            assert schedule.next_count(t) == later[0]


def test_processing_names_the_sample_between_collection_and_count():
    schedule = Schedule(system_config("noble_gas", collection_s=3600, decay_s=600, acquisition_s=3000,
                                      gasbk_s=300).cycle)
    k = schedule.collecting(T)
    end = schedule.collection(k)[1]
    assert schedule.processing(end + 10 * NS_PER_S) == k
    assert schedule.processing(schedule.sample_count(k).start_ns) is None
    assert schedule.collecting(end) == k + 1


def test_soh_periods_are_epoch_aligned():
    schedule = Schedule(system_config("noble_gas").cycle)
    index, start, end = schedule.soh_period(T + 5)
    assert (start, end - start, index) == (T, 600 * NS_PER_S, T // (600 * NS_PER_S))
