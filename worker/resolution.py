"""Closing a pend: a reviewer's decision in, the claim's final adjudication out.

A review matches the open pend of its claim when the member's history holds that pend (its
event as published), the claim was not replaced, voided or decided again since, no other review
resolved it, and the review decides exactly the lines the pend pended. The final
`claim.adjudicated` event is the pend's body with the reviewed lines decided by rule
`review.approved` or `review.denied` and the reviewer's codes, the other lines as they were; it
supersedes the pend, names the review, carries the reviewer id in the trace, and its event id
is derived from the review's, so a redelivered review gives the same event. Anything else is a
dead letter with the reason, and nothing changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from claims_contracts.v1 import (
    AdjudicationEvent,
    DeadLetterKind,
    ErrorDetail,
    ReviewDecisionEvent,
    ReviewedLine,
)
from worker import dead_letter
from worker.adjudication import CodeTable
from worker.adjudication.policy import ReviewQueueRule
from worker.history import ACTIVE, ClaimHistory
from worker.review_rules import refusal
from worker.translate import COVERAGE_ASSERTION_NAMESPACE

REVIEW_OUTPUT_NAMESPACE = uuid.UUID("c1f4e0a2-6b7d-5e38-9d21-7a5b3c9e0f64")
"""Namespace of the final adjudications' event ids (UUID v5 of the review's event id)."""


@dataclass(frozen=True, slots=True)
class Resolved:
    """A review that closed its pend: the final adjudication to publish, and what it closed."""

    event: AdjudicationEvent
    review: ReviewDecisionEvent
    queue: str
    """The queue the pend waited in."""
    pend_age_seconds: float
    """From the pend's decision to the reviewer's."""
    authorization_units: tuple[tuple[str, Decimal], ...] = ()
    """Units of each authorization the lines the reviewer approved use: the pended lines an
    authorization covered (`pa_needed=satisfied`), such as a secondary claim waiting on Medicare
    (revision 3, item 12: an approved line uses its authorization's units)."""


@dataclass(frozen=True, slots=True)
class ReviewRedelivered:
    """A review already applied (its final adjudication was delivered): nothing to publish."""

    review_event_id: str
    output_event_id: str


def parse_review(raw: bytes, max_bytes: int) -> ReviewDecisionEvent:
    """Validate raw bytes as a v1 review decision.

    Raises:
        dead_letter.Unreadable: the bytes are too large, not UTF-8, not JSON, or not v1.
    """
    if len(raw) > max_bytes:
        raise dead_letter.too_large(len(raw), max_bytes)
    try:
        return ReviewDecisionEvent.model_validate_json(raw)
    except ValidationError as error:
        raise dead_letter.classify(raw, error) from None


def _refused(kind: DeadLetterKind, review: ReviewDecisionEvent, message: str) -> dead_letter.Unreadable:
    return dead_letter.Unreadable(
        kind,
        [
            ErrorDetail(
                path="pend_event_id",
                message=f"review {review.event_id} of claim {review.claim_id}: {message}",
                type=kind.value,
            )
        ],
        source_event_id=str(review.event_id),
    )


def resolve(
    review: ReviewDecisionEvent,
    history: ClaimHistory,
    *,
    clock: Callable[[], datetime],
    codes: CodeTable,
    rules: Mapping[str, ReviewQueueRule],
    resolving: Collection[str] = (),
) -> Resolved | ReviewRedelivered:
    """Turn a review into the final adjudication of its pend.

    The review must match the open pend, decide exactly its pended lines, and pass the queue's
    rules (`worker.review_rules`: an outcome the queue allows, a reviewer role it takes, codes
    from the code table that fit the outcome, a time after the pend and not in the future).
    Its signature is checked before (`Processor.review`).

    Args:
        review: the validated review decision.
        history: the member's claims (the pend as published is kept there).
        clock: the edge's clock, for `decided_at` and the review's time check.
        codes: the code table (a denied line's codes, and their words in its explanation).
        rules: the policy's review queues (empty: every review is refused).
        resolving: pend event ids a review in hand (not yet delivered) resolves.

    Returns:
        The final adjudication, or that this review was already applied.

    Raises:
        dead_letter.Unreadable: the review matches no open pend (a `review_*` kind, with why).
    """
    pend_id = str(review.pend_event_id)
    held = history.claim_state(review.member_id, review.claim_id)
    if held is None:
        raise _refused(DeadLetterKind.REVIEW_UNKNOWN_PEND, review, "no decision of this claim for this member")
    applied = held.get("review")
    if applied and applied.get("review") == str(review.event_id):
        return ReviewRedelivered(str(review.event_id), str(applied["output"]))
    if (applied and applied.get("pend") == pend_id) or pend_id in resolving:
        raise _refused(DeadLetterKind.REVIEW_ALREADY_RESOLVED, review, f"pend {pend_id} was resolved by another review")
    pend: dict[str, Any] | None = held.get("pend")
    if held.get("status", ACTIVE) != ACTIVE:
        raise _refused(
            DeadLetterKind.REVIEW_SUPERSEDED, review, f"the claim was {held['status']} by claim {held.get('by')}"
        )
    if pend is None or pend.get("event_id") != pend_id:
        if held.get("event_id") != pend_id and _ever_pended(held, pend_id):
            raise _refused(DeadLetterKind.REVIEW_SUPERSEDED, review, "the claim was decided again since")
        raise _refused(DeadLetterKind.REVIEW_UNKNOWN_PEND, review, f"pend {pend_id} is not this claim's open pend")
    pended = {line["line_number"] for line in pend["lines"] if line["outcome"] == "pended"}
    decided = {line.line_number for line in review.lines}
    if decided != pended:
        extra, missing = sorted(decided - pended), sorted(pended - decided)
        why = "; ".join(
            part
            for part in (
                f"lines {extra} were not pended" if extra else "",
                f"pended lines {missing} are not decided" if missing else "",
            )
            if part
        )
        raise _refused(DeadLetterKind.REVIEW_LINES_NOT_PENDED, review, why)
    now = clock()
    refused = refusal(pend, review.lines, review.reviewer_roles, review.decided_at, rules=rules, codes=codes, now=now)
    if refused is not None:
        kind = DeadLetterKind.REVIEW_NOT_ALLOWED if refused.kind == "not_allowed" else DeadLetterKind.REVIEW_INVALID
        raise _refused(kind, review, refused.reason)
    event = final_adjudication(pend, review, now, lambda carc: codes.carc[carc].text if carc in codes.carc else None)
    pended_at = datetime.fromisoformat(str(pend["decided_at"]).replace("Z", "+00:00"))
    age = (review.decided_at - pended_at).total_seconds()
    return Resolved(event, review, str(pend.get("queue")), age, _units_approved(pend, review))


def _units_approved(pend: Mapping[str, Any], review: ReviewDecisionEvent) -> tuple[tuple[str, Decimal], ...]:
    """The authorization units the lines a review approves use: those an authorization covered on the pend."""
    approved = {line.line_number for line in review.lines if line.outcome == "approved"}
    used: dict[str, Decimal] = {}
    for line in pend["lines"]:
        coverage = line.get("coverage") or {}
        auth_id = coverage.get("satisfied_pa_id")
        if line["line_number"] in approved and auth_id and coverage.get("pa_needed") == "satisfied":
            used[auth_id] = used.get(auth_id, Decimal(0)) + Decimal(str(line["units"]))
    return tuple(sorted(used.items()))


def _ever_pended(held: dict[str, Any], pend_id: str) -> bool:
    # The claim's delivered outputs are remembered by event id (see ClaimHistory.mark_emitted).
    return any(len(entry) > 1 and entry[1] == pend_id for entry in held.get("emitted", ()))


def final_adjudication(
    pend: Mapping[str, Any], review: ReviewDecisionEvent, now: datetime, carc_text: Callable[[str], str | None]
) -> AdjudicationEvent:
    """The final adjudication a review makes of a pend (its body as published): see the module's docstring."""
    event_id = uuid.uuid5(REVIEW_OUTPUT_NAMESPACE, str(review.event_id))
    reviewed = {line.line_number: line for line in review.lines}
    lines = [
        _reviewed_line(line, reviewed[line["line_number"]], str(event_id), carc_text)
        if line["line_number"] in reviewed
        else line
        for line in pend["lines"]
    ]
    trace = [
        *pend["trace"],
        *(
            {
                "line_number": line.line_number,
                "rule": f"review.{line.outcome}",
                "policy_sections": next(
                    (each["policy_sections"] for each in pend["lines"] if each["line_number"] == line.line_number), []
                ),
                "evidence": [f"review {review.event_id}", f"reviewer {review.reviewer_id}", *line.carc, *line.rarc],
            }
            for line in review.lines
        ),
    ]
    body = {key: value for key, value in pend.items() if key not in ("event_type", "queue", "reason", "lines", "trace")}
    body.update(
        event_type="claim.adjudicated",
        event_id=str(event_id),
        supersedes_event_id=pend["event_id"],
        review_event_id=str(review.event_id),
        decided_at=now,
        lines=lines,
        trace=trace,
    )
    return AdjudicationEvent.model_validate(body)


def _reviewed_line(
    line: dict[str, Any], decision: ReviewedLine, event_id: str, carc_text: Callable[[str], str | None]
) -> dict[str, Any]:
    approved = decision.outcome == "approved"
    if approved:
        explanation = "Approved on review: a reviewer decided this line, which had been pended, is covered."
    else:
        reasons = "; ".join(f"CARC {carc}: {carc_text(carc) or 'see the code'}" for carc in decision.carc)
        explanation = (
            f"Denied on review: a reviewer decided this line, which had been pended, is not covered ({reasons})."
        )
    coverage = dict(line.get("coverage") or {})
    coverage.update(
        covered="covered" if approved else "not-covered",
        pa_needed="no-auth" if approved else None,
        satisfied_pa_id=None,
        info_needed=[],
        coverage_assertion_id=str(uuid.uuid5(COVERAGE_ASSERTION_NAMESPACE, f"{event_id}|{line['line_number']}")),
        reason=f"MB2300 review: {explanation}",
    )
    return {
        **line,
        "outcome": decision.outcome,
        "rule": f"review.{decision.outcome}",
        "carc": list(decision.carc),
        "rarc": list(decision.rarc),
        "ncpdp_reject": [],
        "group_code": None if approved else "CO",
        "adjustment_amount": None if approved else line.get("charge_amount"),
        "explanation": explanation,
        "queue": None,
        "coverage": coverage,
    }
