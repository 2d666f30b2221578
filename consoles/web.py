"""The aiohttp application both consoles start from: security headers, login, static assets, events.

Every page is a small HTML shell plus vanilla JavaScript that fetches JSON and fills the page with
``textContent`` (never ``innerHTML``), so station-supplied names cannot become markup; what the server
writes into HTML itself goes through :func:`esc`. The content security policy allows scripts, styles
and connections from the daemon only: no CDN, nothing inline.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from consoles.auth import CSRF_HEADER, SESSION_COOKIE, OperatorAuth

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
AUTH_KEY: web.AppKey[OperatorAuth] = web.AppKey("auth", OperatorAuth)
TLS_KEY: web.AppKey[bool] = web.AppKey("tls", bool)
LOGIN_FAILURE_DELAY_S = 0.5
MAX_EVENT_STREAMS = 16  # open live-update streams; more are refused so viewers cannot load the daemon
_STREAMS_KEY: web.AppKey[list[int]] = web.AppKey("streams", list)

_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def esc(text: object) -> str:
    """Text for HTML (element content or a quoted attribute)."""
    return html.escape(str(text), quote=True)


def page(title: str, body: str, script: str, data: dict[str, str] | None = None) -> web.Response:
    """A console page: the shared style and script, the page's own script, ``data-*`` on the body.

    ``title`` and the ``data`` values are escaped here; ``body`` is markup written by us."""
    attrs = "".join(f' data-{esc(k)}="{esc(v)}"' for k, v in (data or {}).items())
    text = (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{esc(title)}</title><link rel=\"stylesheet\" href=\"/static/console.css\">"
        "<script src=\"/static/console.js\" defer></script>"
        f"<script src=\"/static/{esc(script)}\" defer></script></head>"
        f"<body{attrs}>{body}</body></html>"
    )
    return web.Response(text=text, content_type="text/html")


@web.middleware
async def _security(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD") and request.path not in ("/login", "/logout"):
        auth = request.app[AUTH_KEY]
        if not auth.may_act(request.headers.get("Authorization"), request.cookies.get(SESSION_COOKIE),
                            request.headers.get(CSRF_HEADER)):
            reason = "log in as operator first" if auth.enabled else "no operator credential is configured"
            raise web.HTTPForbidden(text=f"not allowed: {reason}")
    response = await handler(request)
    if not response.prepared:  # an event stream has sent its headers already (with these)
        response.headers.update(_HEADERS)
        if request.app[TLS_KEY]:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
    return response


def create_app(token: str | None, tls: bool) -> web.Application:
    """The shared part: security middleware, ``/static``, ``/login``, ``/logout``, ``/api/whoami``."""
    app = web.Application(middlewares=[_security], client_max_size=64 * 1024)
    app[AUTH_KEY] = OperatorAuth(token)
    app[TLS_KEY] = tls
    app[_STREAMS_KEY] = [0]
    app.router.add_static("/static", STATIC_DIR)
    app.router.add_post("/login", _login)
    app.router.add_post("/logout", _logout)
    app.router.add_get("/api/whoami", _whoami)
    return app


async def _login(request: web.Request) -> web.Response:
    form = await request.post()
    session = request.app[AUTH_KEY].login(str(form.get("token", "")))
    if session is None:
        await asyncio.sleep(LOGIN_FAILURE_DELAY_S)  # guessing costs time (the token has >= 16 characters)
        raise web.HTTPForbidden(text="wrong operator credential")
    response = web.json_response({"operator": True, "csrf": session.csrf})
    response.set_cookie(SESSION_COOKIE, session.id, httponly=True, samesite="Strict",
                        secure=request.app[TLS_KEY])
    return response


async def _logout(request: web.Request) -> web.Response:
    request.app[AUTH_KEY].logout(request.cookies.get(SESSION_COOKIE))
    response = web.json_response({"operator": False})
    response.del_cookie(SESSION_COOKIE)
    return response


async def _whoami(request: web.Request) -> web.Response:
    """Whether this browser is logged in as operator, and its CSRF token (readable by our pages only)."""
    auth = request.app[AUTH_KEY]
    session = auth.session(request.cookies.get(SESSION_COOKIE))
    return web.json_response({"actions": auth.enabled, "operator": session is not None,
                              "csrf": None if session is None else session.csrf})


async def event_stream(request: web.Request, produce: Callable[[], Any], interval_s: float
                       ) -> web.StreamResponse:
    """Server-sent events: ``produce()`` (run in a worker thread, so a slow read never blocks the loop)
    as one JSON ``data:`` line every ``interval_s`` until the viewer goes away."""
    streams = request.app[_STREAMS_KEY]
    if streams[0] >= MAX_EVENT_STREAMS:
        raise web.HTTPServiceUnavailable(text="too many live views open; close one")
    streams[0] += 1
    try:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        response.headers.update(_HEADERS)
        await response.prepare(request)
        while True:
            data = await asyncio.to_thread(produce)
            try:
                await response.write(f"data: {json.dumps(data, separators=(',', ':'))}\n\n".encode())
            except (ConnectionResetError, RuntimeError):  # the viewer closed the page
                return response
            await asyncio.sleep(interval_s)
    finally:
        streams[0] -= 1
