"""Pulse height data messages (SAMPLEPHD, DETBKPHD, GASBKPHD, CALIBPHD, ...): blocks <-> PhdMessage.

Block order when writing is that of the real MIX files (spec §10.1), with the particulate-only and
non-standard blocks placed beside their relatives; see docs/ims2.md.
"""

from __future__ import annotations

from typing import TypeVar

from .common import (
    Sorted,
    check_header_args,
    header_lines,
    parse_text,
    text_lines,
    tokens_of,
    word,
    writing,
)
from .errors import Ims2FormatError
from .fields import Where, format_float, format_time, to_float, to_time
from .lexer import Block, Line
from .messages import Certificate, CertificateLine, PhdMessage, RawBlock
from .spectra import Histogram, Spectrum, format_histogram, format_spectrum, parse_histogram, parse_spectrum
from .tables import TABLES, format_table, parse_table

BLOCK_ORDER = (
    "#Header",
    "#Comment",
    "#Collection",
    "#Acquisition",
    "#Calibration",
    "#Processing",
    "#Sample",
    "#g_Energy",
    "#b_Energy",
    "#g_Resolution",
    "#b_Resolution",
    "#ROI_Limits",
    "#ROI_Chan_Limits",
    "#g_Efficiency",
    "#TotalEff",
    "#b-gEfficiency",
    "#Ratios",
    "#g_Spectrum",
    "#b_Spectrum",
    "#Histogram",
    "#Certificate",
)
TABLE_FIELDS = {
    "#g_Energy": "g_energy",
    "#b_Energy": "b_energy",
    "#g_Resolution": "g_resolution",
    "#b_Resolution": "b_resolution",
    "#ROI_Limits": "roi_limits",
    "#ROI_Chan_Limits": "roi_chan_limits",
    "#g_Efficiency": "g_efficiency",
    "#TotalEff": "total_efficiency",
    "#b-gEfficiency": "bg_efficiency",
    "#Ratios": "ratios",
}
SAMPLED_TYPES = ("SAMPLEPHD", "SPIKEPHD", "REGENPHD")  # these carry #Collection (and #Processing for B)
CERTIFIED_TYPES = ("CALIBPHD", "QCPHD")
RATIO_ROWS = (16, 18, 20)
BG_EFFICIENCY_ROWS = 9
NO_ID = "0"
GEOMETRY_WIDTH = 17
T = TypeVar("T")


def required_blocks(data_type: str, system_type: str) -> list[str]:
    """Blocks without which a PHD of this type cannot be analysed (openSpex treats these as errors)."""
    required = ["#Header", "#Acquisition", "#g_Spectrum"]
    if system_type == "B":
        required += ["#b_Spectrum", "#Histogram"]
    if data_type in SAMPLED_TYPES:
        required.append("#Collection")
        if system_type == "B":
            required.append("#Processing")
    return required


def default_first_channel(system_type: str) -> int:
    """Beta-gamma spectra count channels from 0, particulate and HPGe ones from 1 (spec §5, §10.1)."""
    return 0 if system_type == "B" else 1


# ---------------------------------------------------------------- parsing


