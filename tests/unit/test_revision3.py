"""Revision 3 of the reading: what a member's earlier claims decide (DETERMINATION.md items 11-13).

Each class is one item. Where today's behaviour was wrong, a test also runs the same sequence
under revision 2 (kept loadable for what-if replays) and shows the old answer, so the change is
the reading's and nothing else's.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from claims_contracts.v1 import SourcePosition
from tests.builders import (
    KETAMINE_NDC,
    approved_pa,
    claim_event,
    ketamine_line,
    medicare_primary,
    service_line,
    to_bytes,
)
from tests.signing import VERIFY_KEYS, signature
from worker.adjudication import PolicyBook
from worker.adjudication.policy import ReviewQueueRule
from worker.history import ClaimHistory
from worker.policy_files import bundled_policy_dir, load_policy_book
from worker.processor import DeadLettered, Decided, Processor, Redelivered
from worker.resolution import Resolved

RX_PA = approved_pa(procedure_code=None, ndc=KETAMINE_NDC)
"""A PA naming the NDC: a pharmacy line carries no procedure code."""
REVISION_2 = bundled_policy_dir().parent / "archive" / "revision-2"
HERE = SourcePosition(file_line=1)
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def revision_2() -> PolicyBook:
    return load_policy_book(REVISION_2)


def desk(policies: PolicyBook, store: dict[str, Any] | None = None) -> Processor:
    history = ClaimHistory(store if store is not None else {})
    return Processor(policies, history=history, clock=lambda: NOW, review_keys=VERIFY_KEYS)


def decide(processor: Processor, event: dict[str, Any]) -> dict[str, Any]:
    """Decide one claim event and deliver its output: the body as published."""
    result = processor.process(to_bytes(event), HERE)
    assert isinstance(result, Decided), getattr(result, "record", result)
    processor.remember(result, emitted=True)
    return result.body


def reviewed(processor: Processor, pend: dict[str, Any], line: dict[str, Any]) -> tuple[dict[str, Any], Resolved]:
    """A reviewer's decision of a pend's line 1, applied: the review, and what it resolved."""
    review = {
        "schema_version": 1,
        "event_id": str(uuid.uuid4()),
        "pend_event_id": pend["event_id"],
        "claim_id": pend["claim_id"],
        "member_id": pend["member_id"],
        "reviewer_id": "rev-1",
        "reviewer_roles": ["clinical_reviewer", "cob_specialist"],
        "decided_at": NOW.isoformat(),
        "lines": [line],
    }
    raw = json.dumps(review).encode()
    resolved = processor.review(raw, HERE, signature=signature(raw))
    assert isinstance(resolved, Resolved), getattr(resolved, "record", resolved)
    return review, resolved


def line_of(body: dict[str, Any], number: int = 1) -> dict[str, Any]:
    return next(line for line in body["lines"] if line["line_number"] == number)


def evidence(body: dict[str, Any], number: int = 1) -> list[str]:
    return [word for hit in body["trace"] if hit["line_number"] == number for word in hit["evidence"]]


# --- item 11: a rejected pharmacy line was never captured -----------------------------------------


def pharmacy(claim_id: str, **fields: Any) -> dict[str, Any]:
    """A pharmacy ketamine claim of member M-RX (no procedure code: NCPDP claims carry the NDC)."""
    line = ketamine_line(procedure_code=None, route="IV")
    line.update(fields.pop("line", {}))
    return claim_event(claim_id=claim_id, member_id="M-RX", claim_type="pharmacy", lines=[line], **fields)


# Each NCPDP reject the policy issues on a pharmacy line, with what the pharmacy fixes before it
# resubmits the same fill (the same line: provider, date, NDC, units, charge) under a new claim id.
REJECTS = {
    "41 Medicare primary, not adjudicated": (
        {"other_payers": [medicare_primary("pending")], "prior_authorizations": [RX_PA]},
        {"other_payers": [medicare_primary("paid")], "prior_authorizations": [RX_PA]},
        "41",
    ),
    "75 Medicare primary, no PA": (
        {"other_payers": [medicare_primary("paid")]},
        {"other_payers": [medicare_primary("paid")], "prior_authorizations": [RX_PA]},
        "75",
    ),
    "39 invalid diagnosis": ({"diagnoses": ["F42"]}, {"diagnoses": ["R52"]}, "39"),
    "70 not covered for chronic pain": ({"diagnoses": ["G89.29"]}, {"diagnoses": ["R52"]}, "70"),
    "75 indication unclear (clinical review)": (
        {"diagnoses": ["R52"]},
        {"diagnoses": ["R52"], "prior_authorizations": [RX_PA]},
        "75",
    ),
    "41 Medicare Supplement waits on Medicare": (
        {"line_of_business": "medicare_supplement"},
        {"line_of_business": "medicare_supplement", "other_payers": [medicare_primary("paid")]},
        "41",
    ),
}


class TestRejectedPharmacyLines:
    @pytest.mark.parametrize("case", list(REJECTS))
    def test_rev3_11_a_resubmission_after_a_reject_is_decided_on_its_merits(
        self, policies: PolicyBook, case: str
    ) -> None:
        rejected_fields, fixed_fields, code = REJECTS[case]
        processor = desk(policies)
        rejected = decide(processor, pharmacy("RX-1", **rejected_fields))
        assert line_of(rejected)["ncpdp_reject"] == [code]
        resubmitted = decide(processor, pharmacy("RX-2", **fixed_fields))
        assert line_of(resubmitted)["rule"] != "claim.duplicate"
        assert "83" not in line_of(resubmitted)["ncpdp_reject"]

    @pytest.mark.parametrize("case", list(REJECTS))
    def test_rev3_11_revision_2_answered_the_resubmission_83(self, revision_2: PolicyBook, case: str) -> None:
        # What today's main did: the rejected claim blocked the fill for good.
        rejected_fields, fixed_fields, _ = REJECTS[case]
        processor = desk(revision_2)
        decide(processor, pharmacy("RX-1", **rejected_fields))
        resubmitted = decide(processor, pharmacy("RX-2", **fixed_fields))
        assert (line_of(resubmitted)["rule"], line_of(resubmitted)["ncpdp_reject"]) == ("claim.duplicate", ["83"])

    def test_rev3_11_a_paid_fill_is_an_original(self, policies: PolicyBook) -> None:
        processor = desk(policies)
        paid = decide(processor, pharmacy("RX-1", diagnoses=["R52"], prior_authorizations=[RX_PA]))
        assert line_of(paid)["outcome"] == "approved"
        again = decide(processor, pharmacy("RX-2", diagnoses=["R52"], prior_authorizations=[RX_PA]))
        assert (line_of(again)["rule"], line_of(again)["ncpdp_reject"]) == ("claim.duplicate", ["83"])
        assert "duplicate of claim RX-1 line 1" in evidence(again)

    def test_rev3_11_a_denied_professional_claim_stays_an_original(self, policies: PolicyBook) -> None:
        # Professional and institutional claims are unchanged: their correction path is frequency 7.
        processor = desk(policies)
        first = decide(processor, claim_event(claim_id="P-1", member_id="M-PRO"))
        assert line_of(first)["outcome"] == "denied"
        again = decide(processor, claim_event(claim_id="P-2", member_id="M-PRO", diagnoses=["R52"]))
        assert (line_of(again)["rule"], line_of(again)["carc"]) == ("claim.duplicate", ["18"])


# --- item 12: authorized units are used up --------------------------------------------------------


def secondary(claim_id: str, units: str = "2", authorized: str = "4", **fields: Any) -> dict[str, Any]:
    """A Medicare-secondary ketamine claim of member M-PA with Medicare paid and PA-1 (`authorized` units)."""
    lines = fields.pop("lines", None) or [ketamine_line(units=units, charge_amount=f"{100 + len(claim_id)}.00")]
    fields.setdefault("other_payers", [medicare_primary("paid")])
    fields.setdefault("prior_authorizations", [approved_pa(authorized_units=authorized)])
    return claim_event(claim_id=claim_id, member_id="M-PA", lines=lines, **fields)


def commercial(claim_id: str, units: str = "2", charge: str = "350.00") -> dict[str, Any]:
    """A commercial claim for a chronic pain diagnosis that only PA-1 (4 units) can approve."""
    return claim_event(
        claim_id=claim_id,
        member_id="M-PA",
        prior_authorizations=[approved_pa(authorized_units="4")],
        lines=[ketamine_line(units=units, charge_amount=charge)],
    )


class TestAuthorizedUnits:
    def test_rev3_12_units_are_used_across_claims(self, policies: PolicyBook) -> None:
        processor = desk(policies)
        first = decide(processor, secondary("S-1"))
        second = decide(processor, secondary("S-22"))
        third = decide(processor, secondary("S-333"))
        assert [line_of(b)["rule"] for b in (first, second, third)] == [
            "msp.approved_secondary",
            "msp.approved_secondary",
            "msp.pa_absent",  # 4 units authorized, 4 used: the PA no longer covers the line
        ]
        assert "authorization PA-1: 4 units authorized, 0 used before, 2 used by this line" in evidence(first)
        assert "authorization PA-1: 4 units authorized, 2 used before, 2 used by this line" in evidence(second)
        assert "authorization PA-1: 4 units authorized, 4 used before, 0 left for the line's 2" in evidence(third)
        assert line_of(third)["carc"] == ["197"]

    def test_rev3_12_revision_2_paid_without_limit(self, revision_2: PolicyBook) -> None:
        processor = desk(revision_2)
        bodies = [decide(processor, secondary(f"S-{'x' * n}")) for n in range(1, 5)]
        assert {line_of(b)["rule"] for b in bodies} == {"msp.approved_secondary"}

    def test_rev3_12_units_are_used_across_the_lines_of_one_claim_in_line_order(self, policies: PolicyBook) -> None:
        lines = [
            ketamine_line(2, units="2", charge_amount="200.00"),
            ketamine_line(1, units="3", charge_amount="300.00"),
        ]
        body = decide(desk(policies), secondary("S-1", lines=lines))
        assert (line_of(body, 1)["rule"], line_of(body, 2)["rule"]) == ("msp.approved_secondary", "msp.pa_absent")
        assert "authorization PA-1: 4 units authorized, 3 used before, 1 left for the line's 2" in evidence(body, 2)

    def test_rev3_12_a_line_the_pa_no_longer_covers_falls_to_the_criteria(self, policies: PolicyBook) -> None:
        processor = desk(policies)
        assert line_of(decide(processor, commercial("C-1", units="3")))["rule"] == "criteria.authorized_exception"
        later = decide(processor, commercial("C-2", units="2", charge="351.00"))
        assert (line_of(later)["rule"], line_of(later)["carc"]) == ("criteria.chronic_pain", ["204"])

    def test_rev3_12_a_void_gives_its_units_back(self, policies: PolicyBook) -> None:
        processor = desk(policies)
        decide(processor, secondary("S-1", units="4"))
        assert line_of(decide(processor, secondary("S-22")))["rule"] == "msp.pa_absent"
        decide(processor, secondary("V-1", units="4", frequency_code="8", original_claim_id="S-1"))
        assert line_of(decide(processor, secondary("S-333")))["rule"] == "msp.approved_secondary"

    def test_rev3_12_a_replacement_gives_back_and_uses_again(self, policies: PolicyBook) -> None:
        processor = desk(policies)
        decide(processor, secondary("S-1", units="3"))
        # The replacement bills 4 units: the 3 of the claim it replaces are given back first.
        replaced = decide(processor, secondary("R-1", units="4", frequency_code="7", original_claim_id="S-1"))
        assert line_of(replaced)["rule"] == "msp.approved_secondary"
        assert "authorization PA-1: 4 units authorized, 0 used before, 4 used by this line" in evidence(replaced)
        assert line_of(decide(processor, secondary("S-22", units="1")))["rule"] == "msp.pa_absent"

    def test_rev3_12_a_pended_line_uses_units_once_a_reviewer_approves_it(self, policies: PolicyBook) -> None:
        # The shipped queues close a coordination-of-benefits pend by a denial or a new claim only; a
        # plan whose queue lets a reviewer approve it (once Medicare has paid) uses the PA's units then.
        approving = {
            **policies.review_queues,
            "coordination_of_benefits": ReviewQueueRule(
                outcomes=frozenset({"approved", "denied"}), roles=frozenset({"cob_specialist"})
            ),
        }
        processor = desk(PolicyBook([v.model_copy(update={"review_queues": approving}) for v in policies.versions]))
        pend = decide(processor, secondary("S-1", units="3", other_payers=[medicare_primary("pending")]))
        assert pend["event_type"] == "claim.pended"
        # Pended, the line holds no units yet: another claim may use them meanwhile.
        review, resolved = reviewed(processor, pend, {"line_number": 1, "outcome": "approved"})
        assert resolved.authorization_units == (("PA-1", pytest.approx(3)),)
        processor.history.mark_resolved(
            "M-PA", "S-1", review["event_id"], str(resolved.event.event_id), units=resolved.authorization_units
        )
        assert line_of(decide(processor, secondary("S-22")))["rule"] == "msp.pa_absent"

    def test_rev3_12_used_units_are_in_the_stored_record(self, policies: PolicyBook) -> None:
        store: dict[str, Any] = {}
        decide(desk(policies, store), secondary("S-1", units="3"))
        # A new history over the same store (a restart, a recovery from the changelog) counts them.
        assert line_of(decide(desk(policies, store), secondary("S-22")))["rule"] == "msp.pa_absent"
        assert store["M-PA"]["claims"]["S-1"]["units"] == {"PA-1": "3"}

    def test_rev3_12_units_leave_the_window_but_stay_used(self, policies: PolicyBook) -> None:
        store: dict[str, Any] = {}
        processor = Processor(policies, history=ClaimHistory(store, window_days=5), clock=lambda: NOW)
        year_pa = [approved_pa(authorized_units="4", end_date="2025-12-31")]
        decide(
            processor,
            claim_event(
                claim_id="S-1",
                member_id="M-PA",
                other_payers=[medicare_primary("paid")],
                prior_authorizations=year_pa,
                lines=[ketamine_line(units="3")],
            ),
        )
        later_line = ketamine_line(units="2", service_date="2025-11-03")
        late = claim_event(
            claim_id="S-2",
            member_id="M-PA",
            other_payers=[medicare_primary("paid")],
            prior_authorizations=year_pa,
            lines=[later_line],
            received_date="2025-11-04",
        )
        assert line_of(decide(processor, late))["rule"] == "msp.pa_absent"
        assert "S-1" not in store["M-PA"]["claims"]
        assert store["M-PA"]["spent"] == {"PA-1": "3"}


# --- item 13: one claim, one decision -------------------------------------------------------------


class TestOneClaimOneDecision:
    def test_rev3_13_the_same_claim_under_a_new_event_id_gets_its_decision_again(self, policies: PolicyBook) -> None:
        processor = desk(policies)
        first = decide(processor, secondary("S-1"))
        decide(processor, secondary("S-22"))  # history moves on: 4 of 4 units used
        again = decide(processor, secondary("S-1") | {"event_id": str(uuid.uuid4())})
        assert again == first  # same event id, same body (the clock is fixed here)
        assert line_of(again)["rule"] == "msp.approved_secondary"

    def test_rev3_13_revision_2_decided_it_again_under_another_id(self, revision_2: PolicyBook) -> None:
        processor = desk(revision_2)
        first = decide(processor, secondary("S-1"))
        again = decide(processor, secondary("S-1") | {"event_id": str(uuid.uuid4())})
        assert again["event_id"] != first["event_id"]

    def test_rev3_13_the_history_does_not_change_for_a_claim_received_again(self, policies: PolicyBook) -> None:
        store: dict[str, Any] = {}
        processor = desk(policies, store)
        decide(processor, secondary("S-1"))
        before = json.loads(json.dumps(store["M-PA"]))
        event = secondary("S-1") | {"event_id": str(uuid.uuid4())}
        decide(processor, event)
        after = json.loads(json.dumps(store["M-PA"]))  # as a changelog carries it
        held = after["claims"]["S-1"]
        assert [entry[0] for entry in held["emitted"]][-1] == event["event_id"]  # remembered as delivered
        assert {**held, "emitted": None} == {**before["claims"]["S-1"], "emitted": None}
        # ...so the new event redelivered is a true redelivery, skipped by the stream.
        assert isinstance(processor.process(to_bytes(event), HERE), Redelivered)

    def test_rev3_13_a_claim_received_again_after_its_review_gets_the_final_adjudication(
        self, policies: PolicyBook
    ) -> None:
        processor = desk(policies)
        pend = decide(processor, claim_event(claim_id="P-1", member_id="M-R", diagnoses=["R52"]))
        review, resolved = reviewed(processor, pend, {"line_number": 1, "outcome": "denied", "carc": ["50"]})
        processor.history.mark_resolved(
            "M-R",
            "P-1",
            review["event_id"],
            str(resolved.event.event_id),
            review=resolved.review.model_dump(mode="json"),
        )
        again = decide(
            processor, claim_event(claim_id="P-1", member_id="M-R", diagnoses=["R52"], event_id=str(uuid.uuid4()))
        )
        assert again == resolved.event.model_dump(mode="json")

    def test_rev3_13_the_same_claim_id_with_other_content_is_refused(self, policies: PolicyBook) -> None:
        store: dict[str, Any] = {}
        processor = desk(policies, store)
        first = decide(processor, secondary("S-1"))
        before = json.loads(json.dumps(store))
        changed = secondary("S-1", units="1") | {"event_id": str(uuid.uuid4())}
        result = processor.process(to_bytes(changed), HERE)
        assert isinstance(result, DeadLettered)
        record = result.record
        assert record.kind.value == "claim_id_conflict"
        assert first["event_id"] in record.errors[0].message
        assert json.loads(json.dumps(store)) == before  # nothing of the member's history changed

    def test_rev3_13_a_replacement_under_the_same_claim_id_is_decided(self, policies: PolicyBook) -> None:
        processor = desk(policies)
        decide(processor, secondary("S-1", units="3"))
        replacement = secondary("S-1", units="1", frequency_code="7", original_claim_id="S-1") | {
            "event_id": str(uuid.uuid4())
        }
        result = processor.process(to_bytes(replacement), HERE)
        assert isinstance(result, Decided)
        assert result.body["replaces_claim_id"] == "S-1"

    def test_rev3_13_the_offline_command_gives_the_same_claim_its_decision_again(self, policies: PolicyBook) -> None:
        # The command line decides a repeated input again rather than skipping it: still one decision.
        processor = Processor(policies, skip_redelivered=False, clock=lambda: NOW)
        event = secondary("S-1")
        bodies = [decide(processor, event), decide(processor, secondary("S-22")), decide(processor, event)]
        assert bodies[2] == bodies[0]


class TestOutputIds:
    def test_rev3_2_a_reused_event_id_across_members_gives_two_ids(self, policies: PolicyBook) -> None:
        processor = desk(policies)
        shared = str(uuid.uuid4())
        one = decide(processor, claim_event(claim_id="X-1", member_id="M-1", event_id=shared))
        two = decide(processor, claim_event(claim_id="X-1", member_id="M-2", event_id=shared))
        assert one["event_id"] != two["event_id"]
        assert one["source_event_id"] == two["source_event_id"] == shared

    def test_rev3_2_revision_2_gave_both_one_id(self, revision_2: PolicyBook) -> None:
        processor = desk(revision_2)
        shared = str(uuid.uuid4())
        one = decide(processor, claim_event(claim_id="X-1", member_id="M-1", event_id=shared))
        two = decide(processor, claim_event(claim_id="X-1", member_id="M-2", event_id=shared))
        assert one["event_id"] == two["event_id"]

    def test_rev3_2_what_the_history_added_changes_the_id(self, policies: PolicyBook) -> None:
        # The same claim content decided with 0 and with 2 units used before is another decision.
        alone = decide(desk(policies), secondary("S-1"))
        processor = desk(policies)
        decide(processor, secondary("S-00"))  # another charge: not a duplicate of S-1
        after = decide(processor, secondary("S-1"))
        assert alone["event_id"] != after["event_id"]
        assert line_of(alone)["outcome"] == line_of(after)["outcome"] == "approved"

    def test_rev3_2_the_event_id_conflict_still_names_one_output(self, policies: PolicyBook) -> None:
        processor = desk(policies)
        shared = str(uuid.uuid4())
        first = decide(processor, claim_event(claim_id="X-1", member_id="M-1", event_id=shared))
        other = claim_event(claim_id="X-2", member_id="M-1", event_id=shared, lines=[service_line(1, "99213")])
        result = processor.process(to_bytes(other), HERE)
        assert isinstance(result, DeadLettered)
        assert result.record.kind.value == "event_id_conflict"
        assert first["event_id"] in result.record.errors[0].message
