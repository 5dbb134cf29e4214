"""Invariants of the determination, over generated claims (hypothesis)."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claims_contracts.v1 import ClaimEvent, SourcePosition
from tests.builders import (
    ESKETAMINE_NDC,
    KETAMINE_NDC,
    OTHER_NDC,
    VETERINARY_NDC,
    approved_pa,
    claim_event,
    medicare_primary,
)
from tests.conftest import FIXED_NOW
from worker.adjudication import PolicyBook, adjudicate, output_event_id
from worker.adjudication.engine import OUTPUT_EVENT_NAMESPACE
from worker.adjudication.facts import ClaimFacts, LineFacts
from worker.policy_files import load_policy_book
from worker.processor import Decided, Processor, claim_content, claim_identity, fingerprint, fingerprints

POLICIES: PolicyBook = load_policy_book()
CHRONIC_PAIN = ["G89.29", "G90.523", "M79.7", "G43.909", "M54.50", "S14.101A", "G56.41", "B02.22"]
OTHER_DX = ["R52", "G89.11", "F32.9", "F11.20", "R45.851", "Z00.00", "F42", "G89.99"]
LINES_OF_BUSINESS = [
    "commercial_small_group",
    "commercial_large_group",
    "aso",
    "exchange",
    "medicare_advantage",
    "medicare_cost",
    "medicare_supplement",
    "medicare_replacement",
    "wisconsin_medicaid",
]
COMMERCIAL = ["commercial_small_group", "commercial_large_group", "aso", "exchange"]
CODES = ["J3490", "J3490", "J3490", "96365", "96372", "99213", "J0013", "01996", "99152", "27447"]
DATES = ["2025-08-01", "2025-08-21", "2025-09-01", "2025-09-02", "2025-09-03"]


@st.composite
def lines(draw: st.DrawFn, count: int, *, codes: list[str] = CODES) -> list[dict[str, Any]]:
    out = []
    for number in range(1, count + 1):
        code = draw(st.sampled_from(codes))
        line: dict[str, Any] = {
            "line_number": number,
            "service_date": draw(st.sampled_from(DATES)),
            "procedure_code": code,
            "units": str(draw(st.integers(1, 20))),
            "charge_amount": f"{draw(st.integers(0, 100000))}.{draw(st.integers(0, 99)):02d}",
            "place_of_service": draw(st.sampled_from(["11", "21", "22", "51"])),
        }
        if code == "J3490":
            line["ndc"] = draw(
                st.sampled_from([KETAMINE_NDC, KETAMINE_NDC, ESKETAMINE_NDC, VETERINARY_NDC, OTHER_NDC, None])
            )
            line["route"] = draw(st.sampled_from(["IV", "IM", "SC", "PO", None]))
        out.append(line)
    return out


@st.composite
def claims(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 6))
    diagnoses = draw(st.lists(st.sampled_from(CHRONIC_PAIN + OTHER_DX), min_size=1, max_size=4))
    return claim_event(
        claim_id=f"CLM-{draw(st.integers(0, 10**9))}",
        lines=draw(lines(count)),
        diagnoses=diagnoses,
        line_of_business=draw(st.sampled_from(LINES_OF_BUSINESS)),
        claim_type=draw(st.sampled_from(["professional", "institutional", "pharmacy"])),
        participating=draw(st.booleans()),
        other_payers=draw(st.sampled_from([[], [medicare_primary("paid")], [medicare_primary("pending")]])),
        prior_authorizations=draw(st.sampled_from([[], [approved_pa()], [approved_pa(status="denied")]])),
        frequency_code=draw(st.sampled_from(["1", "1", "1", "7"])),
        original_claim_id="CLM-ORIGINAL",
    )


def process(event: dict[str, Any]) -> Decided:
    import json

    result = Processor(POLICIES, clock=lambda: FIXED_NOW).process(
        json.dumps(event).encode(), SourcePosition(file_line=1)
    )
    assert isinstance(result, Decided)
    return result


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(claims())
def test_every_valid_claim_yields_exactly_one_event_deciding_every_line_once(event: dict[str, Any]) -> None:
    decided = process(event)
    numbers = [line["line_number"] for line in event["claim"]["lines"]]
    assert [line.line_number for line in decided.event.lines] == numbers
    pended = [line for line in decided.event.lines if line.outcome.value == "pended"]
    assert (decided.event.event_type == "claim.pended") == bool(pended)
    for line in decided.event.lines:
        assert (line.queue is not None) == (line.outcome.value == "pended")
        assert line.rule == next(hit.rule for hit in decided.event.trace if hit.line_number == line.line_number)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    count=st.integers(1, 4),
    data=st.data(),
    lob=st.sampled_from(COMMERCIAL),
    dx=st.lists(st.sampled_from(CHRONIC_PAIN), min_size=1, max_size=3),
)
def test_a_commercial_chronic_pain_line_without_pa_or_labeled_use_is_never_approved(
    count: int, data: st.DataObject, lob: str, dx: list[str]
) -> None:
    no_labeled_use = ["J3490", "96365", "96372", "99213"]
    event = claim_event(lines=data.draw(lines(count, codes=no_labeled_use)), diagnoses=dx, line_of_business=lob)
    decided = process(event)
    for line, result in zip(event["claim"]["lines"], decided.event.lines, strict=True):
        if line.get("ndc") == KETAMINE_NDC:
            assert result.outcome.value != "approved", result


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(claims())
def test_the_output_event_id_is_stable_across_runs_and_processors(event: dict[str, Any]) -> None:
    first, second = process(event), process(event)
    assert first.event.event_id == second.event.event_id
    assert first.event.model_dump(exclude={"decided_at"}) == second.event.model_dump(exclude={"decided_at"})


def test_the_same_claim_under_two_event_ids_has_one_output_id() -> None:
    # Revision 3 (item 13): the id derives from the claim, not from the event that carried it.
    one = process(claim_event(claim_id="A", event_id="00000000-0000-4000-8000-000000000001"))
    two = process(claim_event(claim_id="A", event_id="00000000-0000-4000-8000-000000000002"))
    assert one.event.event_id == two.event.event_id


def test_two_claims_under_one_event_id_have_two_output_ids() -> None:
    # Revision 3 (item 2): a producer that reuses an event id for another member's claim, or for
    # another claim of the same member, never makes two decisions share an output id.
    shared = "00000000-0000-4000-8000-000000000001"
    one = process(claim_event(claim_id="A", event_id=shared))
    other_member = claim_event(claim_id="A", event_id=shared)
    other_member["claim"]["member"]["member_id"] = "M-OTHER"
    assert len({one.event.event_id, process(other_member).event.event_id}) == 2
    assert one.event.event_id != process(claim_event(claim_id="B", event_id=shared)).event.event_id


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(claims())
def test_each_line_is_decided_by_the_first_rule_that_holds_in_policy_order(event: dict[str, Any]) -> None:
    # The engine skips rules whose claim-wide conditions fail; this reference tests every rule in
    # order, each condition on its own, and must find the same deciding rule and evidence.
    decided = process(event)
    claim_facts = ClaimFacts(decided.claim, {})
    companions = {line.line_number: line for line in decided.decision.lines}
    # Lines in line order, each using its authorization's units once approved on it (revision 3, item 12).
    in_order = sorted(
        zip(decided.claim.lines, decided.decision.lines, strict=True), key=lambda pair: pair[0].line_number
    )
    for line, result in in_order:
        policy, in_force = POLICIES.for_date(line.service_date)
        facts = LineFacts(claim_facts, line, policy, version_in_force=in_force, companions=companions)
        first = next(rule for rule in POLICIES.program(policy).rules if rule.holds(facts))
        assert result.rule == first.rule.id
        hit = next(hit for hit in decided.decision.trace if hit.line_number == line.line_number)
        assert hit.evidence == first.evidence(facts)
        coverage = result.coverage
        if result.outcome.value == "approved" and coverage is not None and coverage.pa_needed == "satisfied":
            assert coverage.satisfied_pa_id is not None
            used = claim_facts.authorization_used
            used[coverage.satisfied_pa_id] = used.get(coverage.satisfied_pa_id, Decimal(0)) + line.units


COLD: PolicyBook = load_policy_book()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(claims())
def test_a_line_decision_shared_from_earlier_claims_equals_one_made_for_this_line(event: dict[str, Any]) -> None:
    # POLICIES keeps the line decisions it made for every claim of every test so far; COLD starts
    # each example with none, so every one of its decisions is built for this claim's lines.
    for policy in COLD.versions:
        COLD.program(policy)._shared.clear()
    decided = process(event)
    assert decided.content is not None
    identity = claim_identity(decided.claim, decided.content)
    assert adjudicate(decided.claim, COLD, identity=identity) == decided.decision


@settings(max_examples=200)
@given(source=st.uuids(), versions=st.lists(st.text(min_size=1, max_size=12), max_size=3))
def test_the_output_event_id_is_the_uuid5_of_input_policy_and_versions(source: uuid.UUID, versions: list[str]) -> None:
    name = f"{source}|MB2300|{','.join(versions)}"
    expected = str(uuid.uuid5(OUTPUT_EVENT_NAMESPACE, name))
    assert output_event_id(str(source), "MB2300", tuple(versions)) == expected


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(claims())
def test_output_bodies_built_without_the_models_are_what_the_models_write(event: dict[str, Any]) -> None:
    decided = process(event)
    model = decided.event  # validated from the body: the body is a valid contract event
    assert decided.body == model.model_dump(mode="json")
    assert decided.payload == model.model_dump_json().encode()
    for each in [model, model.policy, *model.lines, *model.trace]:
        assert each.model_fields_set == set(type(each).model_fields), "every field is written, none defaulted"


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(claims())
def test_one_serialization_gives_the_input_s_fingerprint_and_the_claim_s_content(event: dict[str, Any]) -> None:
    parsed = ClaimEvent.model_validate_json(json.dumps(event))
    assert fingerprints(parsed) == (fingerprint(parsed), claim_content(parsed))
