"""The station's web console ([console]): equipment, alarms, the GCI link, disk, channels and a live
waveform, for the technician on site or the operator at the national centre.

It shows the snapshot ``ims station status`` prints (built by the main loop, swapped whole) and the wave
tap's last minutes; it never calls into acquisition, so a viewer cannot slow it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

from consoles.web import create_app, event_stream, page
from station.availability import AvailabilityStrips
from station.wavetap import WaveTap

LIVE_INTERVAL_S = 1.0
STRIPS = {"hours": (72, 5), "days": (168, 60)}  # bars and minutes per bar: 6 h in 5 min, 7 days in hours

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
<div class="strips"><div><span class="muted">availability, last 6 hours (5 min bars)</span>
 <canvas id="strip-hours" class="strip"></canvas></div>
 <div><span class="muted">availability, last 7 days (1 h bars)</span>
 <canvas id="strip-days" class="strip"></canvas></div></div>
<h2>Channels</h2><table id="channels" class="grid"></table>
<div id="rn-section" hidden><h2>Radionuclide systems</h2><table id="radionuclide" class="grid"></table></div>
<h2>Recent alarms (cleared)</h2><table id="recent" class="grid"></table>
<h2>Calibration</h2>
<section id="calibration">
 <form id="login" hidden><input id="token" type="password" placeholder="operator credential"
  aria-label="operator credential" autocomplete="current-password"> <button>log in as operator</button></form>
 <form id="calibrate" hidden>
  <select id="cal-channel" aria-label="channel"></select>
  <select id="cal-signal" aria-label="signal"><option>random</option><option>step</option>
   <option>sine</option></select>
  <label>minutes <input id="cal-minutes" type="number" min="1" max="240" value="30"></label>
  <label>Hz (sine) <input id="cal-hz" type="text" value="0.1 1" aria-label="frequencies in Hz"></label>
  <button>start calibration…</button> <button id="logout" type="button">log out</button>
 </form>
 <p id="cal-note" class="muted"></p>
</section>
"""


Calibrate = Callable[[list[str]], str]  # the words of a ``calibrate`` command (station/remote_calibration.py)
CALIBRATION_SIGNALS = ("random", "step", "sine")
MAX_CALIBRATION_MINUTES = 240
MAX_SINE_FREQUENCIES = 10


class StationConsole:
    """``calibrate`` (the service's) is what the one acting endpoint calls, for a logged-in operator."""

    def __init__(self, snapshot: Callable[[], dict[str, Any]], tap: WaveTap,
                 calibrate: Calibrate | None = None, availability: AvailabilityStrips | None = None) -> None:
        self.snapshot = snapshot
        self.tap = tap
        self.calibrate = calibrate
        self.availability = availability

    def live(self, channel: str | None) -> dict[str, Any]:
        """What one event carries: the snapshot, the channels the tap holds, and one channel's waveform."""
        channels = self.tap.channels()
        shown = channel if channel in channels else (channels[0] if channels else None)
        status = self.snapshot()
        strips = None
        if shown is not None and self.availability is not None:
            strips = {name: self.availability.strip(shown, status["now_ns"], bars, minutes)
                      for name, (bars, minutes) in STRIPS.items()}
        return {"status": status, "channels": channels, "channel": shown,
                "wave": None if shown is None else self.tap.points(shown), "availability": strips}

    def app(self, token: str | None, tls: bool) -> web.Application:
        app = create_app(token, tls)
        app.router.add_get("/", self._page)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/events", self._events)
        app.router.add_post("/api/calibrate", self._calibrate)
        return app

    async def _page(self, request: web.Request) -> web.Response:
        return page(f"{self.snapshot()['station']} · station console", _BODY, "station.js")

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(self.snapshot())

    async def _calibrate(self, request: web.Request) -> web.Response:
        """Start a calibration (the security middleware has checked the operator and the CSRF token)."""
        if self.calibrate is None:
            raise web.HTTPNotFound(text="this console cannot start calibrations")
        try:
            body = await request.json()
            words = _calibration_request(body, set(self.snapshot()["calibration_channels"]))
        except (ValueError, TypeError, KeyError) as exc:
            raise web.HTTPBadRequest(text=f"calibration not started: {exc}") from None
        answer = await asyncio.to_thread(self.calibrate, words)
        return web.json_response({"answer": answer})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        channel = request.query.get("channel")
        return await event_stream(request, lambda: self.live(channel), LIVE_INTERVAL_S)


def _calibration_request(body: Any, channels: set[str]) -> list[str]:
    """The ``calibrate`` command's words from the page's JSON, checked; ValueError says what is wrong
    (the daemon checks the channel's rate and its calibration table again before anything starts)."""
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    channel, signal, minutes = str(body["channel"]), str(body["signal"]), body["minutes"]
    if channel not in channels:
        raise ValueError(f"no channel {channel!r} with a calibration table")
    if signal not in CALIBRATION_SIGNALS:
        raise ValueError(f"signal must be one of {', '.join(CALIBRATION_SIGNALS)}")
    if type(minutes) is not int or not 1 <= minutes <= MAX_CALIBRATION_MINUTES:
        raise ValueError(f"minutes must be a whole number from 1 to {MAX_CALIBRATION_MINUTES}")
    words = ["calibrate", channel, signal, str(minutes)]
    if signal != "sine":
        return words
    hz = body.get("hz")
    if (not isinstance(hz, list) or not 1 <= len(hz) <= MAX_SINE_FREQUENCIES
            or not all(type(f) in (int, float) and 0 < f < 1000 for f in hz)):
        raise ValueError(f"a sine calibration needs 1 to {MAX_SINE_FREQUENCIES} frequencies in Hz, each > 0")
    return words + [f"{f:g}" for f in hz]
