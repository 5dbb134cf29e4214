"""The closed set of conditions, each compiled once per policy version into a check.

A check is a test (does the fact hold for this line?) and, for the rule trace,
the evidence: the codes or identifiers that made it hold. The test runs for every
rule a line reaches; the evidence is built only for the rules that decide or are
cited, so a failing test formats no string. Sets named by the policy are looked
up once, here, not per line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
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
    Policy,
    PrimaryAdjudicated,
    PriorAuthCoversLine,
    ProcedureIn,
    ProviderParticipating,
    RouteIn,
    ServiceDateAfterReceived,
    VersionInForce,
    walk,
)

Evidence = tuple[str, ...]
Test = Callable[[LineFacts], bool]
_NONE: Evidence = ()

CLAIM_SCOPE: frozenset[type[Any]] = frozenset(
    {
        FrequencyIn,
        LineOfBusinessIn,
        ClaimTypeIn,
        ProviderParticipating,
        MedicarePrimary,
        PrimaryAdjudicated,
        VersionInForce,
    }
)
"""Kinds whose fact is the same for every line of a claim under one version (and whether it is
in force): the program answers them once per claim and keeps only the rules they allow."""


@dataclass(frozen=True, slots=True)
class Check:
    """One condition compiled against one policy version."""

    condition: Condition
    test: Test
    """Whether the condition holds for a line, its expected `value` applied."""
    claim_scope: bool
    """True when the answer is the same for every line of the claim (see `CLAIM_SCOPE`)."""
    _evidence: Callable[[LineFacts], Evidence]

    def evidence(self, facts: LineFacts) -> Evidence:
        """The evidence of a check whose test holds for these facts."""
        return self._evidence(facts)


Compiled = tuple[Test, Callable[[LineFacts], Evidence]]
"""A condition's raw test (its `value` not yet applied) and the evidence when the fact holds."""


def _frequency_in(c: FrequencyIn, policy: Policy) -> Compiled:
    values = frozenset(c.values)
    return (lambda f: f.claim.frequency_code in values), (lambda f: (f"frequency {f.claim.frequency_code}",))


def _duplicate_of_other_claim(c: DuplicateOfOtherClaim, policy: Policy) -> Compiled:
    return (lambda f: f.duplicate_of is not None), (lambda f: (f"duplicate of {f.duplicate_of}",))


def _service_after_received(c: ServiceDateAfterReceived, policy: Policy) -> Compiled:
    return (lambda f: f.line.service_date > f.claim.received_date), (
        lambda f: (f"service {f.line.service_date.isoformat()} > received {f.claim.received_date.isoformat()}",)
    )


def _diagnosis_invalid(c: DiagnosisInvalid, policy: Policy) -> Compiled:
    return (lambda f: not all(dx.billable for dx in f.diagnoses)), (
        lambda f: tuple(dx.code for dx in f.diagnoses if not dx.billable)
    )


def _procedure_in(c: ProcedureIn, policy: Policy) -> Compiled:
    wanted = policy.procedure_sets[c.set]
    if wanted.ranges:
        return (lambda f: f.line.procedure_code in wanted), (lambda f: (f.line.procedure_code or "",))
    codes = wanted.codes  # a plain frozenset answers faster than the set's own membership test
    return (lambda f: f.line.procedure_code in codes), (lambda f: (f.line.procedure_code or "",))


def _ndc_present(c: NdcPresent, policy: Policy) -> Compiled:
    return (lambda f: f.line.ndc is not None), (lambda f: _NONE)


def _ndc_malformed(c: NdcMalformed, policy: Policy) -> Compiled:
    return (lambda f: f.ndc_malformed), (lambda f: ("NDC unreadable",))


def _ndc_product_in(c: NdcProductIn, policy: Policy) -> Compiled:
    products = policy.products(c.set)
    return (lambda f: f.ndc_product in products), (lambda f: (f"NDC {f.ndc11}",) if f.ndc11 else _NONE)


def _route_in(c: RouteIn, policy: Policy) -> Compiled:
    values = frozenset(c.values)
    return (lambda f: f.line.route in values), (lambda f: (f"route {f.line.route}",))


def _line_of_business_in(c: LineOfBusinessIn, policy: Policy) -> Compiled:
    values = frozenset(c.values)
    return (lambda f: f.claim.line_of_business in values), (lambda f: (f.claim.line_of_business,))


def _claim_type_in(c: ClaimTypeIn, policy: Policy) -> Compiled:
    values = frozenset(c.values)
    return (lambda f: f.claim.claim_type in values), (lambda f: (f.claim.claim_type,))


def _provider_participating(c: ProviderParticipating, policy: Policy) -> Compiled:
    return (lambda f: f.claim.provider_participating), (lambda f: ("participating provider",))


def _place_of_service_in(c: PlaceOfServiceIn, policy: Policy) -> Compiled:
    places = policy.place_of_service_sets[c.set]
    return (lambda f: f.line.place_of_service in places), (lambda f: (f"place of service {f.line.place_of_service}",))


