"""``ims cd11 dump`` on real and corrupt frames, through the real ``ims`` entry point."""

from __future__ import annotations

import json

from station import ims
from tests.conftest import shared_fixture_dir


def test_dump_text(capsys):
    path = shared_fixture_dir("cd11") / "GERES-1508852201870062.cd11"
    assert ims.main(["cd11", "dump", str(path)]) == 0
    out = capsys.readouterr().out
    assert "DATA from 'GERES'" in out and "sequence 1508852201870062" in out and "key id 1286177127" in out
    assert (
        "GED5/SHZ/-" in out and "clock_differential_too_large,gps_receiver_off,gps_receiver_unlocked" in out
    )
    assert "clock-diff 544601 us" in out and "first [-38534, -38022, -39160" in out


def test_dump_json_with_samples(capsys):
    folder = shared_fixture_dir("cd11")
    paths = [str(folder / "LBTB-9720700.cd11"), str(folder / "H04N-1511040903185751.cd11")]
    assert ims.main(["cd11", "dump", "--json", "--samples", *paths]) == 0
    lbtb, h04n = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    expected = json.loads((folder / "expected" / "LBTB-9720700.json").read_text())
    c0 = lbtb["data"]["channels"][0]
    assert c0["samples"] == expected["channels"][0]["samples"] and c0["v0"] == -257
    assert c0["min"] == min(c0["samples"]) and c0["max"] == max(c0["samples"])
    assert lbtb["data"]["channel_ids"][0] == "LBTB1/SHZ/BW" and c0["location"] == "US"
    assert [c["auth_offset_convention"] for c in h04n["data"]["channels"]] == ["B"] * 5


def test_dump_corrupt_file_reports_offset(capsys, tmp_path):
    raw = bytearray((shared_fixture_dir("cd11") / "KEST-1518458453053626.cd11").read_bytes())
    raw[1000] ^= 0x40
    bad = tmp_path / "bad.cd11"
    bad.write_bytes(bytes(raw))
    short = tmp_path / "short.cd11"
    short.write_bytes(bytes(raw[:20]))
    assert ims.main(["cd11", "dump", str(bad), str(short), str(tmp_path / "missing.cd11")]) == 1
    err = capsys.readouterr().err
    assert "bad.cd11: not a valid CD-1.1 frame: CRC-64 mismatch" in err and "offset 1800" in err
    assert (
        "short.cd11: not a valid CD-1.1 frame: frame truncated" in err and "missing.cd11: cannot read" in err
    )
