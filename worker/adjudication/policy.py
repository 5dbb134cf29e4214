"""The policy as data: models for a policy file, validated when it is loaded.

A policy file names its rules, code sets and citations; `parse_policy` turns the
text into frozen models and refuses anything inconsistent (an unknown set, a
code with no description, a rule that cannot be reached, a coverage statement
that breaks the CRD invariants), so a bad file stops the worker at start-up
instead of deciding claims wrongly.
"""

from __future__ import annotations

import re
from datetime import date
from functools import cached_property
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from worker.adjudication.conditions import CompanionDecided, Condition, ConditionBase, walk
from worker.adjudication.icd10cm import RELEASE_NAMES, exists_in_any
from worker.adjudication.model import Covered, InfoNeeded, Outcome, PaNeeded


class PolicyError(ValueError):
    """A policy or code table file that cannot be used, with where and why."""

    def __init__(self, source: str, path: str, reason: str) -> None:
        self.source = source
        self.path = path
        self.reason = reason
        where = f"{source}: {path}" if path else source
        super().__init__(f"{where}: {reason}")


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- code table -----------------------------------------------------------------------------


class CarcEntry(_Data):
    """A claim adjustment reason code and how it must be used."""

    text: str
    requires_rarc: bool = False


class CodeTable(_Data):
    """Descriptions of every CARC, RARC and NCPDP reject code a policy may emit."""

    code_table_version: str
    carc: dict[str, CarcEntry]
    rarc: dict[str, str]
    ncpdp: dict[str, str]


# --- rules and sets ---------------------------------------------------------------------------


class RuleCodes(_Data):
    """The codes a rule emits: CARC/RARC on medical claims, NCPDP rejects on pharmacy claims."""

    carc: tuple[str, ...] = ()
    rarc: tuple[str, ...] = ()
    ncpdp: tuple[str, ...] = ()


class CoverageSpec(_Data):
    """The CRD coverage statement a rule gives its lines."""

    covered: Covered
    pa_needed: PaNeeded | None = None
    info_needed: tuple[InfoNeeded, ...] = ()

    @model_validator(mode="after")
    def _crd_invariants(self) -> CoverageSpec:
        if (self.covered == "not-covered") != (self.pa_needed is None):
            raise ValueError("CRD: pa_needed must be absent exactly when covered is not-covered")
        if self.info_needed and self.covered != "conditional":
            raise ValueError("CRD: info_needed requires covered to be conditional")
        return self


class Rule(_Data):
    """One rule: when its conditions all hold, it decides the line."""

    id: str = Field(pattern=r"^[a-z_]+\.[a-z_]+$")
    when: tuple[Condition, ...]
    outcome: Outcome
    sections: tuple[str, ...]
    explanation: str = Field(min_length=10)
    codes: RuleCodes = RuleCodes()
    group: Literal["CO", "PR", "OA", "PI", "non_covered"] | None = None
    queue: (
        Literal["clinical_review", "coordination_of_benefits", "data_correction", "policy_review", "pharmacy_review"]
        | None
    ) = None
    route_to: Literal["wisconsin_medicaid_pharmacy", "wisconsin_medicaid_ffs"] | None = None
    coverage: CoverageSpec | None = None
    also_cite: tuple[str, ...] = ()
    """Later rules whose sections are cited too when their conditions also hold."""
    cite_companion_sections: bool = False
    """Cite the sections of the companion line that made a `companion_decided` condition hold."""
    administrative: bool = False
    """Decided on claim facts, not on coverage (a duplicate): no CRD coverage statement."""

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if (self.outcome is Outcome.PENDED) != (self.queue is not None):
            raise ValueError("a pended rule needs a queue, and only a pended rule has one")
        if (self.outcome is Outcome.ROUTED) != (self.route_to is not None):
            raise ValueError("a routed rule needs route_to, and only a routed rule has one")
        if self.outcome is Outcome.NOT_APPLICABLE:
            if self.coverage is not None or self.codes != RuleCodes():
                raise ValueError("a not_applicable rule carries no codes and no coverage statement")
        elif (self.coverage is None) != self.administrative:
            raise ValueError(f"a {self.outcome.value} rule needs a coverage statement, unless administrative")
        if self.outcome is Outcome.DENIED and not (self.codes.carc or self.codes.ncpdp):
            raise ValueError("a denied rule needs a CARC or an NCPDP reject code")
        if self.codes.carc and self.group is None:
            raise ValueError("a rule with a CARC needs an adjustment group")
        if self.cite_companion_sections and not any(isinstance(c, CompanionDecided) for c in walk(self.when)):
            raise ValueError("cite_companion_sections needs a companion_decided condition")
        nested = [c for c in self.when if c.reads_companions() and not isinstance(c, CompanionDecided)]
        if nested:
            # The engine tests the conditions before it while the other lines are undecided,
            # and waits only once they hold: it must stand in the rule itself, not in any_of/all_of.
            raise ValueError("companion_decided must be one of the rule's own conditions, not nested")
        return self

    @property
    def needs_companions(self) -> bool:
        """True when the rule reads other lines' decisions, so it must wait for them."""
        return any(condition.reads_companions() for condition in self.when)


