"""The IDC operators' web console (``[idc.console]``): the network at a glance, one page per station,
the availability table as CSV, and live updates by server-sent events.

Every number comes from :func:`idc.status.network_status` on the receiver's metrics database, the
function behind ``ims idc status --json``; the console opens its own connection for each read, in a
worker thread of its own event loop, so the receiver's loop never waits for a viewer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from consoles.web import create_app, event_stream, page
from gci_link.clock import Clock
from gci_link.keys.trust import TrustedKey
from idc.metrics import MetricsStore
from idc.status import availability_csv, network_status, station_status

LIVE_INTERVAL_S = 2.0

_NETWORK_BODY = """
<header><h1>IMS network</h1><span id="live" class="live">connecting…</span></header>
<section id="summary" class="cards"></section>
<section>
 <div class="tools">
  <input id="filter" type="search" placeholder="filter stations" aria-label="filter stations">
  <label><input id="problems" type="checkbox"> only stations with problems</label>
  <a id="csv" href="/export.csv" download="availability.csv">export CSV</a>
 </div>
 <table id="stations" class="grid"></table>
 <div class="pager"><button id="prev">‹ previous</button> <span id="pageinfo"></span>
  <button id="next">next ›</button></div>
</section>
"""

_STATION_BODY = """
<header><a href="/">‹ network</a><h1 id="title"></h1><span id="live" class="live">connecting…</span></header>
<section id="summary" class="cards"></section>
<h2>Channels</h2><table id="channels" class="grid"></table>
<h2>Gaps in the window</h2><table id="gaps" class="grid"></table>
<h2>Status flags seen (frames archived since the receiver's records began)</h2>
<table id="flags" class="grid"></table>
<h2>Keys the receiver trusts for it</h2><table id="keys" class="grid"></table>
<h2>Counters</h2><table id="counters" class="grid"></table>
<h2>Recent rejections</h2><table id="rejections" class="grid"></table>
"""


class IdcConsole:
    """``keys``: the station certificates the receiver trusts now (its trust store, reloaded with SIGHUP),
    shown per station; everything else is read from the receiver's databases."""

    def __init__(self, root: Path, window_s: int, clock: Clock,
                 keys: Callable[[], Sequence[TrustedKey]] = tuple) -> None:
        self.metrics_path = root / "metrics.sqlite"
        self.quarantine_path = root / "quarantine.sqlite"
        self.window_s = window_s
        self.clock = clock
        self._cached: tuple[float, dict[str, Any]] | None = None  # (monotonic s, document), shared
        self.keys = keys

    def network(self) -> dict[str, Any]:
        """The status document, computed at most once per update interval of real time however many
        viewers ask (300 stations of channels cost the receiver's machine tens of milliseconds)."""
        cached = self._cached
        if cached is not None and time.monotonic() - cached[0] < LIVE_INTERVAL_S:
            return cached[1]
        store = MetricsStore(self.metrics_path)
        try:
            document = network_status(store, self.clock(), self.window_s)
        finally:
            store.close()
        self._cached = (time.monotonic(), document)
        return document

    def station(self, name: str) -> dict[str, Any] | None:
        store = MetricsStore(self.metrics_path)
        try:
            found = station_status(store, self.quarantine_path, name, self.clock(), self.window_s)
        finally:
            store.close()
        if found is None:
            return None
        now = self.clock()
        return found | {"keys": [
            {"key_id": k.key_id, "algorithm": k.algorithm, "not_before_ns": k.not_before_ns,
             "not_after_ns": k.not_after_ns, "revoked_ns": k.revoked_ns, "legacy": k.legacy,
             "valid_now": k.revoked_ns is None and k.not_before_ns <= now < k.not_after_ns}
            for k in self.keys() if k.station == name]}

    def app(self, token: str | None, tls: bool) -> web.Application:
        app = create_app(token, tls)
        app.router.add_get("/", self._network_page)
        app.router.add_get("/station/{name}", self._station_page)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/api/station/{name}", self._station)
        app.router.add_get("/export.csv", self._csv)
        app.router.add_get("/events", self._events)
        app.router.add_get("/events/station/{name}", self._station_events)
        return app

    async def _network_page(self, request: web.Request) -> web.Response:
        return page("IMS network", _NETWORK_BODY, "idc.js", {"view": "network"})

    async def _station_page(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return page(f"{name} · IMS network", _STATION_BODY, "idc.js", {"view": "station", "station": name})

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(await asyncio.to_thread(self.network))

    async def _station(self, request: web.Request) -> web.Response:
        found = await asyncio.to_thread(self.station, request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound(text="no such station in the receiver's records")
        return web.json_response(found)

    async def _csv(self, request: web.Request) -> web.Response:
        text = availability_csv(await asyncio.to_thread(self.network))
        return web.Response(text=text, content_type="text/csv",
                            headers={"Content-Disposition": 'attachment; filename="availability.csv"'})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        return await event_stream(request, self.network, LIVE_INTERVAL_S)

    async def _station_events(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        return await event_stream(request, lambda: self.station(name), LIVE_INTERVAL_S)
