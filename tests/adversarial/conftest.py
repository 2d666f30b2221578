"""The attacks run against the receiver set up as in tests/idc: the same network keys and clock."""

from tests.idc.conftest import clock, keys

__all__ = ["clock", "keys"]
