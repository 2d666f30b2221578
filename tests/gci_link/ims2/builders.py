"""Synthetic IMS 2.0 messages for tests (made-up stations ZZX01 beta-gamma, ZZP01 particulate), and a
field-by-field comparison of two messages."""

from __future__ import annotations

import dataclasses

import numpy as np

from gci_link import ims2
from gci_link.ims2 import (
    BetaEnergyPoint,
    BgEfficiency,
    Certificate,
    CertificateLine,
    EfficiencyPoint,
    EnergyPoint,
    Ratio,
    ResolutionPoint,
    RoiLimits,
)

S = 1_000_000_000
T0 = 1_709_254_820 * S  # 2024-03-01 01:00:20 UTC
HOUR = 3600 * S


def gamma_lines(n: int, rng: np.random.Generator, peaks: tuple[float, ...], background: float) -> np.ndarray:
    """A Poisson spectrum: falling continuum plus Gaussian peaks at the given channels."""
    channels = np.arange(n)
    mean = background * np.exp(-channels / (n / 3)) + 1
    for centre in peaks:
        width = 1.5 + centre * 0.002
        mean += 40 * background / width * np.exp(-0.5 * ((channels - centre) / width) ** 2)
    return rng.poisson(mean).astype(np.int64)


def beta_gamma(
    rng: np.random.Generator,
    data_type: str = "SAMPLEPHD",
    n: int = 256,
    first_channel: int | None = 0,
) -> ims2.PhdMessage:
    """A complete beta-gamma PHD: calibration tables as S1 has them, singles and a coincidence matrix."""
    g = gamma_lines(n, rng, (0.045 * n, 0.125 * n, 0.5 * n), 500)
    b = gamma_lines(n, rng, (0.02 * n,), 200)
    hist = rng.poisson(np.outer(np.linspace(0.4, 0.01, n), np.linspace(0.3, 0.01, n))).astype(np.int64)
    sampled = data_type in ("SAMPLEPHD", "SPIKEPHD", "REGENPHD")
    acq = T0 + 16 * HOUR + 4_523 * S + 300_000_000
    return ims2.PhdMessage(
        data_type=data_type,
        msg_id="20240302071044123",
        msg_source="ZZX01",
        comment="Routine sample, flow nominal\n",
        station="ZZX01",
        detector="ZZX01_001",
        system_type="B",
        sample_geometry="CYLINDER",
        spectrum_qualifier="FULL",
        srid="01202403010111X" if data_type != "CALIBPHD" else "01202403010111K",
        sample_id="ZZX01_001-2024/03/01-17:05:12.3",
        detbk_id="ZZX01_001-2024/01/15-06:00:00.0",
        gasbk_id="ZZX01_001-2024/03/01-08:10:00.0" if sampled else None,
        transmit_ns=T0 + 30 * HOUR + 24 * S + 100_000_000,
        collection_start_ns=T0 if sampled else None,
        collection_stop_ns=T0 + 12 * HOUR - 25 * S if sampled else None,
        air_volume_m3=21.9803 if sampled else None,
        acquisition_start_ns=acq,
        real_time_s=50_700.0,
        live_time_s=50_388.52,
        calibration_ns=T0 - 10 * 24 * HOUR,
        xe_volume_ml=1.0214 if sampled else None,
        xe_volume_unc_ml=0.0881 if sampled else None,
        xe_yield=0.6302 if sampled else None,
        xe_yield_unc=0.0544 if sampled else None,
        archive_id="23" if sampled else None,
        g_energy=(
            EnergyPoint(30.0, 11.7, 0.05),
            EnergyPoint(81.0, 31.6, 0.05),
            EnergyPoint(661.66, 229.7, 0.05),
        ),
        b_energy=tuple(BetaEnergyPoint(80.0 + 15 * i, "C", 21.2 + 5.1 * i, 0.1) for i in range(6)),
        g_resolution=(ResolutionPoint(81.0, 11.6, 0.2), ResolutionPoint(661.66, 51.1, 0.2)),
        b_resolution=(ResolutionPoint(199.56, 60.2, 0.3),),
        roi_limits=(
            RoiLimits(1, 29.8, 597.67, 320.9, 384.7),
            RoiLimits(2, 29.8, 733.912, 228.98, 280.54),
            RoiLimits(3, 29.8, 352.5, 71.15, 99.83),
            RoiLimits(4, 29.8, 394.14, 19.25, 41.03),
            RoiLimits(5, 78.2, 166.0, 19.25, 41.03),
            RoiLimits(6, 170.73, 252.93, 19.25, 41.03),
            RoiLimits(7, 29.8, 78.2, 19.25, 41.03),
            RoiLimits(8, 252.93, 394.14, 19.25, 41.03),
            RoiLimits(9, 170.73, 394.14, 19.25, 41.03),
            RoiLimits(10, 29.8, 166.0, 19.25, 41.03),
        ),
        g_efficiency=(EfficiencyPoint(30.0, 0.41, 0.1), EfficiencyPoint(661.66, 0.09, 0.01)),
        bg_efficiency=tuple(BgEfficiency("XE-133", roi, 0.365 - 0.01 * roi, 0.02) for roi in range(2, 11)),
        ratios=tuple(Ratio(f"PB214_352:{lower}", 1, lower, 0.05 * lower, 0.0083) for lower in range(2, 11))
        + tuple(Ratio(f"XE133-{lower}_81:30", 3, lower, 0.02 * lower, 0.0021) for lower in range(4, 11)),
        g_spectrum=g,
        g_energy_span_kev=720.0,
        g_first_channel=first_channel,
        b_spectrum=b,
        b_energy_span_kev=550.0,
        b_first_channel=first_channel,
        histogram=hist,
        histogram_gamma_span_kev=720.0,
        histogram_beta_span_kev=550.0,
        certificate=certificate() if data_type in ("CALIBPHD", "QCPHD") else None,
    )


