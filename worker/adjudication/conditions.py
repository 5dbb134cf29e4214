"""The closed set of conditions a rule may state: for each kind, its data and the test it makes.

A rule in a policy file says `{kind: procedure_in, set: administration}`; the class of
that kind below (`ProcedureIn`) holds the fields the file gives, says whether the answer
is the same for every line of a claim (`claim_wide`), and builds its `Check` for a policy
version: a test of one line's facts and, for the rule trace, the evidence (the codes or
identifiers that made it hold). Sets the condition names are looked up once, when the
check is built; the evidence is formatted only for the rules that decide or are cited.

Adding a kind means one class here and its name in `Condition`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from worker.adjudication.facts import LineFacts
    from worker.adjudication.icd10cm import DiagnosisCode
    from worker.adjudication.policy import Policy, ProcedureSet

Evidence = tuple[str, ...]
Test = Callable[["LineFacts"], bool]
EvidenceOf = Callable[["LineFacts"], Evidence]
_NONE: Evidence = ()


@dataclass(frozen=True, slots=True)
class Check:
    """One condition built against one policy version."""

    condition: ConditionBase
    test: Test
    """Whether the condition holds for a line, its expected `value` applied."""
    evidence: EvidenceOf
    """The evidence of a check whose test holds for the line."""
    claim_wide: bool
    """True when the answer is the same for every line of the claim under one version."""
    fixed_evidence: Evidence | None = None
    """The evidence when it is the same for every line the check holds for (a fixed phrase)."""


def _fixed(phrase: Evidence) -> EvidenceOf:
    return lambda facts: phrase


class ConditionBase(BaseModel):
    """What every condition has: its kind, and the truth it expects of its fact."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: bool = True
    """The truth the condition expects of its fact; false inverts it."""

    kind: str
    """The name a policy file gives the condition (`procedure_in`, ...): one class per kind."""
    claim_wide: ClassVar[bool] = False
    """The fact is the same for every line of a claim under one version (and whether it is in
    force): the program answers it once per claim and keeps only the rules it allows."""

    def is_claim_wide(self) -> bool:
        """Tell whether the answer is the same for every line of a claim (see `claim_wide`)."""
        return self.claim_wide

    def reads_companions(self) -> bool:
        """Tell whether the test reads the decisions of the claim's other lines."""
        return False

    def references(self) -> Iterator[tuple[str, str]]:
        """The named sets of the policy the condition reads, as (policy field, name)."""
        return iter(())

    def check(self, policy: Policy) -> Check:
        """Build the condition's check for a policy version; an inverted one's evidence is "not <kind>"."""
        test, evidence = self._build(policy)
        wide = self.is_claim_wide()
        if not self.value:
            absent: Evidence = (f"not {self.kind}",)
            why = self._absent_evidence(policy)
            if why is not None:
                return Check(self, lambda facts: not test(facts), lambda facts: absent + why(facts), wide)
            return Check(self, lambda facts: not test(facts), _fixed(absent), wide, absent)
        if isinstance(evidence, tuple):
            return Check(self, test, _fixed(evidence), wide, evidence)
        return Check(self, test, evidence, wide)

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        """The raw test (the `value` not applied) and the evidence: a function, or a fixed phrase."""
        raise NotImplementedError(self.kind)

    def _absent_evidence(self, policy: Policy) -> EvidenceOf | None:
        """What an inverted condition adds to "not <kind>" for a line (None: nothing, the phrase is fixed)."""
        return None


# --- claim-wide facts ----------------------------------------------------------------------------


class FrequencyIn(ConditionBase):
    """The claim's frequency code is one of `values`."""

    kind: Literal["frequency_in"]
    values: tuple[str, ...]
    claim_wide: ClassVar[bool] = True

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        values = frozenset(self.values)
        return (lambda f: f.claim.frequency_code in values), (lambda f: (f"frequency {f.claim.frequency_code}",))


