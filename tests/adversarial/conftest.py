"""The attacks run against the receiver set up as in tests/idc: the same network keys and clock, plus what
the attack tests share: frames a station's own key signs, and reading what the receiver quarantined and
archived while it runs."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from gci_link.cd11 import (
    build_data_frame,
    build_subframe,
    crc64,
    encode_frame,
    sign_all_channels,
    sign_frame,
)
from gci_link.io.sds import SdsArchive
from gci_link.keys import StationSigner
from idc.stores import Quarantine
from tests.idc.conftest import T0, clock, connection_request, data_frame, samples_for
from timeunits import NS_PER_S

__all__ = ["clock"]

QuarantineEntry = tuple[str, str, int | None, str, bytes | None]  # peer, station, seq, reason, frame
_NAME_LETTERS = np.frombuffer(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", dtype=np.uint8)


def signed_data(
    signer: StationSigner,
    creator: str,
    seq: int,
    *,
    site: str,
    channel: str = "BHZ",
    location: str = "00",
    rate: float = 40.0,
    samples: np.ndarray | None = None,
    channels: int = 1,
    time_ns: int | None = None,
) -> bytes:
    """A data frame signed (frame and every channel) with ``signer``: ``seq`` picks its 10 s slot after
    T0 and, by default, its 400 samples; ``channels`` > 1 numbers the channels 000, 001, ..."""
    start = T0 + seq * 10 * NS_PER_S if time_ns is None else time_ns
    x = samples_for(seq) if samples is None else samples
    names = [channel] if channels == 1 else [f"{i:03d}" for i in range(channels)]
    subs = [
        build_subframe(x, site=site, channel=name, location=location, time_ns=start, sample_rate=rate)
        for name in names
    ]
    frame = build_data_frame(subs, creator=creator, sequence=seq, nominal_time_ns=start)
    frame = sign_all_channels(frame, signer.key_id, signer.sign)
    return encode_frame(sign_frame(frame, signer.key_id, signer.sign))


def wait_for_rejection(root: Path, station: str, timeout_s: float = 20.0) -> QuarantineEntry:
    """The first quarantined rejection of ``station``'s input, read through a connection of our own (the
    receiver's belongs to its thread)."""
    reader = Quarantine(root / "quarantine.sqlite", max_bytes=0, max_item_bytes=0, max_rows=1 << 62)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = [e for e in reader.entries() if e[1] == station]
            if found:
                return found[0]
            time.sleep(0.05)
    finally:
        reader.close()
    raise AssertionError(f"no rejection of {station} in the quarantine")


class AppendCounter:
    """Counts the samples the receiver's SDS archive has appended, per station code, as it appends them:
    read once a frame is acknowledged, it says whether the frame was archived before the acknack."""

    def __init__(self, sds: SdsArchive) -> None:
        self.samples: dict[str, int] = {}
        self._append = sds.append
        sds.append = self._counted  # type: ignore[method-assign]

    def _counted(self, pieces):
        written = self._append(pieces)
        for _, seg in pieces:
            self.samples[seg.station] = self.samples.get(seg.station, 0) + len(seg.samples)
        return written


def crc_fixed(frame: bytes) -> bytes:
    """``frame`` with its trailing CRC-64 made right again for whatever precedes it (a tamperer's
    first step: the CRC guards against noise, not against intent)."""
    body = frame[:-8]
    return body + crc64(body).to_bytes(8, "big")


def with_creator(frame: bytes, name: bytes) -> bytes:
    """``frame`` claiming another creator (header bytes 8-16), with its CRC-64 made right again."""
    return crc_fixed(frame[:8] + name + frame[16:])


def garbage_messages(count: int, seed: int = 11) -> list[bytes]:
    """Unreadable bytes, unsigned data frames and connection requests, each naming a new station."""
    rng = np.random.default_rng(seed)
    names = [bytes(rng.choice(_NAME_LETTERS, 8)) for _ in range(count)]
    data = encode_frame(data_frame(1, None, creator="STA1"))
    connect = connection_request("STA2")
    out = []
    for i, name in enumerate(names):
        if i % 3 == 0:
            noise = bytearray(rng.bytes(int(rng.integers(40, 300))))
            noise[8:16] = name
            out.append(bytes(noise))
        else:
            out.append(with_creator(data if i % 3 == 1 else connect, name))
    return out
