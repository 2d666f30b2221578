"""``python -m fuzz.run TARGET [libFuzzer flags] [corpus dirs]``: one harness under atheris.

The target's own modules are imported inside ``atheris.instrument_imports`` so that coverage of their
code (not of numpy or the harness) guides the mutations. Any exception from ``check`` is a crash.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time

import atheris

from fuzz.targets import NOT_INSTRUMENTED, TARGETS


def main() -> None:
    target = sys.argv[1]
    logging.disable(logging.CRITICAL)  # parsers log every bad input; millions of lines help nobody
    with atheris.instrument_imports(include=list(TARGETS[target][1]), exclude=list(NOT_INSTRUMENTED)):
        module = importlib.import_module(f"fuzz.{target}")
    atheris.Setup([sys.argv[0], *sys.argv[2:]], _with_progress(module.check))
    atheris.Fuzz()


def _with_progress(check):
    """``check`` that also reports inputs and exec/s every 30 s in libFuzzer's status-line format
    (libFuzzer's own pulses thin out to powers of two, leaving long runs silent)."""
    started = last = time.monotonic()
    count = 0

    def counted(data: bytes) -> None:
        nonlocal count, last
        count += 1
        if count % 256 == 0 and time.monotonic() - last >= 30:
            last = time.monotonic()
            print(f"#{count}\tpulse  (harness) exec/s: {count / (last - started):.0f}", file=sys.stderr,
                  flush=True)
        check(data)

    return counted


if __name__ == "__main__":
    main()
