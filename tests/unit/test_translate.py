"""The contract v1 <-> core model mapping: what is carried over, what is left behind."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from claims_contracts.v1 import AdjudicationEvent, ClaimEvent, PendForReviewEvent
from tests.builders import claim_event, example_event, ketamine_line, to_bytes
from worker.adjudication import Claim, PolicyBook, adjudicate
from worker.translate import body_from_decision, claim_from_event, event_of, instant, payload

DECIDED_AT = datetime(2025, 9, 15, 12, 0, tzinfo=UTC)


def core_claim(event: dict[str, Any]) -> Claim:
    return claim_from_event(ClaimEvent.model_validate_json(to_bytes(event)))


def test_the_claim_keeps_what_the_policy_reads() -> None:
    claim = core_claim(example_event())
    assert (claim.claim_id, claim.member_id, claim.provider_npi) == ("CLM-2025-000123", "M0001234", "1234567893")
    assert (claim.claim_type, claim.frequency_code, claim.line_of_business) == (
        "professional",
        "1",
        "commercial_large_group",
    )
    assert claim.received_date == date(2025, 9, 2)
    assert claim.diagnoses == ("G90.523", "G89.29")
    first = claim.lines[0]
    assert (first.procedure_code, first.ndc, first.route, first.units, first.charge_amount) == (
        "J3490",
        "67457-0108-10",
        "IV",
        Decimal("1"),
        Decimal("350.00"),
    )
    assert first.diagnosis_pointers == (1, 2)


def test_phi_and_free_text_are_left_behind() -> None:
    claim = core_claim(example_event())
    carried = repr(claim)
    for phi in ("Pat", "Example", "1980-04-02", "Choice Plus PPO", "ketamine hydrochloride", "208VP0000X"):
        assert phi not in carried
    assert {f.name for f in dataclasses.fields(claim)}.isdisjoint({"first_name", "last_name", "birth_date"})


def test_modifiers_are_upper_cased_for_the_policy() -> None:
    claim = core_claim(claim_event(lines=[ketamine_line(1, modifiers=["jw", "Gt"])]))
    assert claim.lines[0].modifiers == ("JW", "GT")


def test_a_decision_becomes_an_adjudication_event_echoing_the_claim(policies: PolicyBook) -> None:
    claim = core_claim(example_event())
    decision = adjudicate(claim, policies)
    event = event_of(body_from_decision(decision, claim, decided_at=DECIDED_AT, supersedes_event_id=None))
    assert isinstance(event, AdjudicationEvent)
    assert (str(event.event_id), str(event.source_event_id)) == (decision.event_id, claim.event_id)
    assert (event.claim_id, event.member_id, event.frequency_code) == (claim.claim_id, claim.member_id, "1")
    assert [line.rule for line in event.lines] == [line.rule for line in decision.lines]
    assert [hit.rule for hit in event.trace] == [hit.rule for hit in decision.trace]
    assert event.decided_at == DECIDED_AT
    assert event.supersedes_event_id is None


def test_a_pended_decision_becomes_a_pend_for_review_event_with_its_queue(policies: PolicyBook) -> None:
    claim = core_claim(claim_event(diagnoses=["R52"]))  # indication unclear: clinical review
    decision = adjudicate(claim, policies)
    event = event_of(
        body_from_decision(
            decision, claim, decided_at=DECIDED_AT, supersedes_event_id="5b9e9c57-8a4b-5f0e-9d0b-3e1f2a6c7d80"
        )
    )
    assert isinstance(event, PendForReviewEvent)
    assert event.queue.value == decision.queue
    assert event.reason == decision.reason
    assert str(event.supersedes_event_id) == "5b9e9c57-8a4b-5f0e-9d0b-3e1f2a6c7d80"


@pytest.mark.parametrize(
    "decided_at",
    [
        DECIDED_AT,
        datetime(2025, 9, 15, 12, 0, 0, 5, tzinfo=UTC),
        datetime(2025, 9, 15, 12, 0, 0, 250000, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2025, 9, 15, 12, 0, 0, 1, tzinfo=timezone(timedelta(0))),
    ],
)
@pytest.mark.parametrize("diagnoses", [["G89.29"], ["R52"]], ids=["adjudicated", "pended"])
def test_the_body_is_what_the_contract_models_write(
    policies: PolicyBook, decided_at: datetime, diagnoses: list[str]
) -> None:
    claim = core_claim(claim_event(diagnoses=diagnoses, frequency_code="7", original_claim_id="CLM-0"))
    body = body_from_decision(
        adjudicate(claim, policies),
        claim,
        decided_at=decided_at,
        supersedes_event_id="5b9e9c57-8a4b-5f0e-9d0b-3e1f2a6c7d80",
        superseded_by_claim_id="CLM-9",
    )
    model = event_of(body)
    assert body == model.model_dump(mode="json")
    assert payload(body) == model.model_dump_json().encode()
    assert list(body) == list(type(model).model_fields), "the contract's field order"


def test_instants_are_written_as_pydantic_writes_them() -> None:
    assert instant(datetime(2025, 9, 15, 12, 0, tzinfo=UTC)) == "2025-09-15T12:00:00Z"
    assert instant(datetime(2025, 9, 15, 12, 0, 0, 5, tzinfo=UTC)) == "2025-09-15T12:00:00.000005Z"
    assert instant(datetime(2025, 9, 15, 7, 0, tzinfo=timezone(timedelta(hours=-5)))) == "2025-09-15T07:00:00-05:00"
