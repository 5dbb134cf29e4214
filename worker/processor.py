"""One input in, one output out: the unit of work shared by the CLI and the stream.

`Processor.process` never raises for bad input: it returns a decision event or a
dead-letter record. It raises only for faults of the worker itself (a policy
gap), which must stop processing rather than lose the claim.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from claims_contracts.v1 import (
    AdjudicationEvent,
    ClaimEvent,
    DeadLetterRecord,
    PendForReviewEvent,
    ReviewDecisionEvent,
    SourcePosition,
)
from worker import dead_letter
from worker.adjudication import Claim, Decision, PolicyBook, adjudicate, output_event_id
from worker.history import ClaimHistory, Emitted
from worker.resolution import Resolved, ReviewRedelivered, parse_review, resolve
from worker.translate import body_from_decision, claim_from_event, event_of, payload

DEFAULT_MAX_INPUT_BYTES = 1_048_576
"""Inputs above 1 MiB are dead-lettered unread: no v1 claim of 999 lines comes near it."""


def fingerprint(event: ClaimEvent) -> str:
    """What an input says, canonically: the same for the same content however it was serialized."""
    return hashlib.sha256(event.model_dump_json().encode()).hexdigest()[:32]


def history_context(
    decision: Decision, duplicates: Mapping[int, str], supersedes: str | None, superseded_by: str | None
) -> str:
    """What the claim history added to a decision, canonically ("" when nothing).

    Part of the output event id: the same input decided against another history (a duplicate
    of another claim, or superseding another output) is another body, so it gets another id.
    """
    parts = [
        f"dup:{line.line_number}={duplicates[line.line_number]}"
        for line in decision.lines
        if line.rule == "claim.duplicate" and line.line_number in duplicates
    ]
    if supersedes:
        parts.append(f"supersedes:{supersedes}")
    if superseded_by:
        parts.append(f"superseded_by:{superseded_by}")
    return ";".join(parts)


def utc_now() -> datetime:
    """The edge's clock."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Decided:
    """A claim that was read and decided."""

    body: dict[str, Any]
    """The output event as JSON values (`worker.translate.body_from_decision`); never changed once built."""
    payload: bytes
    """The output event's bytes, as published and written."""
    decision: Decision
    claim: Claim
    fingerprint: str
    """What the input said, canonically (`fingerprint`): a later input with the same event id is
    a redelivery only when it says the same."""

    @property
    def event(self) -> AdjudicationEvent | PendForReviewEvent:
        """The output event as the contract's model, validated from the body (for callers that want it)."""
        return event_of(self.body)

    @property
    def event_type(self) -> str:
        """`claim.adjudicated` or `claim.pended`."""
        return str(self.body["event_type"])


@dataclass(frozen=True, slots=True)
class Redelivered:
    """An input whose decision was already emitted (same event id): nothing to publish."""

    source_event_id: str
    output_event_id: str


@dataclass(frozen=True, slots=True)
class DeadLettered:
    """An input that could not be read."""

    record: DeadLetterRecord


Processed = Decided | DeadLettered | Redelivered
"""What one input yields: exactly one of these."""


def pend_of(decided: Decided) -> dict[str, Any] | None:
    """A pend-for-review event as the history keeps it (JSON values), for a review to resolve; None otherwise."""
    return decided.body if decided.decision.pended else None


