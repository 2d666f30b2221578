"""Which software this is: the installed distribution's version (``ims --version``, ``ims_build_info``)."""

from __future__ import annotations

from importlib import metadata

DISTRIBUTION = "ims-station"


def build_version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"
