"""Simulated radionuclide systems for a simulated network: instruments on pseudo-terminals, the station
configuration that names them, the xenon unit's moves on the station's own schedule, and the check that
every message reached the IDC exactly.

A particulate system is a simulated PX5-HPGe (``sim_dp5``) and a high-volume air sampler
(``sim_sampler``) on two lines; a noble-gas system is the simulated beta-gamma analyser with its sampler
and xenon unit (``sim_betagamma``) on one line. ``RnSim.toml()`` is the system's ``[[radionuclide]]``
table for the station daemon's configuration (append it to any station's file, or use
``rn_station_toml`` for a station without waveform channels); its ``[radionuclide.calibration]`` is the
simulated detector's true calibration, so the IDC can analyse what the station sends. While running, a
noble-gas ``RnSim`` plays the xenon unit: it empties the cell when a detector or gas background count
begins and transfers the sample when its count begins, as the schedule the daemon reads from the same
table says. ``message_report`` compares each message in a station's outbox with what the IDC stored.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

from gci_link.cd11 import Ims2MessageBody, decode_frame
from gci_link.station_end.outbox import Outbox
from hil.betagamma_phd import calibration_blocks
from hil.nuclides import Source
from hil.particulate_sample import calibration_tables
from hil.serialport import PtyLine
from hil.sim_betagamma import BetaGammaSimConfig, SimBetaGamma
from hil.sim_dp5 import Dp5SimConfig, SimDp5
from hil.sim_sampler import AirSamplerConfig, SimAirSampler
from hil.simclock import SimClock
from idc.rn_store import INDEX_NAME, IndexedMessage, RnIndex
from station.config import parse_config
from station.radionuclide.ledger import KIND
from station.radionuclide.schedule import CountKind, Schedule
from station.radionuclide.settings import NOBLE_GAS, PARTICULATE, RadionuclideConfig
from timeunits import NS_PER_S

CONFIG_BAUD = 115200  # what the daemon's configuration says; the lines run ``speed`` times faster, up to:
# a pty holds about 20 KiB: at 2 Mbaud that is 100 ms of bytes, time enough for a host that is busy
# elsewhere; faster, the simulated instrument overruns it and every long answer is asked for again
MAX_LINE_BAUD = 2_000_000
EFFICIENCY_REL_UNC = 0.02  # of the HPGe's #g_Efficiency, as a calibration with certified sources gives
DEFAULT_ACTIVITIES = {PARTICULATE: {"Be-7": 60.0, "Cs-137": 0.05},
                      NOBLE_GAS: {"Xe-133": 8.0, "Xe-135": 1.0, "Xe-131m": 0.5}}


@dataclass(frozen=True)
class RnSystemSpec:
    name: str  # system name in the station configuration
    kind: str  # "particulate" or "noble_gas"
    station: str  # IMS station code in the messages
    srid_station: str = "01"
    cycle: dict[str, int] = field(default_factory=dict)  # [radionuclide.cycle] keys to set
    activities_bq: dict[str, float] = field(default_factory=dict)  # a filter's / a gas sample's; {}: default
    histogram_channels: int = 256  # noble gas: gamma and beta channels (fewer read out faster)
    seed: int = 0

    @property
    def detector_code(self) -> str:
        return f"{self.station}_001"


class RnSim:
    """The simulated instruments of one radionuclide system; ``start`` / ``stop`` run them."""

    def __init__(self, spec: RnSystemSpec, clock: SimClock, dev_dir: Path, speed: float) -> None:
        self.spec = spec
        self.clock = clock
        baud = int(min(CONFIG_BAUD * speed, MAX_LINE_BAUD))
        self.detector_line = PtyLine(baud, seed=spec.seed, link_dir=dev_dir, name=f"tty{spec.name}det")
        self.sampler_line = self.detector_line
        if spec.kind == PARTICULATE:
            self.sampler_line = PtyLine(baud, seed=spec.seed + 1, link_dir=dev_dir, name=f"tty{spec.name}air")
        self._calibration = ""  # the simulated detector's, once it is built
        self.schedule = Schedule(_system_config(self.toml()).cycle)
        activities = spec.activities_bq or DEFAULT_ACTIVITIES[spec.kind]
        now = clock.now_ns()
        period_s = float(self.schedule.times.collection_s)
        origin = self.schedule.collection(self.schedule.collecting(now))[0]
        self.dp5: SimDp5 | None = None
        self.air: SimAirSampler | None = None
        self.betagamma: SimBetaGamma | None = None
        if spec.kind == PARTICULATE:
            sources = [Source(n, a, now) for n, a in activities.items()]
            self.dp5 = SimDp5(self.detector_line, clock, Dp5SimConfig(sources=sources, seed=spec.seed))
            self.air = SimAirSampler(self.sampler_line, clock,
                                     AirSamplerConfig(filter_s=period_s, origin_ns=origin, seed=spec.seed))
        else:
            channels = spec.histogram_channels
            self.betagamma = SimBetaGamma(self.detector_line, clock, BetaGammaSimConfig(
                gamma_channels=channels, beta_channels=channels, collect_s=0.88 * period_s,
                process_s=0.1 * period_s, transfer_s=0.02 * period_s, cycle_origin_ns=origin, seed=spec.seed))
        self._calibration = calibration_toml(self.true_calibration(), now)  # calibrated as it was built
        self.config = _system_config(self.toml())
        self._activities = activities
        self._stop = threading.Event()
        self._xenon_unit: threading.Thread | None = None

    def toml(self) -> str:
        """The ``[[radionuclide]]`` table of this system for the station daemon's configuration."""
        return system_toml(self.spec, self.detector_line.path, self.sampler_line.path) + self._calibration

    def true_calibration(self) -> dict[str, tuple]:
        detector = self.dp5 or self.betagamma
        assert detector is not None
        return true_calibration(detector)

    def start(self) -> None:
        for sim in (self.dp5, self.air, self.betagamma):
            if sim is not None:
                sim.start()
        if self.betagamma is not None:
            self._xenon_unit = threading.Thread(target=self._move_xenon, name=f"xe-{self.spec.name}",
                                                daemon=True)
            self._xenon_unit.start()

    def stop(self) -> None:
        self._stop.set()
        if self._xenon_unit is not None:
            self._xenon_unit.join(5)
        for sim in (self.dp5, self.air, self.betagamma):
            if sim is not None:
                sim.stop()
        self.detector_line.close()
        if self.sampler_line is not self.detector_line:
            self.sampler_line.close()

    def write_truth(self, folder: Path) -> list[Path]:
        written = []
        if self.dp5 is not None:
            written.append(self.dp5.write_truth(folder, f"{self.spec.name}-hpge"))
        if self.betagamma is not None:
            written.append(self.betagamma.write_truth(folder, f"{self.spec.name}-betagamma"))
        return written

    def _move_xenon(self) -> None:
        """The xenon unit's part: the cell emptied as each detector or gas background begins, the sample
        transferred as its count begins."""
        assert self.betagamma is not None
        cycle = self.schedule.slot_at(self.clock.now_ns())
        while not self._stop.is_set():
            for count in self.schedule.counts(cycle):
                if count.start_ns < self.clock.now_ns():
                    continue
                if not self.clock.wait_until(count.start_ns, self._stop):
                    return
                if count.kind in (CountKind.DETBK, CountKind.GASBK):  # both count the emptied cell
                    self.betagamma.evacuate()
                elif count.kind is CountKind.SAMPLE:
                    self.betagamma.load_sample(f"{self.spec.name}-{cycle}", self._activities)
            cycle += 1


