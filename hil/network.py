"""A simulated IMS network, end to end: simulated digitizers on pseudo-terminals, the real station
daemons and the real IDC receiver as separate processes, faults on schedule, and the ground truth.

Every station and the receiver run as ``ims`` subprocesses, so a crash fault is a real SIGKILL.
All processes share one simulated clock (``IMS_SIM_CLOCK``): data time runs ``speed`` times faster
than real time, and so do the serial lines (the pty baud is scaled) and every timeout.

Besides the comparison of truth and archive, a run checks what a soak must: the resident memory of
every process stays flat (``hil.procwatch``) and every alarm raised is explained by an injected fault
(``hil.alarmcheck``). ``summary["checks"]`` holds each verdict; the run passes when all hold.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Collection
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gci_link.clock import SIM_CLOCK_ENV, sim_clock_spec
from gci_link.io.sds import SdsArchive, Segment
from gci_link.kernels import warm_up
from gci_link.keys import CertificateAuthority
from hil import alarmcheck, remote_calibration
from hil.compare import compare_channel, read_sds_traces
from hil.crashpoint import wait_for_archive_write
from hil.diskfill import SmallDisk
from hil.faults import LineFaults
from hil.linkproxy import LinkProxy
from hil.procwatch import MemoryBound, ProcessWatch, children
from hil.progress import Progress
from hil.readiness import ReadinessListener
from hil.report import (
    reported_gaps,
    rn_messages_exact,
    rn_samples_analysed,
    rn_station_report,
    station_report,
)
from hil.rn_station import RnStation, RnSystemSpec
from hil.scenario import RN_FAULTS, ChannelSpec, Fault, RnStationSpec, Scenario, StationSpec
from hil.sensors import broadband_calibration_table, declared_response_lines
from hil.serialport import PtyLine
from hil.sim_digitizer import SimDigitizer, StreamSpec
from hil.simclock import SimClock
from hil.truth import TruthStore
from station.publisher import DATA_KIND
from station.radionuclide.settings import CYCLE_DEFAULTS
from timeunits import NS_PER_S

log = logging.getLogger(__name__)

SUFFIX_LETTERS = (
    "ABDFGHIJKLOPQRST"  # stream letters for non-seismic streams (C0 = cal, M8 = mass, 00 = status)
)
OUTPUTS = ("run", "truth", "idc", "summary.json", "screenshots")
DRAIN_TIMEOUT_S = 60.0  # real seconds the stations get, after the digitizers stop, to deliver everything
DRAINED_QUIET_S = 1.0  # real seconds every digitizer must stay drained (a station's NAK may still come)
STATION_DATA = "data"  # outbox, local archive and status of a station, below its folder (a small disk
# of its own when the scenario fills it)
STATION_OUTBOX = f"{STATION_DATA}/outbox/outbox.sqlite"
REAL_DELAY_ALLOWED_S = 5.0  # real seconds a connection request may take to reach the receiver
# real seconds a simulated digitizer waits for the station's ACK or NAK of each block (a DM24's MS_GAP):
# the station answers in real time, so the wait is not sped up; sped up, it was 0.15 ms at 1000x and the
# digitizer ran on without waiting, broke BRP's lockstep and lost data after a station restart
DIGITIZER_ACK_WAIT_S = 0.15
REAL_STALL_ALLOWED_S = 2.0  # real seconds a busy machine may hold up a process without a lost link or alarm
STATUS_INTERVAL_S = 1.0  # real seconds between a station's status snapshots (and link health checks)
SAMPLE_EVERY_S = 1.0  # real seconds between two looks at every process's memory
READY_TIMEOUT_S = 120.0  # real seconds every daemon gets to start before the run is given up
CATCH_WRITE_S = 10.0  # real seconds a crash may wait to catch its process in an archive write


FaultEvent = tuple[float, str, Fault]  # (simulated second, "begin" or "end", the fault)


@dataclass
class SimStation:
    spec: StationSpec
    streams: dict[str, ChannelSpec]  # GCF stream id -> the channel it feeds
    line: PtyLine
    digitizer: SimDigitizer
    proxy: LinkProxy
    config_path: Path
    disk: SmallDisk | None = None  # only for stations whose disk a fault fills
    process: subprocess.Popen | None = None
    crashes: int = 0
    down: bool = False  # killed by a crash fault and not yet restarted

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def outbox_path(self) -> Path:
        """The station daemon's outbox (its configuration names it relative to the configuration's folder)."""
        return self.config_path.parent / STATION_OUTBOX


@dataclass
class SimRnStation:
    """A radionuclide station of the network: its simulated instruments and its own daemon, linked to the
    IDC through a proxy of its own like every station."""

    spec: RnStationSpec
    station: RnStation
    proxy: LinkProxy
    process: subprocess.Popen | None = None
    crashes: int = 0
    down: bool = False

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def config_path(self) -> Path:
        return self.station.config_path

    @property
    def outbox_path(self) -> Path:
        return self.station.outbox_path


class Network:
    """``observe``, if given, is called with the simulated seconds elapsed about ten times a second while
    the scenario runs (the demo takes its console screenshots from it); it must return quickly."""

    def __init__(
        self,
        scenario: Scenario,
        out: Path,
        *,
        show_progress: bool = True,
        memory_bound: MemoryBound | None = None,
        observe: Callable[[Network, float], None] | None = None,
    ) -> None:
        self.scenario = scenario
        self.out = out.resolve()  # configs name files by absolute path; the daemons run elsewhere
        self.limits = time_limits(scenario.speed)  # link timeouts and alarm thresholds the run uses
        self.show_progress = show_progress
        self.memory_bound = memory_bound or MemoryBound()
        self.observe = observe
        self.stations: dict[str, SimStation] = {}
        self.rn_stations: dict[str, SimRnStation] = {}
        self.receiver: subprocess.Popen | None = None
        self.fault_log: list[dict] = []
        self._restarted: dict[int, dict] = {}  # restarted station pid -> its fault log entry, until ready
        self.readiness = ReadinessListener()
        self.origin_s: float | None = None  # simulated seconds from the data start to every daemon ready
        self.console_urls: dict[str, str] = {}  # "idc" and each station -> its web console (localhost)
        self.calibrations: list[remote_calibration.RunningCalibration] = []
        # memory is compared day by day in runs of two days or more, else quarter by quarter
        day = 86400.0
        self.watch = ProcessWatch(day if scenario.duration_s >= 2 * day else scenario.duration_s / 4)

    # ----------------------------------------------------------------------------------------- set-up

    def _prepare_output(self) -> None:
        """Start from an empty output folder, removing only what an earlier run of ours wrote there."""
        self.out.mkdir(parents=True, exist_ok=True)
        for name in OUTPUTS:
            path = self.out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        for sub in ("run/logs", "run/dev", "truth", "idc"):
            (self.out / sub).mkdir(parents=True)

    def _setup(self) -> None:
        """Keys, configurations and simulated hardware; kernels compiled before the simulated clock runs,
        so no daemon spends minutes of accelerated data time compiling on a fresh installation."""
        sc = self.scenario
        log.info("compiled kernels ready", extra={"seconds": round(warm_up(), 3)})
        run = self.out / "run"
        ca = CertificateAuthority.create(run / "ca", "SIMNET")
        self.idc_bundle = ca.issue_idc().bundle  # the receiver signs its frames; the stations check them
        self.receiver_port = free_port()
        self.console_ports = {name: free_port() for name in ["idc", *(s.name for s in sc.stations)]}
        self._write_receiver_config(run)
        self.start_ns, self.clock, self.env = simulated_time(sc.frame_length_s, sc.speed)
        self.env |= self.readiness.env()
        self.wall0_ns = int(self.env[SIM_CLOCK_ENV].split(",")[1])  # wall time at which data time = start_ns
        for index, spec in enumerate(sc.stations):
            bundle = ca.issue(spec.name).bundle
            self.stations[spec.name] = self._make_station(index, spec, bundle)
        for index, rn in enumerate(sc.rn_stations):
            bundle = ca.issue(rn.name).bundle
            self.rn_stations[rn.name] = self._make_rn_station(len(sc.stations) + index, rn, bundle)

    def _write_receiver_config(self, run: Path) -> None:
        self.receiver_config = run / "idc.toml"
        self.receiver_config.write_text(
            scenario_receiver_toml(
                self.scenario,
                self.out / "idc",
                run / "ca" / "trust",
                self.receiver_port,
                key_bundle=self.idc_bundle,
                # stamps are simulated time: allow for a few real seconds of delay on a loaded machine
                control_window_s=max(300.0, REAL_DELAY_ALLOWED_S * self.scenario.speed),
                silence_timeout_s=self.limits.idc_silence_s,
            )
            + f'[idc.console]\nbind = "127.0.0.1:{self.console_ports["idc"]}"\n'
        )
        self.console_urls["idc"] = f"http://127.0.0.1:{self.console_ports['idc']}/"

    def _make_station(self, index: int, spec: StationSpec, bundle: Path) -> SimStation:
        sc = self.scenario
        serial = spec.name[:4].upper() if len(spec.name) >= 4 else f"{spec.name}{index:02d}"[-4:]
        suffixes = _stream_suffixes(spec)
        faults = LineFaults(spec.bit_error_rate, spec.drop_rate)
        line = PtyLine(
            int(spec.baud * sc.speed),
            to_host=faults,
            to_device=faults,
            seed=sc.seed + index,
            link_dir=self.out / "run" / "dev",
            name=f"tty{spec.name}",
        )
        kind = spec.sensor
        specs = tuple(StreamSpec(sfx, spec.sample_rate, spec.block_s, kind) for sfx in suffixes)
        digitizer = SimDigitizer(
            line, self.clock, system_id=spec.name, serial=serial, streams=specs, seed=sc.seed * 1000 + index,
            flash_blocks=spec.flash_blocks, status_every_s=spec.status_every_s, ms_gap_s=DIGITIZER_ACK_WAIT_S,
            truth_store=TruthStore(self.out / "run" / "truth" / spec.name),
        )
        proxy = LinkProxy(("127.0.0.1", self.receiver_port), spec.name)
        folder = self.out / "run" / "stations" / spec.name
        folder.mkdir(parents=True)
        disk = None
        if any(f.kind == "disk_full" and f.station == spec.name for f in sc.faults):
            disk = SmallDisk(folder / STATION_DATA)
            disk.mount()
        streams = {serial + sfx: ch for sfx, ch in zip(suffixes, spec.channels, strict=True)}
        config_path = folder / "station.toml"
        wiring = DigitizerWiring("digitizer", spec.name, line.path, streams)
        trust = self.out / "run" / "ca" / "trust"
        port = self.console_ports[spec.name]
        calibrated = {c.channel for c in sc.calibrations if c.station == spec.name}
        config_path.write_text(
            station_toml(spec, [wiring], proxy.endpoint, bundle, sc.frame_length_s, idc_trust=trust,
                         calibrated=calibrated, limits=self.limits)
            + f'[console]\nbind = "127.0.0.1:{port}"\n'
        )
        self.console_urls[spec.name] = f"http://127.0.0.1:{port}/"
        return SimStation(spec, streams, line, digitizer, proxy, config_path, disk)

    def _make_rn_station(self, index: int, spec: RnStationSpec, bundle: Path) -> SimRnStation:
        sc = self.scenario
        system = rn_system_spec(spec, self.start_ns, sc.seed * 1000 + index)
        proxy = LinkProxy(("127.0.0.1", self.receiver_port), spec.name)
        run = self.out / "run"
        station = RnStation(spec.name, spec.network, [system], self.clock, sc.speed,
                            run / "stations" / spec.name, run / "dev", proxy.endpoint, bundle,
                            idc_trust=run / "ca" / "trust")
        return SimRnStation(spec, station, proxy)

    # ----------------------------------------------------------------------------------------- processes

    def _ims(self, name: str, *args: str) -> subprocess.Popen:
        return spawn_ims(self.out / "run" / "logs" / f"{name}.log", self.env, *args)

    def _start_receiver(self) -> None:
        self.receiver = self._ims("idc", "idc", "run", "--config", str(self.receiver_config))
        # its READY=1, not a probe of its port: a bare TCP connection is a failed CURVE handshake in its log
        self.readiness.wait({"idc receiver": self.receiver}, READY_TIMEOUT_S)

    def _start_station(self, station: SimStation | SimRnStation) -> None:
        station.process = self._ims(station.name, "station", "run", "--config", str(station.config_path))
        station.down = False

    # ----------------------------------------------------------------------------------------- faults

    def _schedule(self) -> list[FaultEvent]:
        events = []
        for fault in self.scenario.faults:
            events.append((fault.at_s, "begin", fault))
            events.append((fault.at_s + fault.duration_s, "end", fault))
        return sorted(events, key=lambda e: e[0])

    def _apply(self, phase: str, fault: Fault) -> None:
        begin = phase == "begin"
        caught = None
        if fault.kind == "receiver_crash":
            if begin:
                caught = self._crash(self.receiver, fault, self.out / "idc" / "sds")
            else:
                self._start_receiver()
        elif fault.station is None:
            raise ValueError(f"a {fault.kind} fault must name a station")  # scenario.parse refuses it
        elif fault.station in self.rn_stations:
            caught = self._apply_to_daemon(self.rn_stations[fault.station], fault, begin)
        else:
            caught = self._apply_to_station(self.stations[fault.station], fault, begin)
        sim_s = self._simulated_s()
        entry = {"fault": fault.kind, "phase": phase, "station": fault.station, "at_s": round(sim_s, 1)}
        if begin and fault.when != "any":
            entry["when"] = fault.when
            entry["caught"] = caught
        self.fault_log.append(entry)
        if fault.kind == "station_crash" and not begin and fault.station is not None:
            process = self._daemons()[fault.station].process
            assert process is not None, "a station is started again at the end of its crash"
            self._restarted[process.pid] = entry
        log.info("fault %s %s", fault.kind, phase, extra={"station": fault.station, "sim_s": round(sim_s, 1)}
                 | ({"caught": caught} if caught else {}))

    def _crash(self, process: subprocess.Popen | None, fault: Fault, archive: Path) -> str | None:
        """SIGKILL ``process``; for a crash ``when = "archive_write"`` once it is caught writing under
        ``archive`` (or after CATCH_WRITE_S without catching it). Returns what it was writing, if caught."""
        caught = None
        if fault.when == "archive_write" and process is not None:
            write = wait_for_archive_write(process.pid, archive, CATCH_WRITE_S)
            caught = None if write is None else f"{write.call} {write.path}"
        _crash(process)
        return caught

    def _apply_to_daemon(self, station: SimStation | SimRnStation, fault: Fault, begin: bool) -> str | None:
        """A fault of the station's daemon or its link (``RN_FAULTS``), which every station can suffer."""
        if fault.kind == "link_outage":
            station.proxy.blackhole(begin)
        elif fault.kind == "station_crash":
            if begin:
                station.crashes += 1
                station.down = True
                return self._crash(station.process, fault, station.config_path.parent / STATION_DATA)
            self._start_station(station)
        else:
            raise ValueError(f"a {fault.kind} fault concerns the hardware of a waveform station")
        return None

    def _apply_to_station(self, station: SimStation, fault: Fault, begin: bool) -> str | None:
        kind = fault.kind
        if kind in RN_FAULTS:
            return self._apply_to_daemon(station, fault, begin)
        if kind == "gps_unlock":
            station.digitizer.set_gps_lock(not begin)
        elif kind == "unplug":
            (station.line.unplug if begin else station.line.replug)()
        elif kind == "disk_full":
            if station.disk is None:  # _make_station gives one to every station this fault names
                raise ValueError(f"station {station.spec.name} has no small disk to fill")
            station.disk.fill() if begin else station.disk.free()
        return None

    # ----------------------------------------------------------------------------------------- the run

    def run(self) -> dict:
        self._prepare_output()
        try:
            self._setup()
            try:
                end_ns = self._simulate()
            finally:
                self._shutdown()
            return self._summarise(end_ns)
        finally:  # a station's small disk is released whatever happened
            for station in self.stations.values():
                if station.disk is not None:
                    station.disk.unmount_keeping_contents()
            self.readiness.close()

    def _simulate(self) -> int:
        """Start everything, run the scenario's time with its faults from the moment every station daemon is
        ready, drain; returns the end data time."""
        sc = self.scenario
        progress = Progress(sc.duration_s, enabled=self.show_progress)
        self._start_receiver()
        for station in self.stations.values():
            station.proxy.start()
            station.digitizer.start()
            self._start_station(station)
        for rn in self.rn_stations.values():
            rn.proxy.start()
            rn.station.start()
            self._start_station(rn)
        self.readiness.wait({name: d.process for name, d in self._daemons().items() if d.process is not None},
                            READY_TIMEOUT_S)
        origin_s = self.origin_s = self._simulated_s()
        log.info("every station ready: the scenario starts", extra={"simulated_s": round(origin_s, 1)})
        events = self._schedule()
        calibrations = sorted(sc.calibrations, key=lambda c: c.at_s)
        next_sample = 0.0
        while (elapsed := self._simulated_s() - origin_s) < sc.duration_s:
            while calibrations and calibrations[0].at_s <= elapsed:
                self.calibrations.append(remote_calibration.start(
                    calibrations.pop(0), self.receiver_config, self.env, self.out / "run" / "logs",
                    len(self.calibrations), elapsed))
            while events and events[0][0] <= elapsed:
                _, phase, fault = events.pop(0)
                self._apply(phase, fault)
                if phase == "begin" and fault.when != "any":  # the kill waited: the down time starts now
                    events = self._postpone_end(events, fault)
            self._check_processes()
            self._note_restarts_ready()
            if time.monotonic() >= next_sample:
                self.watch.sample(elapsed, self._processes())
                next_sample = time.monotonic() + SAMPLE_EVERY_S
            if self.observe is not None:
                self.observe(self, elapsed)
            progress.update(elapsed, f"{len(self.fault_log)}/{2 * len(sc.faults)} fault events")
            time.sleep(0.1)
        progress.done()
        for running in self.calibrations:  # a command late on a loaded machine still needs live data
            remote_calibration.finish(running)
        end_ns = self.clock.now_ns()  # the digitizers stop sampling now
        self._drain()
        return end_ns

    def scenario_s(self) -> float | None:
        """Seconds on the scenario's clock (faults' and calibrations' ``at_s``); None until it has started."""
        return None if self.origin_s is None else self._simulated_s() - self.origin_s

    def _simulated_s(self) -> float:
        """Simulated seconds since the data start (the fault log and the alarms count from it)."""
        return (self.clock.now_ns() - self.start_ns) / NS_PER_S

    def _processes(self) -> dict[str, int]:
        """Role -> pid of every process of the network now running (the receiver's workers are found as
        its children)."""
        pids = {"harness": os.getpid()}
        if self.receiver is not None and self.receiver.poll() is None:
            pids["idc"] = self.receiver.pid
            for n, worker in enumerate(children(self.receiver.pid)):
                pids[f"idc worker {n}"] = worker
        for name, station in self._daemons().items():
            if station.process is not None and station.process.poll() is None:
                pids[f"station {name}"] = station.process.pid
        return pids

    def _daemons(self) -> dict[str, SimStation | SimRnStation]:
        """Every station daemon of the network, waveform and radionuclide, by station name."""
        return {**self.stations, **self.rn_stations}

    def _note_restarts_ready(self) -> None:
        """Stamp a restarted station's fault log entry with the simulated second its ``READY=1`` was heard
        (within one turn of the loop): its crash lasts until then (``alarmcheck.fault_spans``)."""
        for pid in [pid for pid in self._restarted if self.readiness.ready(pid)]:
            self._restarted.pop(pid)["ready_s"] = round(self._simulated_s(), 1)

    def _postpone_end(self, events: list[FaultEvent], fault: Fault) -> list[FaultEvent]:
        """The end of ``fault`` moved to ``duration_s`` after now, so a crash that waited for an archive
        write keeps its whole down time."""
        now_s = self.scenario_s()
        assert now_s is not None, "faults are applied only once the scenario has started"
        moved = [(now_s + fault.duration_s if (p, f) == ("end", fault) else t, p, f) for t, p, f in events]
        return sorted(moved, key=lambda e: e[0])

    def _check_processes(self) -> None:
        for station in self._daemons().values():
            proc = station.process
            if proc is not None and proc.poll() is not None and not station.down:
                raise RuntimeError(
                    f"station {station.name} exited with {proc.returncode}; "
                    f"see {self.out}/run/logs/{station.name}.log"
                )

    def _drain(self) -> None:
        """Stop sampling, let the digitizers send what they hold and the stations frame and deliver it;
        let the radionuclide stations deliver every message they have stored."""
        for station in self.stations.values():
            station.digitizer.stop_sampling()
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        quiet_since = None  # a NAK for a block lost at the very end comes after the line went idle
        while time.monotonic() < deadline:
            if not all(s.digitizer.drained for s in self.stations.values()):
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= DRAINED_QUIET_S:
                break
            time.sleep(0.1)
        while time.monotonic() < deadline and not all(map(self._delivered, self.stations.values())):
            self._note_restarts_ready()  # a crash at the very end may still be starting
            time.sleep(0.2)
        while time.monotonic() < deadline and any(unacked(s.outbox_path) for s in self.rn_stations.values()):
            time.sleep(0.2)

    def _delivered(self, station: SimStation) -> bool:
        """Whether a station has framed every frame window its digitizer's data complete and the IDC has
        acknowledged them all (a loaded machine puts a station tens of real seconds behind its data)."""
        frame_ns = self.scenario.frame_length_s * NS_PER_S
        last_complete_ns = station.digitizer.made_until_ns // frame_ns * frame_ns - frame_ns
        newest_ns = newest_data_frame_ns(station.outbox_path)
        return newest_ns is not None and newest_ns >= last_complete_ns and unacked(station.outbox_path) == 0

    def _shutdown(self) -> None:
        for running in self.calibrations:  # the operator's commands, before the receiver goes (already
            remote_calibration.finish(running)  # done unless the run failed before its drain)
        for station in self._daemons().values():
            terminate(station.process)
        terminate(self.receiver)
        for rn in self.rn_stations.values():
            rn.station.stop()
            rn.proxy.close()
        for station in self.stations.values():
            station.digitizer.stop()
            station.proxy.close()
            station.line.close()

    # ----------------------------------------------------------------------------------------- results

    def _summarise(self, end_ns: int) -> dict:
        for station in self.stations.values():
            station.digitizer.close_truth()
        stations = {name: self._station_summary(station, end_ns) for name, station in self.stations.items()}
        rn_stations = {name: self._rn_summary(rn) for name, rn in self.rn_stations.items()}
        memory = self.watch.report(self.memory_bound)
        alarms = self._alarm_check()
        checks = {
            "archive_equals_truth": all(s["exact"] for s in stations.values()),
            "memory_flat": memory["flat"],
            "no_false_alarms": alarms["false_alarms"] == 0,
            "no_missed_alarms": alarms["missed_alarms"] == 0,
        }
        calibrations = [self._calibration_summary(running) for running in self.calibrations]
        if calibrations:
            checks["remote_calibration"] = all(
                c["exit_code"] == 0 and c["verdict"] is not None and c["subframes_flagged_at_idc"] > 0
                and c["other_channels_flagged_at_idc"] == 0 for c in calibrations)
        if rn_stations:
            checks["rn_messages_exact"] = rn_messages_exact(rn_stations)
            checks["rn_samples_analysed"] = rn_samples_analysed(rn_stations)
        summary = {
            "scenario": self.scenario.source,
            "simulated_s": self.scenario.duration_s,
            "scenario_started_s": round(self.origin_s or 0.0, 1),
            "speed": self.scenario.speed,
            "start": np.datetime_as_string(np.datetime64(self.start_ns, "ns"), unit="s") + "Z",
            "faults": self.fault_log,
            "stations": stations,
            "rn_stations": rn_stations,
            "memory": memory,
            "alarm_check": alarms,
            "calibrations": calibrations,
            "checks": checks,
            "zero_loss": checks["archive_equals_truth"],
            "passed": all(checks.values()),
        }
        (self.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        return summary

    def _station_summary(self, station: SimStation, end_ns: int) -> dict:
        """Truth against archive for each channel (the truth also written out as SDS), with the gaps the
        hardware made excluded by their exact bounds, then the station's report."""
        sds = SdsArchive(self.out / "truth")
        idc_sds = self.out / "idc" / "sds"
        net, rate = station.spec.network, float(station.spec.sample_rate)
        flash: dict[str, list[tuple[int, int]]] = {}  # stream -> spans a full flash dropped
        for lost in station.digitizer.flash_lost:
            flash.setdefault(lost.stream_id, []).append((lost.start_ns, lost.end_ns))
        serial = reported_gaps(self._log(station.spec.name))  # stream -> spans the station says it lost
        comparisons, gaps = [], []
        for stream_id, ch in station.streams.items():
            truth_start, truth = station.digitizer.samples_of(stream_id)
            if len(truth):
                for day in sds.split_by_day(Segment(net, ch.site, ch.location, ch.channel, truth_start, rate,
                                                     np.asarray(truth))):
                    sds.append([day])
            flash_spans = flash.get(stream_id, [])
            # a span the station reports lost counts as serial loss only where the simulated line really
            # damaged every block of it on the way (BRP's checksum let the damage through, GCF's check
            # caught it, and the block was dropped); anything else it reports is not excused
            block_ns = station.spec.block_s * NS_PER_S
            serial_spans = [
                (begin, end) for begin, end in serial.get(stream_id, [])
                if not _within((begin, end), flash_spans) and all(
                    (stream_id, t) in station.digitizer.damaged_blocks for t in range(begin, end, block_ns))
            ]
            traces = read_sds_traces(idc_sds, net, ch.site, ch.location, ch.channel, truth_start, end_ns)
            undetected = [(b.start_ns, b.samples) for b in station.digitizer.undetected
                          if b.stream_id == stream_id and b.samples is not None]
            comparison = compare_channel(
                ch.code, truth_start, rate, truth, traces, flash_spans + serial_spans, undetected
            )
            comparisons.append(comparison)
            gaps += [_gap(ch.code, span, "flash_full" if _within(span, flash_spans) else
                          "serial_damaged" if _within(span, serial_spans) else "unexplained")
                     for span in comparison.missing]
        sds.close()
        report = station_report(self.out, station, comparisons, self.scenario.speed)
        up, down = station.line.faults_to_host, station.line.faults_to_device
        return report | {
            "link_bytes_swallowed": station.proxy.bytes_swallowed,
            "line_bit_errors": up.bit_errors + down.bit_errors,
            "line_bytes_dropped": up.bytes_dropped + down.bytes_dropped,
            "flash_blocks_dropped": station.digitizer.counters.flash_dropped,
            "gaps": gaps,
        }

    def _calibration_summary(self, running: remote_calibration.RunningCalibration) -> dict:
        spec = self.stations[running.calibration.station].spec
        ch = next(c for c in spec.channels if c.channel == running.calibration.channel)
        return remote_calibration.summary(running, self.out / "idc", spec.network, ch.site, ch.location)

    def _rn_summary(self, rn: SimRnStation) -> dict:
        """The station's messages against the IDC's store; the simulated sources beside the run."""
        truth = self.out / "truth" / rn.name
        truth.mkdir(parents=True, exist_ok=True)
        rn.station.write_truth(truth)
        return rn_station_report(self.out, rn.name, rn.spec.network, rn.outbox_path) | {
            "station_crashes": rn.crashes,
            "link_bytes_swallowed": rn.proxy.bytes_swallowed,
        }

    def _log(self, name: str) -> Path:
        return self.out / "run" / "logs" / f"{name}.log"

    def _alarm_check(self) -> dict:
        """Every alarm each station raised against the faults applied (at the times they were applied, a
        crashed station's until it was ready again)."""
        spans = alarmcheck.fault_spans(self.fault_log)
        episodes = [
            episode
            for name in self._daemons()
            for episode in alarmcheck.read_alarms(self._log(name), name, self.wall0_ns, self.scenario.speed)
        ]
        status_interval_sim_s = STATUS_INTERVAL_S * self.scenario.speed
        return alarmcheck.cross_check(episodes, spans, self.limits, status_interval_sim_s)


def rn_system_spec(spec: RnStationSpec, start_ns: int, seed: int) -> RnSystemSpec:
    """The station's one system, its schedule shifted (``offset_s``) so that its first slot opens
    ``first_slot_s`` after ``start_ns``, the run's start."""
    defaults = CYCLE_DEFAULTS[spec.kind]
    period = spec.cycle.get("collection_s", defaults["collection_s"])
    decay = spec.cycle.get("decay_s", defaults["decay_s"])
    offset = (start_ns // NS_PER_S + spec.first_slot_s - decay) % period
    return RnSystemSpec(spec.kind.replace("_", ""), spec.kind, spec.code, spec.srid_station,
                        cycle=spec.cycle | {"offset_s": offset}, activities_bq=spec.activities_bq,
                        histogram_channels=spec.histogram_channels, seed=seed)


def unacked(outbox_path: Path) -> int:
    """Frames a running station's outbox holds unacknowledged, read without disturbing the daemon."""
    if not outbox_path.exists():
        return 0
    with closing(sqlite3.connect(f"file:{outbox_path}?mode=ro", uri=True, timeout=10)) as db:
        try:
            return int(db.execute("SELECT unacked_frames FROM totals").fetchone()[0])
        except (sqlite3.Error, TypeError):  # not created yet
            return 0


def newest_data_frame_ns(outbox_path: Path) -> int | None:
    """Nominal time of the newest data frame in a running station's outbox (None: none yet)."""
    if not outbox_path.exists():
        return None
    with closing(sqlite3.connect(f"file:{outbox_path}?mode=ro", uri=True, timeout=10)) as db:
        try:
            row = db.execute("SELECT max(nominal_time_ns) FROM frames WHERE kind = ?",
                             (DATA_KIND,)).fetchone()
        except sqlite3.Error:  # not created yet
            return None
    return None if row is None or row[0] is None else int(row[0])


def _within(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    """Whether ``span`` lies inside the union of ``spans`` (all [start, end) in ns)."""
    begin, end = span
    for first, last in sorted(spans):
        if first > begin:
            break
        begin = max(begin, last)
        if begin >= end:
            return True
    return begin >= end


def _gap(channel: str, span: tuple[int, int], cause: str) -> dict:
    start, end = span
    iso = [np.datetime_as_string(np.datetime64(t, "ns"), unit="ms") + "Z" for t in span]
    return {"channel": channel, "start": iso[0], "end": iso[1], "start_ns": start, "end_ns": end,
            "cause": cause}


def _stream_suffixes(spec: StationSpec) -> list[str]:
    """GCF stream suffixes: Z0/N0/E0 for seismometer components (the calibration coil keys on them)."""
    finals = [ch.channel[-1] for ch in spec.channels]
    if spec.sensor == "seismometer" and len(set(finals)) == len(finals) and set(finals) <= set("ZNE"):
        return [f"{c}0" for c in finals]
    return [f"{SUFFIX_LETTERS[i]}0" for i in range(len(spec.channels))]


@dataclass(frozen=True)
class DigitizerWiring:
    """One digitizer as a station configuration names it: its port and the channel on each stream."""

    name: str
    system_id: str
    port: str
    streams: dict[str, ChannelSpec]  # GCF stream id -> channel


def station_toml(
    spec: StationSpec,
    digitizers: list[DigitizerWiring],
    endpoint: str,
    bundle: Path,
    frame_length_s: int,
    idc_trust: Path | None = None,
    calibrated: Collection[str] = (),
    limits: alarmcheck.Thresholds | None = None,
) -> str:
    """The station daemon's configuration for ``spec``'s channels, spread over ``digitizers``; with
    ``idc_trust`` (the network's trust store) it believes only frames signed by the IDC's key. Channel
    codes in ``calibrated`` get the simulated broadband's calibration table, and the station applies
    the calib of a passing remote calibration. With ``limits`` its link timeouts and alarm thresholds
    are those (a run faster than real time gives a busy machine's stalls their due)."""
    link_keys = "" if idc_trust is None else f'idc_trust = "{idc_trust}"\n'
    table = f"[channels.calibration]\n{broadband_calibration_table()}"
    accept = "[calibration]\napply_accepted = true\n" if calibrated else ""
    if limits is not None:
        link_keys += (f"connect_timeout_s = {limits.connect_timeout_s}\nresponse_timeout_s = "
                      f"{limits.response_timeout_s}\nidle_timeout_s = {limits.idle_timeout_s}\n")
    soh = "" if limits is None else (f"[soh]\nlink_down_after_s = {limits.link_down_after_s}\n"
                                     f"backlog_after_s = {limits.backlog_after_s}\n"
                                     f"gps_unlocked_after_s = {limits.gps_unlocked_after_s}\n"
                                     f"digitizer_silent_after_s = {limits.digitizer_silent_after_s}\n")
    sections = []
    for d in digitizers:
        sections.append(
            f'[[digitizers]]\nname = "{d.name}"\nsystem_id = "{d.system_id}"\n'
            f'port = "{d.port}"\nbaud = {spec.baud}\n'
        )
    for d in digitizers:
        sections += [
            f'\n[[channels]]\ndigitizer = "{d.name}"\nstream_id = "{stream_id}"\nsite = "{ch.site}"\n'
            f'channel = "{ch.channel}"\nlocation = "{ch.location}"\nsensor_type = "{spec.sensor_type}"\n'
            f"calib = 1.0\ncalper = 1.0\nsample_rate = {float(spec.sample_rate)}\n"
            + (table if ch.channel in calibrated else "")
            for stream_id, ch in d.streams.items()
        ]
    return (
        f"# written by the simulated network for station {spec.name}\n"
        f'[station]\nname = "{spec.name}"\nnetwork = "{spec.network}"\n'
        f"[frame]\nlength_s = {frame_length_s}\n"
        f"[acquisition]\nlateness_budget_s = {max(3 * spec.block_s, 10)}.0\n"
        f"{''.join(sections)}"
        f'[link]\nendpoints = ["{endpoint}"]\nkey_bundle = "{bundle}"\n{link_keys}'
        f'[daemon]\nstate_dir = "{STATION_DATA}/state"\nstatus_interval_s = {STATUS_INTERVAL_S}\n'
        f'[archive]\npath = "{STATION_DATA}/archive"\n'
        f'[outbox]\npath = "{STATION_OUTBOX}"\n{accept}{soh}'
    )


def receiver_toml(
    root: Path,
    trust_dir: Path,
    port: int,
    stations: dict[str, str],
    sites: dict[str, list[str]],
    key_bundle: Path | None = None,
    control_window_s: float | None = None,
    *,
    responses: dict[str, dict[str, str]] | None = None,
    silence_timeout_s: float | None = None,
) -> str:
    """The IDC receiver's configuration: archive under ``root``, ``stations`` as name -> network and
    ``sites`` as name -> the sites its channels carry; with ``key_bundle`` (from ``ims keys issue-idc``)
    it signs the frames it sends; ``responses``: name -> channel code -> the body of its declared
    response table (for the StationXML the receiver writes)."""
    tables = "".join(
        f'\n[stations.{name}]\nnetwork = "{net}"\nsites = {json.dumps(sites[name])}\n'
        + "".join(f"[stations.{name}.responses.{code}]\n{lines}"
                  for code, lines in (responses or {}).get(name, {}).items())
        for name, net in stations.items()
    )
    extra = "" if key_bundle is None else f'key_bundle = "{key_bundle.resolve()}"\n'
    extra += "" if control_window_s is None else f"control_window_s = {control_window_s}\n"
    extra += "" if silence_timeout_s is None else f"silence_timeout_s = {silence_timeout_s}\n"
    return (
        f'[idc]\nroot = "{root.resolve()}"\ntrust_dir = "{trust_dir.resolve()}"\n{extra}'
        f'connection_endpoint = "tcp://127.0.0.1:{port}"\n{tables}'
    )


def scenario_receiver_toml(
    scenario: Scenario,
    root: Path,
    trust_dir: Path,
    port: int,
    key_bundle: Path | None = None,
    control_window_s: float | None = None,
    silence_timeout_s: float | None = None,
) -> str:
    """The receiver configuration for a scenario's stations, each with the sites of its channels (a
    radionuclide station: its own name, as it sends no data frames) and the shape of its simulated
    sensors' responses."""
    return receiver_toml(
        root,
        trust_dir,
        port,
        {s.name: s.network for s in scenario.stations} | {s.name: s.network for s in scenario.rn_stations},
        {s.name: sorted({ch.site for ch in s.channels}) for s in scenario.stations}
        | {s.name: [s.name] for s in scenario.rn_stations},
        key_bundle,
        control_window_s,
        responses={s.name: {ch.channel: declared_response_lines(s.sensor) for ch in s.channels}
                   for s in scenario.stations},
        silence_timeout_s=silence_timeout_s,
    )


def time_limits(speed: float) -> alarmcheck.Thresholds:
    """The link timeouts and delivery alarm thresholds of a run at ``speed``, in simulated seconds: the
    defaults, each raised to at least ``REAL_STALL_ALLOWED_S`` of real time. Every process runs on data
    time, so at 1000x the station's 130 s idle timeout is 0.13 s of real time, less than a busy 2-core
    machine may hold up a process: links were given up and alarms raised for the machine's hiccups, not
    for any fault. A fault still has to outlast these limits to raise its alarm, and the cross-check
    judges every alarm by the same limits."""
    floor = REAL_STALL_ALLOWED_S * speed
    default = alarmcheck.Thresholds()
    return alarmcheck.Thresholds(
        link_down_after_s=max(default.link_down_after_s, floor),
        backlog_after_s=max(default.backlog_after_s, 2 * floor),  # frames already wait a frame or two
        gps_unlocked_after_s=default.gps_unlocked_after_s,  # the simulated GPS runs on data time alone
        # a silent digitizer is an alarm after a minute; a loaded machine may hold up its pty a few seconds
        digitizer_silent_after_s=max(default.digitizer_silent_after_s, REAL_DELAY_ALLOWED_S * speed),
        backoff_cap_s=default.backoff_cap_s,
        connect_timeout_s=max(default.connect_timeout_s, floor),
        response_timeout_s=max(default.response_timeout_s, floor),
        idle_timeout_s=max(default.idle_timeout_s, floor),
        idc_silence_s=max(default.idc_silence_s, floor),
    )


def simulated_time(frame_length_s: int, speed: float) -> tuple[int, SimClock, dict[str, str]]:
    """Data time starting at the next frame boundary, running ``speed`` times real time: its start,
    the clock for in-process simulators, and the environment that gives every ``ims`` process the same."""
    step = frame_length_s * NS_PER_S
    start_ns = -(-time.time_ns() // step) * step
    clock = SimClock(start_ns, speed)
    return start_ns, clock, os.environ | {SIM_CLOCK_ENV: sim_clock_spec(start_ns, time.time_ns(), speed)}


def spawn_ims(log_path: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    """``ims ARGS`` as a child process logging to ``log_path``."""
    with log_path.open("ab") as log_file:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "station.ims", *args],
            env=env,
            stdout=log_file,
            stderr=log_file,
            stdin=subprocess.DEVNULL,
        )


def terminate(process: subprocess.Popen | None, timeout: float = 60.0) -> int | None:
    """SIGTERM and wait (SIGKILL after ``timeout``); the exit status, None for no process."""
    if process is None or process.poll() is not None:
        return None if process is None else process.returncode
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def _crash(process: subprocess.Popen | None) -> None:
    """SIGKILL, as a crash would, and reap it."""
    if process is not None:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
