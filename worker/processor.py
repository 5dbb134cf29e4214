"""One input in, one output out: the unit of work shared by the CLI and the stream.

`Processor.process` never raises for bad input: it returns a decision event or a
dead-letter record. It raises only for faults of the worker itself (a policy
gap), which must stop processing rather than lose the claim.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from pydantic import ValidationError

from claims_contracts.v1 import (
    AdjudicationEvent,
    ClaimEvent,
    DeadLetterRecord,
    PendForReviewEvent,
    ReviewDecisionEvent,
    SourcePosition,
)
from claims_contracts.v1.review import MAX_REVIEW_BYTES
from worker import dead_letter
from worker.adjudication import Claim, CodeTable, Decision, PolicyBook, adjudicate, output_event_id
from worker.history import ClaimHistory, Emitted
from worker.policy_files import bundled_policy_dir, load_code_table
from worker.resolution import Resolved, ReviewRedelivered, final_adjudication, parse_review, resolve
from worker.signatures import Unverified, VerifyKeys
from worker.translate import body_from_decision, claim_from_event, event_of, payload

DEFAULT_MAX_INPUT_BYTES = 1_048_576
"""Inputs above 1 MiB are dead-lettered unread: no v1 claim of 999 lines comes near it."""


def fingerprint(event: ClaimEvent) -> str:
    """What an input says, canonically: the same for the same content however it was serialized."""
    return hashlib.sha256(event.model_dump_json().encode()).hexdigest()[:32]


CLAIM_FIELD = ',"claim":'
"""Where the claim object starts in a claim event's canonical JSON: `claim` is its last field, and
nothing before it (a version, a UUID, a timestamp) can hold these characters."""


def fingerprints(event: ClaimEvent) -> tuple[str, str]:
    """The input's fingerprint (`fingerprint`) and the claim's content (`claim_content`), from one serialization.

    The claim object's JSON is the tail of the event's (the same serializer writes both), so
    the event is written once for both; tests compare it with `event.claim.model_dump_json()`.
    """
    dumped = event.model_dump_json()
    claim_json = dumped[dumped.index(CLAIM_FIELD) + len(CLAIM_FIELD) : -1]
    return (
        hashlib.sha256(dumped.encode()).hexdigest()[:32],
        hashlib.sha256(claim_json.encode()).hexdigest()[:32],
    )


def claim_content(event: ClaimEvent) -> str:
    """What a claim says, canonically, whatever event carried it (revision 3, item 13).

    The claim object alone: the same claim under another event id (or produced at another
    time) has the same content; any other difference, a field of the member's included, is
    other content.
    """
    return hashlib.sha256(event.claim.model_dump_json().encode()).hexdigest()[:32]


def claim_identity(claim: Claim, content: str) -> str:
    """What identifies a claim's decision besides the policy and the history (revision 3, item 2)."""
    return f"claim|{claim.member_id}|{claim.claim_id}|{content}"


