"""The soak's own instruments, each checked where it could be wrong: seeded random faults, the truth kept
on disk, hardware gaps in the comparison, the alarm cross-check, memory sampling and catching a process
inside an archive write."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hil import alarmcheck, scenario
from hil.compare import compare_channel
from hil.crashpoint import WRITE_CALLS, wait_for_archive_write
from hil.procwatch import MIB, MemoryBound, ProcessWatch, read_usage
from hil.truth import TruthStore
from timeunits import NS_PER_S

WEEK = Path(__file__).parents[2] / "hil" / "scenarios" / "soak-week.toml"
STATIONS = """
[[stations]]
name = "{name}"
network = "IM"
sensor = "seismometer"
sample_rate = 20
block_s = 5
channels = ["{name}.BHZ"]
"""


def random_scenario(table: str, seed: int = 1) -> str:
    return (f"[run]\nduration_s = 86400\nspeed = 10\nseed = {seed}\n" + STATIONS.format(name="A")
            + STATIONS.format(name="B") + table)


def test_week_scenario_holds_the_faults_the_soak_promises():
    week = scenario.load(WEEK)
    kinds: dict[str, int] = {}
    for fault in week.faults:
        kinds[fault.kind] = kinds.get(fault.kind, 0) + 1
    assert week.duration_s >= 7 * 86400 and len(week.stations) >= 4
    assert kinds == {"link_outage": 20, "unplug": 10, "station_crash": 10, "receiver_crash": 5,
                     "gps_unlock": 6, "disk_full": 1}
    outages = [f.duration_s for f in week.faults if f.kind == "link_outage"]
    assert 60 <= min(outages) and max(outages) <= 43200
    assert sum(f.when == "archive_write" for f in week.faults if f.kind == "station_crash") == 5
    assert sum(f.when == "archive_write" for f in week.faults if f.kind == "receiver_crash") == 3
    assert all(s.bit_error_rate == 1e-5 and s.drop_rate > 0 for s in week.stations)
    assert week == scenario.load(WEEK)  # the same seed draws the same moments


def test_random_faults_are_seeded_spread_and_never_overlap_at_one_station():
    table = ('[[random_faults]]\nkind = "link_outage"\ncount = 12\nmin_duration_s = 60\n'
             'max_duration_s = 20000\n')
    one = scenario.parse(random_scenario(table), "x.toml").faults
    assert one == scenario.parse(random_scenario(table), "x.toml").faults
    assert one != scenario.parse(random_scenario(table, seed=2), "x.toml").faults
    assert {f.station for f in one} == {"A", "B"} and len(one) == 12
    for name in ("A", "B"):
        spans = sorted((f.at_s, f.at_s + f.duration_s) for f in one if f.station == name)
        assert all(end < begin for (_, end), (begin, _) in zip(spans, spans[1:], strict=False))
    assert all(60 <= f.duration_s <= 20000 and f.at_s + f.duration_s < 86400 for f in one)
    # compressing the run scales the lengths as it scales fixed faults
    short = scenario.parse(random_scenario(table), "x.toml", {"duration_s": 8640.0}).faults
    assert all(6 <= f.duration_s <= 2000 for f in short)


def test_random_fault_errors_name_their_keys():
    table = ('[[random_faults]]\nkind = "gps_unlock"\ncount = 2\nmin_duration_s = 600\nmax_duration_s = 60\n'
             'archive_write = 1\nstations = ["Z"]\n'
             '[[random_faults]]\nkind = "receiver_crash"\ncount = 1\nmin_duration_s = 1\nmax_duration_s = 2\n'
             'stations = ["A"]\n')
    with pytest.raises(scenario.ScenarioError) as caught:
        scenario.parse(random_scenario(table), "bad.toml")
    assert [f"{p.key}: {p.problem}" for p in caught.value.problems] == [
        "random_faults[0].stations: must name stations of this scenario, got 'Z'",
        "random_faults[0].archive_write: only crashes (station_crash, receiver_crash) wait for one",
        "random_faults[0]: need 0 < min_duration_s <= max_duration_s < 41472 (half the span faults are "
        "drawn in), got 600..60",
        "random_faults[1].stations: a receiver_crash concerns the receiver, not a station",
    ]


def test_truth_store_keeps_a_contiguous_stream_on_disk(tmp_path):
    store = TruthStore(tmp_path)
    t0 = 1_800_000_000 * NS_PER_S
    store.record("ABCDZ0", t0, np.arange(100, dtype=np.int32), 20)
    store.record("ABCDZ0", t0 + 5 * NS_PER_S, np.arange(100, 200, dtype=np.int32), 20)
    with pytest.raises(ValueError, match="contiguous"):
        store.record("ABCDZ0", t0 + 11 * NS_PER_S, np.zeros(100, np.int32), 20)
    start, samples = store.samples_of("ABCDZ0")
    assert start == t0 and np.array_equal(samples, np.arange(200))
    store.close()
    assert np.array_equal(store.samples_of("ABCDZ0")[1], np.arange(200))  # still readable after the run
    assert len(store.samples_of("OTHER")[1]) == 0


def test_hardware_gaps_are_excused_only_by_their_exact_bounds():
    ns = NS_PER_S
    truth = np.arange(100, dtype=np.int32)
    archive = [(0, truth[:30]), (40 * ns, truth[40:100])]  # samples 30-39 missing
    exact = compare_channel("X.BHZ.", 0, 1.0, truth, archive, [(30 * ns, 40 * ns)])
    assert exact.exact and exact.hardware_gap_samples == 10 and exact.missing == [(30 * ns, 40 * ns)]
    narrower = compare_channel("X.BHZ.", 0, 1.0, truth, archive, [(30 * ns, 38 * ns)])
    assert narrower.lost == 2 and not narrower.exact
    wider = compare_channel("X.BHZ.", 0, 1.0, truth, archive, [(28 * ns, 40 * ns)])
    assert wider.lost == 0 and wider.outside_truth == 2 and not wider.exact  # 28, 29 could not be archived


LOG = """\
ts=2026-12-06T10:00:10.000Z level=warning logger=station.alarms msg="alarm raised: gci_link_down" \
alarm=gci_link_down source=station severity=critical value=130.0 threshold=120.0
ts=2026-12-06T10:00:20.000Z level=info logger=station.alarms msg="alarm cleared: gci_link_down" \
alarm=gci_link_down source=station value=None
ts=2026-12-06T10:00:30.000Z level=warning logger=station.alarms msg="alarm raised: A: GPS unlocked since x" \
alarm=gps_unlocked source=A severity=warning value=True threshold=60.0
ts=2026-12-06T10:00:50.000Z level=warning logger=station.alarms msg="alarm raised: gci_link_down" \
alarm=gci_link_down source=station severity=critical value=130.0 threshold=120.0
"""


def test_alarm_times_are_read_in_simulated_seconds(tmp_path):
    (tmp_path / "A.log").write_text(LOG)
    wall0 = 1796551200 * NS_PER_S  # 2026-12-06T10:00:00Z
    episodes = alarmcheck.read_alarms(tmp_path / "A.log", "A", wall0, speed=60.0)
    assert [(e.alarm, e.raised_s, e.cleared_s) for e in episodes] == [
        ("gci_link_down", 600.0, 1200.0), ("gps_unlocked", 1800.0, None), ("gci_link_down", 3000.0, None)]


def test_a_restarted_station_is_down_until_it_said_it_was_ready():
    log = [{"fault": "station_crash", "phase": "begin", "station": "A", "at_s": 30000.0},
           {"fault": "link_outage", "phase": "begin", "station": "B", "at_s": 31000.0},
           {"fault": "station_crash", "phase": "end", "station": "A", "at_s": 30300.0, "ready_s": 36800.0},
           {"fault": "link_outage", "phase": "end", "station": "B", "at_s": 32000.0}]
    spans = alarmcheck.fault_spans(log)
    assert spans == [alarmcheck.FaultSpan(0, "station_crash", "A", 30000.0, 36800.0),
                     alarmcheck.FaultSpan(1, "link_outage", "B", 31000.0, 32000.0)]
    # the backlog a slow start leaves (a loaded CI machine) is explained; without ready_s it is not
    def backlog():
        return [alarmcheck.AlarmEpisode("A", "delivery_backlog", "station", 36900.0, 37900.0)]

    limits = alarmcheck.Thresholds(backlog_after_s=4000.0)
    assert alarmcheck.cross_check(backlog(), spans, limits, 60.0)["false_alarms"] == 0
    spawned = alarmcheck.fault_spans([log[0], {k: v for k, v in log[2].items() if k != "ready_s"}])
    assert alarmcheck.cross_check(backlog(), spawned, limits, 60.0)["false_alarms"] == 1


def test_every_alarm_needs_a_fault_at_its_station_and_long_faults_need_their_alarm():
    limits = alarmcheck.Thresholds()
    faults = [alarmcheck.FaultSpan(0, "link_outage", "A", 1000.0, 5000.0),
              alarmcheck.FaultSpan(1, "gps_unlock", "B", 1000.0, 4000.0),
              alarmcheck.FaultSpan(2, "receiver_crash", None, 9000.0, 9600.0)]
    alarms = [alarmcheck.AlarmEpisode("A", "gci_link_down", "station", 1200.0, 5100.0),
              alarmcheck.AlarmEpisode("B", "gci_link_down", "station", 1300.0, 2000.0),  # B never cut
              alarmcheck.AlarmEpisode("A", "gps_unlocked", "A", 1100.0),  # A's GPS never unlocked
              alarmcheck.AlarmEpisode("A", "gci_link_down", "station", 9300.0, 9700.0)]
    result = alarmcheck.cross_check(alarms, faults, limits, status_interval_sim_s=60.0)
    assert [a["explained_by"] for a in result["alarms"]] == [0, None, None, 2]
    assert result["false_alarms"] == 2
    # B never raised gps_unlocked for its 50 min unlock, nor gci_link_down for the receiver's 10 min
    assert [f.get("missed_at") for f in result["faults"]] == [[], ["B"], ["B"]]
    assert [f.get("expected_alarms") for f in result["faults"]] == [["gci_link_down"], ["gps_unlocked"],
                                                                     ["gci_link_down"]]
    assert result["missed_alarms"] == 2


def test_a_full_disk_is_alarmed_by_whichever_store_failed_first_and_missed_when_neither_did():
    """The outbox and the local archive share the disk: either one's write alarm answers a disk_full, at
    the station whose disk it was; an alarm of another kind, or at another station, does not."""
    faults = [alarmcheck.FaultSpan(i, "disk_full", station, 1000.0 + 1000 * i, 1337.0 + 1000 * i)
              for i, station in enumerate("ABCD")]
    alarms = [alarmcheck.AlarmEpisode("A", "archive_write_failed", "station", 1005.0, 1340.0),
              alarmcheck.AlarmEpisode("B", "outbox_write_failed", "station", 2010.0, 2338.0),
              alarmcheck.AlarmEpisode("C", "gci_link_down", "station", 3100.0, 3200.0),
              alarmcheck.AlarmEpisode("A", "archive_write_failed", "station", 4050.0, 4300.0)]
    result = alarmcheck.cross_check(alarms, faults, alarmcheck.Thresholds(), status_interval_sim_s=60.0)
    assert [a["explained_by"] for a in result["alarms"]] == [0, 1, None, None]
    either = ["archive_write_failed", "outbox_write_failed"]
    assert [f["expected_alarms"] for f in result["faults"]] == [either] * 4
    assert [f["missed_at"] for f in result["faults"]] == [[], [], ["C"], ["D"]]
    assert (result["false_alarms"], result["missed_alarms"]) == (2, 2)
    # a full disk too short to have been written to needs no alarm
    brief = [alarmcheck.FaultSpan(0, "disk_full", "A", 1000.0, 1100.0)]
    assert alarmcheck.cross_check([], brief, alarmcheck.Thresholds(), 60.0)["missed_alarms"] == 0


def test_memory_is_sampled_per_window_and_growth_is_bounded():
    watch = ProcessWatch(window_s=100.0)
    for sim_s in (0.0, 50.0, 150.0, 250.0):
        watch.sample(sim_s, {"me": os.getpid()})
    report = watch.report(MemoryBound())
    me = report["roles"]["me"]
    assert len(me["peak_rss_mib_per_window"]) == 3 and me["flat"] and me["cpu_s"] > 0
    assert read_usage(os.getpid())[0] > MIB
    bound = MemoryBound(ratio=0.25, slack_bytes=32 * MIB)
    assert bound.limit(400 * MIB) == 500 * MIB and bound.limit(40 * MIB) == 72 * MIB
    watch.roles["me"].peaks[2] = 10_000 * MIB  # a leak in the last window
    assert not watch.report(MemoryBound())["flat"]


@pytest.mark.skipif(not WRITE_CALLS, reason="system call numbers of this architecture not listed")
def test_a_process_is_caught_inside_a_write_to_its_archive_folder(tmp_path):
    archive = tmp_path / "archive"
    archive.mkdir()
    writer = textwrap.dedent(f"""
        import os
        with open({str(archive / "day")!r}, "ab") as fh:
            while True:
                fh.write(b"x" * 65536)
                fh.flush()
                os.fsync(fh.fileno())
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer])
    try:
        elsewhere = wait_for_archive_write(proc.pid, tmp_path / "other", timeout_s=0.5)
        caught = wait_for_archive_write(proc.pid, archive, timeout_s=20.0)
    finally:
        proc.kill()
        proc.wait()
    assert elsewhere is None
    if caught is None:
        pytest.skip("the filesystem never blocked in a write here (tmpfs?)")
    assert caught.path == str(archive / "day") and caught.call in WRITE_CALLS.values()


