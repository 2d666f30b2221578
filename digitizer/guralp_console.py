"""The Güralp console (terminal mode) exchange, without a port or a clock (sans-I/O).

Requests run one at a time between blocks: break in with ^S (repeated every second until the console
answers), send each line once the `` ok`` prompt came, collect the text up to each prompt, leave with
``GO`` and wait for the digitizer's ESC DC1, which ends the exchange. ``GuralpSession`` routes the
console's text and the return to block mode here and passes the outputs on.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

from digitizer import brp
from timeunits import NS_PER_S

CAL_COMPONENTS = {"Z": "Z", "N": "N/S", "E": "E/W", "ALL": "ALL"}
BREAK_IN_REPEAT_NS = NS_PER_S  # a break-in the console did not answer is sent again after this
# Console output held while waiting for a prompt. A DM24's longest answer (STATUS, HELP) is a few KB;
# more without a prompt is no console we understand, and the request fails instead of holding it all.
MAX_REPLY_TEXT = 64 * 1024
TIMED_OUT = "no answer in time"


class ConsoleState(enum.Enum):
    """Where a console request stands; the values are the words used in messages."""

    BREAK_IN = "break"  # ^S sent, waiting for the first prompt
    LINE = "line"  # a command line sent, waiting for its prompt
    GO = "go"  # GO sent, waiting for ESC DC1 (block mode)


@dataclass(frozen=True, eq=False)
class ConsoleRequest:
    """Console lines to run, to be answered by ``deadline_ns``; each request is its own identity."""

    lines: tuple[str, ...]
    deadline_ns: int

    def __post_init__(self) -> None:
        if not self.lines:
            raise ValueError("a console request needs at least one line")
        for line in self.lines:  # a CR or a control byte would end the line early or leave the console
            if not line or not line.isascii() or not line.isprintable():
                raise ValueError(f"console line {line!r} is not a non-empty line of printable ASCII")


@dataclass(frozen=True, slots=True)
class ConsoleReply:
    """The console's output for ``request``, each line's text up to its prompt, joined."""

    request: ConsoleRequest
    text: str


@dataclass(frozen=True, slots=True)
class ConsoleFailed:
    """``request`` failed in ``state``: it ran out of time, or ``reason``; ``GO`` was sent to leave the
    console."""

    request: ConsoleRequest
    state: ConsoleState
    reason: str = TIMED_OUT


@dataclass(frozen=True, slots=True)
class ConsoleOpened:
    """The console answered a break-in: ``request``'s lines go out now."""

    request: ConsoleRequest


@dataclass(frozen=True, slots=True)
class StrayText:
    """Console text arrived while no console request was running."""

    text: bytes


ConsoleOutput = brp.SendBytes | ConsoleReply | ConsoleFailed | ConsoleOpened | StrayText


def calibration_lines(kind: str, component: str = "Z", minutes: int = 2, *, frequency_hz: int | None = None,
                      period_s: int | None = None) -> tuple[str, ...]:
    """Console lines for a ``sine`` (give ``frequency_hz`` or ``period_s``, 1-10), ``square`` or
    ``random`` calibration of ``component`` (Z, N, E or ALL) lasting ``minutes``."""
    comp = CAL_COMPONENTS.get(component.upper())
    if comp is None:
        raise ValueError(f"component {component!r} is not one of {sorted(CAL_COMPONENTS)}")
    if kind == "sine":
        if frequency_hz is not None and period_s is None:
            n, unit = frequency_hz, "HZ"
        elif period_s is not None and frequency_hz is None:
            n, unit = period_s, "SECOND"
        else:
            raise ValueError("a sine calibration needs exactly one of frequency_hz or period_s")
        if not 1 <= n <= 10:
            raise ValueError(f"sine {unit.lower()} value {n} is outside 1-10")
        word = f"{comp} {n} {unit} SINEWAVE"
    elif kind == "square":
        word = f"{comp} SQUAREWAVE"
    elif kind == "random":
        word = f"{comp} RANDOMCAL"
    else:
        raise ValueError(f"calibration kind {kind!r} is not sine, square or random")
    return f"{minutes} MINUTE", word