class LineOfBusinessIn(ConditionBase):
    """The member's line of business is one of `values`."""

    kind: Literal["line_of_business_in"]
    values: tuple[str, ...]
    claim_wide: ClassVar[bool] = True

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        values = frozenset(self.values)
        return (lambda f: f.claim.line_of_business in values), (lambda f: (f.claim.line_of_business,))


class ClaimTypeIn(ConditionBase):
    """The claim type is one of `values`."""

    kind: Literal["claim_type_in"]
    values: tuple[str, ...]
    claim_wide: ClassVar[bool] = True

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        values = frozenset(self.values)
        return (lambda f: f.claim.claim_type in values), (lambda f: (f.claim.claim_type,))


class ProviderParticipating(ConditionBase):
    """The provider is in the plan's network."""

    kind: Literal["provider_participating"]
    claim_wide: ClassVar[bool] = True

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        return (lambda f: f.claim.provider_participating), ("participating provider",)


class MedicarePrimary(ConditionBase):
    """Another payer entry shows Medicare primary (so the plan is secondary)."""

    kind: Literal["medicare_primary"]
    claim_wide: ClassVar[bool] = True

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        return (lambda f: f.claim_facts.medicare_primary is not None), ("Medicare primary",)


class PrimaryAdjudicated(ConditionBase):
    """The Medicare primary entry shows a final status (paid or denied)."""

    kind: Literal["primary_adjudicated"]
    claim_wide: ClassVar[bool] = True

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        def test(f: LineFacts) -> bool:
            primary = f.claim_facts.medicare_primary
            return primary is not None and primary.claim_status in ("paid", "denied")

        def evidence(f: LineFacts) -> Evidence:
            primary = f.claim_facts.medicare_primary
            return (f"Medicare {primary.claim_status}",) if primary is not None else _NONE

        return test, evidence


class ProviderNpiInvalid(ConditionBase):
    """The provider's NPI is not 10 digits with a right check digit (the NPI itself is not echoed)."""

    kind: Literal["provider_npi_invalid"]
    claim_wide: ClassVar[bool] = True

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        return (lambda f: not f.claim_facts.npi_valid), ("NPI fails its format or check digit",)


class VersionInForce(ConditionBase):
    """A version of the policy is in force on the line's date of service."""

    kind: Literal["version_in_force"]
    claim_wide: ClassVar[bool] = True

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        return (lambda f: f.version_in_force), _NONE


# --- facts of the line ---------------------------------------------------------------------------


class DuplicateOfOtherClaim(ConditionBase):
    """The line repeats a line of another active claim exactly (a fact the caller supplies)."""

    kind: Literal["duplicate_of_other_claim"]

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        return (lambda f: f.duplicate_of is not None), (lambda f: (f"duplicate of {f.duplicate_of}",))


class ServiceDateAfterReceived(ConditionBase):
    """The line's date of service is after the claim's received date."""

    kind: Literal["service_date_after_received"]

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        def evidence(f: LineFacts) -> Evidence:
            return (f"service {f.line.service_date.isoformat()} > received {f.claim.received_date.isoformat()}",)

        return (lambda f: f.line.service_date > f.claim.received_date), evidence


class GovernedLine(ConditionBase):
    """The policy could govern the line: a drug line of it, or a line that follows one (see `ClaimFacts.governed`)."""

    kind: Literal["governed_line"]

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        return (lambda f: f.governed), _NONE


class CodeSetMissing(ConditionBase):
    """No shipped ICD-10-CM release is in force on the line's date of service."""

    kind: Literal["code_set_missing"]

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        def evidence(f: LineFacts) -> Evidence:
            return (f"no ICD-10-CM release shipped for {f.line.service_date.isoformat()}",)

        return (lambda f: not f.code_set_in_force), evidence


class DiagnosisInvalid(ConditionBase):
    """A diagnosis the line points to is malformed, or not a billable code of the release in force on its date."""

    kind: Literal["diagnosis_invalid"]

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        def test(f: LineFacts) -> bool:
            for dx in f.diagnoses:  # noqa: SIM110 - a loop: `any` over a generator costs more than the test
                if not dx.billable:
                    return True
            return False

        def evidence(f: LineFacts) -> Evidence:
            # A malformed code is not echoed: it may be any text at all.
            found = [
                "malformed diagnosis code" if dx.malformed else f"{dx.code} ({f.code_set})"
                for dx in f.diagnoses
                if not dx.billable
            ]
            return tuple(dict.fromkeys(found))

        return test, evidence


