"""``ims link replay`` against a real receiver says why frames stay unacknowledged: the receiver's
rejection notices (docs/link.md, "Rejection notices"), not only "NOT acknowledged"."""

from __future__ import annotations

import argparse

import pytest

from gci_link.cd11 import encode_frame
from gci_link.station_end import cli as link_cli
from tests.idc.conftest import Running, data_frame, make_config

pytestmark = pytest.mark.timeout(60)


def replay(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    link_cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def _files(tmp_path, frames) -> list[str]:
    paths = []
    for frame in frames:
        path = tmp_path / f"{frame.header.creator}-{frame.header.sequence}.cd11"
        path.write_bytes(encode_frame(frame))
        paths.append(str(path))
    return paths


@pytest.fixture
def receiver(tmp_path, keys, clock):
    run = Running(make_config(tmp_path / "idc", keys.ca.trust_dir, data_endpoint=None, verify_workers=0),
                  keys.ca.trust_store(), clock)
    yield run
    run.stop()


def test_replay_reports_the_receivers_rejection_of_its_frames(receiver, keys, tmp_path, capsys):
    bundle = next((keys.ca.root / "issued").glob(f"STA1-{keys.sta1.key_id}"))
    files = _files(tmp_path, [data_frame(700, keys.sta1), data_frame(701, keys.stranger),
                              data_frame(702, keys.revoked)])
    argv = ["link", "replay", *files, "--to", receiver.receiver.connection_endpoint, "--timeout", "3",
            "--key", str(bundle / "key.pem"), "--cert", str(bundle / "cert.pem")]
    assert replay(argv) == 1
    out = capsys.readouterr().out
    assert ("STA1 700..702: 3 frames NOT acknowledged (2 frames left; the IDC rejected "
            "STA1 data #701: frame_unknown_key; STA1 data #702: frame_revoked)") in out, out


def test_replay_reports_a_refused_connection_request(receiver, keys, tmp_path, capsys):
    files = _files(tmp_path, [data_frame(800, keys.sta1)])  # no --key: control frames go unsigned
    assert replay(["link", "replay", *files, "--to", receiver.receiver.connection_endpoint,
                   "--timeout", "3"]) == 1
    out = capsys.readouterr().out
    assert "NOT acknowledged (1 frames left; the IDC rejected STA1 connection_request: frame_unsigned)" in out
