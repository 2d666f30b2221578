"""The Güralp session's protocol rules, deterministic: bytes from the project's GCF encoder and BRP framing,
time moved by the test, no port, no thread, no sleep.

Ground truth is the exact samples the in-memory firmware made (``session_rig.Firmware``).
"""

from __future__ import annotations

import logging
from collections import deque

import numpy as np
import pytest

from digitizer import brp
from digitizer.base36 import from_base36
from digitizer.guralp_console import (
    ConsoleFailed,
    ConsoleOpened,
    ConsoleReply,
    ConsoleRequest,
    ConsoleState,
    StrayText,
    calibration_lines,
)
from digitizer.guralp_session import (
    BadBlock,
    GuralpSession,
    LineSilent,
    ResentBlockDropped,
    RewindAbandoned,
    RewindNarrowed,
    RewindRequested,
    SessionConfig,
    StreamGap,
    TimeSteppedBack,
)
from digitizer.packet import Packet, Status
from hil.faults import LineFaults
from station.acquisition import ChannelBuffer
from tests.digitizer.session_rig import CONFIG, STEP_NS, T0_NS, Firmware, SessionRig, session_config
from timeunits import NS_PER_S

DEEPEST = brp.DEFAULT_DEPTH - 1 - CONFIG["rewind_margin"]  # 230 blocks back


def at_second(s: int) -> int:
    return T0_NS + s * NS_PER_S


def acked(rig: SessionRig) -> list[int]:
    """7-bit sequences of the ACKs the session wrote, in order."""
    return [m.seq7 for data in rig.written for m in brp.parse_pc_bytes(data)
            if isinstance(m, brp.AckMessage) and m.seq7 is not None]


# -- a clean line ----------------------------------------------------------------------------------------


def test_every_block_is_acked_once_delivered_in_order_and_stamped_with_the_last_status_lock():
    rig = SessionRig(Firmware(status_every_s=4))
    rig.step(50)
    rig.fw.gps_locked = False
    rig.step(50)
    assert acked(rig) == [seq & 0x7F for seq in range(100)] and rig.naks_written() == []
    locked = None
    for item in rig.arrivals:  # each packet carries the lock of the status block that came before it
        if isinstance(item, Status):
            locked = item.gps_locked
        else:
            assert isinstance(item, Packet) and item.clock_locked is locked
    assert [s.gps_locked for s in rig.statuses][:2] == [True, True] and rig.statuses[-1].gps_locked is False
    for stream_id in rig.fw.stream_ids():
        assert rig.tiling(stream_id)[1] == 0
    counters = rig.session.counters
    assert counters.blocks == 100 and counters.packets + counters.statuses == 100
    assert (counters.gaps, counters.duplicates, counters.rewinds, counters.checksum_failures) == (0, 0, 0, 0)
    assert rig.events == []


# -- reconnects and rewinds ------------------------------------------------------------------------------


def test_a_short_outage_rewinds_to_the_next_expected_block_and_loses_nothing():
    rig = SessionRig()
    rig.step(40)
    rig.lose(20)  # frames 40-59 went out while the cable was pulled
    rig.reconnect()
    written = len(rig.written)
    rig.step()  # frame 60 arrives: looked at, not acknowledged
    assert rig.written[written:] == [brp.nak_bytes(from_base36("SIMDZ0"), 40)]  # frame 60 is a Z block
    assert rig.of(RewindRequested) == [RewindRequested(40, 20)]
    rig.run_until_caught_up()
    for stream_id in rig.fw.stream_ids():
        assert rig.tiling(stream_id)[1] == 0
    counters = rig.session.counters
    assert (counters.rewinds, counters.gaps, counters.duplicates) == (1, 0, 0)


