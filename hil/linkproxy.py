"""A TCP relay between one station and the IDC that can black-hole the link, as a satellite outage does.

During an outage the TCP connections stay open but every byte in both directions is swallowed: neither
side sees an error, so the station must notice the silence itself (no acknacks) and the backlog must
drain once the link returns. That is harsher, and more realistic, than refusing connections.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading

log = logging.getLogger(__name__)


class LinkProxy:
    def __init__(self, upstream: tuple[str, int], name: str) -> None:
        self.upstream = upstream
        self.name = name
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._peers: dict[socket.socket, socket.socket] = {}
        self._blackholed = threading.Event()
        self._stop = threading.Event()
        self.bytes_swallowed = 0
        self._thread = threading.Thread(target=self._run, name=f"linkproxy:{name}", daemon=True)

    @property
    def endpoint(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def blackhole(self, on: bool) -> None:
        (self._blackholed.set if on else self._blackholed.clear)()
        log.info("link outage begins" if on else "link restored", extra={"station": self.name})

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        for sock in list(self._peers):
            sock.close()
        self._listener.close()
        self._selector.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.1):
                if key.fileobj is self._listener:
                    self._accept()
                elif isinstance(key.fileobj, socket.socket):  # a peer _accept registered
                    self._relay(key.fileobj)

    def _accept(self) -> None:
        client: socket.socket | None = None
        try:
            client, _ = self._listener.accept()
            server = socket.create_connection(self.upstream, timeout=2)
        except OSError as exc:  # upstream down (receiver crashed): the station will retry
            log.info("relay connection refused upstream", extra={"station": self.name, "error": str(exc)})
            if client is not None:
                client.close()
            return
        for sock in (client, server):
            sock.settimeout(5.0)  # recv only runs when readable; sendall may wait for a slow reader
            self._selector.register(sock, selectors.EVENT_READ)
        self._peers[client], self._peers[server] = server, client

    def _relay(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except InterruptedError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(sock)
            return
        if self._blackholed.is_set():
            self.bytes_swallowed += len(data)
            return
        try:
            self._peers[sock].sendall(data)
        except OSError:
            self._drop(sock)

    def _drop(self, sock: socket.socket) -> None:
        other = self._peers.pop(sock, None)
        for s in (sock, other):
            if s is None:
                continue
            self._peers.pop(s, None)
            try:
                self._selector.unregister(s)
            except (KeyError, ValueError):
                pass
            s.close()
