"""Run every ``bench/bench_*.py`` module, print its figures and write them as JSON.

Each module exposes ``run(progress) -> dict``: a flat mapping of figure name to value (numbers, or
strings for units and verdicts). ``progress(text)`` reports what is being measured.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path

import bench


def _progress(text: str) -> None:
    print(f"  … {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("only", nargs="*", help="module names (e.g. bench_cd11); all when empty")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    if args.only:
        names = [n for n in names if n in args.only]
    failed = 0
    for name in names:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        try:
            figures = importlib.import_module(f"bench.{name}").run(_progress)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            print(f"   FAILED: {type(exc).__name__}: {exc}", flush=True)
            failed += 1
            continue
        width = max(map(len, figures), default=0)
        for key, value in figures.items():
            shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
            print(f"   {key:<{width}}  {shown}")
        figures["wall_seconds"] = round(time.perf_counter() - started, 3)
        (args.out / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"figures written to {args.out}/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
