"""A console's ``[... .console]`` table: where it listens, the operator credential, TLS.

Shared by the station and the IDC configuration loaders (through ``console_setting``); errors name the
key and the problem, and join the file's other problems, so every one still names file, key and problem.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from opskit.tomlcheck import Problem, Table

MIN_TOKEN_CHARS = 16


class ConsoleConfigError(ValueError):
    """A console table that cannot be used; the message names the key and what is wrong."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"key '{key}': {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class ConsoleConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    operator_token_file: Path | None = None  # without it the console is read-only
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def operator_token(self) -> str | None:
        """The operator credential, read from its file (so it is not in the configuration itself)."""
        if self.operator_token_file is None:
            return None
        return self.operator_token_file.read_text().strip()


_KEYS = {"bind", "operator_token_file", "tls_cert", "tls_key"}


def parse_console(table: Any, where: str, base: Path) -> ConsoleConfig:
    """Validate the table found at ``where`` (e.g. ``idc.console``); relative paths are from ``base``."""
    if not isinstance(table, dict):
        raise ConsoleConfigError(f"{where}", f"a table, not {table!r}")
    for key, value in table.items():
        if key not in _KEYS:
            known = ", ".join(sorted(_KEYS))
            raise ConsoleConfigError(f"{where}.{key}", f"unknown setting (known: {known})")
        if not isinstance(value, str):
            raise ConsoleConfigError(f"{where}.{key}", f"a string, not {value!r}")
    host, port = parse_bind(table.get("bind", "127.0.0.1:8080"), f"{where}.bind")
    paths = {k: (base / table[k]) if k in table else None
             for k in ("operator_token_file", "tls_cert", "tls_key")}
    for key, path in paths.items():
        if path is not None and not path.is_file():
            raise ConsoleConfigError(f"{where}.{key}", f"no such file {path}")
    if (paths["tls_cert"] is None) != (paths["tls_key"] is None):
        raise ConsoleConfigError(f"{where}.tls_cert", "tls_cert and tls_key go together")
    if paths["tls_cert"] is None and not _is_loopback(host):
        raise ConsoleConfigError(
            f"{where}.bind", f"{host} is reachable beyond this machine; set tls_cert and tls_key "
            "(the operator credential must not cross a network in clear)"
        )
    token_file = paths["operator_token_file"]
    if token_file is not None:
        token = token_file.read_text().strip()
        if len(token) < MIN_TOKEN_CHARS or not token.isprintable():
            raise ConsoleConfigError(
                f"{where}.operator_token_file", f"{token_file} must hold one printable token of at "
                f"least {MIN_TOKEN_CHARS} characters"
            )
    return ConsoleConfig(host, port, token_file, paths["tls_cert"], paths["tls_key"])


def parse_bind(text: str, key: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 in brackets) into its parts; port 0 picks a free one (tests)."""
    host, sep, port_text = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ConsoleConfigError(key, f"HOST:PORT such as 127.0.0.1:8080, not {text!r}")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConsoleConfigError(key, f"{host!r} is not an IP address or localhost") from None
    return host, int(port_text)


def _is_loopback(host: str) -> bool:
    return host == "localhost" or ipaddress.ip_address(host).is_loopback


def console_setting(t: Table, name: str = "console") -> ConsoleConfig | None:
    """``name`` of the table ``t`` (``[idc.console]``, ``[console]``) through the shared validator: its
    problem joins the file's others; None when absent or unusable."""
    t.used.add(name)
    if name not in t.data:
        return None
    try:
        return parse_console(t.data[name], t.key(name), t.base_dir)
    except ConsoleConfigError as exc:
        t.problems.append(Problem(t.source, exc.key, exc.problem))
        return None
