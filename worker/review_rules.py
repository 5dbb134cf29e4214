"""What a review may say of a pend: the queue's outcomes and roles, codes that exist and fit, a sane time.

Pure: the worker applies these checks to every review before it changes a claim
(`worker.resolution.resolve`), and the workbench applies the same ones to its form before it
signs and sends a review, so a reviewer hears at once what the worker would refuse. The queue
rules are policy data (`review_queues` in the policy file); the codes are the code table's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from claims_contracts.v1 import ReviewedLine
from worker.adjudication import CodeTable
from worker.adjudication.policy import ReviewQueueRule

MAX_FUTURE = timedelta(minutes=5)
"""How far after the checking clock a review's `decided_at` may be (clock skew between machines)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a review may not close a pend: `not_allowed` (queue, outcome, role) or `invalid` (codes, time)."""

    kind: str
    reason: str


def line_queues(pend: Mapping[str, Any]) -> dict[int, str]:
    """The queue of each pended line (the claim's queue when a line names none)."""
    default = str(pend.get("queue") or "")
    return {
        int(line["line_number"]): str(line.get("queue") or default)
        for line in pend["lines"]
        if line["outcome"] == "pended"
    }


def allowed_outcomes(pend: Mapping[str, Any], rules: Mapping[str, ReviewQueueRule]) -> dict[int, frozenset[str]]:
    """Line number -> the outcomes its queue allows (none for a queue without rules)."""
    return {
        number: rules[queue].outcomes if queue in rules else frozenset() for number, queue in line_queues(pend).items()
    }


def may_resolve(pend: Mapping[str, Any], rules: Mapping[str, ReviewQueueRule], roles: Sequence[str]) -> bool:
    """Whether a reviewer with these roles may resolve every pended line of the pend."""
    return all(queue in rules and rules[queue].roles & set(roles) for queue in line_queues(pend).values())


def refusal(
    pend: Mapping[str, Any],
    lines: Sequence[ReviewedLine],
    roles: Sequence[str],
    decided_at: datetime,
    *,
    rules: Mapping[str, ReviewQueueRule],
    codes: CodeTable,
    now: datetime,
) -> Refusal | None:
    """Why a review of these lines may not close the pend; None when it may.

    Args:
        pend: the pend-for-review event as published (JSON values).
        lines: the reviewed lines (each pended line once: checked before this).
        roles: the reviewer's roles, from the signed review (or the workbench's identity source).
        decided_at: when the reviewer decided.
        rules: the policy's review queues.
        codes: the code table.
        now: the checking clock (a review from the future is refused).
    """
    queues = line_queues(pend)
    for line in lines:
        queue = queues.get(line.line_number, "")
        rule = rules.get(queue)
        if rule is None:
            return Refusal("not_allowed", f"line {line.line_number}: queue {queue!r} takes no review here")
        if not rule.roles & set(roles):
            return Refusal(
                "not_allowed",
                f"line {line.line_number}: queue {queue} is resolved by {sorted(rule.roles)}; the reviewer has"
                f" {sorted(roles) or 'no role'}",
            )
        if line.outcome not in rule.outcomes:
            return Refusal(
                "not_allowed",
                f"line {line.line_number}: queue {queue} allows {sorted(rule.outcomes)}, not {line.outcome}",
            )
        problem = _codes_problem(line, codes)
        if problem is not None:
            return Refusal("invalid", problem)
    pended_at = datetime.fromisoformat(str(pend["decided_at"]).replace("Z", "+00:00"))
    if decided_at < pended_at:
        return Refusal("invalid", f"decided_at {decided_at.isoformat()} is before the pend ({pended_at.isoformat()})")
    if decided_at > now + MAX_FUTURE:
        return Refusal("invalid", f"decided_at {decided_at.isoformat()} is in the future")
    return None


def _codes_problem(line: ReviewedLine, codes: CodeTable) -> str | None:
    number = line.line_number
    if line.outcome == "approved":
        if line.carc or line.rarc:
            return f"line {number}: an approved line carries no adjustment codes"
        return None
    unknown = [carc for carc in line.carc if carc not in codes.carc]
    unknown += [rarc for rarc in line.rarc if rarc not in codes.rarc]
    if unknown:
        return f"line {number}: codes {unknown} are not in the code table ({codes.code_table_version})"
    if any(codes.carc[carc].requires_rarc for carc in line.carc) and not line.rarc:
        return f"line {number}: CARC {[c for c in line.carc if codes.carc[c].requires_rarc]} needs a RARC"
    return None
