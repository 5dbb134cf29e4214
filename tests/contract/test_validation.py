"""The v1 claim event refuses what CLAIM-EVENT-V1.md does not allow, with a precise path."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from claims_contracts.v1 import ClaimEvent, luhn_valid_npi
from tests.builders import example_event

Mutation = Callable[[dict[str, Any]], None]


def first_error(event: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ValidationError) as caught:
        ClaimEvent.model_validate(event)
    error = caught.value.errors()[0]
    return ".".join(str(part) for part in error["loc"]), error["msg"]


def _set(path: str, value: Any) -> Mutation:
    def mutate(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = event
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[int(last) if last.isdigit() else last] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "path", "message"),
    [
        # Since 1.3.0 a malformed NPI, diagnosis or NDC is the core's to decide; text that could be
        # anything (spaces, length) is still refused, so no free text arrives in these fields.
        (_set("claim.provider.npi", "1234 567893"), "claim.provider.npi", "printable characters without spaces"),
        (_set("claim.provider.npi", "1" * 21), "claim.provider.npi", "printable characters without spaces"),
        (_set("claim.diagnoses.0.code", "chronic pain"), "claim.diagnoses.0.code", "without spaces"),
        (_set("claim.diagnoses.0.code", "F" * 11), "claim.diagnoses.0.code", "1 to 10"),
        (_set("claim.lines.0.ndc", "see the attached"), "claim.lines.0.ndc", "without spaces"),
        (_set("claim.lines.0.units", 1.5), "claim.lines.0.units", "not a JSON number"),
        (_set("claim.lines.0.charge_amount", "NaN"), "claim.lines.0.charge_amount", "an amount of 0 or more"),
        (_set("claim.lines.0.charge_amount", "-1.00"), "claim.lines.0.charge_amount", "an amount of 0 or more"),
        (_set("claim.lines.0.charge_amount", "1e3"), "claim.lines.0.charge_amount", "an amount of 0 or more"),
        (_set("claim.lines.0.charge_amount", "1_0"), "claim.lines.0.charge_amount", "an amount of 0 or more"),
        (_set("claim.lines.0.charge_amount", 350.0), "claim.lines.0.charge_amount", "not a JSON number"),
        (_set("claim.lines.0.units", 1), "claim.lines.0.units", "not a JSON number"),
        (_set("claim.provider.npi", 1234567893), "claim.provider.npi", "valid string"),
        (_set("claim.claim_id", " CLM-1"), "claim.claim_id", "an identifier is"),
        (_set("claim.claim_id", "CLM\x1b[31m"), "claim.claim_id", "an identifier is"),
        (_set("claim.claim_id", "patient reports severe pain"), "claim.claim_id", "an identifier is"),
        (_set("claim.claim_id", "C" * 39), "claim.claim_id", "at most 38"),
        (_set("claim.member.member_id", "M1\x00"), "claim.member.member_id", "an identifier is"),
        (_set("claim.member.member_id", "M" * 81), "claim.member.member_id", "at most 80"),
        (_set("claim.lines.0.charge_amount", "1.001"), "claim.lines.0.charge_amount", "2 decimal places"),
        (_set("claim.lines.0.units", "0"), "claim.lines.0.units", "greater than 0"),
        (_set("claim.lines.1.line_number", 1), "claim", "appears more than once"),
        (_set("claim.lines.0.diagnosis_pointers", [3]), "claim", "out of range"),
        (_set("claim.frequency_code", "7"), "claim", "needs original_claim_id"),
        (_set("claim.frequency_code", "8"), "claim", "needs original_claim_id"),
        (_set("claim.frequency_code", "2"), "claim.frequency_code", "Input should be"),
        (_set("claim.member.line_of_business", "medicaid"), "claim.member.line_of_business", "Input should be"),
        (_set("claim.lines.0.route", "ORAL"), "claim.lines.0.route", "Input should be"),
        (_set("claim.lines", []), "claim.lines", "at least 1"),
        (_set("claim.diagnoses", []), "claim", "at least one diagnosis"),
        (_set("claim.lines.0.modifiers", ["A", "B", "C", "D", "E"]), "claim.lines.0.modifiers", ""),
        (_set("schema_version", 2), "schema_version", "Input should be 1"),
        (_set("event_id", "not-a-uuid"), "event_id", "UUID"),
        (_set("occurred_at", "2025-09-03T14:22:05"), "occurred_at", "with its offset"),
        (_set("claim.provider.participating", "yes"), "claim.provider.participating", "boolean"),
        (_set("claim.lines.0.line_number", 1000), "claim.lines.0.line_number", "less than or equal to 999"),
    ],
)
def test_an_invalid_event_is_refused_at_the_field(mutate: Mutation, path: str, message: str) -> None:
    event = example_event()
    mutate(event)
    got_path, got_message = first_error(event)
    assert got_path == path
    assert message in got_message


@pytest.mark.parametrize(
    "ndc", ["67457-0108-10", "67457-108-10", "0409-2053-10", "67457-0108-1", "67457010810", "6745710810"]
)
def test_every_ndc_form_is_accepted(ndc: str) -> None:
    event = example_event()
    event["claim"]["lines"][0]["ndc"] = ndc
    assert ClaimEvent.model_validate(event).claim.lines[0].ndc == ndc


def test_a_pharmacy_claim_may_omit_diagnoses_and_procedure_codes() -> None:
    event = example_event()
    event["claim"]["claim_type"] = "pharmacy"
    del event["claim"]["diagnoses"]
    for line in event["claim"]["lines"]:
        del line["procedure_code"]
        line.pop("diagnosis_pointers", None)
    assert ClaimEvent.model_validate(event).claim.diagnoses is None


def test_diagnosis_codes_are_accepted_without_the_dot_and_upper_cased() -> None:
    event = example_event()
    event["claim"]["diagnoses"][0]["code"] = "g90523"
    assert ClaimEvent.model_validate(event).claim.diagnoses is not None


@pytest.mark.parametrize(
    ("npi", "valid"), [("1234567893", True), ("1245319599", True), ("1234567890", False), ("123456789a", False)]
)
def test_npi_check_digit(npi: str, valid: bool) -> None:
    assert luhn_valid_npi(npi) is valid


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("claim.provider.npi", "1234567890"),  # a wrong check digit
        ("claim.provider.npi", "12345"),
        ("claim.diagnoses.0.code", "9G0.523"),
        ("claim.lines.0.ndc", "67457-01-10"),
    ],
    ids=["npi-check-digit", "npi-short", "diagnosis-shape", "ndc-shape"],
)
def test_claim_data_errors_are_readable_claims_the_core_decides(path: str, value: str) -> None:
    # Contract 1.3.0: these are pended for correction by the core (tests/unit/test_rules.py), not refused.
    event = example_event()
    _set(path, value)(event)
    assert ClaimEvent.model_validate(event).claim.claim_id == event["claim"]["claim_id"]
