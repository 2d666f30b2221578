"""The SeedLink protocol core without sockets: commands in, replies and packets out, for protocol 3
and 4; resume positions, 24-bit sequence numbers, dial-up and time-window ends, INFO documents, and
every refusal bounded and named."""

from __future__ import annotations

import io
import json
import struct
import xml.etree.ElementTree as ET

import obspy
import pytest

from idc.seedlink.info import Identity
from idc.seedlink.protocol import FramedRecord, Limits, Phase, Session
from idc.seedlink.record import RECORD_LENGTH
from idc.seedlink.ring import Ring, RingRecord, StreamSummary
from tests.idc.seedlink.conftest import T0, records, walk
from timeunits import NS_PER_S

CHANNELS = [("STA1", "BHZ"), ("STA1", "BHN"), ("STA2", "BHZ"), ("STA3", "HHZ")]
IDENTITY = Identity("IMS-IDC test", "Test IDC", T0)
NOW = T0 + 100 * NS_PER_S  # "now" in the session calls: after the data in the ring


@pytest.fixture
def filled(ring: Ring) -> Ring:
    """Four channels, each 60 s at 40 sps from T0, appended 10 s at a time as a receiver would."""
    for k in range(6):
        entries = []
        for i, (sta, cha) in enumerate(CHANNELS):
            start = T0 + k * 10 * NS_PER_S
            entries.append(
                ("XX", sta, "00", cha, records("XX", sta, "00", cha, start, walk(10 * k + i, 400)))
            )
        ring.append_batch(entries)
    return ring


def session(ring, protocol: int = 3, limits=None) -> Session:
    s = Session(ring, IDENTITY, limits, peer="test")
    if protocol == 4:
        assert s.feed(b"SLPROTO 4.0\r\n", NOW) == b"OK\r\n"
    return s


def pump(s: Session, ring: Ring) -> bytes:
    """What an adapter would do: hand the session everything from its cursor, then say it caught up."""
    batch = ring.read(s.cursor, 10_000)
    out = s.stream([FramedRecord(r) for r in batch.records], batch.next_seq)
    return out + s.caught_up(NOW)


def v3_packets(data: bytes) -> list[tuple[int, RingRecord | None, bytes]]:
    """(24-bit sequence number, -, record) of each SL packet."""
    assert len(data) % (8 + RECORD_LENGTH) == 0, len(data)
    out = []
    for at in range(0, len(data), 8 + RECORD_LENGTH):
        assert data[at : at + 2] == b"SL"
        out.append((int(data[at + 2 : at + 8], 16), None, data[at + 8 : at + 8 + RECORD_LENGTH]))
    return out


def ids(ring: Ring, packets) -> list[str]:
    by_record = {r.record: f"{r.station}.{r.channel}" for r in ring.read_from(0)}
    return sorted({by_record[p[2]] for p in packets})


def test_hello_names_both_protocols_and_the_organisation(filled):
    first, second, rest = session(filled).feed(b"HELLO\r\n", NOW).split(b"\r\n")
    assert first.startswith(b"SeedLink v4.0 (IMS-IDC test) :: ") and b"SLPROTO:3.1" in first
    assert b"SLPROTO:4.0" in first and second == b"Test IDC" and rest == b""


def test_v3_multi_station_with_selectors_sends_only_what_was_asked(filled):
    s = session(filled)
    replies = s.feed(b"STATION  STA1 XX\r\nSELECT 00BHZ\r\nDATA 1\r\nSTATION STA3 XX\r\nSELECT !HH?\r\n", NOW)
    assert replies == b"OK\r\n" * 5
    assert (
        s.feed(b"SELECT BH?.D\r\nFETCH 1\nSTATION STA2\rTIME 2023,11,14,22,13,20\r\nEND\r\n", NOW)
        == b"OK\r\n" * 4
    )
    assert s.phase is Phase.STREAMING and s.cursor == 1
    out = pump(s, filled)
    assert out.endswith(b"END")  # a FETCH makes the connection dial-up
    packets = v3_packets(out[:-3])
    assert ids(filled, packets) == ["STA1.BHZ", "STA2.BHZ"]  # STA3 HHZ is excluded by !HH?
    assert [p[0] for p in packets] == sorted(p[0] for p in packets)
    held = {r.seq: r.record for r in filled.read_from(0)}
    assert all(held[seq] == rec for seq, _, rec in packets)
    assert s.phase is Phase.ENDED and s.feed(b"INFO ID\r\nHELLO\r\n", NOW) == b""


