"""Mapping between the wire contract (v1) and the core's model.

The only module that knows both sides: a v2 contract means a new branch here,
and the core does not change. PHI fields of the contract are not copied.
"""

from __future__ import annotations

from datetime import datetime

from claims_contracts.v1 import (
    AdjudicationEvent,
    ClaimEvent,
    CoverageInformation,
    LineResult,
    PendForReviewEvent,
    PolicyReference,
    RuleHit,
)
from worker.adjudication import Claim, Decision, Line, OtherPayer, PriorAuthorization


def claim_from_event(event: ClaimEvent) -> Claim:
    """Build the core's claim from a v1 claim event, leaving PHI behind."""
    source = event.claim
    return Claim(
        event_id=str(event.event_id),
        claim_id=source.claim_id,
        claim_type=source.claim_type.value,
        frequency_code=source.frequency_code,
        received_date=source.received_date,
        member_id=source.member.member_id,
        line_of_business=source.member.line_of_business.value,
        provider_npi=source.provider.npi,
        provider_participating=source.provider.participating,
        original_claim_id=source.original_claim_id,
        diagnoses=tuple(diagnosis.code for diagnosis in source.diagnoses or ()),
        other_payers=tuple(
            OtherPayer(
                payer_type=payer.payer_type,
                payer_sequence=payer.payer_sequence,
                claim_status=payer.claim_status,
                adjudicated_date=payer.adjudicated_date,
            )
            for payer in source.other_payers
        ),
        prior_authorizations=tuple(
            PriorAuthorization(
                auth_id=auth.auth_id,
                status=auth.status,
                start_date=auth.start_date,
                end_date=auth.end_date,
                procedure_code=auth.procedure_code,
                ndc=auth.ndc,
                authorized_units=auth.authorized_units,
            )
            for auth in source.prior_authorizations
        ),
        lines=tuple(
            Line(
                line_number=line.line_number,
                service_date=line.service_date,
                units=line.units,
                charge_amount=line.charge_amount,
                procedure_code=line.procedure_code,
                modifiers=tuple(modifier.upper() for modifier in line.modifiers),
                ndc=line.ndc,
                route=line.route.value if line.route is not None else None,
                place_of_service=line.place_of_service,
                diagnosis_pointers=tuple(line.diagnosis_pointers or ()),
            )
            for line in source.lines
        ),
    )


def event_from_decision(
    decision: Decision, claim: Claim, *, decided_at: datetime, supersedes_event_id: str | None = None
) -> AdjudicationEvent | PendForReviewEvent:
    """Build the output event of a decision: a pend-for-review when any line is pended.

    Args:
        decision: the core's decision.
        claim: the claim it decided (for the identifiers echoed in the event).
        decided_at: when it was decided: the edge's clock, not the core's.
        supersedes_event_id: the output event of the decision a replacement or void supersedes.

    Returns:
        The event to publish.
    """
    common = {
        "event_id": decision.event_id,
        "source_event_id": decision.source_event_id,
        "claim_id": decision.claim_id,
        "member_id": claim.member_id,
        "claim_type": claim.claim_type,
        "frequency_code": claim.frequency_code,
        "replaces_claim_id": decision.replaces_claim_id,
        "voids_claim_id": decision.voids_claim_id,
        "supersedes_event_id": supersedes_event_id,
        # Whether a replay pinned the version is the run's fact (its state and report), not the
        # decision's: a pinned replay under the version in force reproduces the live body exactly.
        "policy": PolicyReference(policy_id=decision.policy_id, versions=list(decision.policy_versions)),
        "decided_at": decided_at,
        "lines": [
            LineResult(
                line_number=line.line_number,
                outcome=line.outcome.value,
                rule=line.rule,
                policy_sections=list(line.sections),
                policy_version=line.policy_version,
                carc=list(line.carc),
                rarc=list(line.rarc),
                ncpdp_reject=list(line.ncpdp_reject),
                group_code=line.group_code,
                explanation=line.explanation,
                route_to=line.route_to,
                queue=line.queue,
                coverage=(
                    CoverageInformation(
                        covered=line.coverage.covered,
                        pa_needed=line.coverage.pa_needed,
                        satisfied_pa_id=line.coverage.satisfied_pa_id,
                        info_needed=list(line.coverage.info_needed),
                    )
                    if line.coverage is not None
                    else None
                ),
            )
            for line in decision.lines
        ],
        "trace": [
            RuleHit(
                line_number=hit.line_number,
                rule=hit.rule,
                policy_sections=list(hit.sections),
                evidence=list(hit.evidence),
            )
            for hit in decision.trace
        ],
    }
    if decision.queue is not None:
        return PendForReviewEvent.model_validate({**common, "queue": decision.queue, "reason": decision.reason})
    return AdjudicationEvent.model_validate(common)
