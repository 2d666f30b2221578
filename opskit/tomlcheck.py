"""One validator for every TOML file we read (station and IDC configurations, hil scenarios).

Reads record a problem and go on instead of raising, so an operator fixes a whole file in one pass; each
problem names the file, the key path (``channels[2].calper``) and what is wrong, on one line. A value
that had a problem reads as None, so later checks can skip what is already reported.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Check = Callable[[Any], str | None]  # a value's problem, or None

REQUIRED: Any = object()  # ``default`` of a key that must be there
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
               dt.datetime: "a date and time (TOML, e.g. 2026-11-20T09:15:00Z)"}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    key: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.problem}"


class TomlError(ValueError):
    """Every problem found in one file, under a heading that says what kind of file it is."""

    what = "file"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"invalid {self.what} ({count}):\n{lines}")


def toml_key(name: str) -> str:
    """A key as written in TOML: bare when it can be, else quoted, so an empty key or one holding a newline
    still shows in a one-line problem."""
    return name if _BARE_KEY.fullmatch(name) else json.dumps(name)


def read_toml(path: Path) -> tuple[dict[str, Any] | None, list[Problem]]:
    """The parsed file, or None and the one problem that stops it being read."""
    try:
        return parse_toml(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        return None, [Problem(str(path), "(file)", f"cannot read: {exc.strerror or exc}")]
    except UnicodeDecodeError as exc:
        return None, [Problem(str(path), "(file)", f"not UTF-8 text (byte {exc.start})")]


def parse_toml(text: str, source: str) -> tuple[dict[str, Any] | None, list[Problem]]:
    try:
        return tomllib.loads(text), []
    except tomllib.TOMLDecodeError as exc:
        return None, [Problem(source, "(syntax)", str(exc))]
    except RecursionError:  # tomllib recurses once per level and sets no limit of its own
        return None, [Problem(source, "(syntax)", "arrays or inline tables nested too deeply")]


class Table:
    """One TOML table being validated: typed reads, key paths, and unknown-key detection (``done``)."""

    def __init__(self, data: dict[str, Any], prefix: str, source: str, problems: list[Problem],
                 base_dir: Path) -> None:
        self.data, self.prefix, self.source, self.problems = data, prefix, source, problems
        self.base_dir = base_dir
        self.used: set[str] = set()
        self.absent = False  # a missing table reports itself once, not each of its keys

    @classmethod
    def root(cls, data: dict[str, Any], source: str, base_dir: Path) -> Table:
        return cls(data, "", source, [], base_dir)

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix and name else (self.prefix or name)

    def problem(self, name: str, message: str) -> None:
        self.problems.append(Problem(self.source, self.key(name), message))

    def get(self, name: str, kind: type, *, default: Any = REQUIRED, check: Check | None = None) -> Any:
        """The value of ``name`` if it is of ``kind`` (an integer counts as a float) and passes ``check``."""
        self.used.add(name)
        if name not in self.data:
            if default is not REQUIRED:
                return default
            if not self.absent:
                self.problem(name, "missing (required)")
            return None
        value = self.data[name]
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value) if abs(value) < 2**1023 else math.inf, True
        if not ok:
            self.problem(name, f"must be {_TYPE_NAMES[kind]}, got {type(value).__name__} {value!r}")
            return None
        if kind is float and not math.isfinite(value):  # TOML has nan and inf; no range check stops nan
            self.problem(name, f"must be a finite number, got {value!r}")
            return None
        if kind is str and "\0" in value:
            self.problem(name, "must not contain a NUL character")
            return None
        error = check(value) if check else None
        if error:
            self.problem(name, error)
            return None
        return value

    def path(self, name: str, *, default: Any = REQUIRED) -> Any:
        """A path resolved against the file's folder; like ``get``, None once a problem is recorded."""
        text = self.get(name, str, default=REQUIRED if default is REQUIRED else None, check=path_text)
        if text is None:
            return default if name not in self.data and default is not REQUIRED else None
        return (self.base_dir / text).resolve()

    def table(self, name: str, *, required: bool = True) -> Table:
        self.used.add(name)
        value = self.data.get(name)
        if value is None:
            if required:
                self.problem(name, "missing (required table)")
        elif not isinstance(value, dict):
            self.problem(name, f"must be a table, got {type(value).__name__}")
        table = Table(value if isinstance(value, dict) else {}, self.key(name), self.source, self.problems,
                      self.base_dir)
        table.absent = not isinstance(value, dict)
        return table

    def tables(self, name: str) -> list[Table]:
        """An array of tables (``[[name]]``)."""
        self.used.add(name)
        value = self.data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.problem(name, f"must be an array of tables ([[{name}]]), got {type(value).__name__}")
            return []
        return [Table(v, f"{self.key(name)}[{i}]", self.source, self.problems, self.base_dir)
                for i, v in enumerate(value)]

    def named_tables(self, name: str) -> dict[str, Table]:
        """Tables by name (``[name.NAME]``)."""
        self.used.add(name)
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            self.problem(name, f"must hold tables [{name}.NAME], got {type(value).__name__}")
            return {}
        found = {}
        for key, entry in value.items():
            if isinstance(entry, dict):
                found[key] = Table(entry, f"{self.key(name)}.{toml_key(key)}", self.source, self.problems,
                                   self.base_dir)
            else:
                self.problem(f"{name}.{toml_key(key)}", f"must be a table, got {type(entry).__name__}")
        return found

    def strings(self, name: str, *, default: Any = REQUIRED, check: Check | None = None) -> Any:
        """A list of strings, each passing ``check``; None once a problem is recorded."""
        value = self.get(name, list, default=default)
        if value is None or value is default:
            return value
        if not all(isinstance(v, str) for v in value):
            self.problem(name, "must be a list of strings")
            return None
        errors = [(i, error) for i, item in enumerate(value) if check and (error := check(item))]
        for i, error in errors:
            self.problem(f"{name}[{i}]", error)
        return None if errors else value

    def done(self) -> None:
        """Report the keys nobody read: a misspelt key must not be silently ignored."""
        for name in sorted(set(self.data) - self.used):
            self.problem(toml_key(name), "unknown key")