def test_v3_all_station_mode_starts_at_data_without_a_reply(filled):
    s = session(filled)
    assert s.feed(b"SELECT HHZ\r\n", NOW) == b"OK\r\n"
    assert s.feed(b"DATA\r\n", NOW) == b"" and s.phase is Phase.STREAMING
    assert s.cursor == filled.next_seq and pump(s, filled) == b""  # real time: only what comes next
    filled.append(
        "XX", "STA3", "00", "HHZ", records("XX", "STA3", "00", "HHZ", T0 + 60 * NS_PER_S, walk(9, 400))
    )
    filled.append(
        "XX", "STA1", "00", "BHZ", records("XX", "STA1", "00", "BHZ", T0 + 60 * NS_PER_S, walk(8, 400))
    )
    assert ids(filled, v3_packets(pump(s, filled))) == ["STA3.HHZ"]


def test_v4_packets_carry_the_station_id_and_64_bit_numbers(filled):
    s = session(filled, protocol=4)
    assert (
        s.feed(b"USERAGENT test/1.0\r\nSTATION XX_STA?\rSELECT 00_B_H_?.2D\rSELECT !*_?_?_Z\rDATA 5\r", NOW)
        == b"OK\r\n" * 5
    )
    assert s.feed(b"ENDFETCH\r", NOW) == b"" and s.phase is Phase.STREAMING
    out = pump(s, filled)
    assert out.endswith(b"END")
    out, at, got = out[:-3], 0, []
    while at < len(out):
        sig, fmt, sub, length, seq, sidlen = struct.unpack_from("<2sccIQB", out, at)
        assert (sig, fmt, sub, length) == (b"SE", b"2", b"D", RECORD_LENGTH)
        sid = out[at + 17 : at + 17 + sidlen].decode()
        got.append((seq, sid, out[at + 17 + sidlen : at + 17 + sidlen + length]))
        at += 17 + sidlen + length
    held = {r.seq: r for r in filled.read_from(0)}
    want = [r for r in held.values() if r.seq >= 5 and r.channel == "BHN"]
    assert [(seq, sid, rec) for seq, sid, rec in got] == [(r.seq, f"XX_{r.station}", r.record) for r in want]


def test_each_station_resumes_from_its_own_number_without_gap(filled):
    held = list(filled.read_from(0))
    s1 = max(r.seq for r in held if r.station == "STA1") - 3  # STA1's client has all but its last 3
    s2 = max(r.seq for r in held if r.station == "STA2") - 10
    s = session(filled)
    s.feed(f"STATION STA1 XX\r\nFETCH {s1:06X}\r\nSTATION STA2 XX\r\nFETCH {s2:x}\r\nEND\r\n".encode(), NOW)
    packets = v3_packets(pump(s, filled)[:-3])
    by_seq = {r.seq: r for r in held}
    assert [seq for seq, *_ in packets if by_seq[seq].station == "STA1"] == [
        r.seq for r in held if r.station == "STA1" and r.seq >= s1
    ]
    assert [seq for seq, *_ in packets if by_seq[seq].station == "STA2"] == [
        r.seq for r in held if r.station == "STA2" and r.seq >= s2
    ]


