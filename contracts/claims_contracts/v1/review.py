"""A reviewer's decision on a pended claim (version 1): the event that closes a pend.

Published on `claims.reviews` by the reviewer's workbench (or any review system), keyed by the
member id. The worker turns a review that matches the open pend of its claim into the final
`claim.adjudicated` event, which supersedes the pend; any other review is dead-lettered with
the reason, and nothing else changes.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from claims_contracts._base import InboundModel
from claims_contracts.v1.codes import ClaimNumber, LineNumber, MemberId, ReviewerId, Timestamp

CARC_PATTERN = r"^[A-Z]?[0-9]{1,3}$"
"""A claim adjustment reason code: 1 to 3 digits, some with a letter first (A1, P7)."""
RARC_PATTERN = r"^[A-Z]{1,2}[0-9]{1,4}$"
"""A remittance advice remark code: one or two letters and digits (M76, N130, MA04)."""

ROLE_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
"""A reviewer role: lower-case letters, digits and underscores (clinical_reviewer)."""
MAX_REVIEW_BYTES = 65_536
"""The largest review message the worker reads (1.6.0): a review of 999 lines fits in well under it."""

Carc = Annotated[str, StringConstraints(pattern=CARC_PATTERN)]
Rarc = Annotated[str, StringConstraints(pattern=RARC_PATTERN)]
ReviewerRole = Annotated[str, StringConstraints(pattern=ROLE_PATTERN)]


class ReviewedLine(InboundModel):
    """The reviewer's decision on one pended line."""

    # A review is a decision about money: a field the contract does not know is refused, not
    # ignored (1.6.0), so nothing a signer did not mean rides along.
    model_config = ConfigDict(extra="forbid")

    line_number: LineNumber
    outcome: Literal["approved", "denied"]
    carc: list[Carc] = Field(default_factory=list, max_length=5, description="Required (one or more) on a denial.")
    rarc: list[Rarc] = Field(default_factory=list, max_length=5)

    @model_validator(mode="after")
    def _denial_has_a_reason(self) -> ReviewedLine:
        if self.outcome == "denied" and not self.carc:
            raise ValueError(f"line {self.line_number}: a denial needs at least one CARC")
        return self


class ReviewDecisionEvent(InboundModel):
    """A review decision, version 1: one per Kafka message on `claims.reviews`.

    Since 1.6.0 a review is signed: a detached JWS (Ed25519) of the message value in the Kafka
    header `claims-review-signature`, by a key the worker trusts. Unknown fields are refused.
    """

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = Field(description="Contract version.")
    event_id: UUID = Field(description="Unique per review; a redelivery carries the same id.")
    pend_event_id: UUID = Field(description="The event_id of the claim.pended event this review resolves.")
    claim_id: ClaimNumber
    member_id: MemberId = Field(
        description="The member of the pended claim (from the pend event): reviews are decided on the member's"
        " partition, beside the member's claims."
    )
    reviewer_id: ReviewerId = Field(description="The reviewer's workforce id, from the authenticated request.")
    reviewer_roles: list[ReviewerRole] = Field(
        default_factory=list,
        max_length=10,
        description="The reviewer's roles, from the identity source (1.6.0): a queue is resolved only by a role it"
        " allows, so a review without roles resolves nothing.",
    )
    decided_at: Timestamp = Field(description="When the reviewer decided (RFC 3339).")
    lines: list[ReviewedLine] = Field(min_length=1, max_length=999, description="The pended lines, decided.")

    @model_validator(mode="after")
    def _lines_once(self) -> ReviewDecisionEvent:
        numbers = [line.line_number for line in self.lines]
        if len(set(numbers)) != len(numbers):
            raise ValueError("a line is decided more than once")
        return self
