"""What a parsed IMS 2.0 data message holds: one class per family of data types.

Times are integer nanoseconds UTC; ``None`` means the message does not carry the value (a block is
absent, or a ``-`` / ``0`` placeholder). ``warnings`` says what the parser tolerated (unknown blocks,
a non-standard ``#Certificate``, an unusual row count); ``write`` ignores it. Equality is identity
(the arrays make field-wise ``==`` ambiguous); compare fields instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .tables import (
    BetaEnergyPoint,
    BgEfficiency,
    EfficiencyPoint,
    EnergyPoint,
    Ratio,
    ResolutionPoint,
    RoiLimits,
)

PHD_TYPES = ("SAMPLEPHD", "BLANKPHD", "DETBKPHD", "GASBKPHD", "CALIBPHD", "QCPHD", "SPIKEPHD", "REGENPHD")
ALERT_TYPES = ("ALERT_FLOW", "ALERT_SYSTEM", "ALERT_TEMP", "ALERT_UPS")
SOH_TYPE = "RMSSOH"
MET_TYPE = "MET"
DATA_TYPES = (*PHD_TYPES, SOH_TYPE, *ALERT_TYPES, MET_TYPE)


@dataclass(frozen=True)
class RawBlock:
    """A block kept verbatim: its ``#`` line and its body lines (line ends removed)."""

    header: str
    lines: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.header.split()[0]


@dataclass(frozen=True, kw_only=True, eq=False)
class MessageBase:
    data_type: str
    msg_id: str
    msg_source: str | None = None
    ref_id: str | None = None  # the rest of a REF_ID line, kept as written
    ims_version: str = "IMS2.0"
    extra_envelope: tuple[str, ...] = ()  # other keyword lines before DATA_TYPE, verbatim
    comment: str | None = None  # lines joined with "\n"
    extra_blocks: tuple[RawBlock, ...] = ()
    warnings: tuple[str, ...] = ()


class CertificateLine(NamedTuple):
    """One nuclide of a ``#Certificate`` (calibration or QC source)."""

    nuclide: str
    half_life: float
    half_life_unit: str
    activity: float
    activity_unc: float
    energy_kev: float
    intensity_pct: float
    electron_mode: str
    electron_max_kev: float
    electron_intensity_pct: float


@dataclass(frozen=True)
class Certificate:
    total_activity: float
    reference_ns: int
    unit: str | None
    lines: tuple[CertificateLine, ...]


@dataclass(frozen=True, kw_only=True, eq=False)
class PhdMessage(MessageBase):
    """Pulse height data: SAMPLEPHD, BLANKPHD, DETBKPHD, GASBKPHD, CALIBPHD, QCPHD, SPIKEPHD, REGENPHD."""

    # #Header
    station: str
    detector: str
    system_type: str  # B beta-gamma, P particulate, G noble gas on HPGe
    sample_geometry: str
    spectrum_qualifier: str  # PREL or FULL
    srid: str
    sample_id: str | None
    detbk_id: str | None = None
    gasbk_id: str | None = None
    transmit_ns: int
    # #Collection
    collection_start_ns: int | None = None
    collection_stop_ns: int | None = None
    air_volume_m3: float | None = None
    # #Acquisition
    acquisition_start_ns: int
    real_time_s: float
    live_time_s: float
    # #Calibration
    calibration_ns: int | None = None
    # #Processing (beta-gamma samples)
    xe_volume_ml: float | None = None
    xe_volume_unc_ml: float | None = None
    xe_yield: float | None = None
    xe_yield_unc: float | None = None
    archive_id: str | None = None
    # #Sample (particulate filter dimensions, mm)
    sample_dimensions_mm: tuple[float, ...] | None = None
    # calibration tables
    g_energy: tuple[EnergyPoint, ...] | None = None
    b_energy: tuple[BetaEnergyPoint, ...] | None = None
    g_resolution: tuple[ResolutionPoint, ...] | None = None
    b_resolution: tuple[ResolutionPoint, ...] | None = None
    roi_limits: tuple[RoiLimits, ...] | None = None
    roi_chan_limits: tuple[RoiLimits, ...] | None = None
    g_efficiency: tuple[EfficiencyPoint, ...] | None = None
    total_efficiency: tuple[EfficiencyPoint, ...] | None = None
    bg_efficiency: tuple[BgEfficiency, ...] | None = None
    ratios: tuple[Ratio, ...] | None = None
    # spectra; first_channel None = the default numbering of the system type (0 for B, else 1)
    g_spectrum: np.ndarray | None = None
    g_energy_span_kev: float | None = None
    g_first_channel: int | None = None
    b_spectrum: np.ndarray | None = None
    b_energy_span_kev: float | None = None
    b_first_channel: int | None = None
    histogram: np.ndarray | None = None  # gamma rows x beta columns
    histogram_gamma_span_kev: float | None = None
    histogram_beta_span_kev: float | None = None
    certificate: Certificate | RawBlock | None = None


class SohRow(NamedTuple):
    """One interval of an RMSSOH block: the block's values (None for ``-``), then start and length."""

    values: tuple[float | int | str | None, ...]
    start_ns: int
    interval_s: int


@dataclass(frozen=True)
class Chromatogram:
    srid: str | None
    step_s: float
    first_index: int
    values: np.ndarray  # int64 detector readings, one per step


@dataclass(frozen=True, kw_only=True, eq=False)
class SohMessage(MessageBase):
    """RMSSOH: station state of health over a period (project layout, docs/ims2.md)."""

    data_type: str = SOH_TYPE
    station: str
    detector: str | None
    system_type: str
    period_start_ns: int
    period_end_ns: int
    transmit_ns: int
    blocks: dict[str, tuple[SohRow, ...]]  # '#DetEnv' -> rows, in the order written
    chromatograms: tuple[Chromatogram, ...] = ()


class MetRow(NamedTuple):
    start_ns: int
    end_ns: int
    temperature_c: float | None
    wind_direction_deg: float | None
    wind_speed_m_s: float | None
    pressure_hpa: float | None
    relative_humidity_pct: float | None
    rain_mm: float | None


@dataclass(frozen=True, kw_only=True, eq=False)
class MetMessage(MessageBase):
    """MET: meteorological rows over a period (project layout, docs/ims2.md)."""

    data_type: str = MET_TYPE
    station: str
    detector: str | None
    system_type: str | None
    period_start_ns: int
    period_end_ns: int
    transmit_ns: int
    rows: tuple[MetRow, ...]


@dataclass(frozen=True, kw_only=True, eq=False)
class AlertMessage(MessageBase):
    """ALERT_FLOW / ALERT_SYSTEM / ALERT_TEMP / ALERT_UPS: one alert (project layout, docs/ims2.md)."""

    station: str
    detector: str | None
    system_type: str
    transmit_ns: int
    alert_ns: int
    category: str  # FLOW, SYSTEM, TEMP or UPS, as in the data type
    condition: str  # LOW, HIGH, FAIL, ON_BATTERY, RESTORED, ...
    state: str  # RAISED or CLEARED
    subject: str | None
    value: float | None
    limit: float | None
    unit: str | None
    text: str = ""


Message = PhdMessage | SohMessage | MetMessage | AlertMessage