class BigRing:
    """A ring view whose counter has passed 2**25: protocol 3 numbers are its low 24 bits."""

    next_seq = 0x2_000_010
    oldest_seq = 0x1_F00_000

    def first_seq_ending_after(self, time_ns: int) -> int:
        return self.oldest_seq

    def start_of(self, seq: int) -> int | None:
        return None

    def streams(self) -> list[StreamSummary]:
        return []


@pytest.mark.parametrize(
    ("sent", "start"),
    [
        ("000005", 0x2_000_005),  # the newest number with these low 24 bits
        ("000010", 0x2_000_010),  # the next one to come: the client had everything
        ("FFFFFF", 0x1_FFF_FFF),
        ("0x1000000", 0x2_000_000),  # ObsPy's hex(0xFFFFFF + 1)
        ("F00000", 0x1_F00_000),
        ("E00000", 0x1_F00_000),  # older than the ring: from the oldest held
        ("2000011", 0x1_F00_000),  # a 64-bit number beyond the head: from the oldest held
    ],
)
def test_protocol_3_numbers_are_the_low_24_bits_of_the_ring_counter(sent, start):
    s = session(BigRing())
    s.feed(f"STATION STA XX\r\nDATA {sent}\r\nEND\r\n".encode(), NOW)
    assert s.cursor == start


def test_a_resume_time_that_does_not_match_resumes_by_time(filled):
    """libslink sends the start of the client's last record with the number: a ring that was replaced
    (numbers that mean other records) is detected and the client resumes by time instead."""
    held = list(filled.read_from(0))
    last = held[9]
    stamp = obspy.UTCDateTime(ns=last.start_ns).format_seedlink()
    s = session(filled)
    s.feed(f"STATION STA1 XX\r\nDATA {last.seq + 1:06X} {stamp}\r\nEND\r\n".encode(), NOW)
    assert s.cursor == last.seq + 1
    wrong = obspy.UTCDateTime(ns=last.start_ns + 25 * NS_PER_S).format_seedlink()
    s = session(filled)
    s.feed(f"STATION STA1 XX\r\nDATA {last.seq + 1:06X} {wrong}\r\nEND\r\n".encode(), NOW)
    assert s.cursor == filled.first_seq_ending_after(last.start_ns + 25 * NS_PER_S)


def test_a_time_window_sends_overlapping_records_and_ends(filled):
    begin, end = T0 + 22 * NS_PER_S, T0 + 37 * NS_PER_S
    s = session(filled)
    s.feed(b"STATION STA1 XX\r\nSELECT BHZ\r\nTIME 2023,11,14,22,13,42 2023,11,14,22,13,57\r\nEND\r\n", NOW)
    out = pump(s, filled)
    assert out.endswith(b"END")
    held = {r.record: r for r in filled.read_from(0)}
    sent = [held[p[2]] for p in v3_packets(out[:-3])]
    want = [r for r in held.values() if r.station == "STA1" and r.channel == "BHZ" and r.end_ns > begin]
    assert sent == [r for r in want if r.start_ns < end]


def test_a_window_no_later_data_closes_ends_after_the_grace_period(filled):
    s = session(filled, limits=Limits(window_grace_s=60))
    s.feed(
        b"STATION STA1 XX\r\nTIME 2023,11,14,22,13,50 2023,11,14,22,16,00\r\nEND\r\n", NOW
    )  # to T0 + 160 s
    assert not pump(s, filled).endswith(b"END")
    assert s.caught_up(T0 + 220 * NS_PER_S) == b""
    assert s.caught_up(T0 + 221 * NS_PER_S) == b"END"


def test_protocol_4_time_window_on_data(filled):
    s = session(filled, protocol=4)
    s.feed(b"STATION XX_STA2\rDATA ALL 2023-11-14T22:13:50Z 2023-11-14T22:14:00.5Z\rEND\r", NOW)
    out = pump(s, filled)
    assert out.endswith(b"END")
    sent = out.count(b"SE2D")
    assert sent == sum(
        1
        for r in filled.read_from(0)
        if r.station == "STA2" and r.end_ns > T0 + 30 * NS_PER_S and r.start_ns < T0 + 40_500_000_000
    )