def history_context(
    decision: Decision,
    duplicates: Mapping[int, str],
    supersedes: str | None,
    superseded_by: str | None,
    units_used: Mapping[str, Decimal] | None = None,
) -> str:
    """What the claim history added to a decision, canonically ("" when nothing).

    Part of the output event id: the same input decided against another history (a duplicate
    of another claim, superseding another output, an authorization partly used) is another
    body, so it gets another id.
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
    if units_used:
        parts.extend(f"units:{auth_id}={format(units, 'f')}" for auth_id, units in sorted(units_used.items()))
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
    again: bool = False
    """The same claim received again (revision 3, item 13): the decision it already had, given
    again; the history does not change (only the new input is remembered as delivered)."""
    content: str | None = None
    """The claim's content (`claim_content`), kept by the history when the reading compares it."""
    made: Mapping[str, Any] | None = None
    """What the history gave the decision, kept to give it again (revision 3)."""

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
    """A pend-for-review event as the history keeps it (JSON values), for a review to resolve; None otherwise.

    None for a decision given again: the pend it repeats is already kept (or was resolved).
    """
    return decided.body if decided.decision.pended and not decided.again else None


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
        codes: CodeTable | None = None,
        review_keys: VerifyKeys | None = None,
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
        self.codes = codes if codes is not None else load_code_table(bundled_policy_dir())
        """The code table: a review's codes must be in it, and a reviewed denial's explanation quotes it."""
        self.review_keys = review_keys if review_keys is not None else VerifyKeys({})
        """The public keys a review must be signed by (none: every review is refused, fail closed)."""

    def process(
        self, raw: bytes, source: SourcePosition, *, undelivered: Mapping[tuple[str, str], Emitted] | None = None
    ) -> Processed:
        """Decide one raw claim event, or dead-letter it.

        An input whose event id was already decided is a redelivery when its content is the
        same (nothing to publish; decided again, identically, with `skip_redelivered` off), and
        an `event_id_conflict` dead letter when it is not, wherever it is decided.

        Args:
            raw: the message value as received.
            source: where it came from, recorded on a dead letter.
            undelivered: inputs decided but not yet delivered (the stream's batches in hand),
                by member id and event id, checked like the history's delivered ones (an event
                id is the member's: another member's claim under it is another input).

        Returns:
            The decision event, the dead-letter record, or that it was already decided.
        """
        try:
            event = self.parse(raw)
        except dead_letter.Unreadable as unreadable:
            return self.dead_lettered(raw, unreadable, source)
        event_id = str(event.event_id)
        seen = undelivered.get((event.claim.member.member_id, event_id)) if undelivered else None
        if seen is None:
            seen = self.history.already_emitted(event_id, event.claim.member.member_id)
        if seen is not None:
            output_id, earlier = seen
            if earlier is not None and earlier != fingerprint(event):
                conflict = dead_letter.event_id_conflict(event_id, output_id, event.claim.claim_id)
                return self.dead_lettered(raw, conflict, source)
            if self.skip_redelivered:
                return Redelivered(event_id, output_id)
            # The same input again, decided again: the same decision (and output id) again.
        try:
            return self.decide(event)
        except ClaimIdConflict as conflict:
            return self.dead_lettered(raw, conflict.unreadable, source)

    def dead_lettered(
        self, raw: bytes, unreadable: dead_letter.Unreadable, source: SourcePosition, max_bytes: int | None = None
    ) -> DeadLettered:
        """The dead letter of an input, sized for the dead-letter topic (or `max_bytes`, when smaller)."""
        limit = self.dead_letter_max_bytes if max_bytes is None else max_bytes
        return DeadLettered(
            dead_letter.record(raw, unreadable, source, dead_lettered_at=self.clock(), max_record_bytes=limit)
        )

    def review(
        self, raw: bytes, source: SourcePosition, *, signature: bytes | None = None, resolving: Collection[str] = ()
    ) -> Resolved | ReviewRedelivered | DeadLettered:
        """Apply one raw review decision to its pend: the final adjudication, or a dead letter saying why not.

        The review's signature is checked first, over the bytes as received: one without a valid
        signature by a trusted key is a `review_unauthenticated` dead letter and changes nothing.

        Args:
            raw: the message value as received.
            source: where it came from, recorded on a dead letter.
            signature: the value of the review's signature header (`worker.signatures`).
            resolving: pend event ids that reviews decided but not yet delivered resolve.
        """
        try:
            if len(raw) > MAX_REVIEW_BYTES:
                raise dead_letter.too_large(len(raw), MAX_REVIEW_BYTES)
            try:
                self.review_keys.verify(raw, signature)
            except Unverified as unverified:
                raise dead_letter.review_unauthenticated(unverified.reason, _claimed_event_id(raw)) from None
            review = parse_review(raw, MAX_REVIEW_BYTES)
            return resolve(
                review,
                self.history,
                clock=self.clock,
                codes=self.codes,
                rules=self.policies.review_queues,
                resolving=resolving,
            )
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

        From revision 3 (item 13) the same claim (claim id and content) received again, under
        any event id, gets the decision it already had: the same output event id and body, bar
        `decided_at` (the final adjudication, when a review closed its pend).

        The history is not updated here: call `remember` once the output is delivered,
        so a failed delivery leaves no trace and the redelivered input is decided again.

        Raises:
            ClaimIdConflict: from revision 3, the claim id was decided for other content, and
                this claim is neither a replacement nor a void.
        """
        claim = claim_from_event(event)
        rules = self.policies.history
        input_fingerprint, claim_fingerprint = fingerprints(event)
        content = claim_fingerprint if rules.same_claim_again == "same_decision" else None
        if content is not None:
            earlier = self.history.earlier_decision(claim)
            if earlier is not None:
                if earlier["content"] == content:
                    return self._again(input_fingerprint, claim, earlier)
                if claim.frequency_code == "1":
                    unreadable = dead_letter.claim_id_conflict(str(event.event_id), claim.claim_id, earlier)
                    raise ClaimIdConflict(unreadable)
        duplicates = self.history.duplicates(claim)
        supersedes = self.history.superseded_event(claim)
        superseded_by = self.history.superseded_by(claim)
        units = self.history.units_used(claim) if rules.authorized_units == "total" else {}
        return self._decided(
            input_fingerprint, claim, content, claim.event_id, duplicates, supersedes, superseded_by, units
        )

    def _decided(
        self,
        input_fingerprint: str,
        claim: Claim,
        content: str | None,
        source_event_id: str,
        duplicates: Mapping[int, str],
        supersedes: str | None,
        superseded_by: str | None,
        units: Mapping[str, Decimal],
    ) -> Decided:
        """Decide a claim against what the history gives it (now, or as it gave it the first time)."""
        identity = claim_identity(claim, content) if content is not None else None
        if self.policies.history.output_identity != "claim":
            identity = None
        decided_claim = (
            claim if source_event_id == claim.event_id else dataclasses.replace(claim, event_id=source_event_id)
        )
        decision = adjudicate(
            decided_claim,
            self.policies,
            pinned_version=self.pinned_version,
            duplicates=duplicates,
            authorization_used=units,
            identity=identity,
        )
        context = history_context(decision, duplicates, supersedes, superseded_by, units)
        if context:
            event_id = output_event_id(
                identity or claim.event_id,
                decision.policy_id,
                decision.policy_versions,
                context,
                revision=decision.revision,
            )
            decision = dataclasses.replace(decision, event_id=event_id)
        body = body_from_decision(
            decision,
            decided_claim,
            decided_at=self.clock(),
            supersedes_event_id=supersedes,
            superseded_by_claim_id=superseded_by,
        )
        made: dict[str, Any] | None = None
        if content is not None:
            # Only what the history added (most claims: nothing, and no dict is kept for them); the
            # input event that carried the claim is kept by the history as the claim's `source`.
            made = {}
            if duplicates:
                made["dups"] = {str(number): text for number, text in duplicates.items()}
            if supersedes:
                made["supersedes"] = supersedes
            if superseded_by:
                made["superseded_by"] = superseded_by
            if units:
                made["units"] = {auth_id: format(used, "f") for auth_id, used in units.items()}
        return Decided(body, payload(body), decision, claim, input_fingerprint, content=content, made=made)

    def _again(self, input_fingerprint: str, claim: Claim, earlier: Mapping[str, Any]) -> Decided:
        """The decision a claim already had, made again from what the history gave it then (item 13).

        The engine is deterministic, so the claim decided against the same history gives the
        same body; a pend a review closed gives the final adjudication the review made.
        """
        made: Mapping[str, Any] = earlier.get("made") or {}
        decided = self._decided(
            input_fingerprint,
            claim,
            str(earlier["content"]),
            str(earlier.get("source") or claim.event_id),
            {int(number): str(text) for number, text in (made.get("dups") or {}).items()},
            made.get("supersedes"),
            made.get("superseded_by"),
            {auth_id: Decimal(units) for auth_id, units in (made.get("units") or {}).items()},
        )
        review = (earlier.get("review") or {}).get("decision")
        body = decided.body
        if review is not None and decided.decision.pended:
            final = final_adjudication(body, ReviewDecisionEvent.model_validate(review), self.clock(), self._carc_text)
            body = final.model_dump(mode="json")
        return dataclasses.replace(decided, body=body, payload=payload(body), again=True)

    def _carc_text(self, carc: str) -> str | None:
        entry = self.codes.carc.get(carc)
        return entry.text if entry is not None else None

    def remember(self, decided: Decided, *, emitted: bool = False) -> None:
        """Record a decision in the claim history.

        Args:
            decided: the decision.
            emitted: its output is already delivered (the command line writes it first);
                the stream marks delivery itself once the broker acknowledges.
        """
        if decided.again:
            self.history.record_again(decided.claim)
        else:
            self.history.record(
                decided.claim,
                decided.decision,
                rejected_pharmacy_lines_are_originals=self.policies.history.rejected_pharmacy_lines_are_originals,
                content=decided.content,
                made=decided.made,
            )
        if emitted:
            self.history.mark_emitted(decided.claim, decided.decision, decided.fingerprint, pend=pend_of(decided))


def _claimed_event_id(raw: bytes) -> str | None:
    """The event id an unverified review says it has (untrusted: only to name it on its dead letter)."""
    try:
        claimed = orjson.loads(raw).get("event_id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return str(uuid.UUID(claimed)) if isinstance(claimed, str) and len(claimed) <= 64 and _is_uuid(claimed) else None


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


class ClaimIdConflict(Exception):
    """A claim id already decided for other content, sent again as an original (revision 3, item 13)."""

    def __init__(self, unreadable: dead_letter.Unreadable) -> None:
        super().__init__(unreadable)
        self.unreadable = unreadable
