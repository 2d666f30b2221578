"""The shared web layer over real HTTP: headers, who may act, event streams, escaping, the thread."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from http.cookiejar import CookieJar

import pytest
from aiohttp import web

from consoles.auth import CSRF_HEADER
from consoles.config import ConsoleConfig
from consoles.server import ConsoleServer
from consoles.web import create_app, esc, event_stream, page

TOKEN = "operator-token-for-tests"


@pytest.fixture
def server():
    app = create_app(TOKEN, tls=False)
    acted: list[str] = []

    async def act(request: web.Request) -> web.Response:
        acted.append("yes")
        return web.json_response({"done": True})

    async def shell(request: web.Request) -> web.Response:
        return page("<b>x</b>", "<main></main>", "idc.js", {"station": '"><script>alert(1)</script>'})

    counter = iter(range(1000))

    async def events(request: web.Request) -> web.StreamResponse:
        return await event_stream(request, lambda: {"n": next(counter)}, 0.01)

    app.router.add_post("/act", act)
    app.router.add_get("/page", shell)
    app.router.add_get("/events", events)
    running = ConsoleServer(app, ConsoleConfig(port=0), "test")
    running.start()
    running.acted = acted
    yield running
    running.stop()


def _open(opener, url, data=None, headers=None):
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_pages_carry_a_strict_content_policy_and_escape_what_they_embed(server):
    status, headers, body = _open(urllib.request.build_opener(), server.url + "page")
    assert status == 200
    assert headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert headers["X-Content-Type-Options"] == "nosniff"
    text = body.decode()
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<title>&lt;b&gt;x&lt;/b&gt;</title>" in text
    assert esc('<a href="x">') == "&lt;a href=&quot;x&quot;&gt;"


def test_static_assets_are_served_by_the_daemon(server):
    for name in ("console.js", "console.css", "idc.js", "station.js"):
        status, _, body = _open(urllib.request.build_opener(), server.url + "static/" + name)
        assert status == 200 and body


def test_acting_needs_a_session_and_its_csrf_token_or_the_bearer_credential(server):
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    assert _open(opener, server.url + "act", b"{}")[0] == 403  # nobody
    assert _open(opener, server.url + "login", b"token=wrong")[0] == 403
    status, _, body = _open(opener, server.url + "login", b"token=" + TOKEN.encode())
    assert status == 200
    csrf = json.loads(body)["csrf"]
    assert _open(opener, server.url + "act", b"{}")[0] == 403  # the cookie alone: what a forged form has
    assert _open(opener, server.url + "act", b"{}", {CSRF_HEADER: "not-it"})[0] == 403
    assert _open(opener, server.url + "act", b"{}", {CSRF_HEADER: csrf})[0] == 200
    assert json.loads(_open(opener, server.url + "api/whoami")[2]) == {"actions": True, "operator": True,
                                                                        "csrf": csrf}
    plain = urllib.request.build_opener()
    assert _open(plain, server.url + "act", b"{}", {"Authorization": "Bearer " + TOKEN})[0] == 200
    assert _open(plain, server.url + "act", b"{}", {"Authorization": "Bearer nope"})[0] == 403
    assert server.acted == ["yes", "yes"]


def test_without_a_credential_nothing_can_act():
    app = create_app(None, tls=False)

    async def act(request: web.Request) -> web.Response:
        return web.json_response({})

    app.router.add_post("/act", act)
    running = ConsoleServer(app, ConsoleConfig(port=0), "test")
    running.start()
    try:
        opener = urllib.request.build_opener()
        assert _open(opener, running.url + "login", b"token=")[0] == 403
        status, _, body = _open(opener, running.url + "act", b"{}", {"Authorization": "Bearer "})
        assert status == 403 and b"no operator credential" in body
    finally:
        running.stop()


def test_event_stream_sends_json_events_in_order(server):
    with urllib.request.urlopen(server.url + "events", timeout=10) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        lines = [response.readline() for _ in range(6)]
    assert lines[1::2] == [b"\n"] * 3  # each event ends with a blank line
    numbers = [json.loads(line.removeprefix(b"data: "))["n"] for line in lines[::2]]
    assert numbers == sorted(numbers) and len(set(numbers)) == 3


def test_a_taken_port_is_an_error_at_start(server):
    clash = ConsoleServer(create_app(None, False), ConsoleConfig(port=server.port), "clash")
    with pytest.raises(OSError):
        clash.start()


def _self_signed(folder):
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "console test")])
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=36500))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                       serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    return folder / "cert.pem", folder / "key.pem"


def test_with_tls_the_console_speaks_https_only_and_marks_its_cookie_secure(tmp_path):
    import ssl

    cert, key = _self_signed(tmp_path)
    config = ConsoleConfig(host="127.0.0.1", port=0, tls_cert=cert, tls_key=key)
    running = ConsoleServer(create_app(TOKEN, tls=True), config, "tls")
    running.start()
    try:
        assert running.url.startswith("https://127.0.0.1:")
        trusting = ssl.create_default_context(cafile=str(cert))
        opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=trusting))
        status, headers, _ = _open(opener, running.url + "login", b"token=" + TOKEN.encode())
        assert status == 200 and headers["Strict-Transport-Security"].startswith("max-age=")
        assert "Secure" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP gets nowhere
            urllib.request.urlopen(running.url.replace("https", "http") + "api/whoami", timeout=10)
    finally:
        running.stop()