def test_batch_mode_answers_nothing_but_the_batch_command(filled):
    s = session(filled)
    assert s.feed(b"BATCH\r\n", NOW) == b"OK\r\n"
    assert s.feed(b"STATION STA1 XX\r\nSELECT BHZ\r\nSELECT nonsense!\r\nDATA\r\nEND\r\n", NOW) == b""
    assert s.phase is Phase.STREAMING and s.errors == 1


def test_refusals_are_named_and_bounded(filled):
    s = session(filled)
    assert s.feed(b"FROB\r\n", NOW) == b"ERROR\r\n"  # protocol 3 without EXTREPLY: the bare word
    assert s.feed(b"CAPABILITIES EXTREPLY\r\n", NOW) == b"OK\r\n"
    assert s.feed(b"FROB now\r\n", NOW) == b"ERROR\rUNSUPPORTED unknown command FROB\r\n"
    assert s.feed(b"STATION a/b XX\r\n", NOW).startswith(b"ERROR\rARGUMENTS station 'a/b'")
    assert s.feed(b"SELECT 0BHZZ.X\r\n", NOW).startswith(b"ERROR\rARGUMENTS selector '0BHZZ.X'")
    assert s.feed(b"TIME 2023,13,01,00,00,00\r\n", NOW).startswith(
        b"ERROR\rARGUMENTS time '2023,13,01,00,00,00'"
    )
    assert s.feed(b"DATA zz\r\n", NOW).startswith(b"ERROR\rARGUMENTS sequence number zz is not hexadecimal")
    assert s.feed("STATION STÄ\r\n".encode(), NOW) == b"ERROR\rARGUMENTS command is not ASCII\r\n"
    assert s.feed(b"GET / HTTP/1.1\r\n", NOW).startswith(b"ERROR\rUNSUPPORTED this port speaks SeedLink")
    events = s.take_events()  # for the adapter's log, each with the peer, command, code and reason
    assert [e.message for e in events] == ["command refused"] * 8
    assert events[1].fields == {
        "peer": "test",
        "command": "FROB",
        "code": "UNSUPPORTED",
        "reason": "unknown command FROB",
    }
    assert s.take_events() == []
    assert s.feed(b"HELLO\r\n", NOW).startswith(b"SeedLink")  # still served after refusals


def test_overlong_lines_are_refused_once_and_the_stream_resynchronises(filled):
    s = session(filled, limits=Limits(max_line_bytes=64))
    assert s.feed(b"X" * 50, NOW) == b""
    assert s.feed(b"X" * 50, NOW) == b"ERROR\r\n"
    assert s.feed(b"Y" * 10_000, NOW) == b""  # the rest of the line is dropped without holding it
    assert s.feed(b"\r\nHELLO\r\n", NOW).startswith(b"SeedLink")
    assert s.errors == 1


def test_limits_on_stations_selectors_and_errors(filled):
    s = session(filled, protocol=4, limits=Limits(max_stations=3, max_selectors=2, max_errors=5))
    assert s.feed(b"STATION XX_A\rSELECT *_B_H_Z\rSELECT *_H_H_Z\r", NOW) == b"OK\r\n" * 3
    assert s.feed(b"SELECT *\r", NOW) == b"ERROR LIMIT more than 2 selectors for one station\r\n"
    assert s.feed(b"STATION XX_B\rSTATION XX_C\r", NOW) == b"OK\r\n" * 2
    assert s.feed(b"STATION XX_D\r", NOW) == b"ERROR LIMIT more than 3 stations\r\n"
    assert s.feed(b"FOO\rFOO\r", NOW) == b"ERROR UNSUPPORTED unknown command FOO\r\n" * 2
    assert s.feed(b"FOO\r", NOW).endswith(b"too many errors, closing\r\n")
    assert s.phase is Phase.CLOSED


