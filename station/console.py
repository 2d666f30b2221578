"""The station's web console ([console]): equipment, alarms, the GCI link, disk, channels and a live
waveform, for the technician on site or the operator at the national centre.

It shows the snapshot ``ims station status`` prints (built by the main loop, swapped whole) and the wave
tap's last minutes; it never calls into acquisition, so a viewer cannot slow it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from consoles.web import create_app, event_stream, page
from station.wavetap import WaveTap

LIVE_INTERVAL_S = 1.0

_BODY = """
<header><h1 id="title">Station</h1><span id="state"></span>
 <span id="live" class="live">connecting…</span></header>
<section id="summary" class="cards"></section>
<h2>Active alarms</h2><table id="alarms" class="grid"></table>
<h2>Equipment</h2><table id="equipment" class="grid"></table>
<h2>Site</h2><table id="site" class="grid"></table>
<h2>Live waveform</h2>
<div class="tools"><select id="channel" aria-label="channel"></select>
 <span id="wavespan" class="muted"></span></div>
<canvas id="wave" class="wave"></canvas>
<h2>Channels</h2><table id="channels" class="grid"></table>
<h2>Recent alarms (cleared)</h2><table id="recent" class="grid"></table>
"""


class StationConsole:
    def __init__(self, snapshot: Callable[[], dict[str, Any]], tap: WaveTap) -> None:
        self.snapshot = snapshot
        self.tap = tap

    def live(self, channel: str | None) -> dict[str, Any]:
        """What one event carries: the snapshot, the channels the tap holds, and one channel's waveform."""
        channels = self.tap.channels()
        shown = channel if channel in channels else (channels[0] if channels else None)
        return {"status": self.snapshot(), "channels": channels, "channel": shown,
                "wave": None if shown is None else self.tap.points(shown)}

    def app(self, token: str | None, tls: bool) -> web.Application:
        app = create_app(token, tls)
        app.router.add_get("/", self._page)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/events", self._events)
        return app

    async def _page(self, request: web.Request) -> web.Response:
        return page(f"{self.snapshot()['station']} · station console", _BODY, "station.js")

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(self.snapshot())

    async def _events(self, request: web.Request) -> web.StreamResponse:
        channel = request.query.get("channel")
        return await event_stream(request, lambda: self.live(channel), LIVE_INTERVAL_S)
