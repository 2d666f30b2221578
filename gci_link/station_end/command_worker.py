"""Runs IDC commands on their own thread so a command that holds a digitizer console for seconds never
holds the sender's loop: frames and acknacks keep flowing while it runs.

One thread, commands in arrival order: a station has one console per digitizer, and a ``stopcal`` must
not overtake the ``calibrate`` before it. The queue is bounded by the session's ``command_queue`` (the
session answers ``busy`` beyond it), so a full queue here is a bug, not back-pressure.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from gci_link.cd11 import CommandRequestBody
from gci_link.commands import CommandHandler, CommandOutcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinishedCommand:
    seq: int  # the request's frame sequence number, as in ``RunCommand``
    outcome: CommandOutcome
    text: str


class CommandWorker:
    """``submit`` from the sender thread; the worker calls ``on_finished`` (from its own thread) after
    each command, and the sender then collects the results with ``finished``."""

    def __init__(self, handler: CommandHandler, capacity: int, on_finished: Callable[[], None],
                 station: str) -> None:
        self._handler = handler
        self._on_finished = on_finished
        self._station = station
        self._queue: queue.Queue[tuple[int, CommandRequestBody] | None] = queue.Queue(capacity + 1)  # + stop
        self._done: deque[FinishedCommand] = deque()  # appends and pops of a deque are thread-safe
        self._thread = threading.Thread(target=self._run, name=f"commands:{station}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, seq: int, request: CommandRequestBody) -> None:
        self._queue.put_nowait((seq, request))

    def finished(self) -> list[FinishedCommand]:
        """Results since the last call, in the order the commands ended."""
        results = []
        while self._done:
            results.append(self._done.popleft())
        return results

    def stop(self) -> None:
        """Drop the commands still waiting and end the thread after the running one, without waiting for
        it: a console command cannot be interrupted, and the link is closing anyway (the thread is a
        daemon, so it does not hold the process either)."""
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put_nowait(None)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            seq, request = item
            self._done.append(self._call(seq, request))
            self._on_finished()

    def _call(self, seq: int, request: CommandRequestBody) -> FinishedCommand:
        try:
            # typed to return str, but checked rather than trusted: a handler bug must cost one error
            # answer, not the sender loop that encodes the answer's text
            text: object = self._handler(request)
        except Exception as exc:  # a failing command is answered as an error and the worker goes on
            log.error("command failed", exc_info=True, extra={"station": self._station, "seq": seq})
            return FinishedCommand(seq, CommandOutcome.FAILED, f"{type(exc).__name__}: {exc}")
        if not isinstance(text, str):
            log.error("command handler returned no text", extra={"station": self._station, "seq": seq})
            return FinishedCommand(seq, CommandOutcome.FAILED, f"the station's handler returned {text!r}")
        return FinishedCommand(seq, CommandOutcome.DONE, text)