def test_protocol_4_refuses_what_it_removed_and_what_comes_out_of_order(filled):
    s = session(filled, protocol=4)
    assert s.feed(b"DATA\r", NOW) == b"ERROR UNEXPECTED DATA before STATION\r\n"
    assert s.feed(b"TIME 2023,11,14,22,13,42\r", NOW).startswith(b"ERROR UNSUPPORTED unknown command TIME")
    assert (
        s.feed(b"STATION XX_STA1\rSELECT\r", NOW)
        == b"OK\r\nERROR ARGUMENTS SELECT needs a pattern in protocol 4\r\n"
    )
    assert (
        s.feed(b"SLPROTO 4.0\r", NOW) == b"ERROR UNEXPECTED SLPROTO must come before STATION and SELECT\r\n"
    )
    assert s.feed(b"DATA 12x\r", NOW) == b"ERROR ARGUMENTS sequence number 12x is not a decimal number\r\n"
    assert session(filled).feed(b"SLPROTO 5.0\r\n", NOW) == b"ERROR\r\n"


def _info_text(data: bytes) -> str:
    parts = []
    for at in range(0, len(data), 8 + RECORD_LENGTH):
        header = data[at : at + 8]
        assert header == (b"SLINFO  " if at + 8 + RECORD_LENGTH == len(data) else b"SLINFO *")
        [trace] = obspy.read(io.BytesIO(data[at + 8 : at + 8 + RECORD_LENGTH]))
        parts.append(trace.data.tobytes().decode())
    return "".join(parts)


def test_info_documents(filled):
    s = session(filled)
    streams = ET.fromstring(_info_text(s.feed(b"INFO STREAMS\r\n", NOW)))
    assert streams.get("organization") == "Test IDC"
    stations = {(st.get("network"), st.get("name")): st for st in streams.findall("station")}
    assert set(stations) == {("XX", "STA1"), ("XX", "STA2"), ("XX", "STA3")}
    assert {x.get("seedname") for x in stations["XX", "STA1"].findall("stream")} == {"BHZ", "BHN"}
    assert stations["XX", "STA1"].get("begin_seq") == "000001"
    caps = ET.fromstring(_info_text(s.feed(b"INFO CAPABILITIES\r\n", NOW)))
    assert {"dialup", "multistation", "window-extraction"} <= {
        c.get("name") for c in caps.findall("capability")
    }
    assert b"ERR" in s.feed(b"INFO GAPS\r\n", NOW)[8:40]  # an unknown level: the ID document in ERR records
    v4 = session(filled, protocol=4)
    packet = v4.feed(b"INFO STREAMS XX_STA1 *_B_H_Z\r", NOW)
    assert packet[:4] == b"SEJI"
    length = struct.unpack_from("<I", packet, 4)[0]
    doc = json.loads(packet[17 : 17 + length])
    [station] = doc["station"]
    assert station["id"] == "XX_STA1" and [x["id"] for x in station["stream"]] == ["00_B_H_Z"]
    assert v4.feed(b"INFO NOPE\r", NOW)[:4] == b"SEJE"


def test_info_and_bye_are_the_only_commands_taken_while_streaming(filled):
    s = session(filled)
    s.feed(b"STATION STA1 XX\r\nDATA\r\nEND\r\n", NOW)
    assert s.feed(b"STATION STA2 XX\r\nHELLO\r\n", NOW) == b""
    assert s.feed(b"INFO ID\r\n", NOW).startswith(b"SLINFO  ")
    assert s.feed(b"\xff\xfe\r\n" + b"X" * 600 + b"\r\n", NOW) == b""  # never an ERROR line among packets
    assert s.errors == 2
    s.feed(b"BYE\r\n", NOW)
    assert s.phase is Phase.CLOSED