class ProcedureIn(ConditionBase):
    """The line's procedure code is in the named procedure set."""

    kind: Literal["procedure_in"]
    set: str

    def references(self) -> Iterator[tuple[str, str]]:
        """The procedure set named."""
        yield "procedure_sets", self.set

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        wanted = policy.procedure_sets[self.set]
        evidence: EvidenceOf = lambda f: (f.line.procedure_code or "",)  # noqa: E731
        if not wanted.ranges:
            codes = wanted.codes  # a plain frozenset answers faster than the set's own membership test
            return (lambda f: f.line.procedure_code in codes), evidence
        member = _procedure_membership(wanted)
        return (lambda f: member(f.line.procedure_code)), evidence


class NdcPresent(ConditionBase):
    """The line carries an NDC."""

    kind: Literal["ndc_present"]

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        return (lambda f: f.line.ndc is not None), _NONE


class NdcMalformed(ConditionBase):
    """The line's NDC cannot be read as one 11-digit NDC."""

    kind: Literal["ndc_malformed"]

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        return (lambda f: f.ndc_malformed), ("NDC unreadable",)


class NdcKnown(ConditionBase):
    """The line's NDC is a product the policy's reference data knows (in any of its sets)."""

    kind: Literal["ndc_known"]

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        known = policy.known_products
        return (lambda f: f.ndc_product in known), (lambda f: (f"NDC {f.ndc11}",) if f.ndc11 else _NONE)


class DrugDescriptionNamesDrug(ConditionBase):
    """The line's drug description names the policy's drug (`drug_names`); the text is never echoed."""

    kind: Literal["drug_description_names_drug"]

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        names = policy.drug_name_patterns

        def test(f: LineFacts) -> bool:
            text = f.line.drug_description
            return text is not None and any(name.search(text) for name in names)

        return test, ("drug description names the drug",)


class NdcProductIn(ConditionBase):
    """The line's NDC (labeler-product) is in the named NDC product set."""

    kind: Literal["ndc_product_in"]
    set: str

    def references(self) -> Iterator[tuple[str, str]]:
        """The NDC product set named."""
        yield "ndc_product_sets", self.set

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        products = policy.products(self.set)
        return (lambda f: f.ndc_product in products), (lambda f: (f"NDC {f.ndc11}",) if f.ndc11 else _NONE)


class RouteIn(ConditionBase):
    """The line's route of administration is one of `values`."""

    kind: Literal["route_in"]
    values: tuple[str, ...]

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        values = frozenset(self.values)
        return (lambda f: f.line.route in values), (lambda f: (f"route {f.line.route}",))


class PlaceOfServiceIn(ConditionBase):
    """The line's place of service is in the named set."""

    kind: Literal["place_of_service_in"]
    set: str

    def references(self) -> Iterator[tuple[str, str]]:
        """The place-of-service set named."""
        yield "place_of_service_sets", self.set

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        places = policy.place_of_service_sets[self.set]
        return (lambda f: f.line.place_of_service in places), (
            lambda f: (f"place of service {f.line.place_of_service}",)
        )


