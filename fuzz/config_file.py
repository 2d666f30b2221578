"""What the configuration targets share: the input as a file on disk, and TOML tokens worth trying.

Configurations are loaded through their real entry points (``load_config``), which read a file, so each
input is written to one reused file in a private temporary folder (in memory where /dev/shm exists).
"""

from __future__ import annotations

import atexit
import math
import os
import shutil
import tempfile
from pathlib import Path

_DIR: Path | None = None
SCRATCH_ENV = "IMS_FUZZ_SCRATCH"


def scratch_parent() -> Path | None:
    """Where scratch folders go: memory (/dev/shm) where it exists, else the system's temporary folder."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() else None


def scratch_dir() -> Path:
    """This process's private scratch folder (python -m fuzz removes it; libFuzzer skips atexit)."""
    global _DIR
    if _DIR is None:
        given = os.environ.get(SCRATCH_ENV)
        if given:
            _DIR = Path(given)
        else:
            _DIR = Path(tempfile.mkdtemp(prefix="ims-fuzz-", dir=scratch_parent()))
            atexit.register(shutil.rmtree, _DIR, True)
    return _DIR


def as_file(data: bytes, name: str) -> Path:
    """``data`` written to ``name`` in this process's scratch folder (overwritten by the next input)."""
    path = scratch_dir() / name
    path.write_bytes(data)
    return path


def finite(*values: float | None) -> bool:
    """Whether every value (None aside) is a number that converts to a finite float."""
    return all(v is None or (isinstance(v, int | float) and abs(v) < 2**1023 and math.isfinite(v))
               for v in values)


# values that TOML allows and validators tend to forget: non-finite floats, huge integers, wrong types
TOML_VALUES = [b"nan", b"inf", b"-inf", b"1e400", b"-0.0", b"0", b"-1", b"99999999999999999999",
               b"9223372036854775807", b"-9223372036854775808", b"1.5", b"true", b"[]", b"{}", b'""',
               b'"\\u00e9"', b'"\\n"', b'"a\\"b"', b'"../x"', b'["x"]', b"[[1]]", b"1979-05-27", b'"\\u0000"']
TOML_SYNTAX = [b"[", b"]", b"[[", b"]]", b"=", b'"', b"\n", b".", b"#", b"'", b'"""']
