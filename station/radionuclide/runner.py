"""The station daemon's radionuclide systems: one thread per system, each stepping its sample cycle.

A thread of its own because instrument I/O blocks (an 8192-channel spectrum is 2 s of wire at 115200
baud, a 256 x 256 histogram read in chunks much more) and the waveform main loop must not wait for it.
Each cycle owns its instruments and its alarm board; what it shares is the outbox, which is made for
several writers. The daemon constructs ``RadionuclideSystems`` once, calls ``start`` and ``stop``, and
reads ``status()`` (a dict each thread swaps whole) into its snapshot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from gci_link.keys import StationSigner
from gci_link.station_end.outbox import Outbox
from station.radionuclide.cycle import SampleCycle
from station.radionuclide.instruments import Detector, Sampler, open_instruments
from station.radionuclide.ledger import MessageLedger
from station.radionuclide.quarantine import Quarantine
from station.radionuclide.settings import RadionuclideConfig
from station.radionuclide.state import StateFile

log = logging.getLogger(__name__)

STEP_S = 0.05  # real seconds between steps when nothing was due
STATUS_S = 1.0  # real seconds between status refreshes
ERROR_PAUSE_S = 1.0

Instruments = Callable[[RadionuclideConfig], tuple[Detector, Sampler]]


class _System:
    def __init__(self, config: RadionuclideConfig, cycle: SampleCycle, clock: Callable[[], int]) -> None:
        self.config = config
        self.cycle = cycle
        self.clock = clock
        self.loop_errors = 0
        self.status: dict[str, Any] = {"kind": config.kind, "running": False}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rn-{config.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        if self._thread.ident is None:  # never started
            return
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("radionuclide cycle did not stop in time", extra={"system": self.config.name})

    def _run(self) -> None:
        try:
            self._guarded(lambda: self.cycle.resume(self.clock()))
            next_status = 0.0
            while not self._stop.is_set():
                self._guarded(lambda: self.cycle.step(self.clock()))
                if time.monotonic() >= next_status:
                    self._guarded(self._refresh_status)
                    next_status = time.monotonic() + STATUS_S
                self._stop.wait(STEP_S)
            self._guarded(self._refresh_status)
        finally:
            self.status = self.status | {"running": False}
            self.cycle.detector.close()
            self.cycle.sampler.close()

    def _guarded(self, action: Callable[[], object]) -> None:
        """A bug met by some input must not end the cycle: log, count, pause, go on."""
        try:
            action()
        except Exception:
            self.loop_errors += 1
            log.exception("radionuclide cycle error", extra={"system": self.config.name})
            self._stop.wait(ERROR_PAUSE_S)

    def _refresh_status(self) -> None:
        running = not self._stop.is_set()
        self.status = self.cycle.status() | {"running": running, "loop_errors": self.loop_errors}


class RadionuclideSystems:
    def __init__(self, configs: Iterable[RadionuclideConfig], outbox: Outbox, *, creator: str,
                 destination: str, signer: StationSigner | None, clock: Callable[[], int], state_dir: Path,
                 instruments: Instruments = open_instruments) -> None:
        self.systems: dict[str, _System] = {}
        for config in configs:
            detector, sampler = instruments(config)
            ledger = MessageLedger(outbox, config.name, creator=creator, destination=destination,
                                   signer=signer)
            state = StateFile(state_dir / f"rn-{config.name}.json")
            quarantine = Quarantine(state_dir / "rn-quarantine", config.name)
            cycle = SampleCycle(config, detector, sampler, ledger, state, quarantine, clock)
            self.systems[config.name] = _System(config, cycle, clock)

    def start(self) -> None:
        for system in self.systems.values():
            system.start()

    def stop(self) -> None:
        for system in self.systems.values():
            system.stop()

    def status(self) -> dict[str, dict[str, Any]]:
        return {name: system.status for name, system in self.systems.items()}
