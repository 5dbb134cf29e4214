"""The closed set of conditions, each compiled once per policy version into a check.

A check is a test (does the fact hold for this line?) and, for the rule trace,
the evidence: the codes or identifiers that made it hold. The test runs for every
rule a line reaches; the evidence is built only for the rules that decide or are
cited, so a failing test formats no string. Sets named by the policy are looked
up once, here, not per line.

A test is written as a Python expression over the line's facts `f` (`Source`), and
compiled from it. The program joins the expressions of a rule's conditions into one
function, so a line pays one call per rule instead of one per condition and one per
`and`; the expression is the only statement of what a condition tests.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from worker.adjudication.facts import LineFacts
from worker.adjudication.icd10cm import DiagnosisCode
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
    ProcedureSet,
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
class Source:
    """A test as a Python expression over the line's facts `f`, with the values it names."""

    expression: str
    names: dict[str, object]

    def function(self) -> Callable[[LineFacts], Any]:
        """The expression compiled into a function of the facts (a test, for a condition)."""
        function: Callable[[LineFacts], Any] = eval(f"lambda f: {self.expression}", dict(self.names))  # noqa: S307 - our own text
        return function


_counter = itertools.count()


def _bound(value: object, prefix: str = "_k") -> tuple[str, dict[str, object]]:
    """A fresh name for a value an expression reads (a set of codes, a test function)."""
    name = f"{prefix}{next(_counter)}"
    return name, {name: value}


def _member(expression: str, values: object) -> Source:
    name, names = _bound(values)
    return Source(f"{expression} in {name}", names)


def _call(test: Test) -> Source:
    """A test that is more than an expression, called by name."""
    name, names = _bound(test, "_t")
    return Source(f"{name}(f)", names)


@dataclass(frozen=True, slots=True)
class Check:
    """One condition compiled against one policy version."""

    condition: Condition
    source: Source
    """Whether the condition holds for a line, its expected `value` applied, as an expression."""
    test: Test
    """The same, compiled."""
    claim_scope: bool
    """True when the answer is the same for every line of the claim (see `CLAIM_SCOPE`)."""
    _evidence: Callable[[LineFacts], Evidence]
    constant_evidence: Evidence | None = None
    """The evidence when it is the same for every line the check holds for (a fixed phrase)."""

    def evidence(self, facts: LineFacts) -> Evidence:
        """The evidence of a check whose test holds for these facts."""
        return self._evidence(facts)


Compiled = tuple[Source, Callable[[LineFacts], Evidence] | Evidence]
"""A condition's raw test (its `value` not yet applied) and the evidence when the fact holds:
a function of the line, or the evidence itself when it is a fixed phrase."""


def _frequency_in(c: FrequencyIn, policy: Policy) -> Compiled:
    values = frozenset(c.values)
    return _member("f.claim.frequency_code", values), (lambda f: (f"frequency {f.claim.frequency_code}",))


def _duplicate_of_other_claim(c: DuplicateOfOtherClaim, policy: Policy) -> Compiled:
    return Source("f.duplicate_of is not None", {}), (lambda f: (f"duplicate of {f.duplicate_of}",))


def _service_after_received(c: ServiceDateAfterReceived, policy: Policy) -> Compiled:
    return Source("f.line.service_date > f.claim.received_date", {}), (
        lambda f: (f"service {f.line.service_date.isoformat()} > received {f.claim.received_date.isoformat()}",)
    )


def _diagnosis_invalid(c: DiagnosisInvalid, policy: Policy) -> Compiled:
    def test(f: LineFacts) -> bool:
        for dx in f.diagnoses:  # noqa: SIM110 - a loop, as in `_diagnosis_in_family`
            if not dx.billable:
                return True
        return False

    return _call(test), (lambda f: tuple(dx.code for dx in f.diagnoses if not dx.billable))


def _procedure_in(c: ProcedureIn, policy: Policy) -> Compiled:
    wanted = policy.procedure_sets[c.set]
    evidence: Callable[[LineFacts], Evidence] = lambda f: (f.line.procedure_code or "",)  # noqa: E731
    if wanted.ranges:
        name, names = _bound(_procedure_membership(wanted))
        return Source(f"{name}(f.line.procedure_code)", names), evidence
    codes = wanted.codes  # a plain frozenset answers faster than the set's own membership test
    return _member("f.line.procedure_code", codes), evidence


