"""Issue 11, defects 3, 5, 6 and 7 through the running receiver: what STA1's own key cannot buy.

Each attack is a frame STA1 signs with its real key. It must be refused with its reason and quarantined,
nothing of it may reach the archive (or any file outside it), and STA2, which sends the site HONES,
must see every one of its frames around the attack acknowledged and archived by the time the acknack
arrives (the archive is never held up by another station's data).
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import numpy as np
import pytest
from obspy import read

from gci_link.cd11 import FrameType
from idc.config import StationPolicy
from idc.vocabulary import RejectionKind
from tests.adversarial.conftest import AppendCounter, signed_data, wait_for_rejection
from tests.idc.conftest import Running, make_config, samples_for
from timeunits import NS_PER_S

pytestmark = pytest.mark.timeout(90)

YEAR_2263 = 9_225_000_000 * NS_PER_S  # past 2**63 ns from 1970: the metrics' integer overflow of the report
UNUSED_CHANNEL = "Q" + secrets.token_hex(1).upper()  # so "/tmp/Q??.D" can only come from this run
_TOO_WIDE = np.array([0, 1 << 30] * 200, dtype=np.int32)  # consecutive samples 2**30 apart: 31 bits

ATTACKS = {  # name: (frame arguments for STA1, kind it is refused as, text its reason holds)
    "absolute_site": (dict(site="/tmp", channel=UNUSED_CHANNEL), RejectionKind.BAD_CODE, "site '/tmp'"),
    "parent_site": (dict(site="../.."), RejectionKind.BAD_CODE, "site '../..'"),
    "dotted_location": (dict(site="STA1A", location=".."), RejectionKind.BAD_CODE, "location '..'"),
    "another_stations_site": (dict(site="HONES"), RejectionKind.FOREIGN_SITE, "sends sites STA1A only"),
    "year_2263": (dict(site="STA1A", time_ns=YEAR_2263), RejectionKind.TIME_WINDOW, "window"),
    "rate_over_32767": (dict(site="STA1A", rate=40_000.0), RejectionKind.DATA_LIMITS, "40000 sps"),
    "steim2_too_wide": (dict(site="STA1A", samples=_TOO_WIDE), RejectionKind.DATA_LIMITS, "Steim-2"),
    # the 103 KB frame that made 10,400 day files: 400 channels at 1e-4 sps, 24.8 days each
    "day_files": (
        dict(site="STA1A", rate=1e-4, samples=np.zeros(214, dtype=np.int32), channels=400),
        RejectionKind.DATA_LIMITS,
        "spans",
    ),
}
_LAYOUT = re.compile(r"sds/(\d{4})/XX/(HONES|STA1A)/BHZ\.D/XX\.\2\.00\.BHZ\.D\.\1\.\d{3}")


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_an_attack_with_a_stations_own_key_is_refused_and_honest_stations_are_archived(
    tmp_path, keys, clock, attack
):
    frame_args, kind, reason = ATTACKS[attack]
    stations = {
        "STA1": StationPolicy("STA1", "XX", sites=("STA1A",)),
        "STA2": StationPolicy("STA2", "XX", sites=("HONES",)),
    }
    config = make_config(tmp_path, keys.ca.trust_dir, data_endpoint=None, stations=stations,
                         max_frame_bytes=1 << 20, verify_workers=0)
    run = Running(config, keys.ca.trust_store(), clock)
    try:
        appended = AppendCounter(run.receiver.sds)
        attacker, honest = run.station("STA1"), run.station("STA2")
        attacker.connect()
        honest.connect()

        honest.send(signed_data(keys.sta2, "STA2", 100, site="HONES"))
        attacker.send(signed_data(keys.sta1, "STA1", 7, **frame_args))
        honest.send(signed_data(keys.sta2, "STA2", 101, site="HONES"))
        ack = honest.acknack_covering(101)
        assert (ack.lowest, ack.highest, ack.gaps) == (100, 101, ())
        assert appended.samples.get("HONES") == 800  # both archived before the acknack covered them

        _, station, seq, text, quarantined = wait_for_rejection(tmp_path, "STA1")
        assert (station, seq) == ("STA1", 7) and text.startswith(f"{kind}:") and reason in text, text
        assert quarantined is not None and len(quarantined) > 0
        attacker.send(signed_data(keys.sta1, "STA1", 8, site="STA1A"))  # its own honest data still goes
        ack = attacker.acknack_covering(8)
        assert (ack.lowest, ack.highest) == (8, 8)
        assert FrameType.ALERT not in _types(honest)  # the honest session was never disturbed
    finally:
        run.stop()
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    archived = [f for f in files if f.startswith("sds/")]
    assert all(_LAYOUT.fullmatch(f) for f in archived), archived
    ims2_files = [f for f in files if f.startswith("ims2/")]
    assert all(f.startswith("ims2/index.sqlite") for f in ims2_files), ims2_files  # no message came
    stationxml = [f for f in files if f.startswith("stationxml/")]
    assert all(re.fullmatch(r"stationxml/XX\.[A-Z0-9]{1,5}\.xml", f) for f in stationxml), stationxml
    stores = {f"{name}.sqlite{suffix}" for name in ("commands", "metadata", "metrics", "quarantine")
              for suffix in ("", "-wal", "-shm")}
    assert {f.split("/")[0] for f in files} <= {"sds", "raw", "ims2", "stationxml"} | stores, files
    assert not Path("/tmp", f"{UNUSED_CHANNEL}.D").exists()  # where the absolute site pointed
    (honest_day,) = [tmp_path / f for f in archived if "/HONES/" in f]
    trace = read(str(honest_day)).merge(method=-1)
    assert len(trace) == 1  # only STA2's two frames, nothing of STA1's
    np.testing.assert_array_equal(trace[0].data, np.concatenate([samples_for(100), samples_for(101)]))
    (own_day,) = [tmp_path / f for f in archived if "/STA1A/" in f]
    np.testing.assert_array_equal(read(str(own_day))[0].data, samples_for(8))


def _types(station) -> list[FrameType]:
    kinds = []
    while (frame := station.recv(0.05)) is not None:
        kinds.append(frame.header.frame_type)
    return kinds
