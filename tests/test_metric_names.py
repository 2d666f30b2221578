"""Every metric the station and the receiver export follows Prometheus's naming rules, read back from the
exposition with prometheus_client's own parser (https://prometheus.io/docs/practices/naming/):

- names in the metric-name alphabet, under the ``ims_`` prefix (besides the client's process_ and python_);
- counters end in ``_total``, nothing else does;
- base units only (seconds, bytes, ratios, volts, celsius), as the last word before ``_total``;
- one meaning per family: no label that multiplexes quantities (``counter=``, ``quantity=``, ...);
- a channel is site, channel and location labels, never one ``SITE.CHA.LO`` value;
- build info and process metrics are there.
"""

from __future__ import annotations

import re
import time

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from digitizer.packet import Status
from idc.metrics import EVENT_FAMILIES, MetricsCollector, MetricsStore
from idc.vocabulary import StationCounter
from opskit.exporter import daemon_registry
from station.service import StationService
from tests.station.test_service import CONFIG, Clock, ScriptedDriver, feed
from timeunits import NS_PER_S

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
UNITS = ("seconds", "bytes", "ratio", "volts", "celsius")
NOT_BASE_UNITS = re.compile(r"_(ns|us|ms|milliseconds|microseconds|nanoseconds|minutes|hours|days|percent|"
                            r"kb|mb|gb|kbps|c|mv)(_|$)")
MULTIPLEXING_LABELS = {"counter", "quantity", "reading", "event", "kind", "metric", "type", "name"}


def station_exposition(tmp_path) -> str:
    from station.config import parse_config

    registry = daemon_registry("station")
    config = parse_config(CONFIG, "test", tmp_path)
    service = StationService(config, driver_factory=lambda _: ScriptedDriver(), clock=Clock(),
                             registry=registry)
    driver = service.drivers["d"]
    assert isinstance(driver, ScriptedDriver)
    feed(driver, 0, 30)
    service.pump()
    service.frame_and_publish()
    t = Clock().now
    service.soh.observe_status(Status("TST01", t, gps_locked=True, satellites=9, last_gps_sync_ns=t,
                                      clock_offset_ns=1500, supply_volts=10.0, temperature_c=21.5,
                                      mass_positions=(0.1, -0.2, 0.0), calibration_active=False))
    service.soh.observe_tamper("vault_door", True, t)
    service.soh.observe_power(t, mains_ok=True, backup_volts=13.0)
    service.write_status()
    try:
        return generate_latest(registry).decode()
    finally:
        service.outbox.close()
        service.archive.close()


def idc_exposition(tmp_path) -> str:
    now = time.time_ns()
    store = MetricsStore(tmp_path / "metrics.sqlite")
    for k in range(3):
        start = now - 30 * NS_PER_S + k * 10 * NS_PER_S
        store.channel_seen("STA1", "STA1A.BHZ.00", "authenticated", latency_ns=NS_PER_S, start_ns=start,
                           end_ns=start + 10 * NS_PER_S, rate=40.0)
    for counter in StationCounter:
        store.count("STA1", counter, 2)
    store.count("STA1", "rejected:crc", 3)
    store.count("?", "handshake_failed:auth", 1)
    store.close()
    registry = daemon_registry("idc")
    registry.register(MetricsCollector(tmp_path / "metrics.sqlite", 60, lambda: now))
    return generate_latest(registry).decode()


@pytest.fixture(params=["station", "idc"])
def exposition(request, tmp_path) -> tuple[str, str]:
    maker = station_exposition if request.param == "station" else idc_exposition
    return request.param, maker(tmp_path)


def test_every_family_follows_the_naming_rules(exposition):
    role, text = exposition
    families = list(text_string_to_metric_families(text))
    ours = [f for f in families if f.name.startswith("ims_")]
    assert len(ours) > 10
    wrong = []
    for family in families:
        name = family.name
        if not (name.startswith(("ims_", "process_", "python_"))):
            wrong.append(f"{name}: not under the ims_ prefix")
        if not NAME.fullmatch(name):
            wrong.append(f"{name}: not a metric name")
        if not family.documentation.strip():
            wrong.append(f"{name}: no help text")
        for sample in family.samples:
            if family.type == "counter" and not sample.name.endswith(("_total", "_created")):
                wrong.append(f"{sample.name}: a counter without _total")
            if family.type != "counter" and sample.name.endswith("_total"):
                wrong.append(f"{sample.name}: _total on a {family.type}")
            bad = set(sample.labels) & MULTIPLEXING_LABELS
            if bad:
                wrong.append(f"{sample.name}: multiplexing label {sorted(bad)}")
            if not all(LABEL.fullmatch(label) for label in sample.labels):
                wrong.append(f"{sample.name}: label name {sorted(sample.labels)}")
            if "channel" in sample.labels and not {"site", "location"} <= set(sample.labels):
                wrong.append(f"{sample.name}: channel without its site and location labels")
            if "." in sample.labels.get("channel", ""):
                wrong.append(f"{sample.name}: channel label {sample.labels['channel']!r} is a whole code")
        if name.startswith("ims_"):
            if NOT_BASE_UNITS.search(name):
                wrong.append(f"{name}: not a base unit")
            for unit in UNITS:
                if f"_{unit}_" in f"{name}_" and not name.endswith(f"_{unit}") \
                        and not name.endswith("_timestamp_seconds"):
                    wrong.append(f"{name}: unit {unit} is not the last word")
    assert not wrong, "\n".join(wrong)


def test_build_info_and_process_metrics(exposition):
    role, text = exposition
    families = {f.name: f for f in text_string_to_metric_families(text)}
    (info,) = families["ims_build_info"].samples
    assert info.value == 1 and info.labels["role"] == role and info.labels["version"]
    assert families["process_cpu_seconds"].type == "counter"
    assert families["process_resident_memory_bytes"].samples[0].value > 0


def test_station_values_are_in_base_units(tmp_path):
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(station_exposition(tmp_path)) for s in f.samples}
    bhz = (("channel", "BHZ"), ("location", ""), ("site", "TST"))
    assert samples[("ims_station_channel_samples_total", bhz)] > 0
    assert samples[("ims_station_clock_offset_seconds", (("source", "TST01"),))] == pytest.approx(1.5e-6)
    assert samples[("ims_station_mass_position_ratio", (("component", "1"), ("source", "TST01")))] == -0.2
    assert samples[("ims_station_supply_volts", (("source", "TST01"),))] == 10.0
    assert samples[("ims_station_alarm_active", (("alarm", "supply_voltage_low"), ("severity", "critical"),
                                                 ("source", "TST01")))] == 1.0


def test_every_station_counter_of_the_receiver_has_its_family(tmp_path):
    assert set(EVENT_FAMILIES) == set(StationCounter)
    families = {f.name: f for f in text_string_to_metric_families(idc_exposition(tmp_path))}
    for name, _ in EVENT_FAMILIES.values():
        assert [s.value for s in families[name].samples if s.name.endswith("_total")] == [2.0], name
    (rejection,) = [s for s in families["ims_idc_rejections"].samples if s.name.endswith("_total")]
    assert rejection.labels == {"station": "STA1", "reason": "crc"} and rejection.value == 3
    (ratio,) = families["ims_idc_channel_availability_ratio"].samples
    assert 0.45 < ratio.value <= 0.5  # 30 s of a 60 s window
