"""A simulated Amptek PX5-HPGe speaking the DP5 packet protocol on a ``PtyLine``.

It counts a Poisson spectrum on data time (``SimClock``) from known sources: expected counts per
channel come from ``gamma_response`` (calibration, resolution, efficiency, continuum) times the decays
of each source during the live time, plus a detector continuum and a supported radon/thoron progeny
background. Dead time is non-paralysable: live fraction 1/(1 + R tau) for input rate R; the fast
counter sees every pulse, the slow counter what was recorded, so slow/fast is the live fraction as on
the real unit. The spectrum is brought up to date only when the host asks (each request advances it
to ``clock.now_ns()``, in steps of at most an hour so decay and faults are followed).

Settings understood: ``MCAC`` (256-8192), ``PRET`` (preset accumulation time, s or OFF), ``PRER``
(preset real time), ``HVSE`` (HV set, V or OFF); others in ``ACCEPTED`` are stored and read back;
anything else is refused with ``UNRECOGNIZED_COMMAND``, a bad value with ``BAD_PARAMETER``.

Faults: ``drop_hv`` (the HV supply collapses: no more counts, HV reads near 0), ``fail_cooler`` (the
crystal warms: resolution degrades above 100 K, the HV is inhibited above 110 K), ``stick`` (the
acquisition hangs: MCA still enabled, times and counts frozen), ``inject_noise`` and
``corrupt_next_reply`` (line garbage and a damaged packet; ``PtyLine`` faults add bit errors),
``vanish_during_next_spectrum`` (the port disappears half way through a spectrum packet and comes back
after a while). ``truth`` holds what was really counted; ``write_truth`` puts it beside the run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from digitizer import dp5
from hil.gamma_response import GammaResponse, exponential_background
from hil.nuclides import Source, radon_thoron_progeny
from hil.serialport import PtyLine
from hil.simclock import SimClock
from hil.siminstrument import SimInstrument
from rn_analysis.library import nuclide
from timeunits import NS_PER_S

log = logging.getLogger(__name__)

ACCEPTED = {"MCAC", "PRET", "PRER", "PREC", "HVSE", "GAIN", "TPEA", "THSL", "THFA", "CLCK", "AINP", "TECS",
            "RESC", "PURE", "GATE", "MCAS"}
MAX_STEP_NS = 3600 * NS_PER_S
HV_INHIBIT_K = 110.0
WARM_RESOLUTION_K = 100.0


def default_background(reference_ns: int) -> list[Source]:
    """What an HPGe in a lead shield sees without a sample: K-40 and radon/thoron progeny, constant."""
    return [Source("K-40", 40.0, reference_ns, supported=True),
            *radon_thoron_progeny(3.0, 0.5, reference_ns, supported=True)]


@dataclass
class Dp5SimConfig:
    serial_number: int = 5501
    sources: list[Source] = field(default_factory=list)  # the sample
    background: list[Source] | None = None  # None: ``default_background``
    continuum_cps: float = 1.5  # detector continuum (cosmic, electronics), whole spectrum
    continuum_scale_kev: float = 250.0
    dead_time_s: float = 8e-6
    hv_set_v: float = 3000.0
    crystal_k: float = 85.0
    warming_k_per_h: float = 20.0
    board_c: int = 38
    seed: int = 0


@dataclass
class _Count:
    """Ground truth of the counts since the last clear."""

    first_enable_ns: int | None = None
    real_s: float = 0.0
    live_s: float = 0.0
    decays_live: dict[str, float] = field(default_factory=dict)  # per source label: decays while live


class SimDp5(SimInstrument):
    """The firmware; ``start()`` runs it in a thread, ``stop()`` ends it."""

    thread_name = "sim-dp5"
    truth_name = "dp5"

    def __init__(self, line: PtyLine, clock: SimClock, config: Dp5SimConfig | None = None,
                 response: GammaResponse | None = None) -> None:
        self.config = config or Dp5SimConfig()
        SimInstrument.__init__(self, line, clock, self.config.seed)
        self.response = response or GammaResponse()
        now = clock.now_ns()
        self.background = self.config.background if self.config.background is not None \
            else default_background(now)
        self._continuum = exponential_background(self.response.calibration.edges(self.response.channels),
                                                 self.config.continuum_cps, self.config.continuum_scale_kev)
        self.settings: dict[str, str] = {"MCAC": "8192", "PRET": "OFF", "PRER": "OFF", "PREC": "OFF",
                                         "HVSE": f"{self.config.hv_set_v:.0f}", "GAIN": "10.0"}
        self.counts = np.zeros(self.response.channels, dtype=np.int64)
        self.enabled = False
        self.acc_s = self.real_s = 0.0
        self.fast = self.slow = 0
        self.preset_reached = False
        self._first_status = True
        self._last_ns = now
        self.truth_counts: list[_Count] = [_Count()]
        self._cooler_failed_ns: int | None = None
        self._vanish_s: float | None = None
        self._parser = dp5.PacketParser.for_device()
        self.requests = 0

    # -- control from tests ------------------------------------------------------------------------
    def begin_count(self, preset_real_s: float, channels: int = 8192) -> None:
        """Clear and start a count of ``preset_real_s`` in ``channels`` channels, as MCAC, PRER, clear and
        enable requests would, for harnesses that drive the unit without a line."""
        with self._lock:
            self._advance(self.clock.now_ns())
            self.settings.update(MCAC=str(channels), PRER=f"{preset_real_s:.1f}", PRET="OFF")
            self._clear()
            self.enabled, self.preset_reached = True, False
            self.truth_counts[-1].first_enable_ns = self.clock.now_ns()

    def read_count(self) -> tuple[np.ndarray, dp5.Status]:
        """The spectrum so far and the status sent with it (real time, live time from the counters)."""
        with self._lock:
            self._advance(self.clock.now_ns())
            return self.spectrum(), self.status()

    def fail_cooler(self) -> None:
        with self._lock:
            self._advance(self.clock.now_ns())
            self._cooler_failed_ns = self.clock.now_ns()
            self._fault("cooler_failure", warming_k_per_h=self.config.warming_k_per_h)

    def vanish_during_next_spectrum(self, down_s: float) -> None:
        """The port disappears half way through the next spectrum packet; back after ``down_s`` real s."""
        self._vanish_s = down_s

    # -- physics -----------------------------------------------------------------------------------
    def crystal_k(self, t_ns: int) -> float:
        if self._cooler_failed_ns is None:
            return self.config.crystal_k
        hours = max(0, t_ns - self._cooler_failed_ns) / 3600e9
        return min(295.0, self.config.crystal_k + self.config.warming_k_per_h * hours)

    def hv_inhibited(self, t_ns: int) -> bool:
        return self.crystal_k(t_ns) > HV_INHIBIT_K

    def high_voltage(self, t_ns: int) -> float:
        if self.hv_dropped or self.hv_inhibited(t_ns) or self.settings.get("HVSE") == "OFF":
            return 1.5
        return float(self.settings.get("HVSE", self.config.hv_set_v))

    def _preset_s(self, name: str) -> float | None:
        text = self.settings.get(name, "OFF")
        value = None if text == "OFF" else float(text)
        return value if value else None

    def _advance(self, now_ns: int) -> None:
        """Count from the last update to ``now_ns`` (or to a preset, which then stops the MCA)."""
        t = self._last_ns
        self._last_ns = max(t, now_ns)
        if not self.enabled or self.stuck:
            return
        while t < now_ns and self.enabled:
            step = min(now_ns - t, MAX_STEP_NS)
            for limit, done in self._presets():
                step = min(step, max(0, round((limit - done) * NS_PER_S)))
            if step > 0:
                self._count(t, t + step)
                t += step
            if any(done >= limit - 1e-6 for limit, done in self._presets()):
                self.enabled = False
                self.preset_reached = True

    def _presets(self) -> list[tuple[float, float]]:
        """(preset, elapsed) for the presets in force: accumulation time, real time."""
        pairs = [(self._preset_s("PRET"), self.acc_s), (self._preset_s("PRER"), self.real_s)]
        return [(limit, done) for limit, done in pairs if limit is not None]

    def _count(self, t0: int, t1: int) -> None:
        dt = (t1 - t0) / NS_PER_S
        truth = self.truth_counts[-1]
        live_fraction = 1.0
        if abs(self.high_voltage(t0)) > 100:
            warm = max(0.0, self.crystal_k(t0) - WARM_RESOLUTION_K)
            fwhm_factor = 1.0 + warm / 15.0
            expected = self._continuum * dt
            decays: dict[str, float] = {}
            for i, src in enumerate([*self.config.sources, *self.background]):
                n = src.decays(t0, t1)
                decays[f"{i}:{src.nuclide}"] = n
                expected = expected + n * self.response.per_decay(nuclide(src.nuclide), fwhm_factor)
            rate = float(expected.sum()) / dt
            live_fraction = 1.0 / (1.0 + rate * self.config.dead_time_s)
            new = self._rng.poisson(expected * live_fraction)
            self.counts += new
            recorded = int(new.sum())
            self.slow += recorded
            self.fast += recorded + int(self._rng.poisson(rate * dt * (1.0 - live_fraction)))
            for key, n in decays.items():
                truth.decays_live[key] = truth.decays_live.get(key, 0.0) + n * live_fraction
        self.acc_s += dt
        self.real_s += dt
        truth.real_s += dt
        truth.live_s += dt * live_fraction

    def status(self) -> dp5.Status:
        now = self.clock.now_ns()
        first, self._first_status = self._first_status, False
        return dp5.Status(
            fast_count=self.fast, slow_count=self.slow, gp_count=0, accumulation_time_s=self.acc_s,
            real_time_s=self.real_s, reported_live_time_s=None, firmware="6.07", firmware_build=3,
            fpga="6.13", serial_number=self.config.serial_number, high_voltage_v=self.high_voltage(now),
            detector_temperature_k=self.crystal_k(now), board_temperature_c=self.config.board_c,
            preset_real_time_reached=self.preset_reached and self._preset_s("PRER") is not None,
            mca_enabled=self.enabled, preset_count_reached=False, configured=True,
            first_since_reboot=first, device_type="PX5", hpge_hv_inhibited=self.hv_inhibited(now))

    def spectrum(self) -> np.ndarray:
        """The counts in ``MCAC`` channels (the native 8192 summed in groups)."""
        channels = int(self.settings["MCAC"])
        return self.counts.reshape(channels, -1).sum(axis=1)

    def _clear(self) -> None:
        self.counts[:] = 0
        self.acc_s = self.real_s = 0.0
        self.fast = self.slow = 0
        self.preset_reached = False
        self.truth_counts.append(_Count())

    # -- truth -------------------------------------------------------------------------------------
    def truth(self) -> dict[str, object]:
        sources = [*self.config.sources, *self.background]
        counts = []
        for c in self.truth_counts:
            lines = []
            for key, n in c.decays_live.items():
                src = sources[int(key.split(":")[0])]
                for line in nuclide(src.nuclide).gammas:
                    lines.append({"source": key, "energy_kev": line.energy_kev,
                                  "peak_counts": n * self.response.peak_counts_per_decay(line)})
            counts.append({"first_enable_ns": c.first_enable_ns, "real_s": c.real_s, "live_s": c.live_s,
                           "decays_live": c.decays_live, "full_energy_peaks": lines})
        return {
            "instrument": "sim PX5-HPGe (DP5 protocol)",
            "sources": [{"label": f"{i}:{s.nuclide}", "nuclide": s.nuclide, "activity_bq": s.activity_bq,
                         "reference_ns": s.reference_ns, "supported": s.supported,
                         "sample": i < len(self.config.sources)} for i, s in enumerate(sources)],
            "calibration": {"energy_coefficients": list(self.response.calibration.coefficients),
                            "fwhm_a": self.response.resolution.a, "fwhm_b": self.response.resolution.b,
                            "efficiency_e0_kev": self.response.efficiency.e0_kev,
                            "efficiency_terms": list(self.response.efficiency.terms),
                            "native_channels": self.response.channels},
            "dead_time_s": self.config.dead_time_s,
            "counts": counts,
            "faults": self.faults,
        }

    # -- firmware loop -----------------------------------------------------------------------------
    def _run(self) -> None:
        last_rx = time.monotonic()
        try:
            while not self._stop.is_set():
                data = self.line.read(timeout=0.05)
                if data:
                    last_rx = time.monotonic()
                    for event in self._parser.feed(data):
                        self._on_event(event)
                elif self._parser.buffered and time.monotonic() - last_rx > 0.2:
                    self._parser.flush()  # a partial request nobody will finish
        except Exception:
            log.exception("simulated DP5 crashed")
            raise

    def _on_event(self, event: dp5.Event) -> None:
        if isinstance(event, dp5.BadChecksum):
            self._send(dp5.encode_ack(dp5.AckCode.CHECKSUM_ERROR))
        elif isinstance(event, dp5.Received) and isinstance(event.message, dp5.Request):
            self.requests += 1
            with self._lock:
                self._advance(self.clock.now_ns())
                reply = self._answer(event.message)
            self._send(reply, spectrum=event.message.pid1 == dp5.REQ_SPECTRUM[0])

    def _answer(self, req: dp5.Request) -> bytes:
        pid = req.pid
        if pid == dp5.REQ_STATUS:
            return dp5.encode_status_response(self.status())
        if req.pid1 == dp5.REQ_SPECTRUM[0] and 1 <= req.pid2 <= 4:
            with_status = req.pid2 in (3, 4)
            packet = dp5.encode_spectrum_response(self.spectrum(), self.status() if with_status else None)
            if req.pid2 in (2, 4):
                self._clear()
            return packet
        if pid == dp5.REQ_CLEAR_SPECTRUM:
            self._clear()
        elif pid == dp5.REQ_ENABLE_MCA:
            if not self.enabled:
                self.enabled, self.preset_reached = True, False
                if self.truth_counts[-1].first_enable_ns is None:
                    self.truth_counts[-1].first_enable_ns = self.clock.now_ns()
        elif pid == dp5.REQ_DISABLE_MCA:
            self.enabled = False
        elif pid == dp5.REQ_TEXT_CONFIG:
            return self._configure(req.data.decode("ascii", "replace"))
        elif pid == dp5.REQ_TEXT_READBACK:
            names = [n for n in req.data.decode("ascii", "replace").split(";") if n]
            unknown = [n for n in names if n not in self.settings]
            if unknown:
                return dp5.encode_ack(dp5.AckCode.UNRECOGNIZED_COMMAND, f"{unknown[0]};")
            return dp5.encode_config_readback({n: self.settings[n] for n in names})
        else:
            return dp5.encode_ack(dp5.AckCode.PID_ERROR)
        return dp5.encode_ack(dp5.AckCode.OK)

    def _configure(self, text: str) -> bytes:
        try:
            settings = dp5.parse_settings(text)
        except dp5.Dp5FormatError:
            return dp5.encode_ack(dp5.AckCode.BAD_PARAMETER, text[:40])
        for name, value in settings.items():  # check everything before changing anything
            if name not in ACCEPTED:
                return dp5.encode_ack(dp5.AckCode.UNRECOGNIZED_COMMAND, f"{name}={value};")
            if not _valid(name, value):
                return dp5.encode_ack(dp5.AckCode.BAD_PARAMETER, f"{name}={value};")
        if "MCAC" in settings and settings["MCAC"] != self.settings["MCAC"]:
            self._clear()  # a new channel count starts a new spectrum, as on the unit
        self.settings.update(settings)
        return dp5.encode_ack(dp5.AckCode.OK)

    def _send(self, packet: bytes, *, spectrum: bool = False) -> None:
        packet = self._on_the_line(packet)
        if spectrum and self._vanish_s is not None:
            down_s, self._vanish_s = self._vanish_s, None
            self._vanish_halfway(packet, down_s)
            return
        self.line.write(packet)


def _valid(name: str, value: str) -> bool:
    if name == "MCAC":
        return value.isdigit() and int(value) in dp5.CHANNEL_COUNTS
    if name in ("PRET", "PRER", "HVSE"):
        if value == "OFF":
            return True
        try:
            number = float(value)
        except ValueError:
            return False
        return number >= 0 if name != "HVSE" else abs(number) <= 5000
    return True
