"""Closing a pend with a review decision: the final adjudication, and every review that is refused."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from claims_contracts.v1 import AdjudicationEvent, PendForReviewEvent, SourcePosition
from tests.builders import claim_event, ketamine_line, service_line, to_bytes
from tests.signing import VERIFY_KEYS, signature
from worker.adjudication import PolicyBook
from worker.history import ClaimHistory, member_of_key, pends_key
from worker.policy_files import bundled_policy_dir, load_policy_book
from worker.processor import DeadLettered, Decided, Processor
from worker.resolution import REVIEW_OUTPUT_NAMESPACE, Resolved, ReviewRedelivered

HERE = SourcePosition(file_line=1)


def pended(processor: Processor, **overrides: Any) -> PendForReviewEvent:
    """Decide a claim that pends for clinical review (R52), and deliver it."""
    event = claim_event(
        diagnoses=["R52"], lines=[ketamine_line(1), service_line(2, "99213")], claim_id="CLM-PEND", **overrides
    )
    result = processor.process(to_bytes(event), HERE)
    assert isinstance(result, Decided)
    processor.remember(result, emitted=True)
    assert isinstance(result.event, PendForReviewEvent)
    return result.event


def review(pend: PendForReviewEvent, lines: list[dict[str, Any]] | None = None, **overrides: Any) -> bytes:
    body: dict[str, Any] = {
        "schema_version": 1,
        "event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"review:{pend.event_id}:{overrides.get('n', 0)}")),
        "pend_event_id": str(pend.event_id),
        "claim_id": pend.claim_id,
        "member_id": pend.member_id,
        "reviewer_id": "RV-1042",
        "reviewer_roles": ["clinical_reviewer"],
        "decided_at": (pend.decided_at + timedelta(hours=2)).isoformat(),  # two hours in the queue
        "lines": lines if lines is not None else [{"line_number": 1, "outcome": "denied", "carc": ["50"]}],
    }
    body.update({k: v for k, v in overrides.items() if k != "n"})
    return json.dumps(body).encode()


REVISION_2 = bundled_policy_dir().parent / "archive" / "revision-2"


class Clock:
    """The desk's clock: claims pend at 09:00, and reviews are read three hours later (`later`)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def at_review_time(processor: Processor) -> None:
    """Move the desk's clock on to when the reviews arrive (after their `decided_at`)."""
    clock = processor.clock
    assert isinstance(clock, Clock)
    clock.now = max(clock.now, datetime(2026, 1, 5, 12, 0, tzinfo=UTC))


def desk_of(policies: PolicyBook, **options: Any) -> Processor:
    """A processor that trusts the test run's review key."""
    return Processor(policies, clock=Clock(), review_keys=VERIFY_KEYS, **options)


def submit(processor: Processor, raw: bytes, **options: Any) -> Any:
    """A review as it arrives from the topic: signed by the run's key, read at review time."""
    at_review_time(processor)
    return processor.review(raw, HERE, signature=signature(raw), **options)


@pytest.fixture
def desk(policies: PolicyBook) -> Processor:
    return desk_of(policies)


def applied(processor: Processor, raw: bytes) -> Resolved:
    outcome = submit(processor, raw)
    assert isinstance(outcome, Resolved), getattr(outcome, "record", outcome)
    event = outcome.event
    processor.history.mark_resolved(
        outcome.review.member_id, outcome.review.claim_id, str(outcome.review.event_id), str(event.event_id)
    )
    return outcome


def refused(processor: Processor, raw: bytes) -> str:
    outcome = submit(processor, raw)
    assert isinstance(outcome, DeadLettered), outcome
    return outcome.record.kind.value


