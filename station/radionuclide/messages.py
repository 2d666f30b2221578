"""IMS 2.0 messages of one radionuclide system, built with gci_link.ims2, and the check they pass before
anything stores them.

``render`` writes a message and reads the text back: a builder bug (a value that cannot be written, a
text that would not parse) raises ``Ims2FormatError`` here, and the cycle quarantines the message with
an alarm instead of sending something the IDC cannot read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gci_link import ims2
from station.radionuclide.calibration import Calibration
from station.radionuclide.ids import format_msg_id, to_tenth
from station.radionuclide.instruments import Readout
from station.radionuclide.schedule import CountKind
from station.radionuclide.settings import NOBLE_GAS, RadionuclideConfig


@dataclass(frozen=True, slots=True)
class Collection:
    start_ns: int
    stop_ns: int
    air_volume_m3: float


@dataclass(frozen=True, slots=True)
class Processing:
    """Stable xenon of the sample in the cell, as the xenon unit reports it."""

    xe_volume_ml: float
    xe_volume_unc_ml: float
    xe_yield: float
    xe_yield_unc: float


@dataclass(frozen=True, slots=True)
class Header:
    """The ids in a PHD #Header (measurement ids None are written 0)."""

    srid: str
    sample_id: str
    detbk_id: str | None
    gasbk_id: str | None


@dataclass(frozen=True, slots=True)
class AlertText:
    category: str  # FLOW, TEMP, SYSTEM, UPS
    condition: str  # LOW, HIGH, FAIL, ON_BATTERY, ...
    state: str  # RAISED or CLEARED
    subject: str
    value: float | None
    limit: float | None
    unit: str | None
    text: str


class MessageBuilder:
    def __init__(self, config: RadionuclideConfig) -> None:
        self.config = config

    def _envelope(self, msg_ms: int, transmit_ns: int) -> dict:
        return {"msg_id": format_msg_id(msg_ms), "msg_source": self.config.station,
                "transmit_ns": to_tenth(transmit_ns)}

    def phd(self, kind: CountKind, qualifier: str, header: Header, acquisition_start_ns: int,
            readout: Readout, *, msg_ms: int, transmit_ns: int, collection: Collection | None = None,
            processing: Processing | None = None, comment: str | None = None) -> ims2.PhdMessage:
        c = self.config
        beta_gamma = c.kind == NOBLE_GAS
        return ims2.PhdMessage(
            data_type=kind.data_type,
            **self._envelope(msg_ms, transmit_ns),
            comment=comment,
            station=c.station,
            detector=c.detector_code,
            system_type=c.system_type,
            sample_geometry=c.geometry,
            spectrum_qualifier=qualifier,
            srid=header.srid,
            sample_id=header.sample_id,
            detbk_id=header.detbk_id,
            gasbk_id=header.gasbk_id,
            collection_start_ns=None if collection is None else collection.start_ns,
            collection_stop_ns=None if collection is None else collection.stop_ns,
            air_volume_m3=None if collection is None else collection.air_volume_m3,
            acquisition_start_ns=to_tenth(acquisition_start_ns),
            real_time_s=round(readout.real_s, 2),
            live_time_s=round(readout.live_s, 2),
            xe_volume_ml=None if processing is None else processing.xe_volume_ml,
            xe_volume_unc_ml=None if processing is None else processing.xe_volume_unc_ml,
            xe_yield=None if processing is None else processing.xe_yield,
            xe_yield_unc=None if processing is None else processing.xe_yield_unc,
            **calibration_blocks(c.calibration),
            calibration_ns=None if c.calibration.time_ns is None else to_tenth(c.calibration.time_ns),
            g_spectrum=readout.gamma,
            g_energy_span_kev=c.spectra.g_energy_span_kev,
            b_spectrum=readout.beta if beta_gamma else None,
            b_energy_span_kev=c.spectra.b_energy_span_kev if beta_gamma else None,
            histogram=readout.histogram if beta_gamma else None,
            histogram_gamma_span_kev=c.spectra.g_energy_span_kev if beta_gamma else None,
            histogram_beta_span_kev=c.spectra.b_energy_span_kev if beta_gamma else None,
        )

    def rmssoh(self, period: tuple[int, int], blocks: dict[str, tuple[ims2.SohRow, ...]], *, msg_ms: int,
               transmit_ns: int) -> ims2.SohMessage:
        c = self.config
        return ims2.SohMessage(**self._envelope(msg_ms, transmit_ns), station=c.station,
                               detector=c.detector_code, system_type=c.system_type,
                               period_start_ns=period[0], period_end_ns=period[1], blocks=blocks)

    def alert(self, alert: AlertText, alert_ns: int, *, msg_ms: int, transmit_ns: int) -> ims2.AlertMessage:
        c = self.config
        return ims2.AlertMessage(
            data_type=f"ALERT_{alert.category}", **self._envelope(msg_ms, transmit_ns), station=c.station,
            detector=c.detector_code, system_type=c.system_type, alert_ns=to_tenth(alert_ns),
            category=alert.category, condition=alert.condition, state=alert.state, subject=alert.subject,
            value=alert.value, limit=alert.limit, unit=alert.unit, text=alert.text,
        )


# the PhdMessage field of each calibration table and the row type of its block
_ROW_TYPES = {"g_energy": ims2.EnergyPoint, "g_resolution": ims2.ResolutionPoint,
              "g_efficiency": ims2.EfficiencyPoint, "b_energy": ims2.BetaEnergyPoint,
              "b_resolution": ims2.ResolutionPoint, "roi_limits": ims2.RoiLimits,
              "bg_efficiency": ims2.BgEfficiency, "ratios": ims2.Ratio}


def calibration_blocks(calibration: Calibration) -> dict[str, Any]:  # PhdMessage keyword arguments
    """The configured tables as PhdMessage fields; a table without rows is None (its block left out)."""
    return {name: tuple(row_type(*row) for row in getattr(calibration, name)) or None
            for name, row_type in _ROW_TYPES.items()}


def render(message: ims2.Message) -> bytes:
    """The message's text, after checking that it reads back as the same data type and ids;
    ``Ims2FormatError`` for one that cannot be written or would not read back."""
    text = ims2.write(message)
    if not text.isascii():
        raise ims2.Ims2FormatError("envelope", None, "the text holds characters outside ASCII")
    again = ims2.parse(text)
    if (again.data_type, again.msg_id) != (message.data_type, message.msg_id):
        raise ims2.Ims2FormatError("envelope", None, f"reads back as {again.data_type} {again.msg_id}")
    return text.encode("ascii")