class ProcedureSet(_Data):
    """Procedure codes, listed or as inclusive ranges of 5-digit CPT codes, less the ranges excluded."""

    codes: frozenset[str] = frozenset()
    ranges: tuple[tuple[str, str], ...] = ()
    excluding: tuple[tuple[str, str], ...] = ()
    """Ranges taken out of `ranges` (vascular access out of surgery, ...)."""
    notes: str | None = None
    """Why the set is drawn as it is (a choice the policy's reading made)."""

    @field_validator("ranges", "excluding")
    @classmethod
    def _numeric_ranges(cls, ranges: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        for low, high in ranges:
            if not (len(low) == len(high) == 5 and low.isdigit() and high.isdigit() and low <= high):
                raise ValueError(f"range {low}-{high} must be two 5-digit codes, low first")
        return ranges

    def __contains__(self, code: object) -> bool:
        if not isinstance(code, str):
            return False
        if code in self.codes:
            return True
        # Ranges hold CPT Category I codes, all 5 digits: string order is numeric order.
        if not (len(code) == 5 and code.isdigit()):
            return False
        if not any(low <= code <= high for low, high in self.ranges):
            return False
        return not any(low <= code <= high for low, high in self.excluding)


class NdcProduct(_Data):
    """A labeler-product code (9 digits of the 11-digit NDC) and what it is."""

    product: str = Field(pattern=r"^\d{9}$")
    label: str
    labeler: str | None = None
    strength: str | None = None
    source: str | None = None
    """Where the product was found (FDA NDC directory, a DailyMed label)."""


class GovernedLines(_Data):
    """Which lines a version could govern: its claim data checks decide only these (DETERMINATION 0)."""

    drug_products: tuple[str, ...]
    """NDC product sets of the policy's drug."""
    excluded_products: tuple[str, ...] = ()
    """NDC product sets of a drug another policy owns (esketamine)."""
    unidentified_drug_procedures: str
    """The procedure set whose lines carry a drug identified only by its NDC (J3490)."""
    excluded_procedures: str | None = None
    """A procedure set another policy owns (esketamine's codes)."""
    excluded_routes: frozenset[str] = frozenset()
    companion_procedures: str
    """Lines that follow a drug line on the same date of service (administration)."""


class PointOfSale(_Data):
    """How a pharmacy claim is answered: at once, so what would pend is rejected instead."""

    reject_instead_of_pend: bool
    explanation: str = Field(min_length=10)
    """Appended to the rule's explanation on a rejected line."""


class DiagnosisFamily(_Data):
    """Diagnoses that share a meaning for the policy, by ICD-10-CM hierarchy."""

    codes: frozenset[str] = frozenset()
    category_ranges: tuple[tuple[str, str], ...] = ()

    @field_validator("codes")
    @classmethod
    def _codes_exist(cls, codes: frozenset[str]) -> frozenset[str]:
        dotted = {code: exists_in_any(code) for code in codes}
        unknown = sorted(code for code, found in dotted.items() if found is None)
        if unknown:
            raise ValueError(f"not in any shipped ICD-10-CM release: {', '.join(unknown)}")
        return frozenset(found for found in dotted.values() if found is not None)

    @field_validator("category_ranges")
    @classmethod
    def _categories_exist(cls, ranges: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
        for low, high in ranges:
            if not (len(low) == len(high) == 3 and low <= high):
                raise ValueError(f"range {low}-{high} must be two 3-character categories, low first")
        return ranges

    def contains(self, lineage: tuple[str, ...], category: str) -> bool:
        """Tell whether a code, given its lineage and category, belongs to the family."""
        return any(code in self.codes for code in lineage) or any(
            low <= category <= high for low, high in self.category_ranges
        )


class HistoryRules(_Data):
    """What a member's earlier claims change in a decision (DETERMINATION.md section 0, items 11-13).

    The defaults are revisions 1 and 2, so their files load as they always did; revision 3 states
    each of these in its file.
    """

    rejected_pharmacy_lines_are_originals: bool = True
    """A pharmacy line rejected with an NCPDP code counts as an original for `claim.duplicate`
    (revisions 1-2); false from revision 3 (item 11): a reject was never captured."""
    authorized_units: Literal["per_line", "total"] = "per_line"
    """`per_line`: an authorization's units cap each line alone (revisions 1-2); `total`: they are
    used up by the lines it covers that the plan approves (revision 3, item 12)."""
    same_claim_again: Literal["decided_again", "same_decision"] = "decided_again"
    """The same claim (claim id and content) under a new event id: decided again as a new input
    (revisions 1-2), or given the decision it already had (revision 3, item 13)."""
    output_identity: Literal["input_event", "claim"] = "input_event"
    """What an output event id derives from besides the policy and the history: the input event id
    (revisions 1-2), or the member, claim id and the claim's canonical content (revision 3)."""


class ReviewQueueRule(_Data):
    """Who may close a pend of one queue, and with what outcome: the worker enforces it whatever a UI shows."""

    outcomes: frozenset[Literal["approved", "denied"]] = Field(min_length=1)
    """The outcomes a reviewer may give a pended line of this queue."""
    roles: frozenset[str] = Field(min_length=1)
    """The reviewer roles (from the signed review) that may resolve this queue."""
    why: str | None = None
    """Why the queue allows what it does (shown to reviewers and in docs)."""


class Policy(_Data):
    """One version of a drug policy: its dates, citations, code sets and ordered rules."""

    policy_id: str
    version: str
    revision: int = Field(default=1, ge=1)
    """The revision of the reading (DETERMINATION.md) this file states; output ids derive from it."""
    title: str
    effective_from: date
    effective_to: date | None = None
    published: date | None = None
    sections: dict[str, str]
    non_covered_group: Literal["CO", "PR"] = "CO"
    procedure_sets: dict[str, ProcedureSet] = {}
    ndc_product_sets: dict[str, tuple[NdcProduct, ...]] = {}
    place_of_service_sets: dict[str, frozenset[str]] = {}
    diagnosis_families: dict[str, DiagnosisFamily] = {}
    icd10cm: str = "date_of_service"
    """`date_of_service`: each line's diagnoses in the release in force on its date; or one release's name."""
    reason_diagnoses: Literal["pointed_or_principal", "pointed_or_all"] = "pointed_or_principal"
    """A line's reason when it has no diagnosis pointers: the principal diagnosis, or all of the claim's."""
    prior_auth_match: Literal["drug", "code_or_ndc"] = "drug"
    """An authorization covers a line when it identifies the same drug, or (revision 1) the same code or NDC."""
    drug_names: tuple[str, ...] = ()
    """Words that name the policy's drug in a line's drug description (whole words, any case)."""
    governed_lines: GovernedLines | None = None
    point_of_sale: PointOfSale | None = None
    history: HistoryRules = HistoryRules()
    review_queues: dict[str, ReviewQueueRule] | None = None
    """Queue -> who may resolve its pends and how; None (revisions 1-2): every review is refused."""
    """What the member's earlier claims change (revision 3 states it; the defaults are revision 2's)."""
    rules: tuple[Rule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _references_resolve(self) -> Policy:
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise ValueError("effective_to is before effective_from")
        ids = [rule.id for rule in self.rules]
        duplicates = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
        if duplicates:
            raise ValueError(f"rule ids appear more than once: {', '.join(duplicates)}")
        if self.rules[-1].when:
            raise ValueError(f"the last rule ({self.rules[-1].id}) must have no conditions, so every line is decided")
        if self.icd10cm != "date_of_service" and self.icd10cm not in RELEASE_NAMES:
            raise ValueError(f"icd10cm {self.icd10cm!r} is neither date_of_service nor a shipped release")
        if self.point_of_sale is not None and self.point_of_sale.reject_instead_of_pend:
            silent = [rule.id for rule in self.rules if rule.outcome is Outcome.PENDED and not rule.codes.ncpdp]
            if silent:
                raise ValueError(f"pharmacy claims are rejected instead of pended: rules {silent} need an NCPDP code")
        if self.governed_lines is not None:
            scope = self.governed_lines
            for name in (*scope.drug_products, *scope.excluded_products):
                if name not in self.ndc_product_sets:
                    raise ValueError(f"governed_lines names NDC product set {name!r}, which is not defined")
            named = (scope.unidentified_drug_procedures, scope.companion_procedures, scope.excluded_procedures)
            for procedures in named:
                if procedures is not None and procedures not in self.procedure_sets:
                    raise ValueError(f"governed_lines names procedure set {procedures!r}, which is not defined")
        if self.review_queues is not None:
            unruled = sorted({str(r.queue) for r in self.rules if r.queue is not None} - set(self.review_queues))
            if unruled:
                raise ValueError(f"review_queues has no entry for the queues {unruled}")
        for index, rule in enumerate(self.rules):
            for section in rule.sections:
                if section not in self.sections:
                    raise ValueError(f"rule {rule.id}: section {section!r} is not among the policy's sections")
            for cited in rule.also_cite:
                if cited not in ids[index + 1 :]:
                    raise ValueError(f"rule {rule.id}: also_cite names {cited!r}, which is not a later rule")
                if self.rule(cited).needs_companions and not rule.needs_companions:
                    raise ValueError(f"rule {rule.id}: also_cite names {cited!r}, which waits for companion lines")
            for condition in walk(rule.when):
                self._check_reference(rule, condition, ids)
        return self

    def _check_reference(self, rule: Rule, condition: ConditionBase, ids: list[str]) -> None:
        for field, name in condition.references():
            if name not in getattr(self, field):
                raise ValueError(f"rule {rule.id}: {condition.kind} names {name!r}, which is not defined")
        if isinstance(condition, CompanionDecided):
            unknown = [name for name in condition.rules if name not in ids]
            if unknown:
                raise ValueError(f"rule {rule.id}: companion_decided names unknown rules {unknown}")
            waiting = [name for name in condition.rules if self.rule(name).needs_companions]
            if waiting:
                raise ValueError(f"rule {rule.id}: companion rules {waiting} wait for companions themselves")

    def rule(self, rule_id: str) -> Rule:
        """Return the rule with this id."""
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    @cached_property
    def drug_name_patterns(self) -> tuple[re.Pattern[str], ...]:
        """The drug's names as whole-word, case-blind patterns ("esketamine" does not name ketamine)."""
        return tuple(re.compile(rf"\b{re.escape(name)}\b", re.IGNORECASE) for name in self.drug_names)

    @cached_property
    def _product_index(self) -> dict[str, frozenset[str]]:
        return {name: frozenset(p.product for p in products) for name, products in self.ndc_product_sets.items()}

    @cached_property
    def known_products(self) -> frozenset[str]:
        """Every labeler-product code the policy names, in any set."""
        return frozenset().union(*self._product_index.values())

    def products(self, set_name: str) -> frozenset[str]:
        """Return the 9-digit labeler-product codes of an NDC product set."""
        return self._product_index[set_name]

    def in_force(self, day: date) -> bool:
        """Tell whether this version is in force on a date of service."""
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)


def _first_error(error: ValidationError) -> tuple[str, str]:
    first = error.errors(include_url=False, include_input=False)[0]
    path = ".".join(str(part) for part in first["loc"])
    return path, first["msg"]


def _load_yaml(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise PolicyError(source, "", f"not valid YAML: {error}") from None


def parse_code_table(text: str, *, source: str) -> CodeTable:
    """Parse a code table file.

    Args:
        text: the file's YAML text.
        source: where it came from, for error messages.

    Returns:
        The validated code table.

    Raises:
        PolicyError: the text is not a valid code table.
    """
    try:
        return CodeTable.model_validate(_load_yaml(text, source))
    except ValidationError as error:
        raise PolicyError(source, *_first_error(error)) from None


def parse_policy(text: str, *, source: str, codes: CodeTable) -> Policy:
    """Parse and validate one policy version.

    Args:
        text: the policy file's YAML text.
        source: where it came from, for error messages.
        codes: the code table every emitted code must be described in.

    Returns:
        The validated policy.

    Raises:
        PolicyError: the text is not a valid policy, with the field path and reason.
    """
    try:
        policy = Policy.model_validate(_load_yaml(text, source))
    except ValidationError as error:
        raise PolicyError(source, *_first_error(error)) from None
    for index, rule in enumerate(policy.rules):
        path = f"rules.{index}.codes"
        for kind, known, emitted in (
            ("CARC", codes.carc, rule.codes.carc),
            ("RARC", codes.rarc, rule.codes.rarc),
            ("NCPDP reject", codes.ncpdp, rule.codes.ncpdp),
        ):
            unknown = [code for code in emitted if code not in known]
            if unknown:
                raise PolicyError(
                    source, path, f"rule {rule.id}: {kind} {unknown} not in code table {codes.code_table_version}"
                )
        if any(codes.carc[carc].requires_rarc for carc in rule.codes.carc) and not rule.codes.rarc:
            raise PolicyError(source, path, f"rule {rule.id}: its CARC needs at least one RARC")
    return policy
