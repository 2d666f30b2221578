"""IMS 2.0 PHD parsing and writing: gci_link.ims2 against SpecUtils (C++) and openSpex (Python).

Two SAMPLEPHD files are made in memory by ``ims2.write`` from Poisson data and written to a temporary
folder: an 8192-channel particulate HPGe spectrum (counts up to ~10^5 per channel) and a noble-gas
beta-gamma message with 256-channel singles and a 256 x 256 coincidence histogram (Xe-133 lines on a
radon and Compton background, ~150,000 coincidences). Each reader parses the same file from disk:
ours reads the text and parses it (``parse(path.read_text())``); SpecUtils ``SpecFile.loadFile``;
openSpex ``BGMeasurement(..., makeHist=False, calibrate=False)`` (its parser without its ROI
analysis; it flags the HPGe file as an error for lacking a beta spectrum, after parsing it all).
Every reader's gamma counts are checked against the data first. Parse times are the best of several
rounds in which each reader parses once (see _interleaved_best); writing is timed after.

``*_time_over_ours`` is a peer's parse time divided by ours. Issue 12's goals: at least 1/1.5 = 0.67
for SpecUtils and 10 for openSpex; writing of the same order as parsing. SpecUtils reads only the
gamma spectrum and ignores the histogram, so on the beta-gamma file it does far less work.

Parse times are a fraction of a millisecond, so the allocator's state matters: a reader whose fresh
arrays page-fault pays for it in every parse, which is why readers are timed interleaved.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.timing import best_of
from gci_link import ims2

REPEATS = 25
T0 = 1_709_254_820 * 1_000_000_000
HOUR = 3600 * 1_000_000_000
PeerReader = Callable[[Path], np.ndarray]  # a PHD file's gamma counts, as a third-party reader sees them


def _peaks(n: int, centres: list[float], heights: list[float], width: float) -> np.ndarray:
    x = np.arange(n)[:, None]
    return (np.asarray(heights) * np.exp(-0.5 * ((x - np.asarray(centres)) / width) ** 2)).sum(axis=1)


def _hpge(rng: np.random.Generator) -> ims2.PhdMessage:
    n = 8192
    channel = np.arange(n)
    continuum = 2.0e4 * np.exp(-channel / 900.0) + 300.0 * np.exp(-channel / 4000.0) + 5.0
    lines = _peaks(
        n, [140.0, 1448.0, 1997.0, 2003.0, 4427.0, 5005.0], [9e4, 3e4, 8e3, 6e3, 2.5e3, 1.5e3], 2.2
    )
    return ims2.PhdMessage(
        data_type="SAMPLEPHD",
        msg_id="20240303120000000",
        msg_source="ZZP01",
        comment="bench",
        station="ZZP01",
        detector="ZZP01_001",
        system_type="P",
        sample_geometry="RASA",
        spectrum_qualifier="FULL",
        srid="01202403010011",
        sample_id="ZZP01_001-2024/03/03-00:00:00.0",
        detbk_id="ZZP01_001-2024/02/01-00:00:00.0",
        transmit_ns=T0 + 72 * HOUR,
        collection_start_ns=T0,
        collection_stop_ns=T0 + 24 * HOUR,
        air_volume_m3=23866.64,
        acquisition_start_ns=T0 + 48 * HOUR,
        real_time_s=84_305.0,
        live_time_s=84_162.0,
        calibration_ns=T0 - 24 * HOUR,
        g_energy=tuple(
            ims2.EnergyPoint(e, (e + 0.432) / 0.33004, 0.01) for e in (46.5, 477.6, 661.66, 1460.8)
        ),
        g_resolution=tuple(
            ims2.ResolutionPoint(e, 0.73936 + 0.041586 * e**0.5, 0.01) for e in (477.6, 1460.8)
        ),
        g_efficiency=(
            ims2.EfficiencyPoint(477.6, 0.04789, 0.001),
            ims2.EfficiencyPoint(1460.8, 0.02026, 0.0005),
        ),
        g_spectrum=rng.poisson(continuum + lines).astype(np.int64),
        g_energy_span_kev=2720.5,
        g_first_channel=1,
    )


def _beta_gamma(rng: np.random.Generator) -> ims2.PhdMessage:
    n = 256
    beta = np.exp(-np.arange(n) / 60.0)  # beta continuum shape, per beta channel
    gamma = _peaks(n, [12.0, 32.0, 127.0], [1.0, 0.8, 0.15], 3.0) + 0.02 * np.exp(-np.arange(n) / 80.0)
    coincidences = 150_000 * np.outer(gamma, beta) / (gamma.sum() * beta.sum())
    histogram = rng.poisson(coincidences).astype(np.int64)
    singles_g = rng.poisson(40 * coincidences.sum(axis=1) + 300).astype(np.int64)
    singles_b = rng.poisson(6 * coincidences.sum(axis=0) + 50).astype(np.int64)
    return ims2.PhdMessage(
        data_type="SAMPLEPHD",
        msg_id="20240302071044123",
        msg_source="ZZX01",
        comment="bench",
        station="ZZX01",
        detector="ZZX01_001",
        system_type="B",
        sample_geometry="CYLINDER",
        spectrum_qualifier="FULL",
        srid="01202403010111X",
        sample_id="ZZX01_001-2024/03/01-17:05:12.3",
        detbk_id="ZZX01_001-2024/01/15-06:00:00.0",
        gasbk_id="ZZX01_001-2024/03/01-08:10:00.0",
        transmit_ns=T0 + 30 * HOUR,
        collection_start_ns=T0,
        collection_stop_ns=T0 + 12 * HOUR,
        air_volume_m3=21.98,
        acquisition_start_ns=T0 + 16 * HOUR,
        real_time_s=50_700.0,
        live_time_s=50_388.52,
        xe_volume_ml=1.02,
        xe_volume_unc_ml=0.09,
        xe_yield=0.63,
        xe_yield_unc=0.05,
        archive_id="23",
        g_spectrum=singles_g,
        g_energy_span_kev=720.0,
        b_spectrum=singles_b,
        b_energy_span_kev=550.0,
        histogram=histogram,
        histogram_gamma_span_kev=720.0,
        histogram_beta_span_kev=550.0,
    )


def _specutils() -> PeerReader | None:
    try:
        import SpecUtils
    except ImportError:
        return None

    def read(path: Path) -> np.ndarray:
        spec = SpecUtils.SpecFile()
        spec.loadFile(str(path), SpecUtils.ParserType.Phd)
        return np.asarray(spec.measurements()[0].gammaCounts())

    return read


def _openspex() -> PeerReader | None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        from open_spex import BGMeasurement
    except ImportError:
        return None

    def read(path: Path) -> np.ndarray:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its findings
            m = BGMeasurement.BGMeasurement("SAUNA", str(path), makeHist=False, calibrate=False)
        return np.asarray(m.gamma)

    return read


def _interleaved_best(readers: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time of each reader, timed in rounds of one call each after one warm-up call each.

    Interleaving gives every reader the same memory-allocator state: one reader's leftovers can make
    the next one's fresh arrays page-fault (seen here as 0.6 ms against 1.4 ms for the same parse).
    """
    for read in readers.values():
        read()
    best = dict.fromkeys(readers, float("inf"))
    for _ in range(repeats):
        for name, read in readers.items():
            started = time.perf_counter()
            read()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def _gamma_counts(message: ims2.Message) -> np.ndarray:
    if not isinstance(message, ims2.PhdMessage) or message.g_spectrum is None:
        raise ValueError(f"a {message.data_type} without a gamma spectrum: nothing to compare the readers on")
    return message.g_spectrum