def _prior_auth_covers(c: PriorAuthCoversLine, policy: Policy) -> Compiled:
    def evidence(f: LineFacts) -> Evidence:
        auth = f.covering_authorization
        return (f"authorization {auth.auth_id}",) if auth is not None else _NONE

    return (lambda f: f.covering_authorization is not None), evidence


def _medicare_primary(c: MedicarePrimary, policy: Policy) -> Compiled:
    return (lambda f: f.claim_facts.medicare_primary is not None), (lambda f: ("Medicare primary",))


def _primary_adjudicated(c: PrimaryAdjudicated, policy: Policy) -> Compiled:
    def test(f: LineFacts) -> bool:
        primary = f.claim_facts.medicare_primary
        return primary is not None and primary.claim_status in ("paid", "denied")

    def evidence(f: LineFacts) -> Evidence:
        primary = f.claim_facts.medicare_primary
        return (f"Medicare {primary.claim_status}",) if primary is not None else _NONE

    return test, evidence


def _claim_has_procedure(c: ClaimHasProcedure, policy: Policy) -> Compiled:
    wanted = policy.procedure_sets[c.set]

    def found(f: LineFacts) -> Evidence:
        return tuple(f"line {number} {code}" for number, code in f.claim_facts.procedures_on(f.line) if code in wanted)

    return (lambda f: any(code in wanted for _, code in f.claim_facts.procedures_on(f.line))), found


def _diagnosis_in_family(c: DiagnosisInFamily, policy: Policy) -> Compiled:
    family = policy.diagnosis_families[c.family]

    def found(f: LineFacts) -> Evidence:
        return tuple(dx.code for dx in f.diagnoses if dx.exists and family.contains(dx.lineage, dx.category))

    return (lambda f: any(dx.exists and family.contains(dx.lineage, dx.category) for dx in f.diagnoses)), found


def _companion_decided(c: CompanionDecided, policy: Policy) -> Compiled:
    rules = frozenset(c.rules)

    def found(f: LineFacts) -> Evidence:
        # `companions` raises CompanionsPending in the first pass: the engine decides this line later.
        return tuple(
            f"line {number} {decision.rule}"
            for number, decision in sorted(f.companions.items())
            if decision.rule in rules and _same_day(f, number)
        )

    return (lambda f: bool(found(f))), found


def _same_day(f: LineFacts, line_number: int) -> bool:
    return any(
        other.line_number == line_number and other.service_date == f.line.service_date for other in f.claim.lines
    )


def _version_in_force(c: VersionInForce, policy: Policy) -> Compiled:
    return (lambda f: f.version_in_force), (lambda f: _NONE)


def _any_of(c: AnyOf, policy: Policy) -> Compiled:
    checks = tuple(compile_condition(condition, policy) for condition in c.conditions)

    def evidence(f: LineFacts) -> Evidence:
        for check in checks:
            if check.test(f):
                return check.evidence(f)
        return _NONE

    return any_holds(tuple(check.test for check in checks)), evidence


def _all_of(c: AllOf, policy: Policy) -> Compiled:
    checks = tuple(compile_condition(condition, policy) for condition in c.conditions)
    return all_hold(tuple(check.test for check in checks)), (lambda f: evidence_of(checks, f))


_COMPILERS: dict[type[Any], Callable[[Any, Policy], Compiled]] = {
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


def _always(facts: LineFacts) -> bool:
    return True


def _both(first: Test, second: Test) -> Test:
    return lambda f: first(f) and second(f)


def _either(first: Test, second: Test) -> Test:
    return lambda f: first(f) or second(f)


def all_hold(tests: tuple[Test, ...]) -> Test:
    """One test that holds when every one of `tests` does, in order, stopping at the first that fails.

    The tests are chained directly (`a and (b and c)`): a generator per call costs more than they do.
    """
    if not tests:
        return _always
    return reduce(lambda rest, test: _both(test, rest), reversed(tests[:-1]), tests[-1])


def any_holds(tests: tuple[Test, ...]) -> Test:
    """One test that holds when any of `tests` does, in order, stopping at the first that holds."""
    return reduce(lambda rest, test: _either(test, rest), reversed(tests[:-1]), tests[-1])


def _holds_not(test: Test) -> Test:
    return lambda f: not test(f)


def compile_condition(condition: Condition, policy: Policy) -> Check:
    """Compile one condition of a policy version into a check.

    Args:
        condition: the condition from the policy.
        policy: the version whose named sets the condition reads.

    Returns:
        The check: its test applies the condition's expected `value`; an inverted
        condition's evidence is the absence itself ("not <kind>").
    """
    test, evidence = _COMPILERS[type(condition)](condition, policy)
    claim_scope = all(type(c) in CLAIM_SCOPE for c in walk([condition]) if not isinstance(c, AnyOf | AllOf))
    if not condition.value:
        absent: Evidence = (f"not {condition.kind}",)
        return Check(condition, _holds_not(test), claim_scope, lambda f: absent)
    return Check(condition, test, claim_scope, evidence)


def evidence_of(checks: tuple[Check, ...], facts: LineFacts) -> Evidence:
    """The evidence of checks that all hold, in their order."""
    evidence: list[str] = []
    for check in checks:
        evidence.extend(check.evidence(facts))
    return tuple(evidence)
