"""Prometheus view of the daemon's counters (link, outbox, channels, digitizers, radionuclide messages),
read live at scrape from the same snapshot as ``ims station status``.

Prometheus conventions (docs/operator-guide.md, "Metrics"): one meaning per family, base units (seconds,
bytes), ``_total`` on counters, a channel's site, channel and location as separate labels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from timeunits import NS_PER_S

Family = GaugeMetricFamily | CounterMetricFamily

# snapshot key -> (family name without _total, help)
OUTBOX_GAUGES = {
    "frames": ("ims_station_outbox_frames", "Frames held in the outbox"),
    "bytes": ("ims_station_outbox_bytes", "Bytes the outbox holds"),
    "unacked_frames": ("ims_station_outbox_unacked_frames", "Frames not yet acknowledged by the IDC"),
    "unacked_bytes": ("ims_station_outbox_unacked_bytes", "Bytes of the frames not yet acknowledged"),
    "budget_bytes": ("ims_station_outbox_budget_bytes", "Disk budget of the outbox"),
    "over_budget": ("ims_station_outbox_over_budget", "1 while the outbox is over its budget"),
}
LINK_COUNTERS = {
    "frames_sent": ("ims_station_link_frames_sent", "Frames sent to the IDC (first sends)"),
    "frames_resent": ("ims_station_link_frames_resent", "Frames sent again (gap fills, reconnects)"),
    "frames_acked": ("ims_station_link_frames_acked", "Frames the IDC acknowledged"),
    "reconnects": ("ims_station_link_reconnects", "Connections to the IDC opened again"),
    "bytes_sent": ("ims_station_link_sent_bytes", "Bytes sent to the IDC"),
    "idc_frames_refused": ("ims_station_link_idc_frames_refused", "Frames from the IDC refused (signature)"),
}
CHANNEL_COUNTERS: dict[str, tuple[str, str, float]] = {  # ChannelStats field -> family, help, scale
    "packets": ("ims_station_channel_packets", "Digitizer packets taken", 1),
    "samples": ("ims_station_channel_samples", "Samples taken", 1),
    "gaps": ("ims_station_channel_gaps", "Gaps declared final", 1),
    "gap_ns": ("ims_station_channel_gap_seconds", "Time covered by final gaps", 1 / NS_PER_S),
    "duplicate_samples": ("ims_station_channel_duplicate_samples", "Samples received twice, dropped", 1),
    "conflicting_samples": ("ims_station_channel_conflicting_samples",
                            "Samples received twice with another value", 1),
    "reordered_packets": ("ims_station_channel_reordered_packets", "Packets that arrived out of order", 1),
    "late_packets": ("ims_station_channel_late_packets", "Packets after their gap was final, dropped", 1),
    "late_samples": ("ims_station_channel_late_samples", "Samples of the late packets", 1),
    "time_tears": ("ims_station_channel_time_tears", "Backward time steps beyond the overlap tolerance", 1),
    "rate_changes": ("ims_station_channel_rate_changes", "Sample rate changes", 1),
    "lock_changes": ("ims_station_channel_clock_lock_changes", "Digitizer clock lock changes", 1),
    "overflow_samples": ("ims_station_channel_overflow_samples", "Samples dropped beyond the buffer cap", 1),
    "rejected_packets": ("ims_station_channel_rejected_packets", "Packets refused (bad rate, time)", 1),
}
RADIONUCLIDE_GAUGES = {
    "stored": ("ims_station_radionuclide_messages_stored", "IMS 2.0 messages of the system in the outbox"),
    "pending": ("ims_station_radionuclide_messages_pending", "Its messages not yet acknowledged by the IDC"),
    "acked": ("ims_station_radionuclide_messages_acked", "Its messages the IDC acknowledged"),
}
CHANNEL_LABELS = ["site", "channel", "location"]


def split_code(code: str) -> list[str]:
    """``SITE.CHA.LO`` as its three labels (location may be empty)."""
    site, _, rest = code.partition(".")
    channel, _, location = rest.partition(".")
    return [site, channel, location]


class StationCollector(Collector):
    """Collects from a snapshot function so the metrics and ``ims station status`` never disagree."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Family]:
        snap = self._snapshot()
        for key, (name, doc) in OUTBOX_GAUGES.items():
            yield GaugeMetricFamily(name, doc, value=float(snap["outbox"][key]))
        up = GaugeMetricFamily("ims_station_link_up", "1 while the link to the IDC carries data")
        up.add_metric([], float(snap["link"].get("state") == "data"))
        yield up
        for key, (name, doc) in LINK_COUNTERS.items():
            yield CounterMetricFamily(name, doc, value=snap["link"][key])
        for field, (name, doc, scale) in CHANNEL_COUNTERS.items():
            family = CounterMetricFamily(name, doc, labels=CHANNEL_LABELS)
            for code, stats in sorted(snap["channels"].items()):
                if field in stats:
                    family.add_metric(split_code(code), stats[field] * scale)
            yield family
        yield from _digitizer_families(snap["digitizers"])
        for key, (name, doc) in RADIONUCLIDE_GAUGES.items():
            gauge = GaugeMetricFamily(name, doc, labels=["system"])
            for system, status in sorted(snap.get("radionuclide", {}).items()):
                if key in status.get("messages", {}):
                    gauge.add_metric([system], status["messages"][key])
            yield gauge


DIGITIZER_NAMES = {"bytes_in": "received_bytes"}  # driver counters whose names do not end in their unit


def _digitizer_families(digitizers: dict[str, dict[str, int]]) -> Iterator[CounterMetricFamily]:
    """One counter family per driver counter (checksum failures, RIC mismatches, resyncs, ...)."""
    fields = sorted({field for counters in digitizers.values() for field in counters})
    for field in fields:
        name = f"ims_station_digitizer_{DIGITIZER_NAMES.get(field, field)}"
        doc = f"Digitizer driver: {field.replace('_', ' ')}"
        family = CounterMetricFamily(name, doc, labels=["digitizer"])
        for digitizer, counters in sorted(digitizers.items()):
            if field in counters:
                family.add_metric([digitizer], counters[field])
        yield family
