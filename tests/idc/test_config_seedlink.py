"""``[idc.seedlink]`` is validated at load: every mistake names the file, the key and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from idc.config import IdcConfigError, load_config

BASE = "[idc]\nroot = 'data'\ntrust_dir = 'trust'\nconnection_endpoint = 'tcp://127.0.0.1:*'\n{extra}"


def _load(tmp_path: Path, extra: str):
    path = tmp_path / "idc.toml"
    path.write_text(BASE.format(extra=extra))
    return load_config(path)


def test_defaults_and_paths(tmp_path: Path) -> None:
    config = _load(tmp_path, "[idc.seedlink]\n")
    assert config.seedlink is not None
    assert config.seedlink.listen == "127.0.0.1:18000"
    assert config.seedlink.ring == tmp_path / "data" / "seedlink.ring"
    assert _load(tmp_path, "").seedlink is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[idc.seedlink]\nlisten = '18000'\n", "idc.seedlink.listen"),
        ("[idc.seedlink]\nlisten = 'host:99999'\n", "idc.seedlink.listen"),
        ("[idc.seedlink]\nport = 18000\n", "idc.seedlink.port: unknown key"),
        ("[idc.seedlink]\nring_bytes = 0\n", "idc.seedlink.ring_bytes: must be > 0"),
        ("[idc.seedlink]\nsync = 'yes'\n", "idc.seedlink.sync: must be true or false"),
        ("record_length = 4096\n[idc.seedlink]\n", "needs record_length = 512"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(IdcConfigError, match="idc.toml") as info:
        _load(tmp_path, extra)
    assert message in str(info.value)
