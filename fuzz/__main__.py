"""``python -m fuzz``: every harness under atheris for a total number of inputs, then a summary per target.

Each target runs in its own process (``python -m fuzz.run``) with its corpus in ``OUT/corpus/TARGET``,
seeded afresh from the fixtures and encoders and kept between runs; ``--jobs`` targets run at once. A
crash stops libFuzzer; the input is saved in ``OUT/crashes/TARGET/`` and the target is restarted for the
inputs it still owes, so one bug does not hide the next. The exit status is 1 if anything crashed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from fuzz.config_file import SCRATCH_ENV, scratch_parent
from fuzz.targets import TARGETS

REPO = Path(__file__).resolve().parents[1]
MAX_RESTARTS = 20  # crashes per target before giving up on it (each one is saved)
PROGRESS_S = 30.0
_STATUS = re.compile(rb"^#(\d+)\s+(?:pulse|NEW|REDUCE|INITED|DONE)\b.*?exec/s: (\d+)")
_STAT = re.compile(rb"^stat::(\w+):\s+(\d+)")
_CRASH = re.compile(rb"Test unit written to (\S+)")


@dataclass
class Result:
    target: str
    runs: int = 0
    seconds: float = 0.0
    crashes: list[Path] = field(default_factory=list)

    def line(self) -> str:
        rate = self.runs / self.seconds if self.seconds else 0.0
        crashes = f"{len(self.crashes)} crash{'es' if len(self.crashes) != 1 else ''}"
        if self.crashes:
            crashes += f" ({len({c.name for c in self.crashes})} distinct inputs)"
        figures = f"{self.runs:>11,} inputs  {self.seconds:8.0f} s  {rate:8,.0f} exec/s"
        return f"{self.target:15s} {figures}  {crashes}"


def _escape(token: bytes) -> str:
    return '"' + "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else f"\\x{b:02x}" for b in token) + '"'


def _prepare(target: str, out: Path) -> tuple[Path, list[str], Path]:
    """Corpus folder with this run's seeds added, libFuzzer flags of the target (dictionary, input length
    cap), crash folder."""
    import importlib

    module = importlib.import_module(f"fuzz.{target}")
    corpus = out / "corpus" / target
    corpus.mkdir(parents=True, exist_ok=True)
    for seed in module.seeds():
        (corpus / f"seed-{hashlib.sha1(seed).hexdigest()}").write_bytes(seed)
    flags = []
    tokens = getattr(module, "DICTIONARY", [])
    if tokens:
        dictionary = out / f"{target}.dict"
        dictionary.write_text("".join(f"{_escape(t)}\n" for t in tokens))
        flags.append(f"-dict={dictionary}")
    if hasattr(module, "MAX_LEN"):
        flags.append(f"-max_len={module.MAX_LEN}")
    crashes = out / "crashes" / target
    crashes.mkdir(parents=True, exist_ok=True)
    return corpus, flags, crashes


def _run_once(target: str, runs: int, corpus: Path, flags: list[str], crashes: Path, log: Path,
              result: Result) -> int:
    """One libFuzzer process; adds what it ran and the crash it found (if any) to ``result``; returns its
    exit status. A crash is counted even when it re-finds an input already saved (same file name)."""
    args = [sys.executable, "-m", "fuzz.run", target, f"-runs={runs}", "-print_final_stats=1",
            f"-artifact_prefix={crashes}/", "-rss_limit_mb=4096", "-timeout=30", *flags]
    scratch = tempfile.mkdtemp(prefix=f"ims-fuzz-{target}-", dir=scratch_parent())
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
                        SCRATCH_ENV: scratch}
    started = last_print = time.monotonic()
    executed = 0
    with log.open("ab") as sink:
        proc = subprocess.Popen([*args, str(corpus)], cwd=REPO, env=env, stdout=sink, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        for line in proc.stderr:
            sink.write(line)
            status = _STATUS.match(line)
            if status and time.monotonic() - last_print >= PROGRESS_S:
                last_print = time.monotonic()
                print(f"  {target}: {result.runs + int(status[1]):,} inputs, {int(status[2]):,} exec/s",
                      flush=True)
            stat = _STAT.match(line)
            if stat and stat[1] == b"number_of_executed_units":
                executed = int(stat[2])
            crash = _CRASH.search(line)
            if crash:
                result.crashes.append(Path(crash[1].decode()))
                print(f"  {target}: CRASH, input saved as {crash[1].decode()}", flush=True)
        code = proc.wait()
    shutil.rmtree(scratch, ignore_errors=True)
    result.runs += executed
    result.seconds += time.monotonic() - started
    return code


def fuzz_target(target: str, runs: int, out: Path) -> Result:
    corpus, flags, crashes = _prepare(target, out)
    result = Result(target)
    log = out / f"{target}.log"
    log.write_bytes(b"")
    print(f"== {target}: {runs:,} inputs (log {log})", flush=True)
    while result.runs < runs and len(result.crashes) < MAX_RESTARTS:
        before = len(result.crashes)
        code = _run_once(target, runs - result.runs, corpus, flags, crashes, log, result)
        if code == 0:
            break
        if len(result.crashes) == before:
            raise RuntimeError(f"{target}: libFuzzer exited with status {code} and no crash input; see {log}")
        result.runs += 1  # the crashing input itself
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=10_000_000, help="inputs over all targets (10 million)")
    parser.add_argument("--out", type=Path, default=REPO / "fuzz-out", help="corpora, crashes and logs")
    parser.add_argument("--jobs", type=int, default=1, help="targets fuzzed at once (one core each)")
    parser.add_argument("only", nargs="*", help=f"targets, of {', '.join(TARGETS)} (all when none given)")
    args = parser.parse_args(argv)
    names = args.only or list(TARGETS)
    unknown = set(names) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    shares = sum(TARGETS[n][0] for n in names)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda n: fuzz_target(n, round(args.total * TARGETS[n][0] / shares),
                                                      args.out.resolve()), names))
    print("\n== fuzzing summary")
    for r in results:
        print(r.line())
    total = Result("total", sum(r.runs for r in results), sum(r.seconds for r in results),
                   [c for r in results for c in r.crashes])
    print(total.line())
    return 1 if total.crashes else 0


if __name__ == "__main__":
    sys.exit(main())