def certificate() -> Certificate:
    return Certificate(
        total_activity=1000.0,
        reference_ns=T0 - 50 * 24 * HOUR,
        unit="BQ",
        lines=(
            CertificateLine("CS-137", 30.17, "Y", 600.0, 3.0, 661.66, 85.1, "B", 514.0, 94.4),
            CertificateLine("CO-60", 5.27, "Y", 400.0, 2.5, 1332.49, 99.98, "B", 317.9, 99.9),
        ),
    )


def hpge(
    rng: np.random.Generator, data_type: str = "SAMPLEPHD", channels: int = 8192, system_type: str = "P"
) -> ims2.PhdMessage:
    """A particulate (or HPGe noble-gas) PHD, channels numbered from 1 as the IDC does."""
    peaks = tuple(c * channels / 8192 for c in (1448.0, 1997.0, 4427.0, 5005.0))
    sampled = data_type in ("SAMPLEPHD", "SPIKEPHD", "REGENPHD", "BLANKPHD")
    return ims2.PhdMessage(
        data_type=data_type,
        msg_id="20240303120000000",
        msg_source="ZZP01",
        comment="",
        station="ZZP01",
        detector="ZZP01_001",
        system_type=system_type,
        sample_geometry="RASA",
        spectrum_qualifier="PREL" if data_type == "SAMPLEPHD" else "FULL",
        srid="01202403010011",
        sample_id="ZZP01_001-2024/03/03-00:00:00.0",
        detbk_id="ZZP01_001-2024/02/01-00:00:00.0",
        transmit_ns=T0 + 60 * HOUR,
        collection_start_ns=T0 if sampled else None,
        collection_stop_ns=T0 + 24 * HOUR if sampled else None,
        air_volume_m3=23866.64 if sampled else None,
        acquisition_start_ns=T0 + 48 * HOUR,
        real_time_s=84_305.0,
        live_time_s=84_162.0,
        calibration_ns=T0 - 24 * HOUR,
        sample_dimensions_mm=(50.0, 5.0) if sampled else None,
        g_energy=tuple(EnergyPoint(e, (e + 0.432) / 0.33004, 0.01) for e in (46.5, 477.6, 661.66, 1460.8)),
        g_resolution=tuple(ResolutionPoint(e, 0.73936 + 0.041586 * e**0.5, 0.01) for e in (477.6, 1460.8)),
        g_efficiency=(EfficiencyPoint(477.6, 0.04789, 0.001), EfficiencyPoint(1460.8, 0.02026, 0.0005)),
        total_efficiency=(EfficiencyPoint(477.6, 0.1, 0.01), EfficiencyPoint(1460.8, 0.06, 0.01)),
        g_spectrum=gamma_lines(channels, rng, peaks, 3000),
        g_energy_span_kev=2720.5,
        g_first_channel=1,
        certificate=certificate() if data_type in ("CALIBPHD", "QCPHD") else None,
    )


