"""The ids that tie a sample's messages together, checked against the real MIX58 files (fixtures/phd)."""

from __future__ import annotations

from gci_link.ims2.fields import Where, to_time
from station.radionuclide.ids import format_msg_id, measurement_id, msg_id_ms, srid, to_tenth


def t(text: str) -> int:
    date, time = text.split()
    return to_time(date, time, Where("test", 0), "time")


def test_srid_follows_the_real_files():
    # SAMPLE-FULL-20211203070613605.PHD: collection from 2021/12/02 01:00:25.0, SRID 58202112020111X
    assert srid("58", t("2021/12/02 01:00:25.0"), "11", "X") == "58202112020111X"
    # the particulate SRID of the spec sheet's S2: 74200812230011 (no letter)
    assert srid("74", t("2008/12/23 00:00:00.0"), "11") == "74200812230011"


def test_measurement_id_is_detector_and_acquisition_start_in_tenths():
    assert measurement_id("MIX58_222", t("2021/12/02 17:00:54.4")) == "MIX58_222-2021/12/02-17:00:54.4"
    assert measurement_id("D", t("2021/12/02 17:00:54.46")) == "D-2021/12/02-17:00:54.4"
    assert to_tenth(t("2021/12/02 17:00:54.49")) == t("2021/12/02 17:00:54.4")


def test_msg_ids_increase_even_within_one_millisecond():
    first = msg_id_ms(t("2021/12/03 07:06:13.605"), None)
    assert format_msg_id(first) == "20211203070613605"  # the MIX58 sample's MSG_ID
    second = msg_id_ms(t("2021/12/03 07:06:13.605"), first)
    assert second == first + 1
    assert msg_id_ms(t("2021/12/03 07:06:13.000"), second) == second + 1  # a clock stepping back too