def _procedure_membership(wanted: ProcedureSet) -> Callable[[str | None], bool]:
    """Membership in a procedure set; with ranges, remembered for the codes most seen (bounded)."""
    if not wanted.ranges:
        return wanted.codes.__contains__
    return lru_cache(maxsize=4096)(wanted.__contains__)


def _ndc_present(c: NdcPresent, policy: Policy) -> Compiled:
    return Source("f.line.ndc is not None", {}), _NONE


def _ndc_malformed(c: NdcMalformed, policy: Policy) -> Compiled:
    return Source("f.ndc_malformed", {}), ("NDC unreadable",)


def _ndc_product_in(c: NdcProductIn, policy: Policy) -> Compiled:
    products = policy.products(c.set)
    return _member("f.ndc_product", products), (lambda f: (f"NDC {f.ndc11}",) if f.ndc11 else _NONE)


def _route_in(c: RouteIn, policy: Policy) -> Compiled:
    values = frozenset(c.values)
    return _member("f.line.route", values), (lambda f: (f"route {f.line.route}",))


def _line_of_business_in(c: LineOfBusinessIn, policy: Policy) -> Compiled:
    values = frozenset(c.values)
    return _member("f.claim.line_of_business", values), (lambda f: (f.claim.line_of_business,))


def _claim_type_in(c: ClaimTypeIn, policy: Policy) -> Compiled:
    values = frozenset(c.values)
    return _member("f.claim.claim_type", values), (lambda f: (f.claim.claim_type,))


def _provider_participating(c: ProviderParticipating, policy: Policy) -> Compiled:
    return Source("f.claim.provider_participating", {}), ("participating provider",)


def _place_of_service_in(c: PlaceOfServiceIn, policy: Policy) -> Compiled:
    places = policy.place_of_service_sets[c.set]
    return _member("f.line.place_of_service", places), (lambda f: (f"place of service {f.line.place_of_service}",))


def _prior_auth_covers(c: PriorAuthCoversLine, policy: Policy) -> Compiled:
    def evidence(f: LineFacts) -> Evidence:
        auth = f.covering_authorization
        return (f"authorization {auth.auth_id}",) if auth is not None else _NONE

    return Source("f.covering_authorization is not None", {}), evidence


def _medicare_primary(c: MedicarePrimary, policy: Policy) -> Compiled:
    return Source("f.claim_facts.medicare_primary is not None", {}), ("Medicare primary",)


def _primary_adjudicated(c: PrimaryAdjudicated, policy: Policy) -> Compiled:
    def test(f: LineFacts) -> bool:
        primary = f.claim_facts.medicare_primary
        return primary is not None and primary.claim_status in ("paid", "denied")

    def evidence(f: LineFacts) -> Evidence:
        primary = f.claim_facts.medicare_primary
        return (f"Medicare {primary.claim_status}",) if primary is not None else _NONE

    return _call(test), evidence


def _claim_has_procedure(c: ClaimHasProcedure, policy: Policy) -> Compiled:
    wanted = policy.procedure_sets[c.set]
    member = _procedure_membership(wanted)

    def test(f: LineFacts) -> bool:
        # `procedures_on` without the tuple it builds: this runs for most lines, the evidence rarely.
        number, day = f.line.line_number, f.line.service_date
        for other in f.claim.lines:
            if other.line_number != number and other.service_date == day and member(other.procedure_code):
                return True
        return False

    def found(f: LineFacts) -> Evidence:
        return tuple(f"line {number} {code}" for number, code in f.claim_facts.procedures_on(f.line) if code in wanted)

    return _call(test), found


def _diagnosis_in_family(c: DiagnosisInFamily, policy: Policy) -> Compiled:
    family = policy.diagnosis_families[c.family]
    # The answer for a code never changes: kept per code of the code set (codes that do not
    # exist are never members and never kept, so the code set bounds this).
    members: dict[str, bool] = {}

    def member(dx: DiagnosisCode) -> bool:
        if not dx.exists:
            return False
        known = members.get(dx.code)
        if known is None:
            known = members[dx.code] = family.contains(dx.lineage, dx.category)
        return known

    def test(f: LineFacts) -> bool:
        for dx in f.diagnoses:  # noqa: SIM110 - a loop: `any` over a generator costs more than the test
            if member(dx):
                return True
        return False

    def found(f: LineFacts) -> Evidence:
        return tuple(dx.code for dx in f.diagnoses if member(dx))

    return _call(test), found


