"""Byte ranges of audio answers (webapp.studio.responses.byte_range), as RFC 9110 defines them."""
import pytest

from webapp.studio.responses import byte_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-10", (990, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=900-5000", (900, 999)),
        ("", None),
        ("bytes=0-1,5-9", None),
        ("items=0-1", None),
        ("bytes=1000-", False),
        ("bytes=50-10", False),
        ("bytes=-0", False),
    ],
)
def test_range_header_selects_inclusive_bytes_of_a_1000_byte_file(header, expected):
    assert byte_range(header, 1000) == expected
