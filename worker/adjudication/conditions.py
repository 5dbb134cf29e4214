"""The closed set of condition evaluators, one per condition kind.

An evaluator answers whether its fact holds for a line and returns the
evidence: the codes or identifiers that made it hold, for the rule trace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from worker.adjudication.facts import LineFacts
from worker.adjudication.policy import (
    AllOf,
    AnyOf,
    ClaimHasProcedure,
    ClaimTypeIn,
    CompanionDecided,
    Condition,
    DiagnosisInFamily,
    DiagnosisInvalid,
    DuplicateOfOtherClaim,
    FrequencyIn,
    LineOfBusinessIn,
    MedicarePrimary,
    NdcMalformed,
    NdcPresent,
    NdcProductIn,
    PlaceOfServiceIn,
    PrimaryAdjudicated,
    PriorAuthCoversLine,
    ProcedureIn,
    ProviderParticipating,
    RouteIn,
    ServiceDateAfterReceived,
    VersionInForce,
)

Evidence = tuple[str, ...]
Result = tuple[bool, Evidence]
_NONE: Evidence = ()


def _frequency_in(c: FrequencyIn, f: LineFacts) -> Result:
    hit = f.claim.frequency_code in c.values
    return hit, (f"frequency {f.claim.frequency_code}",) if hit else _NONE


def _duplicate_of_other_claim(c: DuplicateOfOtherClaim, f: LineFacts) -> Result:
    original = f.duplicate_of
    return original is not None, (f"duplicate of {original}",) if original is not None else _NONE


def _service_after_received(c: ServiceDateAfterReceived, f: LineFacts) -> Result:
    hit = f.line.service_date > f.claim.received_date
    return hit, (
        f"service {f.line.service_date.isoformat()} > received {f.claim.received_date.isoformat()}",
    ) if hit else _NONE


def _diagnosis_invalid(c: DiagnosisInvalid, f: LineFacts) -> Result:
    bad = tuple(dx.code for dx in f.diagnoses if not dx.billable)
    return bool(bad), bad


def _procedure_in(c: ProcedureIn, f: LineFacts) -> Result:
    code = f.line.procedure_code
    hit = code is not None and code in f.policy.procedure_sets[c.set]
    return hit, (code,) if hit and code else _NONE


def _ndc_present(c: NdcPresent, f: LineFacts) -> Result:
    return f.line.ndc is not None, _NONE


def _ndc_malformed(c: NdcMalformed, f: LineFacts) -> Result:
    hit = f.ndc is not None and f.ndc.malformed
    return hit, ("NDC unreadable",) if hit else _NONE


def _ndc_product_in(c: NdcProductIn, f: LineFacts) -> Result:
    product = f.ndc_product
    hit = product is not None and product in f.policy.products(c.set)
    return hit, (f"NDC {f.ndc.ndc11}",) if hit and f.ndc is not None and f.ndc.ndc11 else _NONE


def _route_in(c: RouteIn, f: LineFacts) -> Result:
    hit = f.line.route in c.values
    return hit, (f"route {f.line.route}",) if hit else _NONE


def _line_of_business_in(c: LineOfBusinessIn, f: LineFacts) -> Result:
    hit = f.claim.line_of_business in c.values
    return hit, (f.claim.line_of_business,) if hit else _NONE


def _claim_type_in(c: ClaimTypeIn, f: LineFacts) -> Result:
    hit = f.claim.claim_type in c.values
    return hit, (f.claim.claim_type,) if hit else _NONE


def _provider_participating(c: ProviderParticipating, f: LineFacts) -> Result:
    return f.claim.provider_participating, ("participating provider",) if f.claim.provider_participating else _NONE


def _place_of_service_in(c: PlaceOfServiceIn, f: LineFacts) -> Result:
    pos = f.line.place_of_service
    hit = pos is not None and pos in f.policy.place_of_service_sets[c.set]
    return hit, (f"place of service {pos}",) if hit else _NONE


def _prior_auth_covers(c: PriorAuthCoversLine, f: LineFacts) -> Result:
    auth = f.covering_authorization
    return auth is not None, (f"authorization {auth.auth_id}",) if auth is not None else _NONE


def _medicare_primary(c: MedicarePrimary, f: LineFacts) -> Result:
    hit = f.claim_facts.medicare_primary() is not None
    return hit, ("Medicare primary",) if hit else _NONE


def _primary_adjudicated(c: PrimaryAdjudicated, f: LineFacts) -> Result:
    primary = f.claim_facts.medicare_primary()
    hit = primary is not None and primary.claim_status in ("paid", "denied")
    return hit, (f"Medicare {primary.claim_status}",) if hit and primary is not None else _NONE


def _claim_has_procedure(c: ClaimHasProcedure, f: LineFacts) -> Result:
    wanted = f.policy.procedure_sets[c.set]
    found = tuple(f"line {number} {code}" for number, code in f.claim_facts.procedures_on(f.line) if code in wanted)
    return bool(found), found


def _diagnosis_in_family(c: DiagnosisInFamily, f: LineFacts) -> Result:
    family = f.policy.diagnosis_families[c.family]
    found = tuple(dx.code for dx in f.diagnoses if dx.exists and family.contains(dx.lineage, dx.category))
    return bool(found), found


def _companion_decided(c: CompanionDecided, f: LineFacts) -> Result:
    found = tuple(
        f"line {number} {decision.rule}"
        for number, decision in sorted(f.companions.items())
        if decision.rule in c.rules and _same_day(f, number)
    )
    return bool(found), found


def _same_day(f: LineFacts, line_number: int) -> bool:
    return any(
        other.line_number == line_number and other.service_date == f.line.service_date for other in f.claim.lines
    )


def _version_in_force(c: VersionInForce, f: LineFacts) -> Result:
    return f.version_in_force, _NONE if f.version_in_force else ("no version in force",)


def _any_of(c: AnyOf, f: LineFacts) -> Result:
    for condition in c.conditions:
        hit, evidence = evaluate(condition, f)
        if hit:
            return True, evidence
    return False, _NONE


def _all_of(c: AllOf, f: LineFacts) -> Result:
    return evaluate_all(c.conditions, f)


_EVALUATORS: dict[type[Any], Callable[[Any, LineFacts], Result]] = {
    FrequencyIn: _frequency_in,
    DuplicateOfOtherClaim: _duplicate_of_other_claim,
    ServiceDateAfterReceived: _service_after_received,
    DiagnosisInvalid: _diagnosis_invalid,
    ProcedureIn: _procedure_in,
    NdcPresent: _ndc_present,
    NdcMalformed: _ndc_malformed,
    NdcProductIn: _ndc_product_in,
    RouteIn: _route_in,
    LineOfBusinessIn: _line_of_business_in,
    ClaimTypeIn: _claim_type_in,
    ProviderParticipating: _provider_participating,
    PlaceOfServiceIn: _place_of_service_in,
    PriorAuthCoversLine: _prior_auth_covers,
    MedicarePrimary: _medicare_primary,
    PrimaryAdjudicated: _primary_adjudicated,
    ClaimHasProcedure: _claim_has_procedure,
    DiagnosisInFamily: _diagnosis_in_family,
    CompanionDecided: _companion_decided,
    VersionInForce: _version_in_force,
    AnyOf: _any_of,
    AllOf: _all_of,
}


def evaluate(condition: Condition, facts: LineFacts) -> Result:
    """Evaluate one condition against a line's facts.

    Args:
        condition: the condition from the policy.
        facts: the line's facts.

    Returns:
        Whether it holds (after its expected `value`), and the evidence when it does.
    """
    hit, evidence = _EVALUATORS[type(condition)](condition, facts)
    if condition.value:
        return hit, evidence
    # An inverted condition holds when the fact is absent; the absence is its evidence.
    return (not hit), ((f"not {condition.kind}",) if not hit else _NONE)


def evaluate_all(conditions: tuple[Condition, ...], facts: LineFacts) -> Result:
    """Evaluate conditions that must all hold; stop at the first that does not."""
    evidence: list[str] = []
    for condition in conditions:
        hit, found = evaluate(condition, facts)
        if not hit:
            return False, _NONE
        evidence.extend(found)
    return True, tuple(evidence)
