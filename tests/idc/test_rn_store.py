"""IMS 2.0 messages over the GCI link into the IDC's radionuclide store: large ones, several at once, signed,
sequence-numbered, stored byte for byte and indexed; ``ims idc rn list`` and ``show``."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from fuzz.idc_receiver import HeldInMemory
from gci_link import ims2
from gci_link.cd11 import Frame, FrameHeader, FrameType, Ims2MessageBody, encode_frame
from gci_link.link_session import SessionConfig
from gci_link.station_end.outbox import Outbox
from gci_link.station_end.sender import Sender
from idc.actions import Peer
from idc.checker import FrameChecker
from idc.protocol import ReceiverProtocol
from idc.rn_store import RnIndex, RnStore
from idc.vocabulary import RejectionKind
from station.ims import main as ims
from station.publisher import publish_message
from tests.idc.conftest import Running, make_config
from timeunits import NS_PER_S

pytestmark = pytest.mark.timeout(60)
T0 = 1_700_000_000 * NS_PER_S


def sample(histogram_side: int, seed: int, srid: str = "01202311141111X") -> ims2.PhdMessage:
    """A beta-gamma SAMPLEPHD; a 600 x 600 histogram of six-digit counts makes it 2.5 MB of text."""
    rng = np.random.default_rng(seed)
    hist = rng.integers(100_000, 999_999, (histogram_side, histogram_side))
    singles = hist.sum(axis=1)
    return ims2.PhdMessage(
        data_type="SAMPLEPHD", msg_id=f"2023111422132{seed:04d}", msg_source="STA1", station="STA1",
        detector="STA1_001", system_type="B", sample_geometry="CYLINDER", spectrum_qualifier="FULL",
        srid=srid, sample_id="STA1_001-2023/11/14-10:00:00.0", gasbk_id="STA1_001-2023/11/14-09:00:00.0",
        transmit_ns=T0, collection_start_ns=T0 - 86400 * NS_PER_S, collection_stop_ns=T0 - 43200 * NS_PER_S,
        air_volume_m3=21.5, acquisition_start_ns=T0 - 36000 * NS_PER_S, real_time_s=36000.0,
        live_time_s=35900.0, xe_volume_ml=1.0, xe_volume_unc_ml=0.1, xe_yield=0.6, xe_yield_unc=0.05,
        g_spectrum=singles, g_energy_span_kev=720.0, b_spectrum=singles, b_energy_span_kev=550.0,
        histogram=hist, histogram_gamma_span_kev=720.0, histogram_beta_span_kev=550.0)


def alert(n: int) -> ims2.AlertMessage:
    return ims2.AlertMessage(
        data_type="ALERT_FLOW", msg_id=f"2023111422133{n:04d}", msg_source="STA1", station="STA1",
        detector="STA1_001", system_type="B", transmit_ns=T0, alert_ns=T0, category="FLOW", condition="LOW",
        state="RAISED", subject="SAMPLER", value=0.2, limit=0.5, unit="M3/H", text="flow under its limit")


def test_large_and_simultaneous_messages_are_stored_byte_for_byte_and_indexed(tmp_path, keys,
                                                                               capsysbinary):
    texts = [ims2.write(sample(600, 1)).encode(), ims2.write(alert(1)).encode(),
             ims2.write(sample(40, 2, "01202311141211X")).encode(), ims2.write(alert(2)).encode()]
    assert len(texts[0]) > 2_000_000
    outbox = Outbox(tmp_path / "outbox.sqlite", 1 << 30)
    seqs = [publish_message(outbox, f"ims2 test {i}", T0, text, creator="STA1", destination="0",
                            signer=keys.sta1) for i, text in enumerate(texts)]  # all in one frame slot
    config = make_config(tmp_path / "idc", keys.ca.trust_dir)
    run = Running(config, keys.ca.trust_store(), time.time_ns)
    try:
        sender = Sender(SessionConfig("STA1", (run.receiver.connection_endpoint,)), outbox, signer=keys.sta1,
                        poll_interval_s=0.02)
        assert sender.run_until_drained(30 * NS_PER_S)
    finally:
        run.stop()
    outbox.close()
    index = RnIndex(tmp_path / "idc" / "ims2")
    stored = index.find()
    assert [m.seq for m in stored] == seqs
    assert [index.text(m) for m in stored] == texts
    assert [m.data_type for m in stored] == ["SAMPLEPHD", "ALERT_FLOW", "SAMPLEPHD", "ALERT_FLOW"]
    assert stored[0].srid == "01202311141111X" and stored[0].qualifier == "FULL"
    assert stored[0].path.startswith("STA1/") and stored[0].path.endswith(f"/STA1-{seqs[0]}.msg")
    assert [m.id for m in index.find(srid="01202311141211X")] == [stored[2].id]
    index.close()
    idc_toml = tmp_path / "idc.toml"
    idc_toml.write_text(f"[idc]\nroot = 'idc'\ntrust_dir = '{keys.ca.trust_dir}'\n"
                        "connection_endpoint = 'tcp://127.0.0.1:1'\n")
    capsysbinary.readouterr()
    assert ims(["idc", "rn", "list", "--config", str(idc_toml), "--type", "alert_flow", "--json"]) == 0
    listed = [json.loads(line) for line in capsysbinary.readouterr().out.splitlines()]
    assert [m["seq"] for m in listed] == [seqs[1], seqs[3]]
    assert ims(["idc", "rn", "list", "--config", str(idc_toml), "--station", "STA1"]) == 0
    table = capsysbinary.readouterr().out.decode().splitlines()
    assert table[0].split()[:4] == ["ID", "STATION", "SEQ", "TYPE"] and len(table) == 5
    capsysbinary.readouterr()
    assert ims(["idc", "rn", "show", str(stored[0].id), "--raw", "--config", str(idc_toml)]) == 0
    assert capsysbinary.readouterr().out == texts[0]
    assert ims(["idc", "rn", "show", "999", "--config", str(idc_toml)]) == 1


def test_the_store_keeps_what_does_not_parse_and_a_resend_replaces_its_row(tmp_path):
    store = RnStore(tmp_path)
    store.write("STA1", 5, T0, b"BEGIN IMS2.0\nMSG_TYPE DATA\nno data type\n")
    store.write("STA1", 6, T0, ims2.write(alert(3)).encode())
    store.write("STA1", 6, T0 + 1, ims2.write(alert(3)).encode())  # resent after a crash before the ack
    store.close()
    index = RnIndex(tmp_path)
    broken, good = index.find()
    assert broken.data_type is None and broken.problem == "STOP, line 4: message ends without a STOP line"
    assert index.text(broken).endswith(b"no data type\n")
    assert (good.seq, good.received_ns, good.data_type, good.problem) == (6, T0 + 1, "ALERT_FLOW", None)
    (tmp_path / good.path).write_bytes(b"tampered")
    with pytest.raises(ValueError, match="SHA-256"):
        index.text(good)
    index.close()


def test_ims2_frames_have_their_own_size_limit(keys):
    config = make_config(Path("unused"), keys.ca.trust_dir, max_ims2_frame_bytes=3 * 2**20)
    core = ReceiverProtocol(config, FrameChecker(keys.ca.trust_store(), config.stations, workers=0).submit,
                            HeldInMemory())

    def frame(size: int) -> bytes:
        return encode_frame(Frame(FrameHeader(FrameType.IMS2_MESSAGE, "STA1"), Ims2MessageBody(b"x" * size)))

    fits = frame(2 * 2**20)
    assert len(fits) > config.max_frame_bytes and core.frame_to_check([fits]) == fits
    assert core.frame_to_check([frame(3 * 2**20)]) is None
    (reject,) = core.receive(Peer("socket", b"sta1"), [frame(3 * 2**20)], T0)
    assert reject.rejection.kind is RejectionKind.OVERSIZED
    data_sized = FrameType.DATA.to_bytes(4, "big") + bytes(config.max_frame_bytes)
    assert core.frame_to_check([data_sized]) is None
