"""A simulated noble-gas system on one ``PtyLine``: beta-gamma coincidence analyser, air sampler and
xenon processing unit, speaking the project's line protocol (``digitizer.mca``).

Analyser: a gas cell in a gamma detector. Each decay branch of ``nuclides.BETA_GAMMA_BRANCHES``
(openSpex branching ratios) puts, per decay, eff_gamma(E) x a Gaussian in the gamma channels times
eff_beta x the electron spectrum in the beta channels into the 256 x 256 histogram (rows gamma,
columns beta, spans 720 and 550 keV as in the real MIX files), and the matching singles; the beta
continuum has the allowed shape without Fermi function (our approximation). Counts are Poisson draws
on data time, with detector backgrounds, radon in the cell and the xenon memory effect: ``evacuate``
leaves ``memory_fraction`` of the xenon in the cell, which the next gas background measures.

Sampler and xenon unit: flow with noise and an accumulated volume per sample, a filter pressure drop
growing with the volume, the process stage from a fixed schedule (COLLECT, PROCESS, TRANSFER), the
stable xenon volume and yield of the last sample loaded, the trap temperature.

Faults: ``drop_hv``, ``fail_cooler`` (the trap warms; yields fall), ``fail_flow``, ``lose_mains`` (the
unit runs on its UPS, whose charge runs down), ``stick``,
``inject_noise``/``corrupt_next_reply`` (plus ``PtyLine`` bit errors), ``vanish_during_readout`` (the
port disappears in the middle of a chunk reply). ``truth()``/``write_truth`` give what really happened.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np

from digitizer import mca
from hil.gamma_response import gaussian_in_channels
from hil.nuclides import BETA_GAMMA_BRANCHES, Branch, Source
from hil.serialport import PtyLine
from hil.simclock import SimClock
from hil.siminstrument import SimInstrument
from rn_analysis.library import nuclide
from timeunits import NS_PER_S

log = logging.getLogger(__name__)

MAX_STEP_NS = 3600 * NS_PER_S
STAGES = (("COLLECT", "collect_s"), ("PROCESS", "process_s"), ("TRANSFER", "transfer_s"))


@dataclass
class BetaGammaSimConfig:
    serial: str = "0042"
    gamma_channels: int = 256
    beta_channels: int = 256
    gamma_span_kev: float = 720.0
    beta_span_kev: float = 550.0
    gamma_fwhm_81_kev: float = 11.6  # FWHM = k sqrt(E), k from the MIX #g_Resolution value at 81 keV
    beta_fwhm_200_kev: float = 60.2  # same from #b_Resolution at 199.56 keV
    gamma_efficiency: tuple[tuple[float, float], ...] = ((20.0, 0.50), (30.0, 0.68), (81.0, 0.62),
                                                         (250.0, 0.42), (352.0, 0.34), (720.0, 0.20))
    beta_efficiency: float = 0.92
    gamma_background_cps: float = 0.4
    beta_background_cps: float = 0.15
    coincidence_background_cps: float = 0.004
    radon_bq: float = 0.02  # radon carried into the cell with each sample
    memory_fraction: float = 0.04  # xenon left in the cell by ``evacuate``
    dead_time_s: float = 5e-6
    hv_v: float = 750.0
    detector_temp_c: float = 23.5
    flow_m3h: float = 1.85
    flow_sd_m3h: float = 0.02
    filter_dp_hpa: float = 18.0
    filter_dp_per_m3: float = 0.08
    collect_s: float = 12 * 3600.0
    process_s: float = 5400.0
    transfer_s: float = 600.0
    trap_temp_c: float = -5.0
    trap_warming_c_per_h: float = 30.0
    ambient_c: float = 24.0
    ups_hours: float = 4.0  # the UPS runs the unit this long on battery
    cycle_origin_ns: int | None = None  # start of the sampler's first collection; None: when it is built
    seed: int = 0


@dataclass
class _Count:
    first_start_ns: int | None = None
    real_s: float = 0.0
    live_s: float = 0.0
    decays_live: dict[str, float] = field(default_factory=dict)


def _beta_shape(endpoint_kev: float, grid: np.ndarray) -> np.ndarray:
    """Allowed beta spectrum (no Fermi function) on ``grid`` keV, normalised to 1."""
    me = 510.999
    e = np.clip(grid, 0, endpoint_kev)
    w = np.sqrt(e * (e + 2 * me)) * (e + me) * (endpoint_kev - e) ** 2
    w[grid >= endpoint_kev] = 0
    return w / w.sum()


class SimBetaGamma(SimInstrument):
    """The instrument; ``start()`` runs it in a thread, ``stop()`` ends it."""

    thread_name = "sim-betagamma"
    truth_name = "betagamma"
    corrupt_mask = 0x21

    def __init__(self, line: PtyLine, clock: SimClock, config: BetaGammaSimConfig | None = None) -> None:
        self.config = c = config or BetaGammaSimConfig()
        SimInstrument.__init__(self, line, clock, c.seed)
        self._g_edges = np.linspace(0, c.gamma_span_kev, c.gamma_channels + 1)
        self._b_edges = np.linspace(0, c.beta_span_kev, c.beta_channels + 1)
        self._shapes = {b: self._branch_shape(b) for b in BETA_GAMMA_BRANCHES}
        shape = (c.gamma_channels, c.beta_channels)
        self.hist = np.zeros(shape, dtype=np.int64)
        self.gamma = np.zeros(c.gamma_channels, dtype=np.int64)
        self.beta = np.zeros(c.beta_channels, dtype=np.int64)
        self.running = False
        self.state = "STOPPED"
        self.real_s = self.live_s = 0.0
        self.start_ns: int | None = None
        self.preset_real_s = self.preset_live_s = 0.0
        self.cell: list[Source] = []
        self.samples: list[dict[str, object]] = []
        self.counts_truth: list[_Count] = [_Count()]
        self._last_ns = clock.now_ns()
        self._origin_ns = self._last_ns if c.cycle_origin_ns is None else c.cycle_origin_ns
        self._snapshot: tuple[mca.SnapshotInfo, dict[str, np.ndarray]] | None = None
        self._snap_ids = 0
        # sampler and xenon unit
        self.sample_id = "-"
        # ml, unc, yield, unc of the last sample loaded
        self.xe: tuple[float | None, float | None, float | None, float | None] = (None, None, None, None)
        self._volume_m3 = 0.0
        self._collection_index = 0
        self._flow_failed = False
        self._cooler_failed_ns: int | None = None
        self._mains_lost_ns: int | None = None
        self._vanish: tuple[int, float] | None = None  # (chunk replies to let through first, down_s)
        self._parser = mca.CommandParser()
        self.commands = 0

    # -- geometry of the response ------------------------------------------------------------------
    def gamma_efficiency(self, energy_kev: float) -> float:
        e, eff = zip(*self.config.gamma_efficiency, strict=True)
        return float(np.interp(energy_kev, e, eff))

    def _gamma_peak(self, energy_kev: float) -> np.ndarray:
        k = self.config.gamma_fwhm_81_kev / math.sqrt(81.0)
        return gaussian_in_channels(self._g_edges, energy_kev, k * math.sqrt(energy_kev))

    def _electron(self, branch: Branch) -> np.ndarray:
        """Electron energy deposited, per beta channel, for one decay (area 1 inside the span)."""
        k = self.config.beta_fwhm_200_kev / math.sqrt(199.56)
        if branch.electron == "ce":
            fwhm = k * math.sqrt(branch.electron_kev)
            return gaussian_in_channels(self._b_edges, branch.electron_kev, fwhm)
        grid = np.arange(0.5, branch.electron_kev, 1.0)
        weights = _beta_shape(branch.electron_kev, grid)
        groups = len(grid) // 4  # smear in 4 keV steps: finer changes nothing at these resolutions
        centres = grid[:groups * 4].reshape(groups, 4).mean(axis=1)
        out = np.zeros(self.config.beta_channels)
        for e, w in zip(centres, weights[:groups * 4].reshape(groups, 4).sum(axis=1), strict=True):
            out += w * gaussian_in_channels(self._b_edges, e, k * math.sqrt(e))
        return out

    def _branch_shape(self, b: Branch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(histogram, gamma singles, beta singles) expected per decay of ``b.nuclide``: the branch's
        fraction times the gamma and beta efficiencies times the two shapes (the fraction once)."""
        g = b.fraction * self.gamma_efficiency(b.photon_kev) * self._gamma_peak(b.photon_kev)
        e = b.fraction * self.config.beta_efficiency * self._electron(b)
        return np.outer(g, e) / b.fraction, g, e

    def coincidence_response(self, branch: Branch) -> np.ndarray:
        """Coincidence counts per channel (gamma rows, beta columns) expected per decay of the branch's
        nuclide through this branch, without dead time: what a calibration source would measure."""
        return self._shapes[branch][0].copy()

    # -- control from tests and the harness ----------------------------------------------------------
    def load_sample(self, sample_id: str, activities_bq: dict[str, float], *, xe_ml: float = 1.0,
                    xe_ml_unc: float = 0.09, xe_yield: float = 0.63, xe_yield_unc: float = 0.05) -> None:
        """The xenon unit transfers a processed sample into the cell (activities at this data time)."""
        for name in activities_bq:
            nuclide(name)
        with self._lock:
            now = self.clock.now_ns()
            self._advance(now)
            yield_factor = self._trap_yield_factor(now)
            loaded = {k: v * yield_factor for k, v in activities_bq.items()}
            self.cell += [Source(k, v, now) for k, v in loaded.items()]
            self.cell.append(Source("Rn-222", self.config.radon_bq, now))
            self.sample_id = sample_id
            self.xe = (xe_ml * yield_factor, xe_ml_unc, xe_yield * yield_factor, xe_yield_unc)
            self.samples.append({"sample_id": sample_id, "loaded_ns": now, "activities_bq": loaded,
                                 "xe_ml": self.xe[0], "xe_yield": self.xe[2],
                                 "collection_volume_m3": self._volume_m3})

    def evacuate(self) -> None:
        """Pump the cell out; ``memory_fraction`` of the xenon stays (the memory effect), radon goes."""
        with self._lock:
            now = self.clock.now_ns()
            self._advance(now)
            f = self.config.memory_fraction
            self.cell = [Source(s.nuclide, f * s.activity_at(now), now) for s in self.cell
                         if s.nuclide.startswith("Xe") and f > 0]
            residue = {s.nuclide: s.activity_bq for s in self.cell}
            self.samples.append({"evacuated_ns": now, "residue_bq": residue})

    def begin_count(self, preset_real_s: float) -> None:
        """Clear and start a count of ``preset_real_s`` as the line protocol's RST, PRES:REAL and ACQ:START
        would, for harnesses that drive the instrument without a line (fixture generators, benches)."""
        with self._lock:
            self._advance(self.clock.now_ns())
            self.running, self.state = False, "STOPPED"
            self.preset_real_s, self.preset_live_s = preset_real_s, 0.0
            self._clear()
            self.running, self.state = True, "RUNNING"
            self.start_ns = self.counts_truth[-1].first_start_ns = self.clock.now_ns()

    def read_count(self) -> tuple[dict[str, np.ndarray], float, float, int | None]:
        """The arrays (HIST, GSGL, BSGL), real and live seconds and start of the count so far."""
        with self._lock:
            self._advance(self.clock.now_ns())
            arrays = {"HIST": self.hist.copy(), "GSGL": self.gamma.copy(), "BSGL": self.beta.copy()}
            return arrays, self.real_s, self.live_s, self.start_ns

    def fail_cooler(self) -> None:
        with self._lock:
            self._cooler_failed_ns = self.clock.now_ns()
            self._fault("cooler_failure")

    def fail_flow(self) -> None:
        with self._lock:
            self._advance(self.clock.now_ns())
            self._flow_failed = True
            self._fault("flow_failure")

    def lose_mains(self, lost: bool = True) -> None:
        """Mains power fails (the unit runs on its UPS) or, with ``lost=False``, comes back."""
        with self._lock:
            self._mains_lost_ns = self.clock.now_ns() if lost else None
            self._fault("mains_lost" if lost else "mains_restored")

    def ups_charge_pct(self, t_ns: int) -> float:
        if self._mains_lost_ns is None:
            return 100.0
        hours = max(0, t_ns - self._mains_lost_ns) / 3600e9
        return max(0.0, 100.0 * (1 - hours / self.config.ups_hours))

    def vanish_during_readout(self, after_chunks: int, down_s: float) -> None:
        """The port disappears in the middle of the chunk reply after ``after_chunks`` good ones."""
        self._vanish = (after_chunks, down_s)

    # -- physics -----------------------------------------------------------------------------------
    def trap_temp_c(self, t_ns: int) -> float:
        c = self.config
        if self._cooler_failed_ns is None:
            return c.trap_temp_c
        hours = max(0, t_ns - self._cooler_failed_ns) / 3600e9
        return min(c.ambient_c, c.trap_temp_c + c.trap_warming_c_per_h * hours)

    def _trap_yield_factor(self, t_ns: int) -> float:
        """A warm trap holds less xenon: full below the nominal temperature, none at ambient."""
        c = self.config
        return float(np.clip((c.ambient_c - self.trap_temp_c(t_ns)) / (c.ambient_c - c.trap_temp_c), 0, 1))

    def _advance(self, now_ns: int) -> None:
        t0 = self._last_ns
        if now_ns <= t0:
            return
        self._last_ns = now_ns
        self._advance_sampler(t0, now_ns)
        if not self.running or self.stuck:
            return
        t = t0
        while t < now_ns and self.running:
            step = min(now_ns - t, MAX_STEP_NS)
            if self.preset_real_s:
                step = min(step, max(0, round((self.preset_real_s - self.real_s) * NS_PER_S)))
            if self.preset_live_s:  # live time runs slower than real: bound by it, stop when reached
                step = min(step, max(0, round((self.preset_live_s - self.live_s) * NS_PER_S)))
            if step > 0:
                self._count(t, t + step)
                t += step
            real_done = self.preset_real_s and self.real_s >= self.preset_real_s - 1e-6
            live_done = self.preset_live_s and self.live_s >= self.preset_live_s - 1e-6
            if real_done or live_done:
                self.running, self.state = False, "DONE"
            elif step == 0:
                break

    def _count(self, t0: int, t1: int) -> None:
        c = self.config
        dt = (t1 - t0) / NS_PER_S
        live_fraction = 1.0
        truth = self.counts_truth[-1]
        if not self.hv_dropped:
            hist = np.full(self.hist.shape, c.coincidence_background_cps * dt / self.hist.size)
            gamma = np.full(self.gamma.shape, c.gamma_background_cps * dt / self.gamma.size)
            beta = np.full(self.beta.shape, c.beta_background_cps * dt / self.beta.size)
            decays = {f"{i}:{s.nuclide}": s.decays(t0, t1) for i, s in enumerate(self.cell)}
            for branch, (h, g, b) in self._shapes.items():
                n = sum(d for key, d in decays.items() if key.split(":", 1)[1] == branch.nuclide)
                if n:
                    hist += n * h
                    gamma += n * g
                    beta += n * b
            rate = (gamma.sum() + beta.sum()) / dt
            live_fraction = 1.0 / (1.0 + rate * c.dead_time_s)
            self.hist += self._rng.poisson(hist * live_fraction)
            self.gamma += self._rng.poisson(gamma * live_fraction)
            self.beta += self._rng.poisson(beta * live_fraction)
            for key, n in decays.items():
                truth.decays_live[key] = truth.decays_live.get(key, 0.0) + n * live_fraction
        self.real_s += dt
        self.live_s += dt * live_fraction
        truth.real_s += dt
        truth.live_s += dt * live_fraction

    def _advance_sampler(self, t0: int, t1: int) -> None:
        c = self.config
        period = c.collect_s + c.process_s + c.transfer_s
        while t0 < t1:
            index = int((t0 - self._origin_ns) / NS_PER_S // period)
            if index != self._collection_index:
                self._collection_index, self._volume_m3 = index, 0.0
            cycle_start = self._origin_ns + round(index * period * NS_PER_S)
            collect_end = cycle_start + round(c.collect_s * NS_PER_S)
            cycle_end = cycle_start + round(period * NS_PER_S)
            stop = min(t1, cycle_end)
            if not self._flow_failed and t0 < collect_end:
                self._volume_m3 += c.flow_m3h * (min(stop, collect_end) - t0) / NS_PER_S / 3600
            t0 = stop

    def stage(self, t_ns: int) -> str:
        c = self.config
        period = c.collect_s + c.process_s + c.transfer_s
        into = ((t_ns - self._origin_ns) / NS_PER_S) % period
        for name, attr in STAGES:
            into -= getattr(c, attr)
            if into < 0:
                return name
        return "COLLECT"

    def soh(self) -> mca.Soh:
        c = self.config
        now = self.clock.now_ns()
        collecting = self.stage(now) == "COLLECT"
        if self._flow_failed:
            flow, sampler = 0.0, "FAIL"
        elif collecting:
            flow, sampler = c.flow_m3h + c.flow_sd_m3h * float(self._rng.standard_normal()), "RUNNING"
        else:
            flow, sampler = 0.0, "STOPPED"
        dp = c.filter_dp_hpa + c.filter_dp_per_m3 * self._volume_m3 if flow > 0 else 0.0
        xe_ml, xe_unc, xe_yield, yield_unc = self.xe
        return mca.Soh(time_ns=now, hv_v=1.0 if self.hv_dropped else c.hv_v,
                       detector_temp_c=c.detector_temp_c, flow_m3h=round(flow, 4),
                       filter_dp_hpa=round(dp, 3), volume_m3=round(self._volume_m3, 4),
                       sampler=sampler, stage=self.stage(now), sample_id=self.sample_id,
                       xe_volume_ml=xe_ml, xe_volume_unc_ml=xe_unc, xe_yield=xe_yield, xe_yield_unc=yield_unc,
                       trap_temp_c=round(self.trap_temp_c(now), 2),
                       power="MAIN" if self._mains_lost_ns is None else "UPS",
                       ups_charge_pct=round(self.ups_charge_pct(now), 1))

    # -- truth -------------------------------------------------------------------------------------
    def truth(self) -> dict[str, object]:
        c = self.config
        return {
            "instrument": "sim beta-gamma analyser + air sampler + xenon unit (line protocol)",
            "cell": [{"nuclide": s.nuclide, "activity_bq": s.activity_bq, "reference_ns": s.reference_ns}
                     for s in self.cell],
            "samples": self.samples,
            "counts": [{"first_start_ns": k.first_start_ns, "real_s": k.real_s, "live_s": k.live_s,
                        "decays_live": k.decays_live} for k in self.counts_truth],
            "branches": [{"nuclide": b.nuclide, "fraction": b.fraction, "electron": b.electron,
                          "electron_kev": b.electron_kev, "photon_kev": b.photon_kev,
                          "gamma_efficiency": self.gamma_efficiency(b.photon_kev),
                          "beta_efficiency": c.beta_efficiency} for b in BETA_GAMMA_BRANCHES],
            "spans_kev": {"gamma": c.gamma_span_kev, "beta": c.beta_span_kev},
            "faults": self.faults,
        }

    # -- command loop ------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                data = self.line.read(timeout=0.05)
                if not data:
                    self._parser.lines.flush()
                    continue
                for event in self._parser.feed(data):
                    if isinstance(event, mca.CommandRejected):
                        self._send(mca.encode_error(event.tag, event.code, event.message))
                        continue
                    self.commands += 1
                    cmd = event.command
                    with self._lock:
                        self._advance(self.clock.now_ns())
                        try:
                            reply = mca.encode_ok(cmd.tag, self._execute(cmd))
                        except mca.McaProtocolError as exc:
                            reply = mca.encode_error(cmd.tag, exc.code, str(exc))
                    self._send(reply, chunk=cmd.name == mca.CHUNK)
        except Exception:
            log.exception("simulated beta-gamma system crashed")
            raise

    def _status(self) -> mca.AcquisitionStatus:
        return mca.AcquisitionStatus(self.state, self.real_s, self.live_s, self.start_ns)

    def _execute(self, cmd: mca.Command) -> str:
        name, tag = cmd.name, cmd.tag
        if name == mca.IDN:
            return f"IMS-SIM,BG-256,{self.config.serial},1.0"
        if name == mca.RST:
            self.running, self.state = False, "STOPPED"
            self._clear()
            self.preset_real_s = self.preset_live_s = 0.0
            self._snapshot = None
        elif name in (mca.PRESET_REAL, mca.PRESET_LIVE):
            value = mca.parse_seconds(tag, cmd.args[0])
            if self.running:
                raise mca.McaProtocolError("presets cannot change during an acquisition",
                                           mca.E_SETTINGS_CONFLICT, tag)
            if name == mca.PRESET_REAL:
                self.preset_real_s = value
            else:
                self.preset_live_s = value
        elif name == mca.PRESETS:
            return f"REAL={self.preset_real_s:.3f} LIVE={self.preset_live_s:.3f}"
        elif name == mca.START:
            if self.hv_dropped:
                raise mca.McaProtocolError("detector high voltage is off", mca.E_HARDWARE, tag)
            if not self.running:
                self.running, self.state = True, "RUNNING"
                if self.start_ns is None:
                    self.start_ns = self.clock.now_ns()
                    self.counts_truth[-1].first_start_ns = self.start_ns
        elif name == mca.STOP:
            if self.running:
                self.running, self.state = False, "STOPPED"
        elif name == mca.CLEAR:
            self._clear()
        elif name == mca.ACQ_STATUS:
            return mca.format_acquisition_status(self._status())
        elif name == mca.SNAP:
            self._snap_ids += 1
            arrays = {"HIST": self.hist.astype(np.uint32), "GSGL": self.gamma.astype(np.uint32),
                      "BSGL": self.beta.astype(np.uint32)}
            specs = {k: mca.ArraySpec(v.shape, mca.chunks_for(v.size)) for k, v in arrays.items()}
            info = mca.SnapshotInfo(self._snap_ids, self._status(), specs, mca.CHUNK_CELLS)
            self._snapshot = (info, arrays)
            return mca.format_snapshot(info)
        elif name == mca.CHUNK:
            return self._chunk(tag, *cmd.args)
        elif name == mca.SOH:
            return mca.format_soh(self.soh())
        return ""

    def _chunk(self, tag: int, snap_text: str, array: str, index_text: str) -> str:
        try:
            snap_id, index = int(snap_text), int(index_text)
        except ValueError:
            raise mca.McaProtocolError("snapshot and chunk index must be integers", mca.E_SYNTAX,
                                       tag) from None
        if self._snapshot is None or self._snapshot[0].snap_id != snap_id:
            raise mca.McaProtocolError(f"snapshot {snap_id} is not the latest", mca.E_STALE_DATA, tag)
        info, arrays = self._snapshot
        if array not in arrays or not 0 <= index < info.arrays[array].chunks:
            raise mca.McaProtocolError(f"no chunk {array}[{index}] in snapshot {snap_id}",
                                       mca.E_OUT_OF_RANGE, tag)
        first, cells = mca.chunk_of(arrays[array], index, info.chunk_cells)
        return mca.format_chunk(snap_id, array, index, first, cells)

    def _clear(self) -> None:
        self.hist[:] = 0
        self.gamma[:] = 0
        self.beta[:] = 0
        self.real_s = self.live_s = 0.0
        self.start_ns = self.clock.now_ns() if self.running else None
        self.counts_truth.append(_Count(first_start_ns=self.start_ns))

    def _send(self, line: bytes, *, chunk: bool = False) -> None:
        line = self._on_the_line(line)
        if chunk and self._vanish is not None:
            before, down_s = self._vanish
            if before > 0:
                self._vanish = (before - 1, down_s)
            else:
                self._vanish = None
                self._vanish_halfway(line, down_s)
                return
        self.line.write(line)
