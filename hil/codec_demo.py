"""Interim demo: a synthetic station's CD-1.1 frames (and the real fixtures) through the codec and back.

Stands in for the simulated network until it exists; ``synthetic_counts`` is also the realistic
signal the CD-1.1 benchmark compresses.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gci_link.cd11 import Cd11FormatError, build_data_frame, build_subframe, decode_frame, encode_frame

NS_PER_S = 1_000_000_000
FRAME_S = 10
STATION = "DEMO"
COMPONENTS = ("BHZ", "BHN", "BHE")


def synthetic_counts(n: int, rate: float, seed: int = 0, events: int = 3) -> np.ndarray:
    """Broadband-like int32 counts: red (1/f) noise around a few hundred counts plus enveloped wavelets."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    spectrum[1:] /= np.sqrt(freqs[1:] / freqs[1])
    spectrum[0] = 0
    noise = np.fft.irfft(spectrum, n)
    trace = noise / (noise.std() or 1.0) * 400.0
    t = np.arange(n) / rate
    for _ in range(events):
        onset = rng.uniform(0, t[-1] if n else 0)
        amplitude = rng.uniform(2e3, 5e4)
        freq = rng.uniform(0.5, 5.0)
        after = np.clip(t - onset, 0, None)
        trace += (
            amplitude
            * (t >= onset)
            * (1 - np.exp(-after * 4))
            * np.exp(-after / 20)
            * np.sin(2 * np.pi * freq * after)
        )
    return np.round(trace).astype(np.int32)


def fixtures_dir() -> Path:
    default = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
    return Path(os.environ.get("IMS_SHARED_FIXTURES", default)) / "cd11"


def synthetic_frames(
    minutes: int = 3, rate: int = 40, start_ns: int = 1_700_000_000 * NS_PER_S
) -> list[bytes]:
    """Encoded data frames of a 3-component station on the UTC 10-s grid."""
    per_frame = rate * FRAME_S
    nframes = minutes * 60 // FRAME_S
    traces = [synthetic_counts(per_frame * nframes, rate, seed=i) for i in range(len(COMPONENTS))]
    frames = []
    for k in range(nframes):
        t0 = start_ns - start_ns % (FRAME_S * NS_PER_S) + k * FRAME_S * NS_PER_S
        subs = [
            build_subframe(
                trace[k * per_frame : (k + 1) * per_frame],
                site=STATION,
                channel=chan,
                time_ns=t0,
                sample_rate=rate,
                calib=0.01,
                calper=1.0,
            )
            for chan, trace in zip(COMPONENTS, traces, strict=True)
        ]
        frames.append(encode_frame(build_data_frame(subs, creator=STATION, sequence=k, nominal_time_ns=t0)))
    return frames


def check(name: str, raw: bytes, expected: list[np.ndarray] | None) -> tuple[str, ...]:
    """One table row: what decoding and re-encoding a frame found."""
    try:
        frame = decode_frame(raw)
    except Cd11FormatError as exc:
        return (name, "-", "-", "-", f"DECODE ERROR {exc}")
    chans = frame.body.channels
    same = expected is None or all(np.array_equal(c.samples, x) for c, x in zip(chans, expected, strict=True))
    exact = encode_frame(frame) == raw
    rate = sum(c.nsamp * 4 for c in chans) / max(1, sum(len(c.data) for c in chans))
    verdict = "ok" if same and exact else f"MISMATCH samples={same} bytes={exact}"
    return (name, str(len(chans)), str(len(raw)), f"{rate:.2f}", verdict)


def run(out: Path) -> int:
    """Build, encode, decode and compare; write frames under ``out``; returns a process exit code."""
    out_dir = out / "cd11"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [("frame", "chans", "bytes", "s4/comp", "result")]
    rate = 40
    per_frame = rate * FRAME_S
    frames = synthetic_frames(rate=rate)
    traces = [synthetic_counts(per_frame * len(frames), rate, seed=i) for i in range(len(COMPONENTS))]
    for k, raw in enumerate(frames):
        name = f"{STATION}-{k:06d}.cd11"
        (out_dir / name).write_bytes(raw)
        expected = [t[k * per_frame : (k + 1) * per_frame] for t in traces]
        rows.append(check(name, raw, expected))
    fixtures = fixtures_dir()
    if fixtures.is_dir():
        for path in sorted(fixtures.glob("*.cd11")):
            raw = path.read_bytes()
            (out_dir / path.name).write_bytes(raw)
            rows.append(check(path.name, raw, None))
    else:
        rows.append((f"(no real fixtures at {fixtures})", "", "", "", "skipped"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)))
    bad = sum(1 for r in rows[1:] if r[-1] not in ("ok", "skipped"))
    print(f"{len(rows) - 1} frames checked, {bad} failed; frames written to {out_dir}")
    return 1 if bad else 0