def test_link_timeouts_and_alarm_thresholds_outlast_a_real_stall_and_reach_the_daemons(tmp_path):
    from hil.network import REAL_STALL_ALLOWED_S, DigitizerWiring, receiver_toml, station_toml, time_limits
    from idc.config import load_config as load_idc_config
    from station.config import parse_config

    assert time_limits(1.0) == alarmcheck.Thresholds()  # in real time the defaults stand
    fast = time_limits(1000.0)
    floor = REAL_STALL_ALLOWED_S * 1000.0
    assert min(fast.connect_timeout_s, fast.response_timeout_s, fast.idle_timeout_s, fast.idc_silence_s,
               fast.link_down_after_s, fast.backlog_after_s) >= floor
    spec = scenario.load(Path(__file__).parent / "scenarios" / "soak-day.toml").stations[0]
    wiring = DigitizerWiring("digitizer", spec.name, "/dev/null", {"SEISZ0": spec.channels[0]})
    text = station_toml(spec, [wiring], "tcp://127.0.0.1:1", tmp_path / "keys", 60, limits=fast)
    config = parse_config(text, "station.toml", tmp_path)
    assert (config.link.connect_timeout_s, config.link.response_timeout_s, config.link.idle_timeout_s) == (
        fast.connect_timeout_s, fast.response_timeout_s, fast.idle_timeout_s)
    assert (config.soh.link_down_after_s, config.soh.backlog_after_s) == (fast.link_down_after_s,
                                                                         fast.backlog_after_s)
    idc_toml = tmp_path / "idc.toml"
    idc_toml.write_text(receiver_toml(tmp_path / "idc", tmp_path / "trust", 1, {"SEIS1": "XX"},
                                      {"SEIS1": ["SEIS1"]}, silence_timeout_s=fast.idc_silence_s))
    assert load_idc_config(idc_toml).silence_timeout_s == fast.idc_silence_s
    # the longer limits excuse no alarm by themselves: one at a station without a fault is still false
    lone = [alarmcheck.AlarmEpisode("A", "delivery_backlog", "station", 50_000.0)]
    outage = [alarmcheck.FaultSpan(0, "link_outage", "B", 10_000.0, 17_200.0)]
    result = alarmcheck.cross_check(lone, outage, fast, status_interval_sim_s=1000.0)
    assert result["false_alarms"] == 1
    assert result["faults"][0]["missed_at"] == ["B"]  # and a 2 h outage must still raise its alarm