def parse_phd(envelope: dict, blocks: Sorted, data_type_line: int) -> PhdMessage:
    data_type = envelope["data_type"]
    warnings = blocks.warnings
    header = blocks.require("#Header", data_type, data_type_line)
    check_header_args(header, warnings)
    fields = _parse_header(header)
    for label in required_blocks(data_type, fields["system_type"]):
        blocks.require(label, data_type, data_type_line)
    fields.update(_parse_acquisition(blocks.require("#Acquisition", data_type, data_type_line)))
    if (block := blocks.get("#Comment")) is not None:
        fields["comment"] = parse_text(block)
    if (block := blocks.get("#Collection")) is not None:
        fields.update(_parse_collection(block))
    if (block := blocks.get("#Calibration")) is not None:
        (line,) = header_lines(block, 1)
        date, time = tokens_of(line, 2, block.label, "date time")
        fields["calibration_ns"] = to_time(date, time, Where(block.label, line.number), "calibration time")
    if (block := blocks.get("#Processing")) is not None:
        fields.update(_parse_processing(block))
    if (block := blocks.get("#Sample")) is not None:
        (line,) = header_lines(block, 1)
        where = Where(block.label, line.number)
        fields["sample_dimensions_mm"] = tuple(to_float(t, where, "dimension") for t in line.tokens)
    for label, name in TABLE_FIELDS.items():
        if (block := blocks.get(label)) is not None:
            fields[name] = parse_table(TABLES[label], block)
    _check_row_counts(fields, blocks, warnings)
    for prefix in ("g", "b"):
        if (block := blocks.get(f"#{prefix}_Spectrum")) is not None:
            spectrum = parse_spectrum(block, block.label)
            fields[f"{prefix}_spectrum"] = spectrum.counts
            fields[f"{prefix}_energy_span_kev"] = spectrum.span_kev
            fields[f"{prefix}_first_channel"] = spectrum.first_channel
    if (block := blocks.get("#Histogram")) is not None:
        histogram = parse_histogram(block, block.label)
        fields["histogram"] = histogram.counts
        fields["histogram_gamma_span_kev"] = histogram.gamma_span_kev
        fields["histogram_beta_span_kev"] = histogram.beta_span_kev
    if (block := blocks.get("#Certificate")) is not None:
        fields["certificate"] = _parse_certificate(block, warnings)
    elif data_type in CERTIFIED_TYPES:
        warnings.append(f"a {data_type} without a #Certificate block")
    return PhdMessage(**envelope, **fields, extra_blocks=tuple(blocks.extra), warnings=tuple(warnings))


def _parse_header(block: Block) -> dict:
    first, srid, ids, transmit = header_lines(block, 4)
    label = block.label
    station, detector, system_type, geometry, qualifier = tokens_of(
        first, 5, label, "station detector system_type sample_geometry spectrum_qualifier"
    )
    ids_tokens = tokens_of(ids, (2, 3), label, "sample_id detbk_id [gasbk_id]")
    ids_tokens += [NO_ID] * (3 - len(ids_tokens))
    sample_id, detbk_id, gasbk_id = (None if t == NO_ID else t for t in ids_tokens)
    date, time = tokens_of(transmit, 2, label, "transmit date time")
    return {
        "station": station,
        "detector": detector,
        "system_type": system_type.upper(),
        "sample_geometry": geometry,
        "spectrum_qualifier": qualifier.upper(),
        "srid": tokens_of(srid, 1, label, "sample reference id")[0],
        "sample_id": sample_id,
        "detbk_id": detbk_id,
        "gasbk_id": gasbk_id,
        "transmit_ns": to_time(date, time, Where(label, transmit.number), "transmit time"),
    }


def _parse_acquisition(block: Block) -> dict:
    (line,) = header_lines(block, 1)
    date, time, real, live = tokens_of(line, 4, block.label, "start_date start_time real_s live_s")
    where = Where(block.label, line.number)
    return {
        "acquisition_start_ns": to_time(date, time, where, "acquisition start"),
        "real_time_s": to_float(real, where, "real time"),
        "live_time_s": to_float(live, where, "live time"),
    }


def _parse_collection(block: Block) -> dict:
    (line,) = header_lines(block, 1)
    d0, t0, d1, t1, volume = tokens_of(
        line, 5, block.label, "start_date start_time stop_date stop_time air_volume"
    )
    where = Where(block.label, line.number)
    return {
        "collection_start_ns": to_time(d0, t0, where, "collection start"),
        "collection_stop_ns": to_time(d1, t1, where, "collection stop"),
        "air_volume_m3": to_float(volume, where, "air volume"),
    }


def _parse_processing(block: Block) -> dict:
    lines = block.filled_lines()
    if len(lines) not in (2, 3):
        raise Where(block.label, block.line).error(
            f"{len(lines)} non-blank lines, want 3 (xe volume, xe yield, archive id)"
        )
    volume, volume_unc = tokens_of(lines[0], 2, block.label, "xe_volume xe_volume_unc")
    yield_, yield_unc = tokens_of(lines[1], 2, block.label, "xe_yield xe_yield_unc")
    w0, w1 = Where(block.label, lines[0].number), Where(block.label, lines[1].number)
    return {
        "xe_volume_ml": to_float(volume, w0, "xe volume"),
        "xe_volume_unc_ml": to_float(volume_unc, w0, "xe volume uncertainty"),
        "xe_yield": to_float(yield_, w1, "xe yield"),
        "xe_yield_unc": to_float(yield_unc, w1, "xe yield uncertainty"),
        "archive_id": tokens_of(lines[2], 1, block.label, "archive id")[0] if len(lines) == 3 else None,
    }


