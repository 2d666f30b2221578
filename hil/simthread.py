"""The thread a simulated instrument answers its line on, shared by every simulator in ``hil``."""

from __future__ import annotations

import threading


class LineServer:
    """``start`` runs the instrument's ``_run`` in a daemon thread until ``stop``; ``_run`` polls
    ``_stop``. The thread's name tells the instrument in a traceback."""

    thread_name = "sim-instrument"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