def test_an_outage_longer_than_the_buffer_refetches_what_it_holds_and_reports_the_rest_as_exact_gaps():
    rig = SessionRig()
    rig.step(40)  # seconds 0-12 of Z, N, E, and Z of second 13
    rig.lose(400)
    rig.reconnect()
    rig.step()  # frame 440 (seq 184): the gap is too long for an exact rewind, so as deep as the buffer goes
    target = (440 - DEEPEST) % 256  # frame 210: Z of second 70
    assert rig.naks_written() == [target] and rig.of(RewindRequested) == [RewindRequested(target, DEEPEST)]
    rig.run_until_caught_up()
    assert rig.gaps == {
        "SIMDZ0": [StreamGap("SIM1", "SIMDZ0", at_second(14), at_second(70))],
        "SIMDN0": [StreamGap("SIM1", "SIMDN0", at_second(13), at_second(70))],
        "SIMDE0": [StreamGap("SIM1", "SIMDE0", at_second(13), at_second(70))],
    }
    assert [rig.tiling(s)[1] for s in rig.fw.stream_ids()] == [560, 570, 570]
    assert rig.session.counters.gaps == 3 and rig.session.counters.duplicates == 0


def test_a_replay_drops_exactly_the_blocks_already_handled_recognised_by_sequence_and_bytes():
    rig = SessionRig()
    rig.step(40)
    rig.lose(220)  # long enough that the session rewinds as deep as it can, into blocks it already has
    rig.reconnect()
    rig.run_until_caught_up()
    assert rig.naks_written() == [(260 - DEEPEST) % 256]  # frame 30
    assert [e.seq for e in rig.of(ResentBlockDropped)] == list(range(30, 40))
    for stream_id in rig.fw.stream_ids():
        assert rig.tiling(stream_id)[1] == 0
    counters = rig.session.counters
    assert (counters.duplicates, counters.gaps, counters.time_steps_back) == (10, 0, 0)


def test_a_store_and_forward_resend_older_than_expected_is_passed_over_and_the_next_block_asked_for():
    rig = SessionRig()
    rig.step(30)
    rig.reconnect()
    old = rig.fw.tx.rewind(27)  # the firmware's oldest unacknowledged blocks: 27, 28, 29 come first
    rig.feed(old[0])
    assert rig.naks_written() == [30] and rig.of(RewindRequested) == [RewindRequested(30, 253)]
    rig.feed(old[1] + old[2])  # sent before it read the NAK
    rig.run_until_caught_up()
    assert rig.naks_written() == [30] and not rig.of(ResentBlockDropped)
    for stream_id in rig.fw.stream_ids():
        assert rig.tiling(stream_id)[1] == 0
    assert rig.session.counters.duplicates == 0