class PriorAuthCoversLine(ConditionBase):
    """An approved authorization matches the line's code or NDC, date and units."""

    kind: Literal["prior_auth_covers_line"]

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        total = policy.history.authorized_units == "total"

        def evidence(f: LineFacts) -> Evidence:
            auth = f.covering_authorization
            if auth is None:
                return _NONE
            if not total or auth.authorized_units is None:
                return (f"authorization {auth.auth_id}",)
            # Revision 3 (item 12): the units authorized, used before, and used by this line.
            return (
                f"authorization {auth.auth_id}: {_units(auth.authorized_units)} units authorized,"
                f" {_units(f.units_used_before(auth))} used before, {_units(f.line.units)} used by this line",
            )

        return (lambda f: f.covering_authorization is not None), evidence

    def _absent_evidence(self, policy: Policy) -> EvidenceOf | None:
        if policy.history.authorized_units != "total":
            return None

        def used_up(f: LineFacts) -> Evidence:
            found = f.used_up_authorization
            if found is None:
                return ()
            auth, used = found
            assert auth.authorized_units is not None  # noqa: S101 - only a counted authorization is used up
            left = auth.authorized_units - used
            return (
                f"authorization {auth.auth_id}: {_units(auth.authorized_units)} units authorized,"
                f" {_units(used)} used before, {_units(left)} left for the line's {_units(f.line.units)}",
            )

        return used_up


def _units(units: Decimal) -> str:
    """Units as a person writes them: 2, not 2.000; 0, not 0E+1."""
    text = format(units.normalize(), "f")
    return text if text != "-0" else "0"


class ClaimHasProcedure(ConditionBase):
    """Another line of the claim, on the same date of service, has a code in the named set."""

    kind: Literal["claim_has_procedure"]
    set: str

    def references(self) -> Iterator[tuple[str, str]]:
        """The procedure set named."""
        yield "procedure_sets", self.set

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        wanted = policy.procedure_sets[self.set]
        member = _procedure_membership(wanted)

        def test(f: LineFacts) -> bool:
            # `procedures_on` without the tuple it builds: this runs for most lines, the evidence rarely.
            number, day = f.line.line_number, f.line.service_date
            for other in f.claim.lines:
                if other.line_number != number and other.service_date == day and member(other.procedure_code):
                    return True
            return False

        def evidence(f: LineFacts) -> Evidence:
            return tuple(
                f"line {number} {code}" for number, code in f.claim_facts.procedures_on(f.line) if code in wanted
            )

        return test, evidence


class DiagnosisInFamily(ConditionBase):
    """A reason diagnosis of the line is in the named family (by ICD-10-CM hierarchy of the line's release)."""

    kind: Literal["diagnosis_in_family"]
    family: str

    def references(self) -> Iterator[tuple[str, str]]:
        """The diagnosis family named."""
        yield "diagnosis_families", self.family

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        family = policy.diagnosis_families[self.family]
        # The answer for a code never changes: kept per code of the code set (codes that do not
        # exist are never members and never kept, so the code set bounds this).
        members: dict[str, bool] = {}

        def member(dx: DiagnosisCode) -> bool:
            if not dx.exists:
                return False
            key = dx.release + dx.code  # a code's ancestors can change from one release to the next
            known = members.get(key)
            if known is None:
                known = members[key] = family.contains(dx.lineage, dx.category)
            return known

        def test(f: LineFacts) -> bool:
            for dx in f.reasons:  # noqa: SIM110 - a loop: `any` over a generator costs more than the test
                if member(dx):
                    return True
            return False

        return test, (lambda f: tuple(dx.code for dx in f.reasons if member(dx)))


class CompanionDecided(ConditionBase):
    """Another line on the same date of service was decided by one of `rules`.

    The only condition that reads other lines' decisions: a rule stating it waits until
    the claim's other lines are decided (`reads_companions`, known when the policy loads).
    """

    kind: Literal["companion_decided"]
    rules: tuple[str, ...]

    def reads_companions(self) -> bool:
        """Always: it reads the other lines' decisions."""
        return True

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        rules = frozenset(self.rules)

        def test(f: LineFacts) -> bool:
            day, dates = f.line.service_date, f.claim_facts.service_dates
            for number, decision in f.companions.items():  # noqa: SIM110 - a loop, as in `DiagnosisInFamily`
                if decision.rule in rules and dates[number] == day:
                    return True
            return False

        def evidence(f: LineFacts) -> Evidence:
            day, dates = f.line.service_date, f.claim_facts.service_dates
            return tuple(
                f"line {number} {decision.rule}"
                for number, decision in sorted(f.companions.items())
                if decision.rule in rules and dates[number] == day
            )

        return test, evidence


