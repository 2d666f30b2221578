"""The compiled integer scan: values, the first value of each line, and errors that quote the token."""

from __future__ import annotations

import numpy as np
import pytest

from gci_link.ims2 import Ims2FormatError
from gci_link.ims2.intcodec import format_int_rows, scan_ints


def test_values_and_line_starts_across_blank_lines_crlf_and_signs():
    values, line_first = scan_ints("1 2\r\n\n  +3 -40\t5\n999999999999999999\n", "#B", 7)
    assert values.tolist() == [1, 2, 3, -40, 5, 999999999999999999]
    assert line_first.tolist() == [0, 2, 2, 5, 6]
    values, line_first = scan_ints("", "#B", 7)
    assert values.tolist() == [] and line_first.tolist() == [0]


@pytest.mark.parametrize(("body", "message"), [
    ("1 2\n3 4x 5\n", "#B, line 8: bad number '4x'"),
    ("1\n\n-\n", "#B, line 9: bad number '-'"),
    ("1 +-5\n", "#B, line 7: bad number '+-5'"),
    ("1 -0000000000000000001\n", "#B, line 7: number too large for a count '-0000000000000000001'"),
    # a bad character anywhere is reported before a number too large earlier on
    ("1234567890123456789\n7 ?\n", "#B, line 8: bad number '?'"),
])
def test_the_first_bad_token_is_quoted_with_its_line(body, message):
    with pytest.raises(Ims2FormatError) as caught:
        scan_ints(body, "#B", 7)
    assert str(caught.value) == message


def test_a_written_histogram_scans_back_to_the_same_numbers():
    rows = np.random.default_rng(4).integers(0, 10**12, (64, 33))
    values, line_first = scan_ints(format_int_rows(rows), "#Histogram", 1)
    assert np.array_equal(values.reshape(rows.shape), rows)
    assert line_first.tolist() == [33 * k for k in range(65)]
