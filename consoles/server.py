"""Runs a console's aiohttp application in a thread of its own, with its own event loop.

The daemons it serves are not asyncio programs, and their acquisition and receiving loops must never wait
for a web viewer: the console only reads what those loops publish (snapshots swapped whole, databases
opened read-only by the console itself).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading

from aiohttp import web

from consoles.config import ConsoleConfig

log = logging.getLogger(__name__)


class ConsoleServer:
    def __init__(self, app: web.Application, config: ConsoleConfig, name: str) -> None:
        self._app = app
        self._config = config
        self._name = name
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        self._thread: threading.Thread | None = None
        self.port = config.port

    @property
    def url(self) -> str:
        scheme = "https" if self._config.tls else "http"
        host = f"[{self._config.host}]" if ":" in self._config.host else self._config.host
        return f"{scheme}://{host}:{self.port}/"

    def start(self) -> None:
        """Bind (raising OSError if the address is taken) and serve from the console thread.

        Everything asyncio happens in that thread, so the caller may run an event loop of its own."""
        context = None
        if self._config.tls_cert is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self._config.tls_cert, self._config.tls_key)
        ready = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._bind(context))
            except BaseException as exc:  # handed to start(), which raises it in the caller's thread
                failure.append(exc)
                self._loop.run_until_complete(self._runner.cleanup())
                self._loop.close()
                return
            finally:
                ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, name=f"{self._name}-console", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        log.info("console listening", extra={"console": self._name, "url": self.url})

    async def _bind(self, context: ssl.SSLContext | None) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._config.host, self._config.port, ssl_context=context)
        await site.start()
        self.port = self._runner.addresses[0][1]  # the port picked, when configured as 0

    async def _close(self) -> None:
        """Stop listening, then end what is still running (viewers' event streams)."""
        await self._runner.cleanup()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self) -> None:
        if self._thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._close(), self._loop)
        try:
            future.result(timeout=5.0)
        except Exception:  # a viewer's stream that will not end must not hold the daemon's shutdown
            log.exception("console shutdown", extra={"console": self._name})
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5.0)
        self._loop.close()
        self._thread = None
