"""Status blocks to Status records (DM24 manual line forms, libgcf2 CD layout) and the dump command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import obspy

from digitizer.gcf import GcfBlock, decode_block, encode_block
from digitizer.gcf_status import parse_cd_status, parse_status_text, status_from_block
from station import ims
from timeunits import NS_PER_S

T0 = 1_137_596_175 * NS_PER_S
HEARTBEAT = (
    "2006 1 18 14:56:15 1 MicroSeconds Fast Freq error 0 e-9 Auto 3D [-4]\r\n"
    "PLPGG SBHY00 CMG-3T\r\n"
    "Boot Log : 143 Power cycles 294 Watchdog resets\r\n"
    "2006 1 18 14:56:15 External supply : 13.0V Temperature 24.68'C\r\n"
    "2006 1 18 14:56:15 Mass positions -486 -300 -424\r\n"
    "2006 9 4 13:13:00 Lat= \"51'21.6526N\" Long=\"001'09.8148W\"\r\n"
)


def _through_the_codec(text: str) -> GcfBlock:
    return decode_block(encode_block(GcfBlock("PLPGG", "SBHY00", T0, 0.0, status_text=text)))


def test_text_heartbeat() -> None:
    status = status_from_block(_through_the_codec(HEARTBEAT))
    assert status.system_id == "PLPGG" and status.time_ns == T0
    assert (status.gps_locked, status.gps_fix, status.clock_offset_ns) == (True, "3D", 1000)
    assert status.last_gps_sync_ns == T0
    assert (status.supply_volts, status.temperature_c) == (13.0, 24.68)
    assert status.extra["mass_positions_raw"] == "-486 -300 -424"
    assert (status.extra["power_cycles"], status.extra["watchdog_resets"]) == ("143", "294")
    assert status.extra["latitude"] == "51'21.6526N" and status.text.startswith("2006 1 18")


def test_slow_clock_settling_and_osd_lines() -> None:
    slow = status_from_block(_through_the_codec(
        "2005 8 10 12:41:01 326 MicroSeconds Slow Freq error -7 e-9 Auto 3-D [-4]\n"))
    assert (slow.clock_offset_ns, slow.gps_fix, slow.extra["frequency_error_e9"]) == (-326_000, "3D", "-7")
    settling = status_from_block(_through_the_codec(
        "2005 8 10 12:36:00 GPS Control settling Auto 3-D [-5 Not sync'd]\n"))
    assert settling.gps_locked is False and settling.clock_offset_ns is None
    osd = status_from_block(_through_the_codec('2006 9 4 13:13:00 o/s= 340 drift= 0 pwm= 8382 Fix= "2D"'))
    assert osd.gps_fix == "2D" and osd.extra["gps_offset_units"] == "340" and osd.gps_locked is None


def test_unrecognised_text_keeps_only_the_text() -> None:
    status = status_from_block(_through_the_codec("firmware 123 says hello\r\n"))
    assert status.text == "firmware 123 says hello\r\n" and status.gps_locked is None and not status.extra


def test_cd_status_block() -> None:
    body = b"3A\xff\xff" + (-4).to_bytes(4, "little", signed=True) + (1000).to_bytes(3, "little") \
        + bytes([0b1001]) + bytes(4)
    block = decode_block(encode_block(GcfBlock("CD24", "ABCDCD", T0, 0.0, status_bytes=body)))
    status = status_from_block(block)
    assert (status.gps_locked, status.gps_fix, status.clock_offset_ns) == (True, "3D", -2000)
    assert status.calibration_active and status.extra["flags"] == "locking,cal_z"
    assert status.extra["busy_counter"] == "1000" and status.extra["gps_mode"] == "A"
    idle = parse_cd_status("X", 0, b"1M\x00\x00" + bytes(12))
    assert (idle.gps_locked, idle.gps_fix, idle.calibration_active) == (False, "none", False)


def test_data_and_unknown_status_blocks_give_no_status() -> None:
    data = GcfBlock("A", "ABCDZ0", T0, 1.0, 4, np.zeros(4, np.int32))
    assert status_from_block(decode_block(encode_block(data))) is None
    pipe = GcfBlock("A", "ABCDBP", T0, 0.0, status_bytes=b"\x01\x02\x03\x04")
    assert status_from_block(decode_block(encode_block(pipe))) is None


def test_ims_gcf_dump(tmp_path: Path, capsys) -> None:
    real = Path(obspy.__file__).parent / "io" / "gcf" / "tests" / "data" / "20160603_1955n.gcf"
    status = encode_block(GcfBlock("PLPGG", "SBHY00", T0, 0.0, status_text="GPS switched Off\r\n"), pad=True)
    broken = bytearray(real.read_bytes()[:1024])
    broken[14] = 3  # compression code 3
    path = tmp_path / "mixed.gcf"
    path.write_bytes(real.read_bytes() + status + bytes(broken))
    assert ims.main(["gcf", "dump", str(path), "--samples"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[1].startswith("       0 6281/6018N4 2016-06-03T19:55:00.000000Z 100 sps 200 samples 32-bit")
    assert out[2].split()[:3] == ["-49378", "-49213", "-49273"]
    assert any("text status" in line for line in out) and "         | GPS switched Off" in out
    assert out[-1] == ("    3072 ERROR at offset 3086: stream 6018N4 block 2016-06-03T19:55:00Z: "
                       "compression code 3 is not 1, 2 or 4 (field compression, offset 14)")


def test_a_clock_line_whose_stamp_is_no_real_date_is_survived():
    # matches the status pattern, but month 19 does not exist (seen as a crash in review)
    text = "2006 19 4 12:00:00  12 MicroSeconds Fast\r\n"
    status = parse_status_text("SYS", 0, text)
    assert status.last_gps_sync_ns is None
    assert status.clock_offset_ns == 12_000  # the rest of the line is still read
