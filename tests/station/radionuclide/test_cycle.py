"""The sample cycle driven step by step on a fake clock with fake instruments: what it sends and when, how
its messages link, what a restart in the middle of a count does, and how failures are kept and told."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gci_link import ims2
from station.radionuclide.schedule import Schedule
from station.radionuclide.state import StateFile
from tests.station.radionuclide.conftest import Rig, hour, system_config
from timeunits import NS_PER_S

T = 1_800_000_000 * NS_PER_S
GAS = dict(collection_s=3600, decay_s=600, acquisition_s=3000, gasbk_s=300, prel_interval_s=700,
           soh_poll_s=60, rmssoh_s=600)
PARTICULATE = dict(collection_s=3600, decay_s=600, acquisition_s=2400, qc_s=300, qc_every=1, detbk_s=600,
                   detbk_every=2, prel_interval_s=900, soh_poll_s=60, rmssoh_s=600)


def gas_rig(tmp_path: Path) -> Rig:
    config = system_config("noble_gas", **GAS)
    schedule = Schedule(config.cycle)
    k = schedule.collecting(T) + 1
    return Rig(tmp_path, config, schedule.collection(k)[0])  # sees sample k collected from its start


def test_noble_gas_cycle_sends_linked_gas_background_prel_and_full(tmp_path):
    rig = gas_rig(tmp_path)
    k = rig.schedule.collecting(rig.clock.now)
    gasbk_count, sample_count = rig.schedule.counts(k)
    rig.run_until(sample_count.end_ns + 30 * NS_PER_S)
    (gasbk,) = rig.phd("GASBKPHD", cycle=k)
    (full,) = rig.phd("SAMPLEPHD", cycle=k)
    prels = rig.phd("SAMPLEPHD", "PREL", cycle=k)
    assert [round(p.real_time_s / 700) for p in prels] == [1, 2, 3, 4]  # every 700 s of the 3000 s count
    collection_start, collection_stop = rig.schedule.collection(k)
    assert full.srid == gasbk.srid == "01" + hour(collection_start) + "11X"
    # also sent: the count running when the cycle started (begun late, shortened) and sample k - 1
    assert len(rig.phd("SAMPLEPHD")) == 3
    assert full.gasbk_id == gasbk.sample_id and full.sample_id != gasbk.sample_id
    assert gasbk.gasbk_id is None
    assert full.sample_id == f"ZZX01_001-{_stamp(full.acquisition_start_ns)}"
    assert full.acquisition_start_ns == sample_count.start_ns + 10 * NS_PER_S  # the first step after
    assert full.real_time_s == pytest.approx(2990, abs=0.1)  # preset: from the start to the scheduled end
    assert all(p.sample_id == full.sample_id and p.gasbk_id == full.gasbk_id for p in prels)
    assert (full.collection_start_ns, full.collection_stop_ns) == (collection_start, collection_stop)
    assert full.air_volume_m3 == pytest.approx(1.8, rel=1e-3)  # 1.8 m3/h for an hour
    assert (full.xe_volume_ml, full.xe_yield) == (1.02, 0.63)
    assert full.histogram is not None and full.histogram.shape == (16, 16)
    assert full.g_spectrum is not None and full.g_spectrum[0] == round(full.real_time_s)
    ids = [int(m.msg_id) for _, m in rig.messages()]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    soh = [m for _, m in rig.messages() if isinstance(m, ims2.SohMessage)]
    assert len(soh) == (sample_count.end_ns - collection_start) // (600 * NS_PER_S)
    flow_row = soh[0].blocks["#AirSamplerFlow"][0]
    assert flow_row.values[0] == pytest.approx(1.8) and flow_row.interval_s == 600
    status = soh[-1].blocks["#EquipStatus"][0].values
    assert status[0:2] == ("C", "01" + hour(rig.schedule.collection(k + 1)[0]) + "11X")
    assert status[4:6] == ("A", full.srid)
    assert rig.alerts() == []


def test_particulate_qc_and_detector_background_counts_and_their_ids(tmp_path):
    config = system_config("particulate", **PARTICULATE)
    schedule = Schedule(config.cycle)
    k = schedule.slot_at(T) + 1
    while k % 2:  # a slot with a detector background, then one without
        k += 1
    rig = Rig(tmp_path, config, schedule.slot_start(k) - 5 * NS_PER_S)
    rig.run_until(schedule.sample_count(k + 1).end_ns + 30 * NS_PER_S)
    qcs, (detbk,), samples = rig.phd("QCPHD"), rig.phd("DETBKPHD"), rig.phd("SAMPLEPHD")
    assert len(qcs) == 2 and len(samples) == 2
    assert [m.srid[-1] for m in qcs] == ["Q", "Q"] and detbk.srid.endswith("11D")
    assert samples[0].srid == "01" + hour(schedule.collection(k)[0]) + "11"  # particulate: no letter
    assert detbk.detbk_id is None
    assert qcs[0].detbk_id is None and samples[0].detbk_id == detbk.sample_id  # the background came after
    assert qcs[1].detbk_id == samples[1].detbk_id == detbk.sample_id
    assert all(m.gasbk_id is None and m.system_type == "P" for m in (*qcs, detbk, *samples))
    assert samples[0].air_volume_m3 == 0.0 and "no flow reading" in (samples[0].comment or "")
    assert samples[1].air_volume_m3 == pytest.approx(900.0, rel=1e-3)
    assert len(rig.detector.begins) == 5  # QC, DETBK, SAMPLE, QC, SAMPLE


def test_a_restart_in_the_middle_of_a_count_loses_and_repeats_nothing(tmp_path):
    rig = gas_rig(tmp_path)
    k = rig.schedule.collecting(rig.clock.now)
    gasbk_count, sample_count = rig.schedule.counts(k)
    rig.run_until(sample_count.start_ns + 1000 * NS_PER_S)  # PREL 1 sent, PREL 2 not yet
    rig.restart()
    rig.run_until(sample_count.start_ns + 1500 * NS_PER_S)  # PREL 2 due in this run
    rig.restart()
    rig.run_until(sample_count.end_ns + 30 * NS_PER_S)
    events = [event for event, _ in rig.messages()]
    assert len(events) == len(set(events))
    assert events.count(f"SAMPLE {k} FULL") == 1 and events.count(f"GASBK {k} FULL") == 1
    prels = sorted(e for e in events if f"SAMPLE {k} PREL" in e)
    assert prels == [f"SAMPLE {k} PREL {i}" for i in (1, 2, 3, 4)]
    assert len(rig.detector.begins) == 5  # sample k - 2 (late), slots k - 1 and k: none restarted
    (full,) = rig.phd("SAMPLEPHD", cycle=k)
    assert full.real_time_s == pytest.approx(2990, abs=0.1)
    assert full.gasbk_id == rig.phd("GASBKPHD", cycle=k)[0].sample_id
    ids = [int(m.msg_id) for _, m in rig.messages()]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_a_crash_between_the_background_message_and_the_state_file_keeps_the_link(tmp_path, monkeypatch):
    rig = gas_rig(tmp_path)
    gasbk_count, sample_count = rig.schedule.counts(rig.schedule.collecting(rig.clock.now))
    rig.run_until(gasbk_count.end_ns - 20 * NS_PER_S)
    saves = []

    def crash_after_the_message(self, state):
        saves.append(state)
        raise KeyboardInterrupt("power cut")  # the message is in the outbox, the state file is not written

    monkeypatch.setattr(StateFile, "save", crash_after_the_message)
    with pytest.raises(KeyboardInterrupt):
        rig.run_until(sample_count.start_ns)
    monkeypatch.undo()
    k = sample_count.cycle
    assert len(rig.phd("GASBKPHD", cycle=k)) == 1 and saves
    rig.restart()
    rig.run_until(sample_count.end_ns + 30 * NS_PER_S)
    (gasbk,), (full,) = rig.phd("GASBKPHD", cycle=k), rig.phd("SAMPLEPHD", cycle=k)
    assert full.gasbk_id == gasbk.sample_id


def test_a_detector_reset_while_the_station_was_down_loses_the_count_with_a_note_and_an_alert(tmp_path):
    rig = gas_rig(tmp_path)
    k = rig.schedule.collecting(rig.clock.now)
    rig.run_until(rig.schedule.sample_count(k).start_ns + 700 * NS_PER_S)
    rig.detector.started_ns = rig.clock.now  # power-cycled: its real time starts again from 0
    rig.restart()
    rig.run_until(rig.schedule.sample_count(k + 1).end_ns + 30 * NS_PER_S)
    assert rig.phd("SAMPLEPHD", cycle=k) == [] and len(rig.phd("SAMPLEPHD", cycle=k + 1)) == 1
    assert ("ALERT_SYSTEM", "COUNT_LOST", "RAISED") in rig.alerts()
    assert rig.alerts()[-1] == ("ALERT_SYSTEM", "COUNT_LOST", "CLEARED")  # the next count came in full
    notes = list((tmp_path / "quarantine").glob("*.json"))
    assert any(f"SAMPLE_{k}" in n.name and "count lost" in n.read_text() for n in notes)


@pytest.mark.parametrize("reset", [False, True])
def test_a_count_from_before_a_restart_is_confirmed_once_the_silent_detector_answers(tmp_path, reset):
    rig = gas_rig(tmp_path)
    k = rig.schedule.collecting(rig.clock.now)
    sample_count = rig.schedule.sample_count(k)
    rig.run_until(sample_count.start_ns + 700 * NS_PER_S)
    begins = len(rig.detector.begins)
    rig.detector.dead = True
    rig.restart()
    rig.run_until(sample_count.start_ns + 900 * NS_PER_S)
    rig.detector.dead = False
    if reset:  # it was power-cycled while silent
        rig.detector.started_ns = rig.clock.now
    rig.run_until(sample_count.end_ns + 30 * NS_PER_S)
    assert ("ALERT_SYSTEM", "FAIL", "RAISED") in rig.alerts()
    assert len(rig.phd("SAMPLEPHD", cycle=k)) == (0 if reset else 1)
    assert (("ALERT_SYSTEM", "COUNT_LOST", "RAISED") in rig.alerts()) == reset
    assert len(rig.detector.begins) == begins  # the count on the detector was never started again


def test_a_spectrum_that_cannot_be_read_is_kept_told_and_read_again(tmp_path):
    rig = gas_rig(tmp_path)
    gasbk_count, _ = rig.schedule.counts(rig.schedule.collecting(rig.clock.now))
    rig.run_until(gasbk_count.end_ns - 20 * NS_PER_S)
    rig.detector.fail_reads = 2
    rig.run_until(gasbk_count.end_ns + 400 * NS_PER_S)
    assert len(rig.phd("GASBKPHD", cycle=gasbk_count.cycle)) == 1  # read on the third try
    assert rig.alerts() == [("ALERT_SYSTEM", "READOUT_FAILED", "RAISED"),
                            ("ALERT_SYSTEM", "READOUT_FAILED", "CLEARED")]
    assert len(list((tmp_path / "quarantine").glob("*GASBK*FULL.json"))) == 2


def test_a_full_disk_delays_messages_with_an_alarm_and_loses_none(tmp_path, monkeypatch):
    rig = gas_rig(tmp_path)
    gasbk_count, sample_count = rig.schedule.counts(rig.schedule.collecting(rig.clock.now))
    rig.run_until(gasbk_count.end_ns - 20 * NS_PER_S)
    real_store = rig.cycle.ledger.store

    def disk_full(*args, **kwargs):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(rig.cycle.ledger, "store", disk_full)
    rig.run_until(gasbk_count.end_ns + 700 * NS_PER_S)  # the GASBK FULL and an RMSSOH are due meanwhile
    assert rig.cycle.alarms.get("outbox_write_failed", "cycle") is not None
    monkeypatch.setattr(rig.cycle.ledger, "store", real_store)
    rig.run_until(sample_count.end_ns + 30 * NS_PER_S)
    assert rig.cycle.alarms.get("outbox_write_failed", "cycle") is None
    (gasbk,) = rig.phd("GASBKPHD", cycle=gasbk_count.cycle)
    assert rig.phd("SAMPLEPHD", cycle=gasbk_count.cycle)[0].gasbk_id == gasbk.sample_id
    soh = [e for e, _ in rig.messages() if e.startswith("RMSSOH")]
    periods = [int(e.split()[1]) for e in soh]
    assert periods == list(range(periods[0], periods[0] + len(periods)))  # none missing, none twice


def test_a_malformed_message_from_our_builder_is_quarantined_with_an_alarm(tmp_path, monkeypatch):
    rig = gas_rig(tmp_path)
    k = rig.schedule.collecting(rig.clock.now)
    real_phd = rig.cycle.builder.phd

    def broken(*args, **kwargs):  # a comment line that would end the block: the writer refuses it
        return real_phd(*args, **{**kwargs, "comment": "#Histogram"})

    monkeypatch.setattr(rig.cycle.builder, "phd", broken)
    rig.run_until(rig.schedule.counts(k)[0].end_ns + 30 * NS_PER_S)
    assert rig.phd("GASBKPHD", cycle=k) == []
    assert ("ALERT_SYSTEM", "MESSAGE_QUARANTINED", "RAISED") in rig.alerts()
    note = next((tmp_path / "quarantine").glob(f"*GASBK_{k}_FULL.json")).read_text()
    assert "malformed message from our builder" in note and "#Comment" in note
    monkeypatch.undo()
    rig.run_until(rig.schedule.sample_count(k).start_ns + 700 * NS_PER_S)
    assert len(rig.phd("SAMPLEPHD", "PREL", cycle=k)) == 1  # the cycle went on with the sample
    assert rig.alerts()[-1] == ("ALERT_SYSTEM", "MESSAGE_QUARANTINED", "CLEARED")


def test_flow_alerts_have_the_waveform_soh_hysteresis_and_survive_a_restart(tmp_path):
    config = system_config("particulate", **PARTICULATE)  # flow limit: min 500, hysteresis 20
    rig = Rig(tmp_path, config, T)
    for flow in (900.0, 480.0, 510.0, 519.0):
        rig.sampler.flow_m3h = flow
        rig.run_until(rig.clock.now + 120 * NS_PER_S)
    assert rig.alerts() == [("ALERT_FLOW", "LOW", "RAISED")]
    rig.restart()  # still low: not raised a second time
    rig.run_until(rig.clock.now + 120 * NS_PER_S)
    assert rig.alerts() == [("ALERT_FLOW", "LOW", "RAISED")]
    rig.sampler.flow_m3h = 521.0
    rig.restart()  # recovered while the station was down: cleared once it looks again
    rig.run_until(rig.clock.now + 120 * NS_PER_S)
    assert rig.alerts() == [("ALERT_FLOW", "LOW", "RAISED"), ("ALERT_FLOW", "LOW", "CLEARED")]
    raised = next(m for _, m in rig.messages() if isinstance(m, ims2.AlertMessage))
    assert (raised.subject, raised.value, raised.limit, raised.unit) == ("SAMPLER", 480.0, 500.0, "M3/H")


def test_mains_loss_high_voltage_and_a_silent_sampler_are_alerted(tmp_path):
    rig = Rig(tmp_path, system_config("particulate", **PARTICULATE), T)
    rig.sampler.power = "UPS"
    rig.detector.hv_v = 2.0
    rig.run_until(rig.clock.now + 120 * NS_PER_S)
    rig.sampler.power = "MAIN"
    rig.detector.hv_v = 3000.0
    rig.run_until(rig.clock.now + 120 * NS_PER_S)
    assert sorted(rig.alerts()) == [
        ("ALERT_SYSTEM", "HV_LOW", "CLEARED"), ("ALERT_SYSTEM", "HV_LOW", "RAISED"),
        ("ALERT_UPS", "ON_BATTERY", "CLEARED"), ("ALERT_UPS", "ON_BATTERY", "RAISED"),
    ]
    rig.sampler.soh = _unavailable
    rig.run_until(rig.clock.now + 120 * NS_PER_S)
    assert rig.alerts()[-1] == ("ALERT_SYSTEM", "FAIL", "RAISED")
    assert [m.subject for _, m in rig.messages() if isinstance(m, ims2.AlertMessage)][-1] == "SAMPLER"


def _unavailable():
    from digitizer.serial_link import InstrumentUnavailable

    raise InstrumentUnavailable("sampler: no answer")


def _stamp(t_ns: int) -> str:
    from gci_link.ims2.fields import format_time

    return format_time(t_ns, separator="-")