def soh() -> ims2.SohMessage:
    start = T0
    rows = {
        "#AirSamplerFlow": (
            ims2.SohRow((987.4, 6.1), start, 600),
            ims2.SohRow((985.0, None), start + 600 * S, 600),
        ),
        "#AirSamplerEnv": (ims2.SohRow((12.5, 3.25, 1013.2), start, 600),),
        "#DetEnv": (ims2.SohRow((22.4, "CLOSED", 41, 3000, -181, "ON", 87, 2), start, 600),),
        "#NIMBIN": (ims2.SohRow(("+12", 12.02), start, 600), ims2.SohRow(("-24", -23.9), start, 600)),
        "#PowerSupply": (ims2.SohRow(("MAIN", "ON", None), start, 600),),
        "#EquipStatus": (ims2.SohRow(("C", "01202403010111X", "P", None, "A", None), start, 600),),
        "#TamperEnv": (ims2.SohRow(("DOOR", "CLOSED"), start, 600),),
        "#ProcessSensors": (ims2.SohRow(("TEMP", "TRAP1", -120.5), start, 600),),
    }
    return ims2.SohMessage(
        msg_id="20240301010005200",
        msg_source="ZZX01",
        station="ZZX01",
        detector="ZZX01_001",
        system_type="B",
        period_start_ns=start,
        period_end_ns=start + HOUR,
        transmit_ns=start + HOUR + 5 * S + 200_000_000,
        blocks=rows,
        chromatograms=(ims2.Chromatogram("01202403010111X", 0.5, 0, np.arange(23, dtype=np.int64) ** 2),),
    )


def met() -> ims2.MetMessage:
    return ims2.MetMessage(
        msg_id="20240301010000000",
        msg_source="ZZP01",
        station="ZZP01",
        detector=None,
        system_type=None,
        period_start_ns=T0,
        period_end_ns=T0 + HOUR,
        transmit_ns=T0 + HOUR + S,
        rows=(
            ims2.MetRow(T0, T0 + 1800 * S, 12.5, 270.0, 3.4, 1013.25, 81.0, 0.0),
            ims2.MetRow(T0 + 1800 * S, T0 + HOUR, 12.1, None, None, 1013.0, 82.5, 0.2),
        ),
    )


def alert(data_type: str = "ALERT_FLOW") -> ims2.AlertMessage:
    category = data_type.removeprefix("ALERT_")
    return ims2.AlertMessage(
        data_type=data_type,
        msg_id="20240301005211000",
        msg_source="ZZP01",
        station="ZZP01",
        detector="ZZP01_001",
        system_type="P",
        transmit_ns=T0 + 11 * S,
        alert_ns=T0 + 10 * S,
        category=category,
        condition="LOW",
        state="RAISED",
        subject="SAMPLER",
        value=412.5,
        limit=500.0,
        unit="M3/H",
        text="Air sampler flow under threshold for 600 s\n\nsecond paragraph",
    )


def assert_same(a: ims2.Message, b: ims2.Message, skip: tuple[str, ...] = ()) -> None:
    """Every field equal: arrays by value and dtype, everything else with == (floats exactly)."""
    assert type(a) is type(b)
    for f in dataclasses.fields(a):
        if f.name in skip:
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert isinstance(x, np.ndarray) and isinstance(y, np.ndarray), f.name
            assert x.dtype == y.dtype == np.int64, (f.name, x.dtype, y.dtype)
            assert np.array_equal(x, y), f.name
        elif f.name == "chromatograms":
            assert len(x) == len(y)
            for c, d in zip(x, y, strict=True):
                assert (c.srid, c.step_s, c.first_index) == (d.srid, d.step_s, d.first_index)
                assert np.array_equal(c.values, d.values) and d.values.dtype == np.int64
        else:
            assert x == y, (f.name, x, y)
