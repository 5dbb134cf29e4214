"""The National Provider Identifier check digit (CMS NPI standard)."""

from __future__ import annotations

_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
"""Luhn: a doubled digit, its two digits summed."""
_ISSUER_PREFIX_SUM = 24
"""The NPI is checked as if prefixed by the card issuer prefix 80840, whose Luhn sum is 24."""


def npi_valid(npi: str) -> bool:
    """Tell whether an NPI as sent is 10 digits whose last is the Luhn check digit of the first 9.

    Args:
        npi: the identifier as the claim carries it.

    Returns:
        True for a well-formed NPI; False for any other text (wrong length, a non-digit, a
        wrong check digit).
    """
    if len(npi) != 10 or not npi.isascii() or not npi.isdigit():
        return False
    digits = [ord(char) - 48 for char in npi]
    body = digits[8::-1]  # the 9 identifier digits, rightmost first: every other one doubled
    total = _ISSUER_PREFIX_SUM + sum(_DOUBLED[d] for d in body[0::2]) + sum(body[1::2])
    return (10 - total % 10) % 10 == digits[9]