# ----------------------------------------------------------------------------------------------- checks


def in_range(low: float | None, high: float | None, *, low_open: bool = False) -> Check:
    def check(v: float) -> str | None:
        if low is not None and (v < low or (low_open and v == low)):
            return f"must be {'>' if low_open else '>='} {low:g}, got {v!r}"
        if high is not None and v > high:
            return f"must be <= {high:g}, got {v!r}"
        return None
    return check


def text(shortest: int, longest: int, *, alnum: bool = False) -> Check:
    """A code or name: its length, ASCII, and with ``alnum`` letters and digits only (SEED, CD-1.1)."""
    def check(v: str) -> str | None:
        if not shortest <= len(v) <= longest:
            return f"must be {shortest} to {longest} characters, got {v!r}"
        if not v.isascii() or (alnum and v and not v.isalnum()):
            return f"must be ASCII{' letters and digits' if alnum else ''}, got {v!r}"
        return None
    return check


def one_of(allowed: Iterable[Any], *, ordered: bool = False) -> Check:
    """One of ``allowed``, listed sorted unless ``ordered`` (then as given)."""
    allowed = list(allowed) if ordered else sorted(allowed)

    def check(v: Any) -> str | None:
        return None if v in allowed else f"must be one of {', '.join(map(str, allowed))}; got {v!r}"
    return check


def nonzero(v: float) -> str | None:
    return None if v != 0 and math.isfinite(v) else f"must be a finite non-zero number, got {v!r}"


def path_text(v: str) -> str | None:
    if not 1 <= len(v) <= 4096:
        return f"must be 1 to 4096 characters, got {len(v)}"
    return None


def tcp_endpoint(*, any_port: bool = False) -> Check:
    """``tcp://host:port`` (ZeroMQ); with ``any_port`` the port may be ``*`` (a bind to any free port)."""
    def check(v: str) -> str | None:
        host, sep, port = v.removeprefix("tcp://").rpartition(":")
        good_port = (any_port and port == "*") or (port.isdigit() and 0 < int(port) < 65536)
        if not (v.startswith("tcp://") and sep and host and good_port):
            return f"must look like tcp://host:port{' (port * for any)' if any_port else ''}, got {v!r}"
        return None
    return check


def all_of(*checks: Check) -> Check:
    """The first problem of several checks."""
    def check(v: Any) -> str | None:
        return next((p for c in checks if (p := c(v)) is not None), None)
    return check