def _check_row_counts(fields: dict, blocks: Sorted, warnings: list[str]) -> None:
    """Warn about an unusual row count; ``fields`` holds a table exactly when its block is there."""
    ratios = blocks.get("#Ratios")
    if ratios is not None and (n := len(fields["ratios"])) not in RATIO_ROWS:
        warnings.append(f"#Ratios at line {ratios.line} has {n} rows, not 16, 18 or 20")
    efficiencies = blocks.get("#b-gEfficiency")
    if efficiencies is not None and (n := len(fields["bg_efficiency"])) != BG_EFFICIENCY_ROWS:
        warnings.append(f"#b-gEfficiency at line {efficiencies.line} has {n} rows, not {BG_EFFICIENCY_ROWS}")


def _parse_certificate(block: Block, warnings: list[str]) -> Certificate | RawBlock:
    """The layout of spec §4.2, or (as the real MIX calibration's one word ``Xe-133``) kept verbatim."""
    try:
        lines = block.filled_lines()
        if not lines:
            raise Where(block.label, block.line).error("empty block")
        first = tokens_of(lines[0], (3, 4), block.label, "total_activity date time [unit]")
        where = Where(block.label, lines[0].number)
        rows = [_parse_certificate_line(line, block.label) for line in lines[1:]]
        return Certificate(
            total_activity=to_float(first[0], where, "total activity"),
            reference_ns=to_time(first[1], first[2], where, "reference time"),
            unit=first[3] if len(first) == 4 else None,
            lines=tuple(rows),
        )
    except Ims2FormatError as exc:
        parse_text(block)  # verbatim, it must be text that can be written back
        warnings.append(f"#Certificate kept verbatim, it does not follow the layout: {exc}")
        # the canonical header, as write gives it: a '#CERTIFICATE' or tokens after it are not the data
        return RawBlock("#Certificate", tuple(line.text for line in block.lines()))


def _parse_certificate_line(line: Line, label: str) -> CertificateLine:
    tokens = tokens_of(line, 10, label, " ".join(CertificateLine._fields))
    where = Where(label, line.number)

    def number(index: int) -> float:
        return to_float(tokens[index], where, CertificateLine._fields[index])

    return CertificateLine(
        tokens[0],
        number(1),
        tokens[2],
        number(3),
        number(4),
        number(5),
        number(6),
        tokens[7],
        number(8),
        number(9),
    )


# ---------------------------------------------------------------- writing


