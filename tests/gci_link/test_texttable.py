"""Readable durations for the operator tables."""

from __future__ import annotations

import pytest

from gci_link.texttable import duration


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "-"), (0.0, "0 ms"), (0.8504, "850 ms"), (12.46, "12.5 s"), (59.94, "59.9 s"),
    (250.4, "4 min 10 s"),
    (3599.6, "1 h 00 min"), (7500, "2 h 05 min"), (273600, "3 d 04 h"), (-2.5, "-2.5 s"),
])
def test_duration(seconds, text):
    assert duration(seconds) == text