class RnStation:
    """A radionuclide-only station of a simulated network: the instruments of its systems and the
    daemon's configuration (``config_path``); the network runs ``ims station run --config`` on it, as for
    any station, and reads ``report`` for its summary."""

    def __init__(self, name: str, network: str, specs: list[RnSystemSpec], clock: SimClock, speed: float,
                 folder: Path, dev_dir: Path, endpoint: str, bundle: Path,
                 idc_trust: Path | None = None) -> None:
        self.name = name
        self.systems = [RnSim(spec, clock, dev_dir, speed) for spec in specs]
        folder.mkdir(parents=True, exist_ok=True)
        self.config_path = folder / "station.toml"
        tables = [system.toml() for system in self.systems]
        self.config_path.write_text(rn_station_toml(name, network, endpoint, bundle, tables,
                                                    idc_trust=idc_trust))
        self.outbox_path = folder / "data" / "outbox" / "outbox.sqlite"

    def start(self) -> None:
        for system in self.systems:
            system.start()

    def stop(self) -> None:
        for system in self.systems:
            system.stop()

    def write_truth(self, folder: Path) -> list[Path]:
        return [path for system in self.systems for path in system.write_truth(folder)]

    def report(self, idc_ims2_root: Path) -> dict[str, MessageTally]:
        return message_report(self.outbox_path, idc_ims2_root, self.name)


