"""Field types for the code sets that claims carry, with syntax checks.

These checks are syntax only (shape and check digit). Whether a code exists in
its code set on the date of service is the determination core's business.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, StringConstraints

_ICD10CM = re.compile(r"^[A-Z][0-9][0-9A-Z](?:\.?[0-9A-Z]{1,4})?$")
# The NDC forms in use: 10 digits as 4-4-2, 5-3-2 or 5-4-1, 11 digits as 5-4-2,
# each hyphenated, or the bare digits (10 or 11).
_NDC = re.compile(r"^(?:\d{4}-\d{4}-\d{2}|\d{5}-\d{3}-\d{2}|\d{5}-\d{4}-\d{1}|\d{5}-\d{4}-\d{2}|\d{10}|\d{11})$")
_HCPCS = re.compile(r"^[A-Z0-9]{5}$")


def luhn_valid_npi(npi: str) -> bool:
    """Tell whether a 10-digit NPI passes its check digit.

    The NPI check digit is the Luhn digit of the 9-digit identifier prefixed with
    the card issuer prefix 80840 (CMS NPI standard), which adds a constant 24.

    Args:
        npi: ten ASCII digits.

    Returns:
        True when the check digit matches.
    """
    if len(npi) != 10 or not npi.isdigit():
        return False
    total = 24
    for index, char in enumerate(reversed(npi[:9])):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10 == int(npi[9])


def _check_npi(value: str) -> str:
    if not re.fullmatch(r"\d{10}", value):
        raise ValueError("NPI must be exactly 10 digits")
    if not luhn_valid_npi(value):
        raise ValueError("NPI check digit is wrong (Luhn with prefix 80840)")
    return value


def _check_icd10cm(value: str) -> str:
    upper = value.upper()
    if not _ICD10CM.fullmatch(upper):
        raise ValueError("not ICD-10-CM code syntax (letter, 2 characters, optional dot and up to 4 characters)")
    return upper


def _check_ndc(value: str) -> str:
    if not _NDC.fullmatch(value):
        raise ValueError("NDC must be 10 or 11 digits, bare or hyphenated as 4-4-2, 5-3-2, 5-4-1 or 5-4-2")
    return value


def _check_hcpcs(value: str) -> str:
    upper = value.upper()
    if not _HCPCS.fullmatch(upper):
        raise ValueError("HCPCS/CPT code must be 5 letters or digits")
    return upper


def _decimal_from_string(value: Any) -> Decimal:
    # Amounts travel as strings so no float rounding can touch them; a JSON
    # number is refused rather than guessed at.
    if not isinstance(value, str):
        if isinstance(value, Decimal):
            return value
        raise ValueError('must be a decimal string such as "12.50", not a JSON number')
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise ValueError("not a decimal number") from None
    if not parsed.is_finite():
        raise ValueError("must be a finite decimal")
    return parsed


def _max_places(places: int) -> AfterValidator:
    def check(value: Decimal) -> Decimal:
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > places:
            raise ValueError(f"at most {places} decimal places")
        if value.adjusted() >= 12:
            raise ValueError("too large (12 integer digits at most)")
        return value

    return AfterValidator(check)


def _positive(value: Decimal) -> Decimal:
    if value <= 0:
        raise ValueError("must be greater than 0")
    return value


def _non_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("must not be negative")
    return value


_as_string = PlainSerializer(lambda value: str(value), return_type=str, when_used="always")

Npi = Annotated[str, BeforeValidator(str), AfterValidator(_check_npi)]
"""A National Provider Identifier: 10 digits with a valid check digit."""

Icd10CmCode = Annotated[str, StringConstraints(max_length=8), AfterValidator(_check_icd10cm)]
"""An ICD-10-CM code, with or without the dot, upper-cased."""

Ndc = Annotated[str, StringConstraints(max_length=13), AfterValidator(_check_ndc)]
"""A National Drug Code in one of its 10- or 11-digit forms, as sent."""

ProcedureCode = Annotated[str, StringConstraints(max_length=5), AfterValidator(_check_hcpcs)]
"""A HCPCS Level II or CPT code, upper-cased."""

Units = Annotated[Decimal, BeforeValidator(_decimal_from_string), _max_places(3), AfterValidator(_positive), _as_string]
"""A quantity greater than 0, at most 3 decimal places (NCPDP quantity precision)."""

Money = Annotated[
    Decimal, BeforeValidator(_decimal_from_string), _max_places(2), AfterValidator(_non_negative), _as_string
]
"""An amount of US dollars, 0 or more, at most 2 decimal places."""