# --- combinations --------------------------------------------------------------------------------


class _Combination(ConditionBase):
    """Conditions joined: claim-wide when all of them are, reading companions when any does."""

    conditions: tuple[Condition, ...] = Field(min_length=1)

    def is_claim_wide(self) -> bool:
        """Claim-wide when every condition in it is."""
        return all(condition.is_claim_wide() for condition in self.conditions)

    def reads_companions(self) -> bool:
        """When any condition in it does."""
        return any(condition.reads_companions() for condition in self.conditions)

    def _checks(self, policy: Policy) -> tuple[Check, ...]:
        return tuple(condition.check(policy) for condition in self.conditions)


class AnyOf(_Combination):
    """At least one of `conditions` holds."""

    kind: Literal["any_of"]

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        checks = self._checks(policy)
        tests = tuple(check.test for check in checks)

        def test(f: LineFacts) -> bool:
            for each in tests:  # noqa: SIM110 - a loop: `any` over a generator costs more than the tests
                if each(f):
                    return True
            return False

        def evidence(f: LineFacts) -> Evidence:
            for check in checks:
                if check.test(f):
                    return check.evidence(f)
            return _NONE

        return test, evidence


class AllOf(_Combination):
    """Every one of `conditions` holds."""

    kind: Literal["all_of"]

    def _build(self, policy: Policy) -> tuple[Test, EvidenceOf | Evidence]:
        checks = self._checks(policy)
        return all_hold(tuple(check.test for check in checks)), (lambda f: evidence_of(checks, f))


Condition = Annotated[
    FrequencyIn
    | LineOfBusinessIn
    | ClaimTypeIn
    | ProviderParticipating
    | MedicarePrimary
    | PrimaryAdjudicated
    | ProviderNpiInvalid
    | VersionInForce
    | DuplicateOfOtherClaim
    | ServiceDateAfterReceived
    | GovernedLine
    | CodeSetMissing
    | DiagnosisInvalid
    | ProcedureIn
    | NdcPresent
    | NdcMalformed
    | NdcKnown
    | DrugDescriptionNamesDrug
    | NdcProductIn
    | RouteIn
    | PlaceOfServiceIn
    | PriorAuthCoversLine
    | ClaimHasProcedure
    | DiagnosisInFamily
    | CompanionDecided
    | AnyOf
    | AllOf,
    Field(discriminator="kind"),
]
"""One condition of a rule, told apart by its `kind`."""

_Combination.model_rebuild()
AnyOf.model_rebuild()
AllOf.model_rebuild()


# --- helpers the rules share ---------------------------------------------------------------------


def walk(conditions: Iterable[ConditionBase]) -> Iterator[ConditionBase]:
    """Yield every condition, nested ones included, depth first."""
    for condition in conditions:
        yield condition
        if isinstance(condition, _Combination):
            yield from walk(condition.conditions)


def all_hold(tests: tuple[Test, ...]) -> Test:
    """One test that holds when every one of `tests` does, in order, stopping at the first that fails."""
    if not tests:
        return lambda facts: True
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        first, second = tests
        return lambda facts: first(facts) and second(facts)

    def every(facts: LineFacts) -> bool:
        for test in tests:  # noqa: SIM110 - a loop: `all` over a generator costs more than the tests
            if not test(facts):
                return False
        return True

    return every


def evidence_of(checks: Iterable[Check], facts: LineFacts) -> Evidence:
    """The evidence of checks that all hold, in their order."""
    evidence: list[str] = []
    for check in checks:
        evidence.extend(check.evidence(facts))
    return tuple(evidence)


def _procedure_membership(wanted: ProcedureSet) -> Callable[[str | None], bool]:
    """Membership in a procedure set; with ranges, remembered for the codes most seen (bounded)."""
    if not wanted.ranges:
        return wanted.codes.__contains__  # a plain frozenset answers faster than the set's own test
    return lru_cache(maxsize=4096)(wanted.__contains__)
