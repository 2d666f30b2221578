"""The Prometheus exporter of every daemon: bound before anything is created (a port already taken is a
one-line refusal), with the build and the process described beside the daemon's own metrics."""

from __future__ import annotations

import platform
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import PLATFORM_COLLECTOR, PROCESS_COLLECTOR, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from opskit.build import build_version
from opskit.listen import ListenError


class BuildInfo(Collector):
    """``ims_build_info{version, python, role} 1``: which software answers (a constant, by convention)."""

    def __init__(self, role: str) -> None:
        self.role = role

    def collect(self) -> Iterator[GaugeMetricFamily]:
        info = GaugeMetricFamily("ims_build_info", "Version of the IMS station stack and of Python, and "
                                 "which daemon this is", labels=["version", "python", "role"])
        info.add_metric([build_version(), platform.python_version(), self.role], 1.0)
        yield info


def daemon_registry(role: str) -> CollectorRegistry:
    """A registry holding the build info and the process metrics (CPU seconds, resident and virtual
    memory bytes, open file descriptors, start time), to which the daemon adds its own collectors."""
    registry = CollectorRegistry()
    registry.register(BuildInfo(role))
    registry.register(PROCESS_COLLECTOR)
    registry.register(PLATFORM_COLLECTOR)
    return registry


def start_exporter(
    registry: CollectorRegistry, address: str, port: int
) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``registry`` over HTTP for Prometheus on ``address:port``; ListenError names why it cannot."""
    try:
        return start_http_server(port, addr=address, registry=registry)
    except OSError as exc:
        raise ListenError(f"metrics port {address}:{port}: {exc.strerror or exc}") from None
