"""State of health: hysteresis without flapping, raise/clear records, CD-1.1 flags, metrics, table."""

from __future__ import annotations

import calendar
import dataclasses

import pytest
from prometheus_client import generate_latest

from digitizer.packet import Status
from gci_link.cd11.status import FLAGS, ChannelStatus
from station.alarms import AlarmBoard
from station.config import load_example_config
from station.soh import ALARM_FLAGS, SohMonitor
from timeunits import NS_PER_S

T0 = calendar.timegm((2024, 3, 1, 12, 0, 0)) * NS_PER_S
DIG = "XMPL01"


@pytest.fixture
def monitor(tmp_path) -> SohMonitor:
    return SohMonitor(load_example_config(tmp_path).soh, AlarmBoard())


def at(seconds: float) -> int:
    return T0 + round(seconds * NS_PER_S)


def test_supply_voltage_hovering_at_the_threshold_does_not_flap(monitor):
    # limit 11.0 V, hysteresis 0.3 V: raised below 11.0, cleared only at >= 11.3
    readings = [11.2, 10.99, 11.05, 10.95, 11.1, 11.29, 11.0, 11.3, 11.1, 11.0, 10.9]
    active = []
    for i, volts in enumerate(readings):
        monitor.observe_status(Status(DIG, at(i), supply_volts=volts))
        active.append(monitor.alarms.get("supply_voltage_low", DIG) is not None)
    assert active == [False, True, True, True, True, True, True, False, False, False, True]
    episodes = [a for a in monitor.alarms.history if a.name == "supply_voltage_low"]
    assert len(episodes) == 1
    first = episodes[0]
    assert (first.raised_ns, first.cleared_ns, first.threshold, first.value) == (at(1), at(7), 11.0, 11.3)
    assert monitor.alarms.get("supply_voltage_low", DIG).raised_ns == at(10)


def test_high_threshold_clears_below_by_the_hysteresis(monitor):
    for i, celsius in enumerate([49.0, 50.5, 49.5, 49.0]):
        monitor.observe_status(Status(DIG, at(i), temperature_c=celsius))
    (episode,) = monitor.alarms.history
    assert (episode.name, episode.raised_ns, episode.cleared_ns) == ("temperature_high", at(1), at(3))


def test_gps_unlock_raises_after_the_grace_period_and_sets_the_misc_flag(monitor):
    monitor.observe_status(Status(DIG, at(0), gps_locked=False))
    monitor.observe_status(Status(DIG, at(59), gps_locked=False))
    assert monitor.channel_status(DIG).raw[3] == 0  # 60 s grace
    monitor.observe_status(Status(DIG, at(60), gps_locked=False))
    alarm = monitor.alarms.get("gps_unlocked", DIG)
    assert alarm is not None and alarm.raised_ns == at(60) and alarm.threshold == 60.0
    assert monitor.channel_status(DIG).raw[3] == 0x04  # bit 3: GPS receiver unlocked
    monitor.observe_status(Status(DIG, at(61), gps_locked=True))
    assert monitor.channel_status(DIG).raw[3] == 0 and monitor.alarms.history[-1].cleared_ns == at(61)


def test_clock_differential_sets_misc_bit_1_and_carries_the_value(monitor):
    sync = at(-3600)
    monitor.observe_status(Status(DIG, at(0), clock_offset_ns=-1_500_000, last_gps_sync_ns=sync))
    status = ChannelStatus(monitor.channel_status(DIG).raw)  # as a receiver decodes it
    assert status.flag("clock_differential_too_large") and status.raw[3] == 0x01
    assert status.clock_differential_us == -1500 and status.last_gps_sync_ns == sync
    monitor.observe_status(Status(DIG, at(1), clock_offset_ns=950_000))  # inside, but within hysteresis
    assert monitor.channel_status(DIG).raw[3] == 0x01
    monitor.observe_status(Status(DIG, at(2), clock_offset_ns=900_000))
    assert monitor.channel_status(DIG).raw[3] == 0


@pytest.mark.parametrize(("tamper_input", "mask"), [("housing", 0x01), ("digitizer", 0x02),
                                                    ("vault_door", 0x04), ("seal", 0x08), ("moved", 0x10)])
def test_tamper_input_sets_its_security_flag_on_every_digitizer(monitor, tamper_input, mask):
    monitor.observe_tamper(tamper_input, True, at(0))
    assert monitor.channel_status(DIG).raw[2] == mask
    assert monitor.channel_status("OTHER1").raw[2] == mask  # site-wide
    monitor.observe_tamper(tamper_input, False, at(5))
    assert monitor.channel_status(DIG).raw[2] == 0