def true_calibration(detector: SimDp5 | SimBetaGamma) -> dict[str, tuple]:
    """The simulated detector's calibration tables, as a calibration with sources would measure them (the
    HPGe's for all its native channels, which the station reads by default; efficiencies to 2 %)."""
    if isinstance(detector, SimDp5):
        return calibration_tables(detector.response, efficiency_rel_unc=EFFICIENCY_REL_UNC)
    return calibration_blocks(detector)


def calibration_toml(tables: dict[str, tuple], time_ns: int | None = None) -> str:
    """``[radionuclide.calibration]`` holding ``tables`` (PhdMessage field name -> block rows) and the
    time of the calibration (whole seconds)."""
    def value(v: object) -> str:
        return json.dumps(v) if isinstance(v, str) else repr(v)

    lines = [f"{name} = [{', '.join('[' + ', '.join(value(v) for v in row) + ']' for row in rows)}]\n"
             for name, rows in tables.items()]
    if time_ns is not None:
        stamp = dt.datetime.fromtimestamp(time_ns // NS_PER_S, dt.UTC)
        lines.append(f"time = {stamp.strftime('%Y-%m-%dT%H:%M:%SZ')}\n")
    return "[radionuclide.calibration]\n" + "".join(lines)


def system_toml(spec: RnSystemSpec, detector_port: str, sampler_port: str) -> str:
    """The ``[[radionuclide]]`` table of a system whose instruments answer on these ports."""
    cycle = "".join(f"{key} = {value}\n" for key, value in sorted(spec.cycle.items()))
    return (
        f'\n[[radionuclide]]\nname = "{spec.name}"\nkind = "{spec.kind}"\nstation = "{spec.station}"\n'
        f'detector_code = "{spec.detector_code}"\nsrid_station = "{spec.srid_station}"\n'
        f'[radionuclide.detector]\nport = "{detector_port}"\nbaud = {CONFIG_BAUD}\n'
        f'[radionuclide.sampler]\nport = "{sampler_port}"\nbaud = {CONFIG_BAUD}\n'
        f"[radionuclide.cycle]\n{cycle}"
    )


def rn_station_toml(name: str, network: str, endpoint: str, bundle: Path, tables: list[str],
                    data_dir: str = "data", idc_trust: Path | None = None) -> str:
    """A complete configuration for a station with radionuclide systems only (``tables``: their
    ``[[radionuclide]]`` tables); with ``idc_trust`` (the network's trust store) it believes only frames
    signed by the IDC's key."""
    trust = "" if idc_trust is None else f'idc_trust = "{idc_trust}"\n'
    return (
        f"# written by the simulated network for radionuclide station {name}\n"
        f'[station]\nname = "{name}"\nnetwork = "{network}"\n'
        f'[link]\nendpoints = ["{endpoint}"]\nkey_bundle = "{bundle}"\n{trust}'
        f'[daemon]\nstate_dir = "{data_dir}/state"\nstatus_interval_s = 1.0\n'
        f'[archive]\npath = "{data_dir}/archive"\n'
        f'[outbox]\npath = "{data_dir}/outbox/outbox.sqlite"\n'
        + "".join(tables)
    )


@dataclass
class MessageTally:
    """One radionuclide system's messages: in the station's outbox, acknowledged, stored at the IDC, and
    stored byte for byte equal to the original; what is missing or different there, by sequence number;
    and what was made twice (a restarted station must make each moment's message once)."""

    sent: int = 0
    acked: int = 0
    stored: int = 0
    exact: int = 0
    missing: list[int] = field(default_factory=list)
    different: list[int] = field(default_factory=list)
    duplicated_msg_ids: list[str] = field(default_factory=list)  # MSG_IDs the IDC holds more than once
    repeated_events: list[str] = field(default_factory=list)  # cycle moments sent twice (an ALERT may
    # come again: a condition raised, cleared and raised anew)
    data_types: dict[str, int] = field(default_factory=dict)  # stored messages per "SAMPLEPHD FULL" etc.

    @property
    def all_exact(self) -> bool:
        return self.exact == self.sent and not self.duplicated_msg_ids and not self.repeated_events


def message_report(outbox_path: Path, idc_ims2_root: Path, station: str) -> dict[str, MessageTally]:
    """Per radionuclide system of ``station`` (its CD-1.1 frame creator), its messages compared with
    what the IDC stored (``idc_ims2_root``: the receiver's ``ims2`` folder)."""
    stored: dict[int, IndexedMessage] = {}
    msg_ids: dict[str, int] = {}
    if (idc_ims2_root / INDEX_NAME).exists():
        index = RnIndex(idc_ims2_root)
        try:
            for message in index.find(station=station, limit=10**9):
                stored[message.seq] = message
                if message.msg_id is not None:
                    msg_ids[message.msg_id] = msg_ids.get(message.msg_id, 0) + 1
        finally:
            index.close()
    duplicated = sorted(m for m, n in msg_ids.items() if n > 1)
    report: dict[str, MessageTally] = {}
    events: dict[str, dict[str, int]] = {}  # system -> event -> times made
    box = Outbox(outbox_path, 1 << 40)
    try:
        for seq, kind in box.kinds(f"{KIND} "):
            _, system, _, event = (kind.split(" ", 3) + ["", ""])[:4]
            tally = report.setdefault(system, MessageTally(duplicated_msg_ids=duplicated))
            made = events.setdefault(system, {})
            made[event] = made.get(event, 0) + 1
            tally.sent += 1
            frame = box.get(seq)
            if frame is None:  # evicted from the outbox over its budget after acknowledgement
                continue
            tally.acked += frame.acked
            body = decode_frame(frame.frame).body
            held = stored.get(seq)
            try:
                text = None if held is None else (idc_ims2_root / held.path).read_bytes()  # as on disk
            except FileNotFoundError:
                text = None
            if held is None or text is None:
                tally.missing.append(seq)
                continue
            tally.stored += 1
            label = " ".join(t for t in (held.data_type or "unparsed", held.qualifier) if t)
            tally.data_types[label] = tally.data_types.get(label, 0) + 1
            if isinstance(body, Ims2MessageBody) and text == body.message:
                tally.exact += 1
            else:
                tally.different.append(seq)
    finally:
        box.close()
    for system, made in events.items():
        again = (e for e, n in made.items() if n > 1 and not e.startswith("ALERT"))
        report[system].repeated_events = sorted(again)
    return report


def _system_config(table: str) -> RadionuclideConfig:
    """The system as the daemon will read it (same validation, same defaults)."""
    text = (f'[station]\nname = "X"\nnetwork = "XX"\n[link]\nendpoints = ["tcp://127.0.0.1:1"]\n'
            f'[archive]\npath = "a"\n[outbox]\npath = "o"\n{table}')
    return parse_config(text, "simulated radionuclide system", Path(".")).radionuclide[0]
