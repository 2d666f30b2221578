"""A ``GuralpSession`` wired to an in-memory digitizer, stepped by the test: no port, no thread, no sleep.

``Firmware`` makes GCF blocks with the project's encoder, frames them with ``brp.BrpTransmitter`` (which
keeps the last 255 frames for NAK rewinds, go-back-N) and answers the console. It sends one thing per
step whether or not the host answered (a "direct" DM24); store-and-forward behaviour is scripted by the
tests. The session's clock is ``SessionRig.now_ns``, which moves only when a test says so.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from digitizer import brp
from digitizer.base36 import from_base36
from digitizer.gcf import TEXT_STATUS_SUFFIX, GcfBlock, encode_block
from digitizer.guralp_console import ConsoleFailed, ConsoleReply
from digitizer.guralp_session import GuralpSession, Output, SessionConfig, StreamGap
from digitizer.packet import Packet, Status
from hil.faults import FaultInjector, LineFaults
from timeunits import NS_PER_S

T0_NS = 1_700_000_000 * NS_PER_S
STEP_NS = 100_000_000  # session time per frame sent
CONSOLE_IDLE_STEPS = 50  # an open console that hears nothing for this long closes (the DM24's idle close)
CONFIG = {"watchdog_ns": 3 * NS_PER_S, "nak_timeout_ns": NS_PER_S // 2, "max_naks": 13, "rewind_margin": 24,
          "rewind_timeout_ns": NS_PER_S, "startup_rewind": False}


def session_config(**changes: object) -> SessionConfig:
    return SessionConfig(**(CONFIG | changes))  # type: ignore[arg-type]


class Firmware:
    """Streams of 1 s blocks (``rate`` sps each) and a text status block every ``status_every_s``."""

    def __init__(self, rates: dict[str, int] | None = None, *, serial: str = "SIMD", system_id: str = "SIM1",
                 seed: int = 1, status_every_s: int = 0, honour_naks: bool = True) -> None:
        self.rates = rates or {"Z0": 10, "N0": 10, "E0": 10}
        self.serial, self.system_id = serial, system_id
        self.status_every_s, self.honour_naks = status_every_s, honour_naks
        self.tx = brp.BrpTransmitter()
        self.pc = brp.PcByteParser()
        self.rng = np.random.default_rng(seed)
        self.second_ns = T0_NS  # firmware time of the next second to sample
        self.seconds = 0
        self.gps_locked = True
        self.truth: dict[str, list[tuple[int, np.ndarray]]] = {}
        self.flash: deque[bytes] = deque()  # encoded blocks made, not yet framed and sent
        self.resend: deque[bytes] = deque()
        self.naks: list[int] = []  # sequences NAKed by the host, as heard
        self.ignored_naks = 0  # NAKs for blocks no longer (or never) in the buffer, or not honoured
        self.acks = 0
        self.console_open = False
        self.console_idle = 0  # steps since the console last heard a byte
        self.text_out = bytearray()  # console output waiting to be sent
        self._line = bytearray()
        self.words = {from_base36(serial + s) for s in (*self.rates, TEXT_STATUS_SUFFIX)}

    # -- making blocks -------------------------------------------------------------------------------
    def step_clock(self, seconds: int) -> None:
        """Step the firmware's clock: later blocks carry times ``seconds`` later (earlier when negative)."""
        self.second_ns += seconds * NS_PER_S

    def sample_second(self) -> None:
        for suffix, rate in self.rates.items():
            stream_id = self.serial + suffix
            samples = np.cumsum(self.rng.integers(-300, 300, rate)).astype(np.int32)
            self.truth.setdefault(stream_id, []).append((self.second_ns, samples))
            self.flash.append(encode_block(GcfBlock(self.system_id, stream_id, self.second_ns, float(rate),
                                                    samples=samples)))
        if self.status_every_s and self.seconds % self.status_every_s == 0:
            self.flash.append(encode_block(GcfBlock(self.system_id, self.serial + TEXT_STATUS_SUFFIX,
                                                    self.second_ns, 0.0, status_text=self.status_text())))
        self.second_ns += NS_PER_S
        self.seconds += 1

    def status_text(self) -> str:
        stamp = time.strftime("%Y %m %d %H:%M:%S", time.gmtime(self.second_ns // NS_PER_S))
        if self.gps_locked:
            return f"{stamp} 1 MicroSeconds Fast Freq error 0 e-9 Auto 3D\r\n"
        return f"{stamp} GPS Control settling Auto No Fix [0 Not sync'd]\r\n"

    def next_frame(self) -> bytes:
        """The next frame to send: what a NAK asked for first, else the next new block."""
        if self.resend:
            return self.resend.popleft()
        if not self.flash:
            self.sample_second()
        return self.tx.frame(self.flash.popleft())[1]

    def transmit(self) -> bytes:
        """What goes on the wire next: console output while the console talks, else a frame."""
        if self.console_open:
            self.console_idle += 1
            if self.console_idle >= CONSOLE_IDLE_STEPS:
                self.console_open = False
                self.text_out += brp.ESC_DC1
        if self.text_out:
            out = bytes(self.text_out)
            self.text_out.clear()
            return out
        return b"" if self.console_open else self.next_frame()

    def stream_ids(self) -> list[str]:
        return [self.serial + s for s in self.rates]

    # -- host bytes ----------------------------------------------------------------------------------
    def hear(self, data: bytes) -> None:
        for msg in self.pc.feed(data):
            if isinstance(msg, brp.NakMessage) and msg.stream_word in self.words:
                self.naks.append(msg.seq)
                frames = self.tx.rewind(msg.seq) if self.honour_naks else []
                if frames:
                    self.resend = deque(frames)
                else:
                    self.ignored_naks += 1
            elif isinstance(msg, brp.AckMessage) and msg.stream_word in self.words:
                self.acks += 1
                if msg.break_in:
                    self._open_console()
            elif isinstance(msg, brp.BreakIn):
                self._open_console()
            elif isinstance(msg, brp.ConsoleInput) and self.console_open:
                self._console_bytes(msg.data)

    def _open_console(self) -> None:
        self.console_open, self.console_idle = True, 0
        self.text_out += brp.PROMPT

    def _console_bytes(self, data: bytes) -> None:
        self.console_idle = 0
        for byte in data:
            if byte not in (0x0D, 0x0A):
                self._line.append(byte)
                continue
            line, self._line = self._line.decode("ascii"), bytearray()
            if line == "GO":
                self.console_open = False
                self.text_out += brp.ESC_DC1
            elif line == "STATUS":
                self.text_out += self.status_text().encode("ascii") + brp.PROMPT
            elif line:
                self.text_out += f"{line} accepted\r\n".encode("ascii") + brp.PROMPT


class SessionRig:
    """Everything the session put out, sorted by kind; ``now_ns`` is the session's clock."""

    def __init__(self, firmware: Firmware | None = None, *, session: GuralpSession | None = None,
                 to_host: LineFaults | None = None, to_device: LineFaults | None = None, seed: int = 0,
                 **config: object) -> None:
        self.fw = firmware or Firmware()
        self.session = session or GuralpSession(session_config(**config))
        self.now_ns = 10 * NS_PER_S
        up, down = np.random.SeedSequence(seed).spawn(2)
        self.to_host = FaultInjector(to_host, up) if to_host else None
        self.to_device = FaultInjector(to_device, down) if to_device else None
        self.packets: dict[str, list[Packet]] = {}
        self.gaps: dict[str, list[StreamGap]] = {}
        self.statuses: list[Status] = []
        self.arrivals: list[Packet | Status | StreamGap] = []  # all three, in the order they came
        self.console: list[ConsoleReply | ConsoleFailed] = []
        self.events: list[Output] = []  # everything else the session returned, in order
        self.written: list[bytes] = []
        self.undetected = 0  # corrupted packets that ``tiling`` found and tolerated
        self.session.connection_made(self.now_ns)

    # -- driving -------------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """The session reads ``data`` now (after the line faults toward the host, if any)."""
        if self.to_host is not None:
            data = self.to_host.apply(data)
        if data:
            self._take(self.session.receive(data, self.now_ns))

    def poll(self) -> None:
        self._take(self.session.poll(self.now_ns))

    def advance(self, ns: int) -> None:
        self.now_ns += ns
        self.poll()

    def step(self, count: int = 1) -> None:
        """``count`` times: time moves on by one frame, the timers run, the firmware sends one thing."""
        for _ in range(count):
            self.advance(STEP_NS)
            self.feed(self.fw.transmit())

    def lose(self, frames: int) -> None:
        """The firmware sends ``frames`` frames that never arrive (cable out, nobody listening)."""
        for _ in range(frames):
            self.fw.next_frame()

    def reconnect(self) -> None:
        self.session.connection_made(self.now_ns)

    def _take(self, outputs: list[Output]) -> None:
        for out in outputs:
            if isinstance(out, Packet | Status | StreamGap):
                self.arrivals.append(out)
            if isinstance(out, Packet):
                self.packets.setdefault(out.stream_id, []).append(out)
            elif isinstance(out, brp.SendBytes):
                self.written.append(out.data)
                data = self.to_device.apply(out.data) if self.to_device is not None else out.data
                self.fw.hear(data)
            elif isinstance(out, StreamGap):
                self.gaps.setdefault(out.stream_id, []).append(out)
            elif isinstance(out, Status):
                self.statuses.append(out)
            elif isinstance(out, ConsoleReply | ConsoleFailed):
                self.console.append(out)
            else:
                self.events.append(out)

    # -- looking at the outcome ----------------------------------------------------------------------
    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]

    def naks_written(self) -> list[int]:
        """Sequences of the NAKs the session wrote, in order."""
        return [m.seq for data in self.written for m in brp.parse_pc_bytes(data)
                if isinstance(m, brp.NakMessage)]

    def caught_up(self) -> bool:
        """Every stream has its newest block made delivered."""
        return all(self.packets.get(s) and self.packets[s][-1].start_ns == self.fw.truth[s][-1][0]
                   for s in self.fw.stream_ids())

    def run_until_caught_up(self, limit: int = 2000) -> None:
        for _ in range(limit):
            self.step()
            if not self.fw.resend and not self.fw.flash and self.caught_up():
                return
        raise AssertionError(f"not caught up after {limit} steps")

    def tiling(self, stream_id: str, *, tolerate_undetectable: bool = False) -> tuple[int, int]:
        """Packets and gaps tile the stream, in order, each packet equal to the truth (or, if tolerated,
        corrupted in a way neither BRP nor GCF can see; counted in ``undetected``).

        Returns (samples delivered, samples reported missing)."""
        packets = self.packets[stream_id]
        assert [p.start_ns for p in packets] == sorted({p.start_ns for p in packets}), "repeat or disorder"
        truth = dict(self.fw.truth[stream_id])
        items = sorted(packets + self.gaps.get(stream_id, []), key=lambda x: x.start_ns)
        cursor, delivered, missing = items[0].start_ns, 0, 0
        for item in items:
            assert item.start_ns == cursor, f"{stream_id}: hole or overlap at {cursor} (next: {item})"
            if isinstance(item, StreamGap):
                missing += sum(len(s) for t, s in truth.items() if item.start_ns <= t < item.end_ns)
                cursor = item.end_ns
                continue
            if not np.array_equal(truth[item.start_ns], item.samples):
                assert tolerate_undetectable and self._undetectable(truth[item.start_ns], item), \
                    f"{stream_id}: wrong samples at {item.start_ns}"
                self.undetected += 1
            delivered += item.nsamp
            cursor = item.end_ns
        return delivered, missing

    def _undetectable(self, truth: np.ndarray, got: Packet) -> bool:
        """Whether ``got`` differs from the truth only as BRP and GCF cannot see: the same frame byte sum
        and the same last sample (RIC). BRP's checksum is a 16-bit byte sum and GCF adds only FIC/RIC, so
        two flips of the same bit weight in opposite directions inside one frame's differences pass both.
        """
        def frame(samples: np.ndarray) -> bytes:
            block = GcfBlock(got.system_id, got.stream_id, got.start_ns, got.sample_rate, samples=samples)
            return brp.frame_block(0, encode_block(block))

        a, b = frame(truth), frame(got.samples)
        flipped = int(np.unpackbits(np.frombuffer(a, np.uint8) ^ np.frombuffer(b, np.uint8)).sum()) \
            if len(a) == len(b) else 99
        return brp.checksum(a) == brp.checksum(b) and truth[-1] == got.samples[-1] and flipped <= 4
