"""The worker's output events: adjudication and pend-for-review (version 1).

They carry identifiers (claim id, member id) and codes, never PHI: no names,
birth dates, addresses or free-text drug descriptions. `OutboundModel` forbids
any field not declared here, so none can be added by accident.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, Field, model_validator

from claims_contracts._base import OutboundModel
from claims_contracts.v1.claim import ClaimType
from claims_contracts.v1.codes import ClaimNumber, IsoDate, MemberId, Money, Units


class LineOutcome(StrEnum):
    """What was decided for one line."""

    APPROVED = "approved"
    DENIED = "denied"
    ROUTED = "routed"
    NOT_APPLICABLE = "not_applicable"
    PENDED = "pended"


class ReviewQueue(StrEnum):
    """Where a pended claim waits for a person."""

    CLINICAL_REVIEW = "clinical_review"
    COORDINATION_OF_BENEFITS = "coordination_of_benefits"
    DATA_CORRECTION = "data_correction"
    POLICY_REVIEW = "policy_review"
    PHARMACY_REVIEW = "pharmacy_review"
    """An NDC the plan's drug reference does not know, described as the policy's drug (since 1.3.0)."""


class RouteTo(StrEnum):
    """The payer a routed line is sent to."""

    WISCONSIN_MEDICAID_PHARMACY = "wisconsin_medicaid_pharmacy"
    WISCONSIN_MEDICAID_FFS = "wisconsin_medicaid_ffs"


class AdjustmentGroup(StrEnum):
    """X12 835 claim adjustment group code (CAS01)."""

    CO = "CO"
    PR = "PR"
    OA = "OA"
    PI = "PI"


class BillingCode(OutboundModel):
    """A coded service (CRD `billingCode`): the line's procedure code, or its NDC on a pharmacy claim."""

    system: Literal["HCPCS", "NDC"] = Field(description="HCPCS Level II / CPT, or the 11-digit NDC.")
    code: str


class CoverageInformation(OutboundModel):
    """A Da Vinci CRD-style coverage statement for one line (the coverage-information extension).

    Follows the CRD invariants: `not-covered` carries no `pa_needed`, any other
    value carries one; `satisfied_pa_id` is present exactly when `pa_needed` is
    `satisfied`.
    """

    covered: Literal["covered", "not-covered", "conditional"]
    pa_needed: Literal["no-auth", "auth-needed", "satisfied"] | None = None
    satisfied_pa_id: str | None = None
    info_needed: list[Literal["detail-code", "performer", "location", "timeframe"]] = Field(default_factory=list)
    date: IsoDate | None = Field(
        default=None,
        description="CRD `date`: the date the assertion is made as of, the claim's received date (since 1.3.0).",
    )
    coverage_assertion_id: UUID | None = Field(
        default=None,
        description="CRD `coverage-assertion-id`: deterministic for the output event and line (since 1.3.0).",
    )
    billing_code: BillingCode | None = Field(default=None, description="CRD `billingCode` (since 1.3.0).")
    reason: str | None = Field(
        default=None, description="CRD `reason` as text: MB2300, its section and the plain reason (since 1.3.0)."
    )

    @model_validator(mode="after")
    def _crd_invariants(self) -> CoverageInformation:
        if (self.covered == "not-covered") != (self.pa_needed is None):
            raise ValueError("pa_needed must be absent exactly when covered is not-covered")
        if (self.pa_needed == "satisfied") != (self.satisfied_pa_id is not None):
            raise ValueError("satisfied_pa_id must be present exactly when pa_needed is satisfied")
        if self.info_needed and self.covered != "conditional":
            raise ValueError("info_needed requires covered to be conditional")
        return self


class PolicyReference(OutboundModel):
    """The drug policy and version(s) that decided the claim."""

    policy_id: str = Field(description="Policy identifier, e.g. MB2300.")
    versions: list[str] = Field(description="Versions applied to the claim's lines, in ascending order.")
    revision: int | None = Field(
        default=None,
        description="Revision of the plan's reading of the policy (its determination) the rules come from;"
        " part of what the output event id is derived from (since 1.3.0).",
    )