class TestTheFinalAdjudication:
    def test_a_denial_supersedes_the_pend_with_the_reviewer_s_codes(self, desk: Processor) -> None:
        pend = pended(desk)
        raw = review(pend)
        resolved = applied(desk, raw)
        final = resolved.event
        assert isinstance(final, AdjudicationEvent)
        assert final.supersedes_event_id == pend.event_id
        assert str(final.event_id) == str(uuid.uuid5(REVIEW_OUTPUT_NAMESPACE, json.loads(raw)["event_id"]))
        assert final.review_event_id is not None
        drug, visit = final.lines
        assert (drug.outcome.value, drug.rule, drug.carc, drug.group_code) == ("denied", "review.denied", ["50"], "CO")
        assert str(drug.adjustment_amount) == "350.00"
        assert "not deemed a 'medical necessity'" in drug.explanation
        assert drug.coverage is not None
        assert drug.coverage.covered == "not-covered"
        assert (visit.outcome.value, visit.rule) == ("not_applicable", "scope.not_ketamine")  # kept as decided
        reviewed = [hit for hit in final.trace if hit.rule == "review.denied"]
        assert "reviewer RV-1042" in reviewed[0].evidence
        assert (resolved.queue, resolved.pend_age_seconds) == ("clinical_review", 7200.0)

    def test_an_approval(self, desk: Processor) -> None:
        pend = pended(desk)
        final = applied(desk, review(pend, [{"line_number": 1, "outcome": "approved"}])).event
        assert (final.lines[0].outcome.value, final.lines[0].rule, final.lines[0].carc) == (
            "approved",
            "review.approved",
            [],
        )
        assert final.lines[0].adjustment_amount is None

    def test_a_redelivered_review_publishes_nothing_again(self, desk: Processor) -> None:
        pend = pended(desk)
        raw = review(pend)
        first = applied(desk, raw)
        again = submit(desk, raw)
        assert isinstance(again, ReviewRedelivered)
        assert again.output_event_id == str(first.event.event_id)

    def test_a_replacement_after_the_review_supersedes_the_final_adjudication(self, desk: Processor) -> None:
        pend = pended(desk)
        final = applied(desk, review(pend)).event
        replacement = claim_event(
            diagnoses=["G89.29"], claim_id="CLM-REPL", frequency_code="7", original_claim_id="CLM-PEND"
        )
        replacement["claim"]["member"]["member_id"] = pend.member_id
        result = desk.process(to_bytes(replacement), HERE)
        assert isinstance(result, Decided)
        assert result.event.supersedes_event_id == final.event_id


class TestRefusedReviews:
    def test_a_review_of_an_unknown_pend(self, desk: Processor) -> None:
        pend = pended(desk)
        assert refused(desk, review(pend, pend_event_id=str(uuid.uuid4()))) == "review_unknown_pend"
        assert refused(desk, review(pend, claim_id="CLM-NEVER")) == "review_unknown_pend"

    def test_a_second_review_of_a_resolved_pend(self, desk: Processor) -> None:
        pend = pended(desk)
        applied(desk, review(pend))
        assert refused(desk, review(pend, n=2)) == "review_already_resolved"

    def test_a_second_review_while_the_first_is_in_flight(self, desk: Processor) -> None:
        pend = pended(desk)
        outcome = submit(desk, review(pend, n=2), resolving={str(pend.event_id)})
        assert isinstance(outcome, DeadLettered)
        assert outcome.record.kind.value == "review_already_resolved"

    def test_a_review_of_a_pend_whose_claim_was_replaced(self, desk: Processor) -> None:
        pend = pended(desk)
        replacement = claim_event(claim_id="CLM-REPL", frequency_code="7", original_claim_id="CLM-PEND")
        replacement["claim"]["member"]["member_id"] = pend.member_id
        result = desk.process(to_bytes(replacement), HERE)
        assert isinstance(result, Decided)
        desk.remember(result, emitted=True)
        assert refused(desk, review(pend)) == "review_superseded"

    def test_a_review_of_a_pend_whose_claim_was_decided_again(self) -> None:
        # Revision 2 decides the same claim sent again anew (revision 3 gives it the pend it had).
        desk = desk_of(load_policy_book(REVISION_2))
        pend = pended(desk)
        pended(desk, event_id=str(uuid.uuid4()))  # the same claim sent again: a new pend
        assert refused(desk, review(pend)) == "review_superseded"

    def test_a_review_of_a_pend_whose_claim_came_again_still_applies(self, desk: Processor) -> None:
        # Revision 3 (item 13): the same claim under a new event id is given its pend again, the same
        # event id, so the pend stays open and the review closes it.
        pend = pended(desk)
        again = pended(desk, event_id=str(uuid.uuid4()))
        assert again.event_id == pend.event_id
        assert isinstance(submit(desk, review(pend)), Resolved)

    @pytest.mark.parametrize(
        "lines",
        [
            [{"line_number": 1, "outcome": "denied", "carc": ["50"]}, {"line_number": 2, "outcome": "approved"}],
            [{"line_number": 2, "outcome": "approved"}],
        ],
        ids=["a-line-not-pended", "the-pended-line-left-out"],
    )
    def test_a_review_that_does_not_decide_exactly_the_pended_lines(
        self, desk: Processor, lines: list[dict[str, Any]]
    ) -> None:
        assert refused(desk, review(pended(desk), lines)) == "review_lines_not_pended"

    def test_a_denial_without_a_carc_is_not_a_review(self, desk: Processor) -> None:
        assert refused(desk, review(pended(desk), [{"line_number": 1, "outcome": "denied"}])) == "schema_violation"

    def test_bytes_that_are_no_review(self, desk: Processor) -> None:
        assert refused(desk, b'{"schema_version": 1, "event_id"') == "not_json"

    def test_nothing_changes_after_a_refused_review(self, desk: Processor) -> None:
        pend = pended(desk)
        refused(desk, review(pend, [{"line_number": 2, "outcome": "approved"}]))
        assert isinstance(submit(desk, review(pend)), Resolved)  # the pend is still open


