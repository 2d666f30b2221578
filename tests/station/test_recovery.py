"""Start-up scan of the outbox: how far each channel was framed, whatever else the outbox holds."""

from __future__ import annotations

import numpy as np

from gci_link.cd11 import (
    AlertBody,
    Frame,
    FrameHeader,
    FrameType,
    build_data_frame,
    build_subframe,
    encode_frame,
)
from gci_link.station_end.outbox import Outbox
from station.recovery import framed_until
from timeunits import NS_PER_S

T0 = 1_700_000_000 * NS_PER_S


def test_frames_that_are_not_data_are_skipped_not_fatal(tmp_path, caplog):
    samples = np.arange(400, dtype=np.int32)
    sub = build_subframe(samples, site="ABC1", channel="BHZ", time_ns=T0, sample_rate=40)
    data = encode_frame(build_data_frame([sub], creator="ABC1", sequence=1, nominal_time_ns=T0))
    alert = encode_frame(Frame(FrameHeader(FrameType.ALERT, "ABC1"), AlertBody(b"not data")))
    with Outbox(tmp_path / "outbox.db", 10**9) as box:
        box.append("data", T0, data)
        box.append("data", T0, alert)
        box.append("data", T0, b"not a frame at all")
        assert framed_until(box, "data") == {"ABC1.BHZ.": T0 + 10 * NS_PER_S}
    assert "is not a data frame" in caplog.text and "unreadable" in caplog.text
