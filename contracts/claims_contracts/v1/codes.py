"""Field types for the code sets that claims carry, with syntax checks.

Procedure codes, units, amounts and identifiers are checked for shape here. Provider NPIs,
diagnosis codes and NDCs are bounded, printable text only (since 1.3.0): a malformed one, a
failing NPI check digit or a code that does not exist on the date of service is a claim data
error the determination core decides (a pend the provider hears of), not a contract violation.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from annotated_types import Interval
from pydantic import (
    AwareDatetime,
    BeforeValidator,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import core_schema

# Each pattern is stated once and used twice: by the model, and in the published JSON Schema.
# Codes the core checks itself (1.3.0): printable ASCII without spaces, bounded, so nothing long
# or free-form can arrive in them; their shape and check digit are the core's to judge.
ICD10CM_PATTERN = r"^[!-~]{1,10}$"
NDC_PATTERN = r"^[!-~]{1,20}$"
NPI_PATTERN = r"^[!-~]{1,20}$"
HCPCS_PATTERN = r"^[A-Za-z0-9]{5}$"
UNITS_PATTERN = r"^(?:[1-9][0-9]{0,11}(?:\.[0-9]{1,3})?|0\.(?:[1-9][0-9]{0,2}|0[1-9][0-9]?|00[1-9]))$"
"""A quantity greater than 0: up to 12 integer digits, no leading zero, at most 3 decimals."""
MONEY_PATTERN = r"^(?:0|[1-9][0-9]{0,11})(?:\.[0-9]{1,2})?$"
"""An amount of 0 or more: up to 12 integer digits, no leading zero, at most 2 decimals."""
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/#-]*$"
"""A payer-assigned identifier: letters, digits and . _ : / # - (no spaces, no control characters,
no X12 delimiters), starting with a letter or digit."""

_UNITS = re.compile(UNITS_PATTERN)
_MONEY = re.compile(MONEY_PATTERN)


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


def _first_step(schema: core_schema.CoreSchema) -> core_schema.CoreSchema:
    """What a chain publishes: its first step.

    Pydantic publishes a chain's last step for outputs: a bare string, without the lengths and
    the pattern the value was held to.
    """
    if schema["type"] == "chain":
        first: core_schema.CoreSchema = schema["steps"][0]
        return first
    return schema


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@dataclass(frozen=True)
class _Matching:
    """A string that must match a pattern.

    The model checks it with a message a person can act on; the JSON Schema publishes the same
    `pattern`, so both accept the same strings.
    """

    pattern: str
    message: str

    def check(self, value: Any) -> Any:
        if not isinstance(value, str) or not _compiled(self.pattern).fullmatch(value):
            raise ValueError(self.message)
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        # Checked in pydantic-core, not in Python (a dozen codes a claim): the type first, with
        # pydantic's own error, then the pattern, with the error `check` would raise.
        return core_schema.chain_schema(
            [
                handler(source),
                core_schema.custom_error_schema(
                    core_schema.str_schema(pattern=self.pattern),
                    custom_error_type="value_error",
                    custom_error_context={"error": self.message},
                ),
            ]
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        json_schema: dict[str, Any] = handler(_first_step(schema))
        json_schema["pattern"] = self.pattern
        return json_schema


@dataclass(frozen=True)
class _Written(_Matching):
    """A value that must be written as a pattern says before it is parsed (a date, a time).

    Pydantic also reads other forms (a date from a number of seconds, even in a string); the
    contract takes the one form its JSON Schema publishes.
    """

    def check(self, value: Any) -> Any:
        if isinstance(value, date):  # built in Python (a datetime is a date too)
            return value
        return super().check(value)

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        parsed = handler(source)
        # From JSON the value is checked in pydantic-core (several dates a claim), with the error
        # `check` raises; from Python it may already be a date, which only `check` lets through.
        return core_schema.json_or_python_schema(
            json_schema=core_schema.chain_schema(
                [
                    core_schema.custom_error_schema(
                        core_schema.str_schema(pattern=self.pattern),
                        custom_error_type="value_error",
                        custom_error_context={"error": self.message},
                    ),
                    parsed,
                ]
            ),
            python_schema=core_schema.no_info_before_validator_function(self.check, parsed),
        )

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        # Published as before: the parsed type's schema (its format) with the pattern.
        published = schema["python_schema"] if schema["type"] == "json-or-python" else schema
        json_schema: dict[str, Any] = handler(published)
        json_schema["pattern"] = self.pattern
        return json_schema


@dataclass(frozen=True)
class _Upper:
    """Upper-cases a string, in pydantic-core (after the checks before it)."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.chain_schema([handler(source), core_schema.str_schema(to_upper=True)])

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        json_schema: dict[str, Any] = handler(_first_step(schema))
        return json_schema


_UPPER = _Upper()