@dataclass
class _Exchange:
    request: ConsoleRequest
    state: ConsoleState = ConsoleState.BREAK_IN
    index: int = 0  # next line to send
    text: bytearray = field(default_factory=bytearray)  # console output since the last prompt
    reply: list[str] = field(default_factory=list)
    next_break_ns: int | None = None
    failed: ConsoleFailed | None = None  # given up before GO was due: reported once block mode resumes


def _leave(ex: _Exchange, out: list[ConsoleOutput]) -> None:
    ex.state = ConsoleState.GO
    ex.text.clear()
    out.append(brp.SendBytes(b"GO\r"))


def _give_up(ex: _Exchange, reason: str, out: list[ConsoleOutput]) -> None:
    """Leave the console; the request fails once the digitizer is back in block mode (or its time is up)."""
    ex.failed = ConsoleFailed(ex.request, ex.state, reason)
    _leave(ex, out)


class Console:
    """Queued console requests and the one under way."""

    def __init__(self) -> None:
        self._queue: deque[_Exchange] = deque()

    def submit(self, request: ConsoleRequest) -> None:
        self._queue.append(_Exchange(request))

    def poll(self, now_ns: int) -> list[ConsoleOutput]:
        """Fail the request under way past its deadline, or (re)send its break-in when due."""
        if not self._queue:
            return []
        ex = self._queue[0]
        if now_ns > ex.request.deadline_ns:
            self._queue.popleft()
            return [brp.SendBytes(b"GO\r"), ex.failed or ConsoleFailed(ex.request, ex.state)]
        if ex.state is ConsoleState.BREAK_IN and (ex.next_break_ns is None or now_ns >= ex.next_break_ns):
            ex.next_break_ns = now_ns + BREAK_IN_REPEAT_NS
            return [brp.SendBytes(bytes((brp.BREAK_IN,)) + b"\r")]
        return []

    def text(self, data: bytes) -> list[ConsoleOutput]:
        """Console text found between frames: each prompt in it moves the request under way on, however
        the text was cut into pieces (a prompt may come in two, or with the text after it)."""
        if not self._queue:
            return [StrayText(data)]
        ex = self._queue[0]
        if ex.state is ConsoleState.GO:
            return []  # what the console says on its way out belongs to no line
        ex.text += data
        out: list[ConsoleOutput] = []
        while ex.state is not ConsoleState.GO:
            end = ex.text.find(brp.PROMPT)
            if end < 0:
                # a prompt may still complete the text: only more than that is too much
                if len(ex.text) > MAX_REPLY_TEXT + len(brp.PROMPT) - 1:
                    _give_up(ex, f"more than {MAX_REPLY_TEXT} bytes of console output without a prompt", out)
                break
            if end > MAX_REPLY_TEXT:
                _give_up(ex, f"{end} bytes of console output before a prompt (at most {MAX_REPLY_TEXT})", out)
                break
            said = ex.text[:end].decode("ascii", "replace")
            del ex.text[: end + len(brp.PROMPT)]
            if ex.state is ConsoleState.LINE:
                ex.reply.append(said)
                ex.index += 1
            else:
                out.append(ConsoleOpened(ex.request))
            lines = ex.request.lines
            if ex.index < len(lines):
                ex.state = ConsoleState.LINE
                out.append(brp.SendBytes(lines[ex.index].encode("ascii") + b"\r"))
            else:
                _leave(ex, out)
        return out

    def block_mode(self) -> list[ConsoleOutput]:
        """The digitizer left the console (ESC DC1): the request that sent ``GO`` is done."""
        if self._queue and self._queue[0].state is ConsoleState.GO:
            ex = self._queue.popleft()
            return [ex.failed or ConsoleReply(ex.request, "".join(ex.reply))]
        return []