def _measure(
    name: str, message: ims2.PhdMessage, folder: Path, progress: Callable[[str], None]
) -> dict[str, float | str]:
    text = ims2.write(message)
    path = folder / f"{name}.PHD"
    path.write_text(text, encoding="ascii")
    g = _gamma_counts(message)
    assert np.array_equal(_gamma_counts(ims2.parse(path.read_text())), g)
    readers: dict[str, Callable[[], object]] = {"ours": lambda: ims2.parse(path.read_text())}
    figures: dict[str, float | str] = {f"{name}_bytes": len(text)}
    for peer, reader in (("specutils", _specutils()), ("openspex", _openspex())):
        if reader is None:
            figures[f"{name}_{peer}"] = "not installed"
            continue
        counts = reader(path)
        if peer == "specutils" and message.system_type == "B":  # 0-based labels: one channel down (spec §12)
            assert np.array_equal(counts[4:-1], g[5:]), "SpecUtils read other gamma counts"
        else:
            assert np.array_equal(counts, g), f"{peer} read other gamma counts"
        readers[peer] = functools.partial(reader, path)
    progress(f"{name} ({len(text):,} bytes): parsing with {', '.join(readers)}")
    best = _interleaved_best(readers, REPEATS)
    parse_ms = figures[f"{name}_parse_ms"] = best["ours"] * 1e3
    progress(f"{name}: gci_link.ims2 from text, and writing")
    figures[f"{name}_parse_text_ms"] = best_of(lambda: ims2.parse(text), REPEATS) * 1e3
    write_ms = figures[f"{name}_write_ms"] = best_of(lambda: ims2.write(message), REPEATS) * 1e3
    figures[f"{name}_write_over_parse"] = write_ms / parse_ms
    for peer in readers.keys() - {"ours"}:
        figures[f"{name}_{peer}_parse_ms"] = best[peer] * 1e3
        figures[f"{name}_{peer}_time_over_ours"] = best[peer] / best["ours"]
    return figures


def run(progress: Callable[[str], None]) -> dict[str, float | str]:
    rng = np.random.default_rng(12)
    figures: dict[str, float | str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ims2-") as tmp:
        figures.update(_measure("hpge8192", _hpge(rng), Path(tmp), progress))
        figures.update(_measure("betagamma256", _beta_gamma(rng), Path(tmp), progress))
    return figures
