"""The interim demo (``ims hil run``) builds, encodes and decodes frames and writes them out."""

from __future__ import annotations

from gci_link.cd11 import decode_frame
from station import ims


def test_demo_round_trips_synthetic_frames(tmp_path, capsys):
    assert ims.main(["hil", "run", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    written = sorted((tmp_path / "cd11").glob("DEMO-*.cd11"))
    assert len(written) == 18 and "0 failed" in out
    frames = [decode_frame(p.read_bytes()) for p in written]
    times = [f.body.nominal_time_ns for f in frames]
    assert all(t % 10_000_000_000 == 0 for t in times) and times == sorted(times)
    assert [f.header.sequence for f in frames] == list(range(18))
