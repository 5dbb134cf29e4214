"""NDC normalization to 11 digits (5-4-2)."""

from __future__ import annotations

import pytest

from worker.adjudication.ndc import normalize, resolve


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("67457-108-10", "67457010810"),  # 5-3-2: pad the product
        ("52584-038-10", "52584003810"),
        ("0409-2053-10", "00409205310"),  # 4-4-2: pad the labeler
        ("67457-0108-1", "67457010801"),  # 5-4-1: pad the package
        ("67457-0108-10", "67457010810"),  # 5-4-2 already
        ("67457010810", "67457010810"),  # bare 11 digits
    ],
)
def test_each_form_normalizes_to_11_digits(sent: str, expected: str) -> None:
    assert normalize(sent).unique == expected


def test_bare_10_digits_have_three_readings() -> None:
    assert normalize("6745710810").candidates == ("06745710810", "67457010810", "67457108100")


@pytest.mark.parametrize("sent", ["1234-567-89", "12345", "abcde-fghi-jk", "12345-6789-123"])
def test_shapes_that_are_not_ndcs_have_no_reading(sent: str) -> None:
    assert normalize(sent).candidates == ()


class TestResolve:
    def test_bare_10_digits_resolve_to_the_one_known_reading(self) -> None:
        assert resolve("6745710810", {"674570108"}).ndc11 == "67457010810"

    def test_bare_10_digits_matching_no_known_product_are_another_drug(self) -> None:
        resolution = resolve("1234567890", {"674570108"})
        assert (resolution.ndc11 is not None, resolution.malformed) == (True, False)

    def test_bare_10_digits_matching_two_known_products_are_malformed(self) -> None:
        # 0123456789 reads as 00123-4567-89 (4-4-2) or 01234-0567-89 (5-3-2).
        resolution = resolve("0123456789", {"001234567", "012340567"})
        assert (resolution.ndc11, resolution.malformed) == (None, True)