class LineResult(OutboundModel):
    """The decision for one service line."""

    line_number: int
    outcome: LineOutcome
    procedure_code: str | None = Field(default=None, description="The line's HCPCS/CPT code (since 1.3.0).")
    modifiers: list[str] = Field(default_factory=list, description="The line's modifiers (since 1.3.0).")
    ndc: str | None = Field(
        default=None, description="The line's NDC as 11 digits (5-4-2), when it can be read one way (since 1.3.0)."
    )
    route: str | None = Field(default=None, description="The route billed: IV, IM, SC, ... (since 1.3.0).")
    service_date: IsoDate | None = Field(default=None, description="The line's date of service (since 1.3.0).")
    units: Units | None = Field(default=None, description="The line's units (since 1.3.0).")
    charge_amount: Money | None = Field(default=None, description="The line's charge (since 1.3.0).")
    adjustment_amount: Money | None = Field(
        default=None,
        description="On a denied line: the amount adjusted (the charge), under `group_code` with `carc` (since 1.3.0).",
    )
    rule: str = Field(description="Stable rule identifier that decided the line, e.g. criteria.chronic_pain.")
    policy_sections: list[str] = Field(description="MB2300 sections the decision rests on.")
    policy_version: str | None = Field(description="Policy version in force for this line's date of service.")
    carc: list[str] = Field(default_factory=list, description="Claim adjustment reason codes (medical claims).")
    rarc: list[str] = Field(default_factory=list, description="Remittance advice remark codes (medical claims).")
    ncpdp_reject: list[str] = Field(default_factory=list, description="NCPDP reject codes (pharmacy claims).")
    group_code: AdjustmentGroup | None = Field(default=None, description="835 adjustment group, when adjusted.")
    explanation: str = Field(description="Plain-language reason naming the plan provision.")
    route_to: RouteTo | None = None
    queue: ReviewQueue | None = Field(default=None, description="Review queue, on pended lines.")
    coverage: CoverageInformation | None = Field(
        default=None, description="CRD-style statement; absent when not applicable."
    )


class RuleHit(OutboundModel):
    """One entry of the rule trace: a rule that matched a line, and why."""

    line_number: int
    rule: str
    policy_sections: list[str]
    evidence: list[str] = Field(default_factory=list, description="Codes and identifiers that made the rule match.")


class _DecisionEvent(OutboundModel):
    schema_version: Literal[1] = 1
    event_id: UUID = Field(
        description=(
            "Deterministic for (source_event_id, policy versions, and what the claim history added: the claims it"
            " duplicates, what it supersedes or is superseded by)."
        )
    )
    source_event_id: UUID = Field(description="The input claim event's event_id.")
    claim_id: ClaimNumber
    member_id: MemberId
    claim_type: ClaimType
    frequency_code: Literal["1", "7", "8"]
    replaces_claim_id: ClaimNumber | None = Field(default=None, description="Set on a replacement (frequency 7).")
    voids_claim_id: ClaimNumber | None = Field(default=None, description="Set on a void (frequency 8).")
    supersedes_event_id: UUID | None = Field(
        default=None,
        description="On a replacement or void: the output event of the decision it supersedes or reverses, when known.",
    )
    superseded_by_claim_id: ClaimNumber | None = Field(
        default=None,
        description=(
            "Set when a replacement or void of this claim was decided before it (they reached the worker out of"
            " order): this decision is already superseded and must not be paid or acted on."
        ),
    )
    review_event_id: UUID | None = Field(
        default=None,
        description="On the final adjudication of a pend: the review decision it applies (since 1.4.0).",
    )
    policy: PolicyReference
    decided_at: AwareDatetime
    lines: list[LineResult]
    trace: list[RuleHit] = Field(description="Every rule that matched, in evaluation order.")


class AdjudicationEvent(_DecisionEvent):
    """Published when every line of the claim is decided (topic claims.adjudicated)."""

    event_type: Literal["claim.adjudicated"] = "claim.adjudicated"


class PendForReviewEvent(_DecisionEvent):
    """Published instead of an adjudication when a line needs a person (topic claims.pended)."""

    event_type: Literal["claim.pended"] = "claim.pended"
    queue: ReviewQueue = Field(description="Queue of the first pended line in rule order.")
    reason: str = Field(description="Why the claim waits, from that line.")


DecisionEvent = Annotated[AdjudicationEvent | PendForReviewEvent, Field(discriminator="event_type")]
"""Either output event, told apart by `event_type`."""
