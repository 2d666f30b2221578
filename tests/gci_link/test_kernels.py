"""warm_up compiles every kernel with the argument types the data path uses, so none compiles later."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba.core.registry import CPUDispatcher

from gci_link import ims2
from gci_link.cd11 import build_data_frame, build_subframe, canadian, crc, decode_frame, encode_frame
from gci_link.ims2 import intcodec, lexer, spectra
from gci_link.io.mseed2 import records
from gci_link.io.sds import SdsArchive, Segment
from gci_link.kernels import warm_up
from tests.gci_link.ims2 import builders
from timeunits import NS_PER_S


def _signatures() -> dict[str, tuple[object, ...]]:
    kernels = {
        f"{module.__name__}.{name}": value
        for module in (canadian, crc, records, intcodec, lexer, spectra)
        for name, value in vars(module).items()
        if isinstance(value, CPUDispatcher)
    }
    assert len(kernels) >= 10, sorted(kernels)
    return {name: tuple(kernel.signatures) for name, kernel in kernels.items()}


def test_the_data_path_compiles_nothing_after_warm_up(tmp_path: Path) -> None:
    warm_up()
    before = _signatures()
    entry_points = {name for name, sigs in before.items() if sigs}  # helpers compile inside their callers
    compiled = {"canadian._decode_into", "canadian._encode_into", "crc._crc64", "records._pack",
                "intcodec._scan", "lexer._line_heads", "spectra._channel_rows"}
    assert compiled <= {
        ".".join(name.rsplit(".", 2)[-2:]) for name in entry_points
    }, sorted(entry_points)
    rng = np.random.default_rng(3)
    start = 1_800_000_000 * NS_PER_S
    samples = rng.integers(-(2**23), 2**23, 1000).astype(np.int32)
    subframes = [
        build_subframe(samples, site="STA1", channel=code, time_ns=start, sample_rate=100.0)
        for code in ("BHZ", "BHN")
    ]
    built = build_data_frame(subframes, creator="STA1", sequence=7, nominal_time_ns=start)
    frame = decode_frame(encode_frame(built))
    archive = SdsArchive(tmp_path)
    segment = Segment("IM", "STA1", "00", "BHZ", start, 100.0, frame.body.channels[0].samples)
    archive.append(archive.split_by_day(segment))
    archive.close()
    message = ims2.write(builders.beta_gamma(rng, n=16))  # a station writes it, the IDC indexes it
    assert ims2.parse(message).histogram is not None
    assert _signatures() == before
