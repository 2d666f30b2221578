"""Checks on a calibration recording before anything is fitted to it, so a bad record never yields a fit.

Every refusal is a ``RecordingRejected`` whose ``problem`` is a short code a report or a command
response can carry, and whose message says what was seen.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from calibration.transfer import TransferEstimate

# Output samples sitting on one rail (its max or min) more than this often, and far more often than on
# the next value in, mean clipping: a smooth signal only grazes its extreme.
CLIP_FRACTION = 1e-3
CLIP_RAIL_EXCESS = 5.0
# Below this fraction of the output's power coherent with the input, the output is not its response.
MIN_COHERENT_FRACTION = 0.5


class RecordingRejected(ValueError):
    """A calibration recording that cannot give a trustworthy result; ``problem`` names why."""

    def __init__(self, problem: str, message: str) -> None:
        super().__init__(f"{problem}: {message}")
        self.problem = problem


def as_channel(samples: npt.ArrayLike, name: str) -> np.ndarray:
    """One channel as a float64 array, refusing NaN/inf samples (they would poison every FFT)."""
    data = np.asarray(samples, dtype=np.float64)
    if data.ndim != 1:
        raise RecordingRejected("shape", f"{name} must be one-dimensional, has shape {data.shape}")
    bad = ~np.isfinite(data)
    if bad.any():
        raise RecordingRejected("not-finite", f"{name} has {int(bad.sum())} NaN/inf samples, "
                                              f"first at index {int(np.argmax(bad))}")
    return data


def check_pair(cal_input: npt.ArrayLike, output: npt.ArrayLike, sample_rate: float, min_duration: float,
               full_scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Input and output as float arrays, after checking they can be calibrated against each other.

    Rail (clipping) detection looks at the output only: a binary calibration input sits on its two
    levels by design. ``full_scale`` catches a clipped input as well.
    """
    if not sample_rate > 0:
        raise ValueError(f"sample rate must be positive, not {sample_rate!r}")
    x, y = as_channel(cal_input, "calibration input"), as_channel(output, "sensor output")
    if len(x) != len(y):
        raise RecordingRejected("length-mismatch", f"input has {len(x)} samples, output {len(y)}")
    duration = len(x) / sample_rate
    if duration < min_duration:
        raise RecordingRejected("too-short", f"{duration:.4g} s recorded, at least {min_duration:.4g} s "
                                             "needed")
    if np.ptp(x) == 0:
        raise RecordingRejected("no-signal", "the calibration input is constant: no calibration signal")
    if np.ptp(y) == 0:
        raise RecordingRejected("no-output", "the sensor output is constant: dead channel or sensor")
    if full_scale is not None:
        for data, name in ((x, "calibration input"), (y, "sensor output")):
            if np.max(np.abs(data)) >= full_scale:
                raise RecordingRejected("clipped", f"{name} reaches the digitizer's full scale "
                                                   f"{full_scale:g}")
    _check_rails(y)
    return x, y


def _check_rails(y: np.ndarray) -> None:
    for rail, inward in ((y.max(), -1), (y.min(), +1)):
        at_rail = int(np.count_nonzero(y == rail))
        if at_rail < max(3, CLIP_FRACTION * len(y)):
            continue
        others = y[y != rail]
        next_value = others.max() if inward < 0 else others.min()
        if at_rail > CLIP_RAIL_EXCESS * np.count_nonzero(others == next_value):
            raise RecordingRejected("clipped", f"sensor output sits on {rail:g} in {at_rail} samples "
                                               f"({at_rail / len(y):.2%}): clipped")


def check_output_follows_input(estimate: TransferEstimate) -> float:
    """The coherent fraction of the output's power; refuses a recording whose output ignores the input."""
    fraction = estimate.coherent_fraction()
    if fraction < MIN_COHERENT_FRACTION:
        raise RecordingRejected("unrelated", f"only {fraction:.0%} of the output's power is coherent with "
                                             f"the input (at least {MIN_COHERENT_FRACTION:.0%} needed): "
                                             "wrong channel, no calibration reached the sensor, or it is "
                                             "buried in noise")
    return fraction