def _companion_decided(c: CompanionDecided, policy: Policy) -> Compiled:
    rules = frozenset(c.rules)

    def test(f: LineFacts) -> bool:
        # `companions` raises CompanionsPending in the first pass: the engine decides this line later.
        day, dates = f.line.service_date, f.claim_facts.service_dates
        for number, decision in f.companions.items():  # noqa: SIM110 - a loop, as in `_diagnosis_in_family`
            if decision.rule in rules and dates[number] == day:
                return True
        return False

    def found(f: LineFacts) -> Evidence:
        day, dates = f.line.service_date, f.claim_facts.service_dates
        return tuple(
            f"line {number} {decision.rule}"
            for number, decision in sorted(f.companions.items())
            if decision.rule in rules and dates[number] == day
        )

    return _call(test), found


def _version_in_force(c: VersionInForce, policy: Policy) -> Compiled:
    return Source("f.version_in_force", {}), _NONE


def _any_of(c: AnyOf, policy: Policy) -> Compiled:
    checks = tuple(compile_condition(condition, policy) for condition in c.conditions)

    def evidence(f: LineFacts) -> Evidence:
        for check in checks:
            if check.test(f):
                return check.evidence(f)
        return _NONE

    return any_holds(tuple(check.source for check in checks)), evidence


def _all_of(c: AllOf, policy: Policy) -> Compiled:
    checks = tuple(compile_condition(condition, policy) for condition in c.conditions)
    return all_hold(tuple(check.source for check in checks)), (lambda f: evidence_of(checks, f))


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


def _names(sources: tuple[Source, ...]) -> dict[str, object]:
    names: dict[str, object] = {}
    for source in sources:
        names.update(source.names)
    return names


def _joined(sources: tuple[Source, ...], operator: str) -> Source:
    return Source(f" {operator} ".join(f"({source.expression})" for source in sources), _names(sources))


def tuple_of(sources: tuple[Source, ...]) -> Source:
    """One expression giving the answers of all `sources`, in order, as a tuple."""
    return Source("(" + "".join(f"({source.expression}), " for source in sources) + ")", _names(sources))


def all_hold(sources: tuple[Source, ...]) -> Source:
    """One test that holds when every one of `sources` does, in order, stopping at the first that fails."""
    return _joined(sources, "and") if sources else Source("True", {})


def any_holds(sources: tuple[Source, ...]) -> Source:
    """One test that holds when any of `sources` does, in order, stopping at the first that holds."""
    return _joined(sources, "or")


def compile_condition(condition: Condition, policy: Policy) -> Check:
    """Compile one condition of a policy version into a check.

    Args:
        condition: the condition from the policy.
        policy: the version whose named sets the condition reads.

    Returns:
        The check: its test applies the condition's expected `value`; an inverted
        condition's evidence is the absence itself ("not <kind>").
    """
    source, evidence = _COMPILERS[type(condition)](condition, policy)
    claim_scope = all(type(c) in CLAIM_SCOPE for c in walk([condition]) if not isinstance(c, AnyOf | AllOf))
    if not condition.value:
        absent: Evidence = (f"not {condition.kind}",)
        inverted = Source(f"not ({source.expression})", source.names)
        return Check(condition, inverted, inverted.function(), claim_scope, lambda f: absent, absent)
    if isinstance(evidence, tuple):
        phrase = evidence
        return Check(condition, source, source.function(), claim_scope, lambda f: phrase, phrase)
    return Check(condition, source, source.function(), claim_scope, evidence)


def evidence_of(checks: tuple[Check, ...], facts: LineFacts) -> Evidence:
    """The evidence of checks that all hold, in their order."""
    evidence: list[str] = []
    for check in checks:
        evidence.extend(check.evidence(facts))
    return tuple(evidence)