def test_unknown_tamper_input_is_refused(monitor):
    with pytest.raises(ValueError, match="unknown tamper input 'window'"):
        monitor.observe_tamper("window", True, at(0))


def test_power_failures_set_voltage_flags(monitor):
    monitor.observe_power(at(0), mains_ok=False, backup_volts=12.5)
    assert monitor.channel_status(DIG).raw[4] == 0x01
    monitor.observe_power(at(1), mains_ok=False, backup_volts=11.4)  # below 11.5
    assert monitor.channel_status(DIG).raw[4] == 0x03
    monitor.observe_power(at(2), mains_ok=True, backup_volts=11.6)  # not yet 11.5 + 0.2
    assert monitor.channel_status(DIG).raw[4] == 0x02
    monitor.observe_power(at(3), backup_volts=11.7)
    assert monitor.channel_status(DIG).raw[4] == 0


def test_calibration_and_mass_positions(monitor):
    monitor.observe_status(Status(DIG, at(0), calibration_active=True, mass_positions=(0.1, -0.75, 0.2)))
    assert monitor.channel_status(DIG).raw[1] == 0x08  # bit 4: calibration underway
    assert monitor.alarms.get("mass_position_high", f"{DIG}/1").value == 0.75
    monitor.observe_status(Status(DIG, at(1), calibration_active=False, mass_positions=(0.1, 0.64, 0.2)))
    assert monitor.channel_status(DIG).raw[1] == 0
    assert monitor.alarms.active() == []


def test_alarms_of_another_digitizer_do_not_leak_into_this_ones_status(monitor):
    monitor.observe_status(Status("OTHER1", at(0), clock_offset_ns=5_000_000))
    assert monitor.channel_status(DIG).raw[3] == 0 and monitor.channel_status("OTHER1").raw[3] == 0x01


def test_every_alarm_maps_to_a_distinct_codec_flag():
    assert set(ALARM_FLAGS.values()) <= set(FLAGS)
    assert len(set(ALARM_FLAGS.values())) == len(ALARM_FLAGS)


def test_gps_unlock_status_decodes_as_the_codec_flag(monitor):
    monitor.observe_status(Status(DIG, at(0), gps_locked=False))
    monitor.observe_status(Status(DIG, at(120), gps_locked=False))
    monitor.observe_tamper("seal", True, at(120))
    flags = monitor.channel_status(DIG).flags()
    assert {name for name, on in flags.items() if on} == {
        "gps_receiver_unlocked", "authentication_seal_broken"}


def test_metrics_expose_readings_and_alarm_states(monitor):
    monitor.observe_status(Status(DIG, at(0), supply_volts=10.0, temperature_c=21.5))
    monitor.observe_status(Status(DIG, at(1), supply_volts=12.0))
    monitor.observe_tamper("vault_door", True, at(2))
    text = generate_latest(monitor.registry).decode()
    assert 'ims_station_supply_volts{source="XMPL01"} 12.0' in text
    assert 'ims_station_temperature_celsius{source="XMPL01"} 21.5' in text
    assert 'ims_station_tamper_open{input="vault_door"} 1.0' in text
    alarm = "ims_station_alarm_active"
    assert f'{alarm}{{alarm="supply_voltage_low",severity="critical",source="XMPL01"}} 0.0' in text
    assert f'{alarm}{{alarm="vault_door_open",severity="critical",source="station"}} 1.0' in text


def test_text_table_lists_readings_and_active_alarms(monitor):
    assert monitor.render_table().endswith("no active alarms")
    monitor.observe_status(Status(DIG, at(0), supply_volts=10.5))
    table = monitor.render_table().splitlines()
    assert table[0].split() == ["READING", "SOURCE", "VALUE", "AT", "(UTC)"]
    assert table[1].split() == ["supply_volts", DIG, "10.5", "2024-03-01T12:00:00.000Z"]
    assert table[-1].split() == ["CRITICAL", "supply_voltage_low", DIG, "10.5", "11",
                                 "2024-03-01T12:00:00.000Z"]


def test_alarm_records_are_frozen(monitor):
    monitor.observe_tamper("seal", True, at(0))
    alarm = monitor.alarms.get("seal_broken", "station")
    with pytest.raises(dataclasses.FrozenInstanceError):
        alarm.value = False
