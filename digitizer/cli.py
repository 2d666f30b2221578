"""``ims gcf dump FILE...``: one line per GCF block, status text, and errors with their file offsets."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from digitizer.gcf import FILE_BLOCK_SIZE, GcfBlock, GcfFormatError, decode_block
from timeunits import NS_PER_S


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("gcf", help="Güralp GCF block tools")
    sub = parser.add_subparsers(dest="gcf_command", required=True, metavar="ACTION")
    dump = sub.add_parser("dump", help="list the blocks of GCF files (1024-byte blocks)")
    dump.add_argument("files", nargs="+", type=Path, metavar="FILE")
    dump.add_argument("--samples", action="store_true", help="print every sample after its block line")
    dump.set_defaults(func=_dump)


def _iso(ns: int) -> str:
    seconds, frac = divmod(ns, NS_PER_S)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{frac // 1000:06d}Z"


def describe_block(offset: int, block: GcfBlock) -> str:
    """One summary line for a block."""
    head = f"{offset:>8} {block.system_id}/{block.stream_id} {_iso(block.start_ns)}"
    if block.samples is None:
        kind = "text status" if block.status_text is not None else "status"
        return f"{head} {kind} {len(block.status_bytes or b'')} bytes ttl={block.ttl}"
    leap = " leap-second" if block.leap_second else ""
    s24 = " 24-bit" if block.serial24 else ""
    return (f"{head} {block.sample_rate:g} sps {block.nsamp} samples {32 // block.compression}-bit"
            f"{s24} ttl={block.ttl} fic={block.fic} ric={block.ric}{leap}")


def _dump(args: argparse.Namespace) -> int:
    errors = 0
    out = sys.stdout
    for path in args.files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            print(f"{path}: cannot read: {exc.strerror}", file=sys.stderr)
            errors += 1
            continue
        out.write(f"# {path} ({len(data)} bytes)\n")
        for start in range(0, len(data), FILE_BLOCK_SIZE):
            chunk = data[start:start + FILE_BLOCK_SIZE]
            try:
                block = decode_block(chunk)
            except GcfFormatError as exc:
                out.write(f"{start:>8} ERROR at offset {start + exc.offset}: {exc}\n")
                errors += 1
                continue
            out.write(describe_block(start, block) + "\n")
            if block.status_text is not None:
                for line in block.status_text.splitlines():
                    out.write(f"         | {line}\n")
            if args.samples and block.samples is not None:
                out.write("         " + " ".join(map(str, block.samples.tolist())) + "\n")
    return 1 if errors else 0
