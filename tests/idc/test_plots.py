"""``ims idc plot``: availability per channel and UTC day, and a station's last minutes, as PNG files
read back, from an SDS archive the receiver's own writer made."""

from __future__ import annotations

import datetime as dt
import time

import matplotlib.image
import numpy as np
import pytest

from gci_link.clock import SIM_CLOCK_ENV
from gci_link.io.sds import SdsArchive, Segment
from idc.plots import availability, parse_span
from station.ims import main
from timeunits import NS_PER_S

DAY1 = dt.date(2027, 3, 1)
MIDNIGHT_NS = int(dt.datetime(2027, 3, 1, tzinfo=dt.UTC).timestamp()) * NS_PER_S
NOW_NS = MIDNIGHT_NS + 86_400 * NS_PER_S + 3 * 3600 * NS_PER_S  # 03:00 on the second day
RATE = 20.0


@pytest.fixture
def archive(tmp_path, monkeypatch):
    """STA1 (network XX): 12 h of the first day, then the hour to 03:00 on the second (ending now)."""
    sds = SdsArchive(tmp_path / "data" / "sds")
    for start_s, hours in ((0, 12), (86_400 + 2 * 3600, 1)):
        samples = np.arange(int(hours * 3600 * RATE), dtype=np.int32) % 1000
        segment = Segment("XX", "STA1", "00", "BHZ", MIDNIGHT_NS + start_s * NS_PER_S, RATE, samples)
        sds.append(sds.split_by_day(segment))
    sds.close()
    (tmp_path / "idc.toml").write_text("[idc]\nroot = 'data'\ntrust_dir = 't'\n"
                                       "connection_endpoint = 'tcp://127.0.0.1:1'\n"
                                       "[stations.STA1]\nnetwork = 'XX'\n")
    monkeypatch.setenv(SIM_CLOCK_ENV, f"{NOW_NS},{time.time_ns()},1e-12")  # now stands still
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_availability_is_the_share_of_each_day_covered(archive):
    days3 = [DAY1 + dt.timedelta(days=n) for n in range(3)]
    table = availability(archive / "data" / "sds", days3)
    assert list(table) == ["XX.STA1.00.BHZ"]
    days = table["XX.STA1.00.BHZ"]
    assert days[DAY1] == pytest.approx(0.5) and days[DAY1 + dt.timedelta(days=1)] == pytest.approx(1 / 24)
    assert DAY1 + dt.timedelta(days=2) not in days  # no day file


def test_plot_availability_and_waveforms_write_pngs(archive, capsys):
    assert main(["idc", "plot", "availability", "--days", "3", "--out", "a.png"]) == 0
    assert capsys.readouterr().out.strip() == "a.png: 1 channel(s), 3 day(s)"
    assert matplotlib.image.imread(archive / "a.png").shape[2] in (3, 4)
    assert main(["idc", "plot", "waveforms", "STA1", "--last", "10m"]) == 0
    assert capsys.readouterr().out.strip() == "STA1.png: 1 trace(s)"
    image = matplotlib.image.imread(archive / "STA1.png")
    assert image.shape[0] > 100 and image.shape[1] > 500


def test_plot_errors_are_one_line(archive, capsys):
    assert main(["idc", "plot", "waveforms", "NOPE"]) == 2
    assert capsys.readouterr().err == "ims idc plot: no station 'NOPE' in [stations] of idc.toml\n"
    assert main(["idc", "plot", "waveforms", "STA1", "--last", "ten"]) == 2
    assert "expected a positive span like 90s, 10m, 2h or 1d, got 'ten'" in capsys.readouterr().err
    assert parse_span("90s") == 90 and parse_span("2h") == 7200 and parse_span("1.5m") == 90
    (archive / "data" / "sds").rename(archive / "elsewhere")
    assert main(["idc", "plot", "waveforms", "STA1"]) == 1
    assert f"no archive at {archive}/data/sds (has the receiver run?)" in capsys.readouterr().err
    (archive / "data" / "sds").mkdir()
    assert main(["idc", "plot", "availability"]) == 1
    assert "no day files in" in capsys.readouterr().err
    assert main(["idc", "plot", "waveforms", "STA1"]) == 1
    span = "from 2027-03-02T02:50:00.000Z to 2027-03-02T03:00:00.000Z"
    assert f"no data of STA1 {span}" in capsys.readouterr().err