@pytest.mark.parametrize("held_in_flash", [0, 400])
def test_a_new_session_refetches_what_a_killed_one_acked_but_never_passed_on(held_in_flash):
    fw = Firmware()
    first = SessionRig(fw)
    first.step(300)
    handed_on = {s: first.packets[s][:-7] for s in fw.stream_ids()}  # the rest died in the killed queue
    for _ in range(held_in_flash // 3):  # store and forward: made while no session listened
        fw.sample_second()
    second = SessionRig(fw, startup_rewind=True)
    second.step()
    assert second.naks_written() == [(300 - DEEPEST) % 256]
    second.run_until_caught_up()
    assert not second.gaps and not second.of(ResentBlockDropped)  # a new session has handled nothing
    for stream_id in fw.stream_ids():
        old, new = handed_on[stream_id], second.packets[stream_id]
        second.tiling(stream_id)
        assert new[0].start_ns <= old[-1].end_ns  # the two sessions together miss nothing
        assert len({p.start_ns for p in old} & {p.start_ns for p in new}) <= DEEPEST // 3 + 1


def test_without_startup_rewind_a_new_session_starts_with_the_first_block_it_sees():
    fw = Firmware()
    rig = SessionRig(fw)
    rig.lose(30)
    rig.step(10)
    assert rig.naks_written() == [] and acked(rig) == list(range(30, 40))


def test_a_firmware_that_ignores_a_nak_outside_its_buffer_is_asked_less_deep_until_it_answers():
    rig = SessionRig(startup_rewind=True, rewind_timeout_ns=100 * NS_PER_S)  # only skipped frames count
    rig.lose(40)  # the firmware holds frames 0-39 only
    rig.step(60)
    assert rig.naks_written() == [(40 - DEEPEST) % 256, (40 - 57) % 256, 40 - 14]
    assert rig.of(RewindNarrowed) == [RewindNarrowed(239, 57), RewindNarrowed(26, 14)]
    assert rig.fw.ignored_naks == 2
    rig.run_until_caught_up()
    assert [p.sequence for p in rig.arrivals[:3]] == [26, 27, 28]  # from the block it did hold
    for stream_id in rig.fw.stream_ids():
        assert rig.tiling(stream_id)[1] == 0


def test_an_unanswered_rewind_is_repeated_once_per_depth_then_abandoned_on_time():
    rig = SessionRig(Firmware(honour_naks=False), startup_rewind=True, watchdog_ns=100 * NS_PER_S)
    rig.feed(rig.fw.next_frame())  # frame 0, then silence
    for _ in range(8):
        rig.advance(CONFIG["rewind_timeout_ns"])
    assert rig.naks_written() == [26, 26, 199, 199, 242, 242, 0, 0]  # 230, 57, 14, 0 blocks back
    assert rig.of(RewindAbandoned) == [RewindAbandoned(0)]
    rig.step(5)
    assert acked(rig) == [1, 2, 3, 4, 5]  # blocks are taken as they come


def test_a_rewind_given_up_while_frames_stream_on_keeps_the_frame_in_hand():
    rig = SessionRig(Firmware(honour_naks=False), startup_rewind=True, rewind_timeout_ns=100 * NS_PER_S)
    rig.lose(40)
    for _ in range(200):
        rig.step()
        if rig.of(RewindAbandoned):
            break
    assert rig.of(RewindAbandoned) == [RewindAbandoned(40)]
    in_hand = (rig.fw.tx.next_seq - 1) % 256
    rig.step(30)
    assert rig.naks_written() == [66, 239, 26, 40]
    assert rig.arrivals[0].sequence == in_hand and acked(rig)[0] == in_hand & 0x7F


# -- re-sends, gaps and clock steps ----------------------------------------------------------------------


def test_blocks_repeated_after_missed_acks_are_dropped_by_brp_and_acked_again():
    rig = SessionRig()
    rig.step(30)
    rig.fw.resend = deque(rig.fw.tx.rewind(27))  # the ACKs of 27-29 were lost: the firmware repeats them
    rig.step(3)
    rig.step(30)
    assert acked(rig)[:36] == list(range(30)) + [27, 28, 29] + [30, 31, 32]
    assert rig.session.counters.duplicates == 3 and not rig.of(ResentBlockDropped)
    for stream_id in rig.fw.stream_ids():
        assert rig.tiling(stream_id)[1] == 0


def test_a_block_brp_gave_up_on_becomes_an_exact_gap_and_is_delivered_if_a_replay_brings_it():
    rig = SessionRig(Firmware(honour_naks=False))
    rig.step(30)
    rig.lose(1)  # frame 30, Z of second 10, never arrives, and the firmware does not honour NAKs
    rig.step(2)
    for _ in range(CONFIG["max_naks"]):
        rig.advance(CONFIG["nak_timeout_ns"])
    assert rig.naks_written() == [30] * CONFIG["max_naks"]
    assert rig.of(brp.GapGivenUp) == [brp.GapGivenUp((30,), "no answer to 13 NAKs")]
    rig.step()  # Z of second 11
    assert rig.gaps == {"SIMDZ0": [StreamGap("SIM1", "SIMDZ0", at_second(10), at_second(11))]}
    rig.fw.honour_naks = True
    rig.lose(220)
    rig.reconnect()
    rig.run_until_caught_up()  # the deep rewind replays 24-33: 30 is new to the session, the rest are not
    assert [e.seq for e in rig.of(ResentBlockDropped)] == [24, 25, 26, 27, 28, 29, 31, 32, 33]
    z = [p.start_ns for p in rig.packets["SIMDZ0"]]  # second 10 came once, after second 11
    assert z.count(at_second(10)) == 1 and z.index(at_second(10)) > z.index(at_second(11))
    for stream_id in ("SIMDN0", "SIMDE0"):
        assert rig.tiling(stream_id)[1] == 0
    counters = rig.session.counters
    assert counters.unrecoverable_brp_gaps == 1 and counters.gaps == 1


def test_a_backward_clock_step_delivers_new_blocks_in_arrival_order_for_the_acquisition_tear():
    rig = SessionRig(Firmware(status_every_s=2))
    rig.step(32)
    rig.fw.step_clock(-5)  # GPS re-lock: the clock had run 5 s fast
    rig.step(40)
    counters = rig.session.counters
    assert counters.duplicates == 0 and counters.gaps == 0
    assert counters.time_steps_back == 3  # each stream's first block after the step
    assert {(e.stream_id, e.start_ns - e.expected_ns) for e in rig.of(TimeSteppedBack)} == {
        (s, -5 * NS_PER_S) for s in rig.fw.stream_ids()}
    for stream_id in rig.fw.stream_ids():
        got, made = rig.packets[stream_id], rig.fw.truth[stream_id]
        in_arrival_order = [(p.start_ns, p.samples.tolist()) for p in got]
        assert in_arrival_order == [(t, x.tolist()) for t, x in made[:len(got)]]  # = making order
        assert len(got) >= len(made) - 1
    times = [s.time_ns for s in rig.statuses]
    assert any(b < a for a, b in zip(times, times[1:], strict=False))  # statuses after the step came too
    # what the acquisition makes of it: a time tear, every sample kept, nothing taken for a duplicate
    got = rig.packets["SIMDZ0"]
    channel = ChannelBuffer("SIMDZ0")
    channel.ingest(got[0])
    channel.end_start_hold()
    for packet in got[1:]:
        channel.ingest(packet)
    channel.flush()
    assert channel.stats.time_tears == 1 and channel.stats.gaps == 0
    assert channel.stats.samples == sum(p.nsamp for p in got) and channel.stats.duplicate_samples == 0


def test_a_replay_across_a_backward_clock_step_is_told_apart_by_identity_not_by_time():
    rig = SessionRig()
    rig.step(30)
    rig.fw.step_clock(-5)
    rig.step(9)  # frames 30-38 carry seconds 5-7 again
    assert rig.session.counters.time_steps_back == 3
    rig.lose(220)
    rig.reconnect()
    rig.run_until_caught_up()  # the deep rewind replays 29-38, from both sides of the step
    assert [e.seq for e in rig.of(ResentBlockDropped)] == list(range(29, 39))
    counters = rig.session.counters
    assert (counters.time_steps_back, counters.gaps, counters.duplicates) == (3, 0, 10)
    for stream_id in rig.fw.stream_ids():
        got, made = rig.packets[stream_id], rig.fw.truth[stream_id]
        assert [p.start_ns for p in got] == [t for t, _ in made]  # each block once, in making order


# -- damaged bytes ---------------------------------------------------------------------------------------


def test_garbage_between_frames_is_skipped_counted_and_its_text_reported():
    rig = SessionRig()
    rig.step(10)
    rig.feed(bytes(range(256)) + b"G\x00\x00\x10" + b"GPS noise\r\n")
    rig.step(20)
    # 156 bytes of range(256) are not text; the false header claims 22 bytes, so its 15 are skipped too
    assert rig.of(brp.Resync) == [brp.Resync(171, rig.of(brp.Resync)[0].offset)]
    assert b"".join(e.text for e in rig.of(StrayText)) == bytes(b for b in range(256) if b in (
        9, 10, 13, 0x1B, 0x11) or 0x20 <= b <= 0x7E)
    failed = rig.of(brp.ChecksumFailed)
    assert len(failed) == 1 and failed[0].seq == 0 and not failed[0].nak_sent  # expected was 10
    for stream_id in rig.fw.stream_ids():
        assert rig.tiling(stream_id)[1] == 0
    assert rig.session.counters.resyncs == 1 and rig.session.counters.checksum_failures == 1


@pytest.mark.parametrize("damage", ["flipped byte", "truncated"])
def test_a_damaged_frame_of_the_expected_block_is_naked_at_once_and_delivered_once(damage):
    rig = SessionRig()
    rig.step(10)
    frame = bytearray(rig.fw.next_frame())  # frame 10
    if damage == "flipped byte":
        frame[30] ^= 0x04
    else:
        frame = frame[: len(frame) // 2]  # a mid-frame reset: the next frame completes its claimed size
    rig.advance(STEP_NS)
    rig.feed(bytes(frame))
    rig.step(20)
    assert rig.naks_written() == [10]
    assert [(e.seq, e.nak_sent) for e in rig.of(brp.ChecksumFailed)] == [(10, True)]
    assert acked(rig).count(10) == 1
    for stream_id in rig.fw.stream_ids():
        assert rig.tiling(stream_id)[1] == 0


def test_bad_integration_constants_drop_the_block_and_report_its_exact_span_as_a_gap():
    rig = SessionRig()
    rig.step(9)
    for at in (19, -1):  # the FIC's last byte, the RIC's last byte; the BRP checksum is made afterwards
        if not rig.fw.flash:
            rig.fw.sample_second()
        data = bytearray(rig.fw.flash.popleft())
        data[at] ^= 0x01
        rig.advance(STEP_NS)
        rig.feed(rig.fw.tx.frame(bytes(data))[1])
    rig.step(10)
    assert [(e.seq, e.field) for e in rig.of(BadBlock)] == [(9, "RIC"), (10, "RIC")]
    assert rig.gaps == {"SIMDZ0": [StreamGap("SIM1", "SIMDZ0", at_second(3), at_second(4))],
                        "SIMDN0": [StreamGap("SIM1", "SIMDN0", at_second(3), at_second(4))]}
    for stream_id in rig.fw.stream_ids():
        rig.tiling(stream_id)
    assert rig.session.counters.ric_mismatches == 2 and rig.session.counters.gaps == 2


def test_connecting_in_the_middle_of_a_frame_skips_its_tail_and_refetches_it():
    rig = SessionRig()
    rig.step(10)
    rig.reconnect()
    rig.advance(STEP_NS)
    rig.feed(rig.fw.next_frame()[9:])  # frame 10 without its header
    rig.run_until_caught_up()
    assert rig.naks_written() == [10] and rig.session.counters.resyncs == 1
    for stream_id in rig.fw.stream_ids():
        assert rig.tiling(stream_id)[1] == 0


def test_a_noisy_line_delivers_every_sample_once_in_order_and_the_session_never_logs(caplog):
    """BER 1e-4 and one byte in 10^4 lost, both ways. BRP's 16-bit byte sum lets about one damaged frame
    in a few hundred through at this rate: GCF's RIC catches most (the block is dropped and its exact span
    reported), and the rest are corrupted samples no check can see, tolerated only if provably so."""
    caplog.set_level(logging.DEBUG)
    noise = LineFaults(bit_error_rate=1e-4, drop_rate=1e-4)
    rig = SessionRig(Firmware({"Z0": 100, "N0": 100, "E0": 100, "M8": 1}, status_every_s=10), to_host=noise,
                     to_device=noise, seed=7)
    rig.step(1500)
    rig.run_until_caught_up()
    counters = rig.session.counters
    assert rig.to_host.bit_errors > 100 and rig.to_host.bytes_dropped > 10 and rig.to_device.bit_errors > 0
    assert counters.checksum_failures > 100 and counters.resyncs > 50 and counters.duplicates > 0
    assert counters.unrecoverable_brp_gaps == 0 and counters.time_steps_back == 0
    gcf_caught = counters.ric_mismatches + counters.bad_blocks
    assert counters.gaps == gcf_caught and all(g.end_ns - g.start_ns == NS_PER_S for gs in rig.gaps.values()
                                               for g in gs)
    for stream_id in rig.fw.stream_ids():
        delivered, missing = rig.tiling(stream_id, tolerate_undetectable=True)
        assert delivered + missing == sum(len(s) for _, s in rig.fw.truth[stream_id])
    assert rig.undetected + gcf_caught <= 5  # 0-3 per run over seeds 0-39 of this rig
    assert rig.statuses and caplog.records == []


# -- console ---------------------------------------------------------------------------------------------


def console_writes(rig: SessionRig) -> list[bytes]:
    return [w for w in rig.written if not w.startswith((bytes((brp.ACK,)), bytes((brp.NAK,))))]


def test_a_console_exchange_between_blocks_returns_the_text_up_to_each_prompt():
    rig = SessionRig()
    rig.step(6)
    request = ConsoleRequest(calibration_lines("sine", "Z", 3, frequency_hz=1), rig.now_ns + 20 * NS_PER_S)
    rig.session.submit(request)
    rig.step(30)
    assert rig.console == [ConsoleReply(request, "3 MINUTE accepted\r\nZ 1 HZ SINEWAVE accepted\r\n")]
    assert console_writes(rig) == [b"\x13\r", b"3 MINUTE\r", b"Z 1 HZ SINEWAVE\r", b"GO\r"]
    assert rig.of(ConsoleOpened) == [ConsoleOpened(request)] and not rig.of(StrayText)
    assert rig.session.counters.terminal_sessions == 1
    for stream_id in rig.fw.stream_ids():  # data stopped while the console talked, and then went on
        assert rig.tiling(stream_id)[1] == 0 and len(rig.packets[stream_id]) >= 7


def test_an_unanswered_break_in_is_repeated_every_second_then_the_request_fails_and_the_next_runs():
    session = GuralpSession(session_config(watchdog_ns=100 * NS_PER_S))
    session.connection_made(0)
    first = ConsoleRequest(("STATUS",), 3 * NS_PER_S)
    second = ConsoleRequest(("STATUS",), 60 * NS_PER_S)
    session.submit(first)
    session.submit(second)
    break_in = brp.SendBytes(b"\x13\r")
    timeline = {t: session.poll(t) for t in (0, NS_PER_S // 2, NS_PER_S, 2 * NS_PER_S, 3 * NS_PER_S)}
    assert timeline == {0: [break_in], NS_PER_S // 2: [], NS_PER_S: [break_in], 2 * NS_PER_S: [break_in],
                        3 * NS_PER_S: [break_in]}
    go = brp.SendBytes(b"GO\r")
    assert session.poll(3 * NS_PER_S + 1) == [go, ConsoleFailed(first, ConsoleState.BREAK_IN)]
    assert session.poll(3 * NS_PER_S + 2) == [break_in]  # the second request's turn
    assert session.counters.terminal_failures == 1


def test_a_console_that_stops_answering_after_a_line_fails_in_that_state():
    session = GuralpSession(session_config(watchdog_ns=100 * NS_PER_S))
    session.connection_made(0)
    request = ConsoleRequest(("STATUS", "STOPCAL"), 5 * NS_PER_S)
    session.submit(request)
    session.poll(0)
    assert session.receive(brp.PROMPT, 1) == [ConsoleOpened(request), brp.SendBytes(b"STATUS\r")]
    assert session.receive(b"all well\r\n" + brp.PROMPT, 2) == [brp.SendBytes(b"STOPCAL\r")]
    go = brp.SendBytes(b"GO\r")
    assert session.poll(5 * NS_PER_S + 1) == [go, ConsoleFailed(request, ConsoleState.LINE)]


def test_the_end_of_a_console_exchange_is_found_when_esc_and_dc1_arrive_apart():
    session = GuralpSession(session_config())
    session.connection_made(0)
    request = ConsoleRequest(("STATUS",), 5 * NS_PER_S)
    session.submit(request)
    session.poll(0)
    session.receive(brp.PROMPT, 1)
    assert session.receive(b"GPS locked\r\n" + brp.PROMPT, 2) == [brp.SendBytes(b"GO\r")]
    assert session.receive(b"\x1b", 3) == []
    assert session.receive(b"\x11", 4) == [ConsoleReply(request, "GPS locked\r\n")]
    assert session.receive(b" ok\r\n", 5) == [StrayText(b" ok\r\n")]  # nothing is waiting for it now


@pytest.mark.parametrize("lines", [(), ("",), ("STATUS\rGO",), ("Z 1 HZ SINEWAVE\x13",), ("CAFÉ",)])
def test_a_console_request_that_could_break_the_exchange_is_refused(lines):
    with pytest.raises(ValueError, match="console"):
        ConsoleRequest(lines, 0)


def test_calibration_lines_follow_the_dm24_words():
    assert calibration_lines("sine", "z", 3, frequency_hz=1) == ("3 MINUTE", "Z 1 HZ SINEWAVE")
    assert calibration_lines("sine", "N", period_s=10) == ("2 MINUTE", "N/S 10 SECOND SINEWAVE")
    assert calibration_lines("square", "E") == ("2 MINUTE", "E/W SQUAREWAVE")
    assert calibration_lines("random", "ALL", 5) == ("5 MINUTE", "ALL RANDOMCAL")
    for kwargs, complaint in [({"kind": "sine"}, "exactly one"),
                              ({"kind": "sine", "frequency_hz": 1, "period_s": 1}, "exactly one"),
                              ({"kind": "sine", "frequency_hz": 11}, "outside 1-10"),
                              ({"kind": "step"}, "not sine, square or random"),
                              ({"kind": "square", "component": "X"}, "component 'X'")]:
        with pytest.raises(ValueError, match=complaint):
            calibration_lines(**kwargs)


# -- timers and settings ---------------------------------------------------------------------------------


def test_a_silent_line_is_reported_once_per_connection_after_the_watchdog():
    session = GuralpSession(session_config(watchdog_ns=3 * NS_PER_S))
    session.connection_made(0)
    assert session.poll(3 * NS_PER_S) == []
    assert session.poll(3 * NS_PER_S + 1) == [LineSilent(3 * NS_PER_S + 1)]
    assert session.poll(10 * NS_PER_S) == []  # until the adapter reopens
    session.connection_made(20 * NS_PER_S)
    session.receive(b"\r\n", 22 * NS_PER_S)  # any byte is a sign of life
    assert session.poll(25 * NS_PER_S) == []
    assert session.poll(25 * NS_PER_S + 1) == [LineSilent(3 * NS_PER_S + 1)]
    assert session.counters.watchdog_reopens == 2


@pytest.mark.parametrize("change, complaint", [
    ({"watchdog_ns": 0}, "watchdog_ns must be positive"),
    ({"nak_timeout_ns": -1}, "nak_timeout_ns must be positive"),
    ({"max_naks": 0}, "max_naks"),
    ({"rewind_margin": 128}, "rewind_margin must be 0-127"),
])
def test_impossible_settings_are_refused_by_name(change, complaint):
    with pytest.raises(ValueError, match=complaint):
        SessionConfig(**(CONFIG | change))


def test_delivered_samples_are_the_firmware_samples_bit_for_bit():
    rig = SessionRig(Firmware({"Z0": 200}))
    rig.step(5)
    made = np.concatenate([s for _, s in rig.fw.truth["SIMDZ0"]])
    got = np.concatenate([p.samples for p in rig.packets["SIMDZ0"]])
    assert got.dtype == np.int32 and np.array_equal(made, got)
