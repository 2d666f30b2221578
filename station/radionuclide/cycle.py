"""One radionuclide system's sample cycle on data time: counts, spectra, messages, state of health.

``step(now)`` does whatever is due at ``now`` and returns; its thread (runner.py) calls it over and
over with the injected clock, so a 24 h particulate cycle passes in minutes of simulated time.

- **Counts.** The schedule says which count should be running. The cycle starts it on the detector
  with a preset real time ending at the scheduled end (after writing its intent to the state file),
  sends a PREL SAMPLEPHD at every PREL time it sees, and after the end stops the detector, reads the
  spectra and sends the FULL message (QCPHD, DETBKPHD, GASBKPHD or SAMPLEPHD). Only then does the next
  count start, so no spectrum is cleared before its message is durable.
- **Restart.** Which messages exist is read from the outbox (ledger.py); the count in progress from the
  state file, checked against the detector: if the detector's real time fits the count, the count goes
  on (the detector never stopped); if not, the count is recorded as lost (quarantine note and alarm).
- **State of health.** Every ``soh_poll_s`` the detector and the sampler are read and judged
  (alerts.py); every alarm change becomes an ALERT_* message; every ``rmssoh_s`` an RMSSOH message.
- **Failures.** An instrument that does not answer raises ``instrument_unavailable``; a spectrum that
  cannot be read raises ``readout_failed`` and is tried again until the next count is due, then the
  count is recorded as lost; a message the builder makes malformed is quarantined with
  ``message_quarantined``; a message the outbox cannot take (a full disk) raises
  ``outbox_write_failed`` and is made again later. Nothing is dropped without a note and an alarm, and
  nothing stops the loop.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from collections.abc import Callable
from typing import Any

from digitizer import mca
from gci_link import ims2
from gci_link.cd11 import MAX_IMS2_MESSAGE_BYTES
from station.alarms import AlarmBoard, Severity
from station.radionuclide.alerts import (
    CYCLE,
    DETECTOR,
    SAMPLER,
    AlertWatch,
    judge_detector,
    judge_sampler,
    switch,
)
from station.radionuclide.ids import COUNT_LETTERS, measurement_id, srid, to_tenth
from station.radionuclide.instruments import INSTRUMENT_ERRORS, Detector, DetectorSoh, Readout, Sampler
from station.radionuclide.ledger import MessageLedger
from station.radionuclide.messages import AlertText, Collection, Header, MessageBuilder, Processing, render
from station.radionuclide.quarantine import Quarantine
from station.radionuclide.rmssoh import Poll, SohPeriod
from station.radionuclide.schedule import Count, CountKind, Schedule
from station.radionuclide.settings import NOBLE_GAS, RadionuclideConfig
from station.radionuclide.state import CountRecord, StateFile
from timeunits import NS_PER_S

log = logging.getLogger(__name__)

OUTBOX_ALARM = "outbox_write_failed"
MATCH_TOLERANCE_S = 120.0  # a restarted cycle takes the detector's count for its own within this (+1 %)
READOUT_GRACE_S = 600.0  # a final spectrum that cannot be read is tried this long before the count is lost
MIN_COUNT_S = 1.0  # a count that could only run shorter than this is not started
LATE_NOTE_S = 60.0  # a count started this much after its scheduled start says so in its messages
FLOW_GAP_FACTOR = 2  # flow readings further apart than this many polls are not integrated across


class OutboxWriteFailed(Exception):
    """A message could not be stored; the step ends and the cycle tries again after a poll interval."""


class SampleCycle:
    def __init__(self, config: RadionuclideConfig, detector: Detector, sampler: Sampler,
                 ledger: MessageLedger, state_file: StateFile, quarantine: Quarantine,
                 clock: Callable[[], int]) -> None:
        self.config = config
        self.schedule = Schedule(config.cycle)
        self.detector, self.sampler = detector, sampler
        self.ledger = ledger
        self.state_file = state_file
        self.state = state_file.load()
        self.quarantine = quarantine
        self.clock = clock
        self.alarms = AlarmBoard()
        self.watch = AlertWatch(self.alarms, config.limits)
        self.builder = MessageBuilder(config)
        self.period: SohPeriod | None = None
        self.last_poll: Poll | None = None
        self.sent: Counter[str] = Counter()  # messages stored by this process, per data type
        self._poll_due_ns = 0
        self._retry_ns = 0  # the detector failed: not asked again before this
        self._prel_tried: dict[str, int] = {}  # count key -> last PREL index attempted
        self._real_seen: tuple[float, int] | None = None  # (detector real time, when it last advanced)
        self._unverified = False  # a count from before a restart the detector has not yet confirmed

    # ------------------------------------------------------------------------------------- lifecycle

    def resume(self, now_ns: int) -> None:
        """Once, before the first step: alarms announced before a restart, and whether the detector still
        holds the count the state file names (asked again at each step until the detector answers)."""
        self.watch.restore(self.ledger.restored)
        record = self.state.count
        self._unverified = record is not None and not self._finished(record) and record.started_ns is not None
        self._verify(record, now_ns)

    def _verify(self, record: CountRecord | None, now_ns: int) -> bool:
        """False while the detector cannot say whether it holds ``record``; a count it does not hold is
        recorded as lost (the detector was reset while the station was down)."""
        if not self._unverified or record is None or record.started_ns is None:
            return True
        try:
            state = self.detector.state()
        except INSTRUMENT_ERRORS as exc:
            self._instrument_failed(DETECTOR, now_ns, f"count {record.key} in progress not confirmed: {exc}")
            return False
        self._unverified = False
        expected = (min(now_ns, record.end_ns) - record.started_ns) / NS_PER_S
        if abs(state.real_s - expected) > MATCH_TOLERANCE_S + 0.01 * expected:
            self._lose(record, now_ns, f"after the restart the detector holds {state.real_s:.1f} s of real "
                                       f"time, the count would have {expected:.1f} s")
            return False
        log.info("count in progress resumed", extra=self._ctx(count=record.key, real_s=state.real_s))
        return True

    def step(self, now_ns: int) -> None:
        try:
            self._roll_period(now_ns)
            if now_ns >= self._poll_due_ns:
                self._poll(now_ns)
            if now_ns >= self._retry_ns:
                self._run_counts(now_ns)
            self._announce(now_ns)
        except OutboxWriteFailed:  # the alarm is raised; what was not stored is made again later
            self._retry_ns = now_ns + self.config.cycle.soh_poll_s * NS_PER_S

    # ---------------------------------------------------------------------------------------- counts

    def _finished(self, record: CountRecord) -> bool:
        return record.abandoned or self.ledger.has(f"{record.key} FULL")

    def _run_counts(self, now_ns: int) -> None:
        record = self.state.count
        if record is not None and not self._finished(record):
            if not self._verify(record, now_ns):
                return
            if record.started_ns is None:  # its start was not confirmed (a crash, a detector that failed)
                if now_ns + MIN_COUNT_S * NS_PER_S < record.end_ns:
                    self._begin(record.count, now_ns)
                else:
                    self._lose(record, now_ns, "the detector could not be started before the count's end")
            elif now_ns >= record.end_ns:
                self._finish(record, now_ns)
            else:
                self._prel(record, now_ns)
            return
        count = self.schedule.count_at(now_ns)
        if count is None or (record is not None and record.key == count.key):
            return
        if self.ledger.has(f"{count.key} FULL"):
            return
        if now_ns + MIN_COUNT_S * NS_PER_S < count.end_ns:
            self._begin(count, now_ns)

    def _begin(self, count: Count, now_ns: int) -> None:
        previous = self.state.count
        if previous is not None and self.ledger.has(f"{previous.key} FULL"):
            self._take_ids(previous)  # once more: a crash may have come between its FULL and the file
        record = CountRecord.planned(count)
        self.state.count = record
        self.state_file.save(self.state)  # the intent first: a crash from here on re-begins or loses it
        preset = (count.end_ns - now_ns) / NS_PER_S
        try:
            self.detector.begin(preset)
        except INSTRUMENT_ERRORS as exc:
            self._instrument_failed(DETECTOR, now_ns, f"count {count.key} not started: {exc}")
            return
        started = to_tenth(self.clock())
        record.started_ns = started
        record.measurement_id = measurement_id(self.config.detector_code, started)
        self.state_file.save(self.state)
        switch(self.alarms, "instrument_unavailable", DETECTOR, False, now_ns)
        self._real_seen = None
        log.info("count started", extra=self._ctx(count=count.key, preset_s=round(preset, 1),
                                                  late_s=round((started - count.start_ns) / NS_PER_S, 1)))

    def _prel(self, record: CountRecord, now_ns: int) -> None:
        due = [t for t in self.schedule.prel_times(record.count) if t <= now_ns]
        index = len(due)
        if not index or self._prel_tried.get(record.key, 0) >= index:
            return
        self._prel_tried = {record.key: index}
        event = f"{record.key} PREL {index}"
        if self.ledger.has(event):
            return
        try:
            readout = self.detector.read()
        except INSTRUMENT_ERRORS as exc:
            self._readout_failed(event, now_ns, exc)
            return
        switch(self.alarms, "readout_failed", DETECTOR, False, now_ns)
        self._send_phd(record, "PREL", readout, event, now_ns)

    def _finish(self, record: CountRecord, now_ns: int) -> None:
        event = f"{record.key} FULL"
        try:
            self.detector.stop()  # the preset has stopped it already; a stuck one is stopped here
            readout = self.detector.read()
        except INSTRUMENT_ERRORS as exc:
            self._readout_failed(event, now_ns, exc)
            if now_ns >= record.end_ns + READOUT_GRACE_S * NS_PER_S:
                self._lose(record, now_ns, f"its spectrum could not be read: {exc}")
            return
        switch(self.alarms, "readout_failed", DETECTOR, False, now_ns)
        if self._send_phd(record, "FULL", readout, event, now_ns):
            self._take_ids(record)
        else:
            record.abandoned = True  # quarantined: the cycle goes on without it
        switch(self.alarms, "count_lost", DETECTOR, False, now_ns)
        self.state_file.save(self.state)

    def _take_ids(self, record: CountRecord) -> None:
        """A background counted in full is the one later messages name."""
        if record.measurement_id is None:
            return
        if record.kind == CountKind.DETBK.name:
            self.state.detbk_id = record.measurement_id
        elif record.kind == CountKind.GASBK.name:
            self.state.gasbk = (record.cycle, record.measurement_id)

    def _lose(self, record: CountRecord, now_ns: int, reason: str) -> None:
        record.abandoned = True
        self.state_file.save(self.state)
        self.quarantine.put(now_ns, record.key, f"count lost: {reason}")
        self.alarms.raise_alarm("count_lost", DETECTOR, Severity.CRITICAL, now_ns,
                                message=f"count {record.key} lost: {reason}")

    def _readout_failed(self, event: str, now_ns: int, exc: Exception) -> None:
        self.quarantine.put(now_ns, event, f"spectrum read failed: {type(exc).__name__}: {exc}")
        self.alarms.raise_alarm("readout_failed", DETECTOR, Severity.CRITICAL, now_ns,
                                message=f"{event}: spectrum read failed: {exc}")
        self._retry_ns = now_ns + self.config.cycle.soh_poll_s * NS_PER_S

    def _instrument_failed(self, source: str, now_ns: int, reason: str) -> None:
        if self.alarms.get("instrument_unavailable", source) is None:  # said once per outage
            log.warning("radionuclide instrument failed", extra=self._ctx(source=source, error=reason))
        self.alarms.raise_alarm("instrument_unavailable", source, Severity.CRITICAL, now_ns, message=reason)
        if source == DETECTOR:
            self._retry_ns = now_ns + self.config.cycle.soh_poll_s * NS_PER_S

    # -------------------------------------------------------------------------------------- messages

    def _send_phd(self, record: CountRecord, qualifier: str, readout: Readout, event: str,
                  now_ns: int) -> bool:
        count = record.count
        assert record.started_ns is not None and record.measurement_id is not None
        kind = count.kind
        cycle = count.cycle
        collection: Collection | None = None
        processing: Processing | None = None
        notes = []
        c = self.config
        if kind is CountKind.SAMPLE or kind is CountKind.GASBK:
            collected = self.schedule.collection(cycle)[0]
            sample_srid = srid(c.srid_station, collected, c.srid_digits, c.srid_letter)
        else:
            sample_srid = srid(c.srid_station, record.started_ns, c.srid_digits, COUNT_LETTERS[kind])
        gasbk_id = detbk_id = None
        if kind is CountKind.SAMPLE:
            collection, note = self._collection(cycle)
            notes += [note] if note else []
            if self.config.kind == NOBLE_GAS:
                processing, note = self._processing()
                notes += [note] if note else []
                gasbk = self.state.gasbk
                gasbk_id = gasbk[1] if gasbk is not None and gasbk[0] == cycle else None
        if kind is not CountKind.DETBK:
            detbk_id = self.state.detbk_id
        late = (record.started_ns - count.start_ns) / NS_PER_S
        if late > LATE_NOTE_S:
            notes.append(f"count started {late:.0f} s after its scheduled start")
        header = Header(sample_srid, record.measurement_id, detbk_id, gasbk_id)
        msg_ms = self.ledger.next_ms(now_ns)
        return self._store(event, now_ns, msg_ms, lambda: self.builder.phd(
            kind, qualifier, header, record.started_ns or 0, readout, msg_ms=msg_ms, transmit_ns=now_ns,
            collection=collection, processing=processing, comment="\n".join(notes) or None))

    def _collection(self, cycle: int) -> tuple[Collection, str | None]:
        start, stop = self.schedule.collection(cycle)
        m3, covered = self.state.flow.get(cycle, (0.0, 0.0))
        seconds = (stop - start) / NS_PER_S
        volume = m3 * seconds / covered if covered else 0.0
        note = None
        if covered < 0.99 * seconds:
            note = (f"air volume extrapolated from flow readings over {100 * covered / seconds:.0f} % of "
                    "the collection" if covered else "no flow reading during the collection: air volume 0")
        return Collection(start, stop, round(volume, 4)), note

    def _processing(self) -> tuple[Processing, str | None]:
        soh = self.last_poll.sampler if self.last_poll is not None else None
        if soh is None or soh.xe_volume_ml is None or soh.xe_volume_unc_ml is None or soh.xe_yield is None \
                or soh.xe_yield_unc is None:
            return Processing(0.0, 0.0, 0.0, 0.0), "the xenon unit reported no stable xenon volume and yield"
        return Processing(soh.xe_volume_ml, soh.xe_volume_unc_ml, soh.xe_yield, soh.xe_yield_unc), None

    def _store(self, event: str, now_ns: int, msg_ms: int, build: Callable[[], ims2.Message]) -> bool:
        """Build, check and store one message; a malformed one is quarantined (False)."""
        try:
            text = render(build())
            if len(text) > MAX_IMS2_MESSAGE_BYTES:
                raise ims2.Ims2FormatError("envelope", None, f"{len(text)} bytes exceed the carrier's "
                                                             f"{MAX_IMS2_MESSAGE_BYTES}")
        except (ims2.Ims2FormatError, ValueError, TypeError) as exc:
            self.quarantine.put(now_ns, event, f"malformed message from our builder: {exc}")
            self.alarms.raise_alarm("message_quarantined", CYCLE, Severity.CRITICAL, now_ns,
                                    message=f"{event}: {exc}")
            return False
        try:
            self.ledger.store(event, msg_ms, now_ns, text)
        except (sqlite3.Error, OSError) as exc:  # disk full, I/O error: the spectrum stays on the detector
            self.alarms.raise_alarm(OUTBOX_ALARM, CYCLE, Severity.CRITICAL, now_ns,
                                    message=f"{event} not stored: {exc}")
            log.error("radionuclide message not stored; trying again later",
                      extra=self._ctx(event=event, error=str(exc)))
            raise OutboxWriteFailed(event) from exc
        self.alarms.clear_alarm(OUTBOX_ALARM, CYCLE, now_ns)
        self.sent[event.split()[0]] += 1
        switch(self.alarms, "message_quarantined", CYCLE, False, now_ns)
        log.info("radionuclide message stored", extra=self._ctx(event=event, bytes=len(text)))
        return True

    def _announce(self, now_ns: int) -> None:
        for event, alert in self.watch.changes():
            msg_ms = self.ledger.next_ms(now_ns)

            def build(a: AlertText = alert, ms: int = msg_ms) -> ims2.Message:
                return self.builder.alert(a, now_ns, msg_ms=ms, transmit_ns=now_ns)

            if self._store(event, now_ns, msg_ms, build):
                self.watch.announced(event)

    # ------------------------------------------------------------------------------- state of health

    def _roll_period(self, now_ns: int) -> None:
        index, start, end = self.schedule.soh_period(now_ns)
        ended = self.period
        if ended is not None and ended.index == index:
            return
        if ended is not None and ended.polls and not self.ledger.has(f"RMSSOH {ended.index}"):
            collecting, processing, acquiring = self._equipment(ended.end_ns - 1)
            blocks = ended.blocks(collecting, processing, acquiring)
            msg_ms = self.ledger.next_ms(now_ns)
            self._store(f"RMSSOH {ended.index}", now_ns, msg_ms, lambda: self.builder.rmssoh(
                (ended.start_ns, ended.end_ns), blocks, msg_ms=msg_ms, transmit_ns=now_ns))
            self.state_file.save(self.state)  # keeps the flow integrals
        self.period = SohPeriod(index, start, end)  # only now: a period not stored is tried again

    def _equipment(self, t_ns: int) -> tuple[str, str | None, str | None]:
        """SRIDs of the samples being collected, waiting (decay or processing) and counted at ``t_ns``."""
        c = self.config

        def sample_srid(cycle: int) -> str:
            return srid(c.srid_station, self.schedule.collection(cycle)[0], c.srid_digits, c.srid_letter)

        waiting = self.schedule.processing(t_ns)
        record = self.state.count
        counting = record is not None and record.kind == CountKind.SAMPLE.name and \
            not self._finished(record) and record.started_ns is not None
        return (sample_srid(self.schedule.collecting(t_ns)),
                None if waiting is None else sample_srid(waiting),
                sample_srid(record.cycle) if counting and record is not None else None)

    def _poll(self, now_ns: int) -> None:
        self._poll_due_ns = now_ns + self.config.cycle.soh_poll_s * NS_PER_S
        sampler: mca.Soh | None = None
        detector: DetectorSoh | None = None
        try:
            sampler = self.sampler.soh()
            switch(self.alarms, "instrument_unavailable", SAMPLER, False, now_ns)
        except INSTRUMENT_ERRORS as exc:
            self._instrument_failed(SAMPLER, now_ns, f"sampler state of health: {exc}")
        if self.config.shares_line:  # one unit on one line: its SOH covers the detector too
            detector = None if sampler is None else DetectorSoh(sampler.hv_v, sampler.detector_temp_c)
        else:
            try:
                detector = self.detector.soh()
                switch(self.alarms, "instrument_unavailable", DETECTOR, False, now_ns)
            except INSTRUMENT_ERRORS as exc:
                self._instrument_failed(DETECTOR, now_ns, f"detector state of health: {exc}")
        poll = Poll(now_ns, detector, sampler)
        if detector is not None:
            judge_detector(self.alarms, self.config.limits, detector, now_ns)
        if sampler is not None:
            judge_sampler(self.alarms, self.config.limits, sampler, now_ns)
            self._integrate_flow(poll)
        self._watch_acquisition(now_ns)
        assert self.period is not None
        self.period.polls.append(poll)
        self.last_poll = poll

    def _integrate_flow(self, poll: Poll) -> None:
        previous = self.last_poll
        flow = poll.sampler.flow_m3h if poll.sampler is not None else None
        if previous is None or flow is None:
            return
        seconds = (poll.time_ns - previous.time_ns) / NS_PER_S
        if 0 < seconds <= FLOW_GAP_FACTOR * self.config.cycle.soh_poll_s:
            self.state.add_flow(self.schedule.collecting(poll.time_ns), flow * seconds / 3600, seconds)

    def _watch_acquisition(self, now_ns: int) -> None:
        """A running count whose real time stops advancing is a stalled acquisition."""
        record = self.state.count
        if record is None or record.started_ns is None or self._finished(record) or now_ns >= record.end_ns:
            return
        try:
            state = self.detector.state()
        except INSTRUMENT_ERRORS:
            return  # the poll above reported the detector already
        seen = self._real_seen
        if seen is None or state.real_s > seen[0]:
            self._real_seen = (state.real_s, now_ns)
            switch(self.alarms, "acquisition_stalled", DETECTOR, False, now_ns, value=state.real_s)
        elif now_ns - seen[1] > FLOW_GAP_FACTOR * self.config.cycle.soh_poll_s * NS_PER_S:
            self.alarms.raise_alarm("acquisition_stalled", DETECTOR, Severity.CRITICAL, now_ns,
                                    value=state.real_s, message=f"real time stuck at {state.real_s:.1f} s")

    # ----------------------------------------------------------------------------------------- status

    def status(self) -> dict[str, Any]:
        record = self.state.count
        stored, pending = self.ledger.counts()
        return {
            "kind": self.config.kind,
            "count": None if record is None else {
                "key": record.key, "start_ns": record.start_ns, "end_ns": record.end_ns,
                "started_ns": record.started_ns, "measurement_id": record.measurement_id,
                "finished": self._finished(record),
            },
            "messages": {"stored": stored, "pending": pending, "acked": stored - pending,
                         "sent_by_type": dict(self.sent)},
            "quarantined": self.quarantine.count,
            "alarms": [{"name": a.name, "source": a.source, "severity": a.severity.name,
                        "raised_ns": a.raised_ns, "message": a.message} for a in self.alarms.active()],
        }

    def _ctx(self, **extra: object) -> dict[str, object]:
        return {"system": self.config.name, **extra}
