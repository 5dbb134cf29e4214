"""Mapping between the wire contract (v1) and the core's model.

The only module that knows both sides: a v2 contract means a new branch here,
and the core does not change. PHI fields of the contract are not copied.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from claims_contracts.v1 import AdjudicationEvent, ClaimEvent, PendForReviewEvent
from worker.adjudication import Claim, Decision, Line, LineDecision, OtherPayer, PriorAuthorization
from worker.adjudication.engine import uuid5_text
from worker.adjudication.ndc import normalize

COVERAGE_ASSERTION_NAMESPACE = uuid.UUID("3b0c9f7e-8e51-5d0a-9a43-2f6c1d7e8b24")
"""Namespace of the CRD coverage assertion ids (UUID version 5 of the output event id and line)."""
COVERAGE_ASSERTION_BYTES = COVERAGE_ASSERTION_NAMESPACE.bytes


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
                drug_description=line.drug_description,  # read by the core, never written out
            )
            for line in source.lines
        ),
    )


def instant(moment: datetime) -> str:
    """A timestamp as the contract writes it (RFC 3339, `Z` for UTC), as pydantic serializes it."""
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


@functools.lru_cache(maxsize=4096)
def _cited(policy_id: str, sections: tuple[str, ...]) -> str:
    """How a line's reason cites the policy.

    Numbered sections read "sections 2.1, 1.2.1"; the unnumbered ones by their heading ("Medicare Policy").
    """
    numbered = [section for section in sections if section[:1].isdigit()]
    named = [section for section in sections if not section[:1].isdigit()]
    cited = ", ".join(
        ([f"section{'s' if len(numbered) > 1 else ''} {', '.join(numbered)}"] if numbered else []) + named
    )
    return f"{policy_id} {cited}" if cited else policy_id


def _line_result(line: LineDecision, billed: Line, claim: Claim, event_id: str, policy_id: str) -> dict[str, Any]:
    """One output line (JSON values): the decision, and what was billed, so a remittance needs nothing else."""
    coverage = line.coverage
    # 11 digits when the NDC reads one way only; bare 10 digits could be three NDCs.
    ndc11 = normalize(billed.ndc).unique if billed.ndc is not None else None
    outcome = line.outcome.value
    code = billed.procedure_code
    charge = str(billed.charge_amount)
    return {
        "line_number": line.line_number,
        "outcome": outcome,
        "procedure_code": code,
        "modifiers": list(billed.modifiers),
        "ndc": ndc11,
        "route": billed.route,
        "service_date": billed.service_date.isoformat(),
        "units": str(billed.units),
        "charge_amount": charge,
        "adjustment_amount": charge if outcome == "denied" else None,
        "rule": line.rule,
        "policy_sections": list(line.sections),
        "policy_version": line.policy_version,
        "carc": list(line.carc),
        "rarc": list(line.rarc),
        "ncpdp_reject": list(line.ncpdp_reject),
        "group_code": line.group_code,
        "explanation": line.explanation,
        "route_to": line.route_to,
        "queue": line.queue,
        "coverage": (
            {
                "covered": coverage.covered,
                "pa_needed": coverage.pa_needed,
                "satisfied_pa_id": coverage.satisfied_pa_id,
                "info_needed": list(coverage.info_needed),
                "date": claim.received_date.isoformat(),
                "coverage_assertion_id": uuid5_text(COVERAGE_ASSERTION_BYTES, f"{event_id}|{line.line_number}"),
                "billing_code": (
                    {"system": "HCPCS", "code": code}
                    if code is not None
                    else {"system": "NDC", "code": ndc11}
                    if ndc11 is not None
                    else None
                ),
                "reason": f"{_cited(policy_id, line.sections)}: {line.explanation}",
            }
            if coverage is not None
            else None
        ),
    }


def body_from_decision(
    decision: Decision,
    claim: Claim,
    *,
    decided_at: datetime,
    supersedes_event_id: str | None = None,
    superseded_by_claim_id: str | None = None,
) -> dict[str, Any]:
    """The output event of a decision, as JSON values: a pend-for-review when any line is pended.

    What `model.model_dump(mode="json")` gives for the contract's event, in its field order,
    built straight from what the core produced: building and serializing the contract's models
    cost more than deciding the claim. The contract tests validate every kind of output body
    against the models and the published JSON Schemas, and check that `payload` writes the
    bytes the models write.

    Args:
        decision: the core's decision.
        claim: the claim it decided (for the identifiers echoed in the event).
        decided_at: when it was decided: the edge's clock, not the core's.
        supersedes_event_id: the output event of the decision a replacement or void supersedes.
        superseded_by_claim_id: the replacement or void that reached the worker before this claim.
    """
    body: dict[str, Any] = {
        "schema_version": 1,
        "event_id": decision.event_id,
        "source_event_id": decision.source_event_id,
        "claim_id": decision.claim_id,
        "member_id": claim.member_id,
        "claim_type": claim.claim_type,
        "frequency_code": claim.frequency_code,
        "replaces_claim_id": decision.replaces_claim_id,
        "voids_claim_id": decision.voids_claim_id,
        "supersedes_event_id": supersedes_event_id or None,
        "superseded_by_claim_id": superseded_by_claim_id,
        "review_event_id": None,  # set only on the final adjudication a review produces (worker.resolution)
        # Whether a replay pinned the version is the run's fact (its state and report), not the
        # decision's: a pinned replay under the version in force reproduces the live body exactly.
        "policy": {
            "policy_id": decision.policy_id,
            "versions": list(decision.policy_versions),
            "revision": decision.revision,
        },
        "decided_at": instant(decided_at),
        "lines": [
            _line_result(line, billed, claim, decision.event_id, decision.policy_id)
            for line, billed in zip(decision.lines, claim.lines, strict=True)
        ],
        "trace": [
            {
                "line_number": hit.line_number,
                "rule": hit.rule,
                "policy_sections": list(hit.sections),
                "evidence": list(hit.evidence),
            }
            for hit in decision.trace
        ],
    }
    if decision.queue is not None:
        body.update(event_type="claim.pended", queue=decision.queue, reason=decision.reason or "")
    else:
        body["event_type"] = "claim.adjudicated"
    return body


def payload(body: Mapping[str, Any]) -> bytes:
    """The bytes of an output body: what pydantic's `model_dump_json` writes for its model."""
    return orjson.dumps(body)


def event_of(body: Mapping[str, Any]) -> AdjudicationEvent | PendForReviewEvent:
    """The contract's model of an output body (validated): for callers that want the model, not the bytes."""
    if body["event_type"] == "claim.pended":
        return PendForReviewEvent.model_validate(body)
    return AdjudicationEvent.model_validate(body)
