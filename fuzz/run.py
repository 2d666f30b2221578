"""``python -m fuzz.run TARGET [libFuzzer flags] [corpus dirs]``: one harness under atheris.

The target's own modules are imported inside ``atheris.instrument_imports`` so that coverage of their
code (not of numpy or the harness) guides the mutations. Any exception from ``check`` is a crash.
"""

from __future__ import annotations

import importlib
import logging
import sys

import atheris

from fuzz.targets import NOT_INSTRUMENTED, TARGETS


def main() -> None:
    target = sys.argv[1]
    logging.disable(logging.CRITICAL)  # parsers log every bad input; millions of lines help nobody
    with atheris.instrument_imports(include=list(TARGETS[target][1]), exclude=list(NOT_INSTRUMENTED)):
        module = importlib.import_module(f"fuzz.{target}")
    atheris.Setup([sys.argv[0], *sys.argv[2:]], module.check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