class Checked(dict[str, Any]):
    """A history store that fails a write leaving a member record naming a pend body the store lacks."""

    def _check(self, record: Any, bodies: Any) -> None:
        named = {held["open_pend"] for held in record["claims"].values() if held.get("open_pend")} if record else set()
        assert named <= set(bodies or ()), f"the record names {sorted(named)}, the store holds {sorted(bodies or ())}"

    def __setitem__(self, key: str, value: Any) -> None:
        member = member_of_key(key)
        if key == member:
            self._check(value, self.get(pends_key(member)))
        else:
            self._check(self.get(member), value)
        super().__setitem__(key, json.loads(json.dumps(value)))  # stored as the changelog carries it

    def __delitem__(self, key: str) -> None:
        self._check(self.get(member_of_key(key)), None)
        super().__delitem__(key)


class TestWherePendBodiesAreKept:
    """An open pend's body sits beside its member's record, written when it opens and dropped when it closes."""

    @pytest.fixture
    def store(self) -> Checked:
        return Checked()

    @pytest.fixture
    def kept(self, policies: PolicyBook, store: Checked) -> Processor:
        history = ClaimHistory(store, window_days=30)
        return desk_of(policies, history=history)

    def test_the_record_names_the_body_stored_beside_it(self, kept: Processor, store: Checked) -> None:
        pend = pended(kept)
        held = store[pend.member_id]["claims"][pend.claim_id]
        assert "pend" not in held
        assert held["open_pend"] == str(pend.event_id)
        assert store[pend.member_id]["pends"] == [str(pend.event_id)]
        assert store[pends_key(pend.member_id)] == {str(pend.event_id): json.loads(pend.model_dump_json())}
        assert member_of_key(pends_key(pend.member_id)) == pend.member_id

    def test_a_review_closes_the_pend_and_drops_its_body(self, kept: Processor, store: Checked) -> None:
        pend = pended(kept)
        applied(kept, review(pend))
        assert pends_key(pend.member_id) not in store
        assert store[pend.member_id]["claims"][pend.claim_id]["review"]["pend"] == str(pend.event_id)
        assert refused(kept, review(pend, n=1)) == "review_already_resolved"

    def test_a_claim_decided_again_keeps_only_its_new_pend(self, store: Checked) -> None:
        # Revision 2 decides the same claim sent again anew (revision 3 gives it the pend it had).
        kept = desk_of(load_policy_book(REVISION_2), history=ClaimHistory(store, window_days=30))
        first = pended(kept)
        again = pended(kept, event_id=str(uuid.uuid4()))
        assert set(store[pends_key(first.member_id)]) == {str(again.event_id)}
        assert refused(kept, review(first)) == "review_superseded"
        assert isinstance(submit(kept, review(again)), Resolved)

    def test_a_pend_that_leaves_the_look_back_window_takes_its_body_along(
        self, kept: Processor, store: Checked
    ) -> None:
        pend = pended(kept)
        later = claim_event(
            claim_id="CLM-LATER", lines=[ketamine_line(service_date="2025-12-01")], received_date="2025-12-02"
        )
        later["claim"]["member"]["member_id"] = pend.member_id
        result = kept.process(to_bytes(later), HERE)
        assert isinstance(result, Decided)
        kept.remember(result, emitted=True)
        assert list(store[pend.member_id]["claims"]) == ["CLM-LATER"]
        assert pends_key(pend.member_id) not in store

    def test_a_record_that_kept_the_body_inside_is_still_resolved(self, kept: Processor, store: Checked) -> None:
        pend = pended(kept)
        # As a release before this one wrote it: the body inside the claim, nothing beside the record.
        record = store[pend.member_id]
        held = record["claims"][pend.claim_id]
        held["pend"] = store[pends_key(pend.member_id)][held.pop("open_pend")]
        record.pop("pends")
        dict.__delitem__(store, pends_key(pend.member_id))
        kept.history.reload()
        resolved = applied(kept, review(pend))
        assert resolved.event.supersedes_event_id == pend.event_id
        held = store[pend.member_id]["claims"][pend.claim_id]
        assert "pend" not in held
        assert held["review"]["pend"] == str(pend.event_id)
