"""Prometheus view of the daemon's counters (link, outbox, channels, digitizers, radionuclide messages),
read live at scrape."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class StationCollector(Collector):
    """Collects from a snapshot function so the metrics and ``ims station status`` never disagree."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        snap = self._snapshot()
        outbox = GaugeMetricFamily("ims_outbox", "Station outbox state", labels=["quantity"])
        for key in ("frames", "bytes", "unacked_frames", "unacked_bytes", "budget_bytes"):
            outbox.add_metric([key], snap["outbox"][key])
        outbox.add_metric(["over_budget"], float(snap["outbox"]["over_budget"]))
        yield outbox
        link = CounterMetricFamily("ims_link", "GCI link counters", labels=["counter"])
        for key in ("frames_sent", "frames_resent", "frames_acked", "reconnects", "bytes_sent",
                    "idc_frames_refused"):
            link.add_metric([key], snap["link"][key])
        yield link
        channel = CounterMetricFamily(
            "ims_channel", "Acquisition counters per channel", labels=["channel", "counter"]
        )
        for code, stats in snap["channels"].items():
            for key, value in stats.items():
                if isinstance(value, int):
                    channel.add_metric([code, key], value)
        yield channel
        digitizer = CounterMetricFamily(
            "ims_digitizer", "Digitizer driver counters", labels=["digitizer", "counter"]
        )
        for name, counters in snap["digitizers"].items():
            for key, value in counters.items():
                digitizer.add_metric([name, key], value)
        yield digitizer
        messages = GaugeMetricFamily(
            "ims_radionuclide_messages", "IMS 2.0 messages of each radionuclide system in the outbox",
            labels=["system", "quantity"],
        )
        for name, system in snap.get("radionuclide", {}).items():
            for key in ("stored", "pending", "acked"):
                if key in system.get("messages", {}):
                    messages.add_metric([name, key], system["messages"][key])
        yield messages
