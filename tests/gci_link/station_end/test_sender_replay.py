"""``ims link replay``: real station frames sent unchanged through a real sender to a fake IDC."""

from __future__ import annotations

import argparse

import pytest

from gci_link.cd11 import decode_frame
from gci_link.keys import CertificateAuthority, StationSigner
from gci_link.station_end import cli as link_cli
from tests.conftest import shared_fixture_dir
from tests.gci_link.station_end.test_sender import FakeIdc, data_frame

pytestmark = pytest.mark.timeout(60)


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    link_cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def idc():
    fake = FakeIdc()
    yield fake
    fake.close()


def test_replays_real_frames_byte_for_byte(idc, capsys):
    files = sorted(shared_fixture_dir("cd11").glob("*.cd11"))
    assert len(files) == 4
    assert run(["link", "replay", *map(str, files), "--to", idc.endpoint, "--timeout", "10"]) == 0
    assert sorted(idc.raw_frames) == sorted(f.read_bytes() for f in files)
    assert idc.creators == {decode_frame(f.read_bytes()).header.creator for f in files}
    out = capsys.readouterr().out
    assert "LBTB 9720700..9720700: 1 frames acknowledged" in out


def test_consecutive_frames_form_one_run(idc, tmp_path, capsys):
    paths = []
    for seq in (5, 6, 7, 9):
        path = tmp_path / f"STA1-{seq}.cd11"
        path.write_bytes(data_frame(seq))
        paths.append(str(path))
    assert run(["link", "replay", *paths, "--to", idc.endpoint, "--timeout", "10"]) == 0
    assert sorted(idc.received_seqs()) == [5, 6, 7, 9]
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("STA1 5..7: 3 frames acknowledged") and out[1].startswith("STA1 9..9: 1 frames")


def test_bad_file_is_named_and_nothing_is_sent(idc, tmp_path, capsys):
    good = tmp_path / "good.cd11"
    good.write_bytes(data_frame(1))
    bad = tmp_path / "bad.cd11"
    bad.write_bytes(data_frame(2)[:-3])
    assert run(["link", "replay", str(good), str(bad), "--to", idc.endpoint]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "not a CD-1.1 frame" in err
    assert idc.connection_requests == 0


def test_unreachable_idc_reports_failure(tmp_path, capsys):
    frame = tmp_path / "f.cd11"
    frame.write_bytes(data_frame(3))
    assert run(["link", "replay", str(frame), "--to", "tcp://127.0.0.1:9", "--timeout", "1"]) == 1
    assert "NOT acknowledged (1 frames left)" in capsys.readouterr().out



def test_with_idc_trust_only_acknacks_signed_by_the_idc_count(idc, tmp_path, capsys):
    ca = CertificateAuthority.create(tmp_path / "ca")
    signing = FakeIdc(signer=StationSigner.load(ca.issue_idc().bundle))
    frame = tmp_path / "f.cd11"
    frame.write_bytes(data_frame(4))
    trust = ["--idc-trust", str(ca.trust_dir)]
    try:
        assert run(["link", "replay", str(frame), "--to", signing.endpoint, *trust, "--timeout", "10"]) == 0
    finally:
        signing.close()
    assert run(["link", "replay", str(frame), "--to", idc.endpoint, *trust, "--timeout", "1"]) == 1
    assert "NOT acknowledged (1 frames left)" in capsys.readouterr().out  # the unsigned fake is not believed
    assert run(["link", "replay", str(frame), "--to", idc.endpoint, "--idc-trust", str(tmp_path)]) == 2
    assert f"ims link replay: {tmp_path}/ca.pem: cannot read certificate" in capsys.readouterr().err
