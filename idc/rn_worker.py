"""The process that analyses the IDC's radionuclide samples, apart from the receiver (idc/rn_analyser.py).

Run as ``python -m idc.rn_worker MEMORY_BYTES RECEIVER_PID``. Once its libraries are loaded it says
``{"ready": true}``; then it reads one JSON job a line on stdin and answers each with one JSON line. It
is a process of its own so that an analysis that loops, eats memory or crashes costs this process and
never the receiver: its address space is capped at MEMORY_BYTES (a MemoryError becomes the job's
error), it runs at a lower priority than the receiver, the receiver kills it when a job overruns its
time, and it dies with the receiver. Anything a library prints goes to stderr; stdout carries the
answers only.

Jobs (files are absolute paths, each checked against the SHA-256 the index holds for it):

- ``{"describe": FILE, "sha256": HEX}`` -> ``{"fields": {...}}``: the PHD columns of the index, for rows
  of an index older than those columns;
- ``{"analyse": {"sample": [FILE, HEX], "gasbk": [FILE, HEX] | null, "detbk": ...}, "missing": [TEXT]}``
  -> ``{"result": {...}}`` (``AnalysisResult.to_json``) or ``{"error": TEXT}``. ``missing`` names the
  backgrounds the sample references that the IDC has not received; the result says so in its flag
  ``backgrounds_received``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import json
import os
import resource
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, BinaryIO

from gci_link import ims2
from idc.rn_store import PHD_COLUMNS, describe
from rn_analysis.dispatch import analyse_message
from rn_analysis.errors import AnalysisError
from rn_analysis.result import Flag

NICENESS = 10  # below the receiver, which shares the machine
PR_SET_PDEATHSIG = 1  # prctl(2)


def _load(where: list[str] | None, what: str) -> ims2.PhdMessage | None:
    if where is None:
        return None
    path, sha256 = where
    data = Path(path).read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise AnalysisError(f"the {what} file {path} differs from what was stored (SHA-256 mismatch)")
    try:
        message = ims2.parse(data.decode("ascii"))
    except (UnicodeDecodeError, ims2.Ims2FormatError) as exc:
        raise AnalysisError(f"the {what} does not parse: {exc}") from None
    if not isinstance(message, ims2.PhdMessage):
        raise AnalysisError(f"the {what} is a {message.data_type}, not pulse height data")
    return message


def analyse(job: dict[str, Any]) -> dict[str, Any]:
    files = job["analyse"]
    sample = _load(files["sample"], "sample")
    assert sample is not None
    result = analyse_message(sample, gasbk=_load(files["gasbk"], "gas background"),
                             detbk=_load(files["detbk"], "detector background"))
    missing = job["missing"]
    received = Flag("backgrounds_received", not missing,
                    "; ".join(missing) if missing else "every background the sample references was received")
    return {"result": dataclasses.replace(result, flags=[*result.flags, received]).to_json()}


def describe_file(job: dict[str, Any]) -> dict[str, Any]:
    data = Path(job["describe"]).read_bytes()
    if hashlib.sha256(data).hexdigest() != job["sha256"]:
        return {"error": f"{job['describe']} differs from what was stored (SHA-256 mismatch)"}
    fields = describe(data)
    return {"fields": {name: fields.get(name) for name in PHD_COLUMNS}}


def answer(job: dict[str, Any], memory_bytes: int) -> dict[str, Any]:
    """One job's answer; every failure is an answer, so the receiver records it and goes on."""
    try:
        return describe_file(job) if "describe" in job else analyse(job)
    except (AnalysisError, OSError) as exc:
        return {"error": str(exc)}
    except MemoryError:
        return {"error": f"the analysis needed more than its {memory_bytes >> 20} MiB of memory"}
    except Exception as exc:  # a defect of the analysis: recorded for this sample, logged in full
        traceback.print_exc()
        return {"error": f"analysis failed: {type(exc).__name__}: {exc}"}


def serve(jobs: BinaryIO, answers: BinaryIO, memory_bytes: int) -> None:
    import rn_analysis.betagamma  # noqa: F401  # loaded before "ready", so no job's time limit pays for it

    answers.write(b'{"ready": true}\n')
    answers.flush()
    for line in jobs:
        answers.write(encode(answer(json.loads(line), memory_bytes)) + b"\n")
        answers.flush()


def encode(reply: dict[str, Any]) -> bytes:
    """The answer as strict JSON: a result holding NaN or infinity is no number to store but an error."""
    try:
        return json.dumps(reply, allow_nan=False).encode()
    except ValueError:
        return json.dumps({"error": "analysis failed: the result holds a value that is not a finite "
                                    "number"}).encode()


def _die_with_the_receiver() -> None:
    """Ask Linux to kill this process when the receiver's thread that started it ends (even by SIGKILL),
    so a job that never ends cannot outlive the receiver; elsewhere the end of stdin stops it between jobs."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return


def main() -> None:
    memory_bytes, receiver_pid = int(sys.argv[1]), int(sys.argv[2])
    _die_with_the_receiver()
    if os.getppid() != receiver_pid:  # it ended before the line above took effect
        return
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    os.nice(NICENESS)
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints go to the log, not into the answers
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, answers, memory_bytes)


if __name__ == "__main__":
    main()