class Processor:
    """Reads, validates and decides claim events under a policy book."""

    def __init__(
        self,
        policies: PolicyBook,
        *,
        pinned_version: str | None = None,
        max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
        dead_letter_max_bytes: int | None = None,
        clock: Callable[[], datetime] = utc_now,
        history: ClaimHistory | None = None,
        skip_redelivered: bool = True,
        carc_text: Callable[[str], str | None] = lambda carc: None,
    ) -> None:
        if pinned_version is not None:
            policies.version(pinned_version)  # fail now, not on the first claim
        self.policies = policies
        self.pinned_version = pinned_version
        self.max_input_bytes = max_input_bytes
        self.dead_letter_max_bytes = dead_letter_max_bytes
        """The largest dead letter its topic takes (None: no limit, a file)."""
        self.clock = clock
        self.history = history if history is not None else ClaimHistory.in_memory()
        self.skip_redelivered = skip_redelivered
        self.carc_text = carc_text
        """The code table's words for a CARC (a reviewed denial's explanation); None: none known."""

    def process(
        self, raw: bytes, source: SourcePosition, *, undelivered: Mapping[str, Emitted] | None = None
    ) -> Processed:
        """Decide one raw claim event, or dead-letter it.

        An input whose event id was already decided is a redelivery when its content is the
        same (nothing to publish; decided again, identically, with `skip_redelivered` off), and
        an `event_id_conflict` dead letter when it is not, wherever it is decided.

        Args:
            raw: the message value as received.
            source: where it came from, recorded on a dead letter.
            undelivered: inputs decided but not yet delivered (the stream's batches in hand),
                by event id, checked like the history's delivered ones.

        Returns:
            The decision event, the dead-letter record, or that it was already decided.
        """
        try:
            event = self.parse(raw)
        except dead_letter.Unreadable as unreadable:
            return self.dead_lettered(raw, unreadable, source)
        event_id = str(event.event_id)
        seen = undelivered.get(event_id) if undelivered else None
        if seen is None:
            seen = self.history.already_emitted(event_id, event.claim.member.member_id)
        if seen is None:
            return self.decide(event)
        output_id, earlier = seen
        if earlier is not None and earlier != fingerprint(event):
            conflict = dead_letter.event_id_conflict(event_id, output_id, event.claim.claim_id)
            return self.dead_lettered(raw, conflict, source)
        if self.skip_redelivered:
            return Redelivered(event_id, output_id)
        return self.decide(event)  # the same content again: the same decision (and output id) again

    def dead_lettered(
        self, raw: bytes, unreadable: dead_letter.Unreadable, source: SourcePosition, max_bytes: int | None = None
    ) -> DeadLettered:
        """The dead letter of an input, sized for the dead-letter topic (or `max_bytes`, when smaller)."""
        limit = self.dead_letter_max_bytes if max_bytes is None else max_bytes
        return DeadLettered(
            dead_letter.record(raw, unreadable, source, dead_lettered_at=self.clock(), max_record_bytes=limit)
        )

    def review(
        self, raw: bytes, source: SourcePosition, *, resolving: Collection[str] = ()
    ) -> Resolved | ReviewRedelivered | DeadLettered:
        """Apply one raw review decision to its pend: the final adjudication, or a dead letter saying why not.

        Args:
            raw: the message value as received.
            source: where it came from, recorded on a dead letter.
            resolving: pend event ids that reviews decided but not yet delivered resolve.
        """
        try:
            review = parse_review(raw, self.max_input_bytes)
            return resolve(review, self.history, clock=self.clock, carc_text=self.carc_text, resolving=resolving)
        except dead_letter.Unreadable as unreadable:
            return self.dead_lettered(raw, unreadable, source)

    def parse_review(self, raw: bytes) -> ReviewDecisionEvent:
        """Validate raw bytes as a v1 review decision (see `worker.resolution.parse_review`)."""
        return parse_review(raw, self.max_input_bytes)

    def parse(self, raw: bytes) -> ClaimEvent:
        """Validate raw bytes as a v1 claim event.

        Raises:
            dead_letter.Unreadable: the bytes are too large, not UTF-8, not JSON, or not v1.
        """
        if len(raw) > self.max_input_bytes:
            raise dead_letter.too_large(len(raw), self.max_input_bytes)
        try:
            return ClaimEvent.model_validate_json(raw)
        except ValidationError as error:
            raise dead_letter.classify(raw, error) from None

    def decide(self, event: ClaimEvent) -> Decided:
        """Decide a validated claim event against the claim history.

        The history is not updated here: call `remember` once the output is delivered,
        so a failed delivery leaves no trace and the redelivered input is decided again.
        """
        claim = claim_from_event(event)
        duplicates = self.history.duplicates(claim)
        supersedes = self.history.superseded_event(claim)
        superseded_by = self.history.superseded_by(claim)
        decision = adjudicate(claim, self.policies, pinned_version=self.pinned_version, duplicates=duplicates)
        context = history_context(decision, duplicates, supersedes, superseded_by)
        if context:
            identity = output_event_id(
                claim.event_id, decision.policy_id, decision.policy_versions, context, revision=decision.revision
            )
            decision = dataclasses.replace(decision, event_id=identity)
        body = body_from_decision(
            decision,
            claim,
            decided_at=self.clock(),
            supersedes_event_id=supersedes,
            superseded_by_claim_id=superseded_by,
        )
        return Decided(body, payload(body), decision, claim, fingerprint(event))

    def remember(self, decided: Decided, *, emitted: bool = False) -> None:
        """Record a decision in the claim history.

        Args:
            decided: the decision.
            emitted: its output is already delivered (the command line writes it first);
                the stream marks delivery itself once the broker acknowledges.
        """
        self.history.record(decided.claim, decided.decision)
        if emitted:
            self.history.mark_emitted(decided.claim, decided.decision, decided.fingerprint, pend=pend_of(decided))
