"""The console table: localhost by default, TLS required beyond it, a credential of some length."""

from __future__ import annotations

import pytest

from consoles.config import ConsoleConfigError, parse_console


def test_defaults_to_localhost_read_only(tmp_path):
    config = parse_console({}, "idc.console", tmp_path)
    assert (config.host, config.port, config.tls) == ("127.0.0.1", 8080, False)
    assert config.operator_token() is None


def test_token_and_tls_files_are_read_relative_to_the_configuration(tmp_path):
    (tmp_path / "token").write_text("s3cret-operator-token\n")
    (tmp_path / "c.pem").write_text("x")
    (tmp_path / "k.pem").write_text("x")
    config = parse_console({"bind": "0.0.0.0:8443", "operator_token_file": "token", "tls_cert": "c.pem",
                            "tls_key": "k.pem"}, "idc.console", tmp_path)
    assert config.operator_token() == "s3cret-operator-token"
    assert config.tls and config.host == "0.0.0.0" and config.port == 8443


@pytest.mark.parametrize(("table", "key", "problem"), [
    ({"bind": "8080"}, "idc.console.bind", "HOST:PORT"),
    ({"bind": "example.org:80"}, "idc.console.bind", "not an IP address"),
    ({"bind": "127.0.0.1:70000"}, "idc.console.bind", "HOST:PORT"),
    ({"bind": "0.0.0.0:8080"}, "idc.console.bind", "set tls_cert and tls_key"),
    ({"port": "1"}, "idc.console.port", "unknown setting"),
    ({"bind": 8080}, "idc.console.bind", "a string"),
    ({"operator_token_file": "missing"}, "idc.console.operator_token_file", "no such file"),
    ({"operator_token_file": "short"}, "idc.console.operator_token_file", "at least 16 characters"),
    ({"tls_cert": "short"}, "idc.console.tls_cert", "go together"),
])
def test_bad_tables_name_key_and_problem(tmp_path, table, key, problem):
    (tmp_path / "short").write_text("abc")
    with pytest.raises(ConsoleConfigError) as caught:
        parse_console(table, "idc.console", tmp_path)
    assert caught.value.key == key
    assert problem in caught.value.problem
