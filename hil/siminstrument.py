"""What the simulated radionuclide instruments share: the answering thread, a log of the faults injected
(with their data times) for the truth file, the detector faults every unit can suffer, and the faults of
the serial line itself (garbage before the next reply, one damaged reply, the port vanishing halfway
through a long reply), so the station's drivers meet each the same way whichever unit they talk to."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np

from hil.serialport import PtyLine
from hil.simclock import SimClock
from hil.simthread import LineServer


class SimInstrument(LineServer):
    """Subclasses answer the line in ``_run`` under ``_lock``, bring their physics up to a data time in
    ``_advance``, say what really happened in ``truth`` and pass every reply through ``_on_the_line``."""

    truth_name = "instrument"  # the truth file's default name
    corrupt_mask = 0x5A  # XORed into the middle byte of a damaged reply

    def __init__(self, line: PtyLine, clock: SimClock, seed: int) -> None:
        LineServer.__init__(self)
        self.line, self.clock = line, clock
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self.faults: list[dict[str, object]] = []
        self.hv_dropped = False
        self.stuck = False
        self._noise = bytearray()
        self._corrupt_next = False

    def _advance(self, now_ns: int) -> None:
        raise NotImplementedError

    def truth(self) -> dict[str, object]:
        raise NotImplementedError

    def _fault(self, kind: str, **details: object) -> None:
        self.faults.append({"kind": kind, "data_time_ns": self.clock.now_ns(), **details})

    # -- faults of the detector --------------------------------------------------------------------
    def drop_hv(self) -> None:
        """The high-voltage supply collapses: no more counts."""
        with self._lock:
            self._advance(self.clock.now_ns())
            self.hv_dropped = True
            self._fault("hv_drop")

    def stick(self) -> None:
        """The acquisition hangs: still running, times and counts frozen."""
        with self._lock:
            self._advance(self.clock.now_ns())
            self.stuck = True
            self._fault("stuck_acquisition")

    # -- faults of the line ------------------------------------------------------------------------
    def inject_noise(self, nbytes: int) -> None:
        """Random bytes before the next reply (a foreign device, a noisy line)."""
        self._noise += self._rng.integers(0, 256, nbytes, dtype=np.uint8).tobytes()
        self._fault("serial_noise", bytes=nbytes)

    def corrupt_next_reply(self) -> None:
        self._corrupt_next = True
        self._fault("corrupt_reply")

    def _on_the_line(self, reply: bytes) -> bytes:
        """``reply`` as the line will carry it: damaged if asked for, after any garbage injected."""
        if self._corrupt_next:
            self._corrupt_next = False
            damaged = bytearray(reply)
            damaged[len(damaged) // 2] ^= self.corrupt_mask
            reply = bytes(damaged)
        if self._noise:
            reply, self._noise = bytes(self._noise) + reply, bytearray()
        return reply

    def _vanish_halfway(self, reply: bytes, down_s: float) -> None:
        """Half of ``reply`` goes out, then the port disappears for ``down_s`` real seconds."""
        self.line.write(reply[: len(reply) // 2])
        self.line.unplug()
        self._fault("vanished_mid_readout", down_s=down_s)
        threading.Timer(down_s, self.line.replug).start()

    # -- ground truth ------------------------------------------------------------------------------
    def write_truth(self, directory: str | Path, name: str | None = None) -> Path:
        path = Path(directory) / f"truth-{name or self.truth_name}.json"
        with self._lock:
            path.write_text(json.dumps(self.truth(), indent=1))
        return path