def format_phd(m: PhdMessage) -> list[str]:
    """The message's blocks as lines, in the written order; refuses what could not be read back."""
    out: dict[str, list[str]] = {}
    system_type = m.system_type
    with writing("#Header"):
        geometry = word(m.sample_geometry, "sample geometry")
        ids = " ".join(
            word(i if i is not None else NO_ID, "measurement id")
            for i in (m.sample_id, m.detbk_id, m.gasbk_id)
        )
        out["#Header"] = [
            "#Header 3",
            " ".join(
                (
                    word(m.station, "station"),
                    word(m.detector, "detector"),
                    word(system_type, "system type"),
                    geometry.ljust(GEOMETRY_WIDTH),
                    word(m.spectrum_qualifier, "qualifier"),
                )
            ),
            word(m.srid, "srid"),
            ids,
            format_time(m.transmit_ns),
        ]
    out["#Comment"] = ["#Comment", *text_lines(m.comment or "", "#Comment")]
    with writing("#Collection"):
        start, stop, volume = m.collection_start_ns, m.collection_stop_ns, m.air_volume_m3
        if start is not None or stop is not None or volume is not None:
            if start is None or stop is None or volume is None:
                raise ValueError("collection start, stop and air volume must all be given")
            out["#Collection"] = [
                "#Collection",
                f"{format_time(start)} {format_time(stop)} {format_float(volume)}",
            ]
    with writing("#Acquisition"):
        out["#Acquisition"] = [
            "#Acquisition",
            f"{format_time(m.acquisition_start_ns)} {format_float(m.real_time_s, 2)} "
            f"{format_float(m.live_time_s, 2)}",
        ]
    if m.calibration_ns is not None:
        out["#Calibration"] = ["#Calibration", format_time(m.calibration_ns)]
    with writing("#Processing"):
        processing = (m.xe_volume_ml, m.xe_volume_unc_ml, m.xe_yield, m.xe_yield_unc)
        if any(v is not None for v in (*processing, m.archive_id)):
            volume_ml, volume_unc_ml, yield_, yield_unc = _all_given(
                processing, "xe volume, its uncertainty, xe yield and its uncertainty"
            )
            out["#Processing"] = [
                "#Processing",
                f"{format_float(volume_ml, 5)} {format_float(volume_unc_ml, 5)}",
                f"{format_float(yield_, 5)} {format_float(yield_unc, 5)}",
            ]
            if m.archive_id is not None:
                out["#Processing"].append(word(m.archive_id, "archive id"))
    with writing("#Sample"):
        if m.sample_dimensions_mm is not None:
            out["#Sample"] = ["#Sample", " ".join(format_float(v, 1) for v in m.sample_dimensions_mm)]
    for label, name in TABLE_FIELDS.items():
        rows = getattr(m, name)
        if rows is not None:
            with writing(label):
                out[label] = [label, *format_table(TABLES[label], rows)]
    for prefix in ("g", "b"):
        counts = getattr(m, f"{prefix}_spectrum")
        label = f"#{prefix}_Spectrum"
        if counts is not None:
            with writing(label):
                (span,) = _all_given((getattr(m, f"{prefix}_energy_span_kev"),), "energy span")
                first = getattr(m, f"{prefix}_first_channel")
                first = default_first_channel(system_type) if first is None else first
                out[label] = [label, format_spectrum(Spectrum(counts, span, first)).rstrip("\n")]
    if m.histogram is not None:
        with writing("#Histogram"):
            gamma_span, beta_span = _all_given(
                (m.histogram_gamma_span_kev, m.histogram_beta_span_kev), "gamma and beta energy spans"
            )
            histogram = Histogram(m.histogram, gamma_span, beta_span)
            out["#Histogram"] = ["#Histogram", format_histogram(histogram).rstrip("\n")]
    if m.certificate is not None:
        with writing("#Certificate"):
            out["#Certificate"] = _format_certificate(m.certificate)
    for label in required_blocks(m.data_type, system_type):
        if label not in out:
            raise Ims2FormatError(label, None, f"a {system_type} {m.data_type} must have this block")
    return [line for label in BLOCK_ORDER if label in out for line in out[label]]


def _all_given(values: tuple[T | None, ...], what: str) -> tuple[T, ...]:
    """``values`` when none is None (a block is written whole or not at all)."""
    given = tuple(v for v in values if v is not None)
    if len(given) != len(values):
        raise ValueError(f"{what} must all be given")
    return given


def _format_certificate(certificate: Certificate | RawBlock) -> list[str]:
    if isinstance(certificate, RawBlock):
        lines = list(certificate.lines)  # as kept: "\n".join would turn one blank line into none
        text_lines("\n".join(lines), "#Certificate")
        return ["#Certificate", *lines]
    first = f"{format_float(certificate.total_activity, 1)} {format_time(certificate.reference_ns)}"
    if certificate.unit is not None:
        first += f" {word(certificate.unit, 'unit')}"
    return ["#Certificate", first, *(_format_certificate_line(line) for line in certificate.lines)]


def _format_certificate_line(line: CertificateLine) -> str:
    def number(value: float) -> str:
        return format_float(value, 2)

    return " ".join(
        (
            word(line.nuclide, "nuclide"),
            number(line.half_life),
            word(line.half_life_unit, "half_life_unit"),
            number(line.activity),
            number(line.activity_unc),
            number(line.energy_kev),
            number(line.intensity_pct),
            word(line.electron_mode, "electron_mode"),
            number(line.electron_max_kev),
            number(line.electron_intensity_pct),
        )
    )