def _decimal_matching(pattern: re.Pattern[str], what: str) -> BeforeValidator:
    # Amounts travel as strings so no float rounding can touch them; a JSON number, an
    # exponent, a sign, underscores or spaces are refused rather than guessed at.
    def parse(value: Any) -> Decimal:
        if isinstance(value, Decimal):
            return value
        if not isinstance(value, str):
            kind = {bool: "boolean", int: "number", float: "number"}.get(type(value), type(value).__name__)
            raise ValueError(f'must be a decimal string such as "12.50", not a JSON {kind}')
        if not pattern.fullmatch(value):
            raise ValueError(f"must be {what}")
        return Decimal(value)

    return BeforeValidator(parse)


_as_string = PlainSerializer(str, return_type=str, when_used="always")

Npi = Annotated[str, _Matching(NPI_PATTERN, "NPI must be 1 to 20 printable characters without spaces")]
"""A National Provider Identifier as sent: 10 digits with a valid check digit when it is right
(the core pends a claim whose NPI is not; see `luhn_valid_npi`)."""

Icd10CmCode = Annotated[
    str,
    _Matching(ICD10CM_PATTERN, "a diagnosis code must be 1 to 10 printable characters without spaces"),
    _UPPER,
]
"""An ICD-10-CM code as sent, upper-cased; the core judges its shape and validity on the date of service."""

Ndc = Annotated[str, _Matching(NDC_PATTERN, "an NDC must be 1 to 20 printable characters without spaces")]
"""A National Drug Code as sent; the core reads it as 11 digits, or pends the line (CARC 16, M119)."""

ProcedureCode = Annotated[str, _Matching(HCPCS_PATTERN, "HCPCS/CPT code must be 5 letters or digits"), _UPPER]
"""A HCPCS Level II or CPT code, upper-cased."""

Units = Annotated[
    Decimal,
    _decimal_matching(_UNITS, 'a quantity greater than 0 with at most 3 decimal places, e.g. "1" or "0.5"'),
    _as_string,
    WithJsonSchema({"type": "string", "pattern": UNITS_PATTERN}, mode="validation"),
]
"""A quantity greater than 0, at most 3 decimal places (NCPDP quantity precision)."""

Money = Annotated[
    Decimal,
    _decimal_matching(_MONEY, 'an amount of 0 or more with at most 2 decimal places, e.g. "12.50"'),
    _as_string,
    WithJsonSchema({"type": "string", "pattern": MONEY_PATTERN}, mode="validation"),
]
"""An amount of US dollars, 0 or more, at most 2 decimal places."""


_IDENTIFIER = _Matching(
    IDENTIFIER_PATTERN, "an identifier is letters, digits and . _ : / # - only, starting with a letter or digit"
)

DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
TIMESTAMP_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})$"
)


@dataclass(frozen=True)
class _Whole:
    """A whole JSON number: JSON Schema's "integer" is any number with no fraction (1.0 is one).

    A string or a boolean is not. Checked in pydantic-core (a line number and pointers a line),
    before the bounds the annotation carries.
    """

    message: str = "must be a whole JSON number"

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        whole = core_schema.union_schema(
            [
                core_schema.int_schema(strict=True),
                core_schema.chain_schema([core_schema.float_schema(strict=True), core_schema.int_schema()]),
            ]
        )
        return core_schema.chain_schema(
            [
                core_schema.custom_error_schema(
                    whole, custom_error_type="value_error", custom_error_context={"error": self.message}
                ),
                handler(source),
            ]
        )


LineNumber = Annotated[
    int,
    Interval(ge=1, le=999),
    _Whole(),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 999}),
]
"""A line number, 1 to 999."""

DiagnosisPointer = Annotated[
    int,
    Interval(ge=1, le=99),
    _Whole(),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": 99}),
]
"""A 1-based index into the claim's diagnoses."""

IsoDate = Annotated[date, _Written(DATE_PATTERN, "a date is written YYYY-MM-DD")]
"""A calendar date written as YYYY-MM-DD (no timestamps, no other forms)."""

Timestamp = Annotated[
    AwareDatetime,
    _Written(TIMESTAMP_PATTERN, "a time is written as RFC 3339 with its offset, e.g. 2025-09-03T14:22:05Z"),
]
"""An RFC 3339 date and time with its offset."""

ClaimNumber = Annotated[str, StringConstraints(min_length=1, max_length=38), _IDENTIFIER]
"""A payer claim number: 1 to 38 characters, as X12 CLM01 allows."""

MemberId = Annotated[str, StringConstraints(min_length=1, max_length=80), _IDENTIFIER]
"""A payer member id: 1 to 80 characters, as X12 NM109 allows."""

AuthorizationId = Annotated[str, StringConstraints(min_length=1, max_length=50), _IDENTIFIER]
ReviewerId = Annotated[str, StringConstraints(min_length=1, max_length=64), _IDENTIFIER]
"""A reviewer's workforce identifier (never a name)."""
"""A prior authorization number: 1 to 50 characters, as X12 REF02 allows."""
