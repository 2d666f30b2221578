"""``[radionuclide.calibration]``: the detector's calibration tables, written into every PHD message, and
their checks.

The IDC analyses a sample from the tables in its own message (rn_analysis), so a table that is missing,
malformed or inconsistent makes every sample of the system unanalysable. That is told when the
configuration is read, with the file and key, not discovered at the IDC days later. Rows are those of
the IMS 2.0 blocks (docs/station-config.md lists them); the checks are those the analyses rely on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from opskit.tomlcheck import Table as _Table
from timeunits import NS_PER_S

ROIS = range(1, 11)  # beta-gamma ROI numbers (spec §11.1)
BG_ANALYSIS_ROIS = (1, 2, 3, 4, 5, 6)  # the ROIs the beta-gamma analysis solves with
BG_EFFICIENCY_ROIS = (2, 3, 4, 5, 6)  # #b-gEfficiency rows it cannot do without

# per table: the kind of each column (f number, i integer, w one word) and what the columns are
COLUMNS = {
    "g_energy": ("fff", "energy_kev, centroid_channel, channel_uncertainty"),
    "g_resolution": ("fff", "energy_kev, fwhm_kev, fwhm_uncertainty"),
    "g_efficiency": ("fff", "energy_kev, efficiency, efficiency_uncertainty"),
    "b_energy": ("fwff", "electron_kev, decay_mode, channel, channel_uncertainty"),
    "b_resolution": ("fff", "electron_kev, fwhm_kev, fwhm_uncertainty"),
    "roi_limits": ("iffff", "roi, beta_low_kev, beta_high_kev, gamma_low_kev, gamma_high_kev"),
    "bg_efficiency": ("wiff", "nuclide, roi, efficiency, efficiency_uncertainty"),
    "ratios": ("wiiff", "ratio_id, upper_roi, lower_roi, ratio, ratio_uncertainty"),
}
BETA_GAMMA_ONLY = ("b_energy", "b_resolution", "roi_limits", "bg_efficiency", "ratios")
# what each analysis cannot do without (rn_analysis.particulate, rn_analysis.betagamma)
NEEDED = {"P": ("g_energy", "g_resolution", "g_efficiency"),
          "B": ("g_energy", "b_energy", "roi_limits", "bg_efficiency", "ratios")}

Row = tuple[float | int | str, ...]


@dataclass(frozen=True, slots=True)
class Calibration:
    """Rows of each table, as the block's columns (empty: the block is left out), and when the detector
    was calibrated (#Calibration; None: left out)."""

    g_energy: tuple[Row, ...] = ()
    g_resolution: tuple[Row, ...] = ()
    g_efficiency: tuple[Row, ...] = ()
    b_energy: tuple[Row, ...] = ()
    b_resolution: tuple[Row, ...] = ()
    roi_limits: tuple[Row, ...] = ()
    bg_efficiency: tuple[Row, ...] = ()
    ratios: tuple[Row, ...] = ()
    time_ns: int | None = None


def parse_calibration(t: _Table, system_type: str, channels: int | None) -> Calibration:
    """The table of a system of ``system_type`` (P or B); ``channels``: the HPGe's channel count (P)."""
    rows = {name: _rows(t, name) for name in COLUMNS}  # None: reported as malformed
    time = t.get("time", dt.datetime, default=None, check=_with_offset)
    t.done()
    calibration = Calibration(**{name: table or () for name, table in rows.items()},
                              time_ns=None if time is None else _ns(time))
    if system_type != "B":
        for name in BETA_GAMMA_ONLY:
            if rows[name]:
                t.problem(name, "only a noble-gas (beta-gamma) system writes this table")
    missing = [name for name in NEEDED[system_type] if rows[name] == ()]
    if 0 < len(missing) < len(NEEDED[system_type]):
        t.problem("", f"the IDC analysis needs {', '.join(NEEDED[system_type])} together; "
                      f"missing {', '.join(missing)}")
    if system_type == "P":
        _check_hpge(t, calibration, channels)
    else:
        _check_rois(t, calibration)
    return calibration


def _with_offset(v: dt.datetime) -> str | None:
    return None if v.tzinfo is not None else f"must end in Z or a UTC offset, got {v.isoformat()}"


def _ns(t: dt.datetime) -> int:
    """Integer nanoseconds since the epoch (TOML holds at most microseconds)."""
    since = t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (since.days * 86_400 + since.seconds) * NS_PER_S + since.microseconds * 1000


def _rows(t: _Table, name: str) -> tuple[Row, ...] | None:
    """The table's rows (none: not given), or None when a problem with it is recorded."""
    kinds, columns = COLUMNS[name]
    value = t.get(name, list, default=[])
    if value is None:
        return None
    made = []
    for number, row in enumerate(value, 1):
        problem = _row_problem(row, kinds)
        if problem is not None:
            t.problem(name, f"row {number}: {problem}; each row is [{columns}]")
            return None
        made.append(tuple(float(v) if kind == "f" else v for v, kind in zip(row, kinds, strict=True)))
        if (problem := _value_problem(name, made[-1])) is not None:
            t.problem(name, f"row {number}: {problem}")
            return None
    return tuple(made)


def _row_problem(row: object, kinds: str) -> str | None:
    if not isinstance(row, list) or len(row) != len(kinds):
        return f"want a list of {len(kinds)} values, got {row!r}"
    for column, (v, kind) in enumerate(zip(row, kinds, strict=True), 1):
        if kind == "w":
            if not (isinstance(v, str) and v and v.isascii() and v.isprintable() and " " not in v):
                return f"value {column} must be one word, got {v!r}"
        elif isinstance(v, bool) or not isinstance(v, int if kind == "i" else int | float):
            return f"value {column} must be {'an integer' if kind == 'i' else 'a number'}, got {v!r}"
        elif v != v or v in (float("inf"), float("-inf")):
            return f"value {column} must be a finite number, got {v!r}"
    return None


def _value_problem(name: str, row: Row) -> str | None:
    """What an analysis would refuse in one row: energies and widths that are not positive, negative
    uncertainties, efficiencies outside (0, 1], ROI numbers outside 1-10, limits not rising."""
    if name in ("g_energy", "g_resolution", "g_efficiency", "b_energy", "b_resolution"):
        energy, *_, unc = row
        if not float(energy) > 0:
            return f"energy must be > 0, got {energy}"
        if float(unc) < 0:
            return f"uncertainty must be >= 0, got {unc}"
        if name in ("g_resolution", "b_resolution") and not float(row[1]) > 0:
            return f"FWHM must be > 0, got {row[1]}"
        if name == "g_efficiency" and not 0 < float(row[1]) <= 1:
            return f"efficiency must be a fraction in (0, 1], got {row[1]}"
        if name == "b_energy" and row[1] not in ("B", "C"):
            return f"decay mode must be B (beta) or C (conversion electron), got {row[1]!r}"
        return None
    if name == "roi_limits":
        roi, b0, b1, g0, g1 = row
        if roi not in ROIS:
            return f"ROI must be 1-10, got {roi}"
        if not 0 <= float(b0) < float(b1) or not 0 <= float(g0) < float(g1):
            return f"each limit pair must rise from >= 0 keV, got beta {b0}-{b1}, gamma {g0}-{g1}"
        return None
    rois = row[1:3] if name == "ratios" else row[1:2]
    if any(r not in ROIS for r in rois):
        return f"ROI must be 1-10, got {', '.join(map(str, rois))}"
    value, unc = float(row[-2]), float(row[-1])
    if name == "bg_efficiency" and not 0 < value <= 1:
        return f"efficiency must be a fraction in (0, 1], got {value}"
    if value < 0 or unc < 0:
        return f"value and uncertainty must be >= 0, got {value}, {unc}"
    return None


def _check_hpge(t: _Table, c: Calibration, channels: int | None) -> None:
    if len(c.g_energy) == 1:
        t.problem("g_energy", "an energy calibration needs at least 2 rows, got 1")
    if channels is not None and any(not 0 <= float(row[1]) <= channels + 1 for row in c.g_energy):
        t.problem("g_energy", f"a centroid lies outside the detector's channels 1-{channels}")


def _check_rois(t: _Table, c: Calibration) -> None:
    """ROIs named once each, ROIs 1-6 there (5 and 6 inside 4, apart), and every ROI an efficiency or
    ratio names defined."""
    numbers = [int(row[0]) for row in c.roi_limits]
    defined = set(numbers)
    complete = False  # ROIs 1-6 each once: what efficiencies and ratios may name is known
    if len(defined) != len(numbers):
        t.problem("roi_limits", "an ROI is given more than once")
    elif c.roi_limits:
        if missing := [r for r in BG_ANALYSIS_ROIS if r not in defined]:
            t.problem("roi_limits", f"the analysis needs ROIs 1-6; missing {', '.join(map(str, missing))}")
        else:
            complete = True
            limits = {int(row[0]): [float(v) for v in row[1:]] for row in c.roi_limits}
            b0, b1, g0, g1 = limits[4]
            for roi in (5, 6):
                lb0, lb1, lg0, lg1 = limits[roi]
                if not (b0 <= lb0 and lb1 <= b1 and g0 <= lg0 and lg1 <= g1):
                    t.problem("roi_limits", f"ROI {roi} must lie inside ROI 4")
            if limits[5][1] > limits[6][0] and limits[6][1] > limits[5][0]:
                t.problem("roi_limits", "ROIs 5 and 6 must not overlap in beta energy")
    if c.bg_efficiency:
        have = {int(row[1]) for row in c.bg_efficiency}
        if missing := [r for r in BG_EFFICIENCY_ROIS if r not in have]:
            t.problem("bg_efficiency", f"the analysis needs ROIs 2-6; missing {', '.join(map(str, missing))}")
    if complete:
        for name, rows, columns in (("bg_efficiency", c.bg_efficiency, (1,)), ("ratios", c.ratios, (1, 2))):
            unknown = sorted({int(row[k]) for row in rows for k in columns} - defined)
            if unknown:
                t.problem(name, f"names ROI {', '.join(map(str, unknown))}, which roi_limits does not define")
