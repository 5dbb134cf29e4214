"""A policy version compiled for deciding lines.

Each rule's conditions become checks (`conditions.compile_condition`). The checks
whose answer is the same for every line of a claim (line of business, claim type,
Medicare primary, whether the version is in force) are answered once per claim,
and the rules they rule out are dropped. What is left is kept per combination of
answers, so a commercial claim's lines skip the Medicare, Medicaid and
line-of-business rules without testing them. The rules keep their order, so the
first rule that holds for a line is the one the policy file says.

Each such set of rules is written into one Python function that returns the position
of the first rule holding for a line (`Residual.first`), from the conditions' own
expressions (`conditions.Source`). A rule whose decision holds nothing of the line
but its number shares its decision objects between lines (`CompiledRule.made`):
they are frozen, and building them was a sixth of deciding a line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from worker.adjudication.conditions import (
    Check,
    Evidence,
    Source,
    Test,
    all_hold,
    compile_condition,
    evidence_of,
    tuple_of,
)
from worker.adjudication.facts import CompanionsPending, LineFacts
from worker.adjudication.model import Coverage, LineDecision, RuleHit
from worker.adjudication.policy import Policy, Rule

MAX_LINE_NUMBER = 999
"""The contract's largest line number: shared decisions are kept for line numbers up to it."""


@dataclass(frozen=True, slots=True)
class Codes:
    """The codes a rule gives a line of one kind of claim, with the adjustment group resolved."""

    carc: tuple[str, ...]
    rarc: tuple[str, ...]
    ncpdp_reject: tuple[str, ...]
    group_code: str | None


def _codes(rule: Rule, policy: Policy, *, pharmacy: bool) -> Codes:
    # Pharmacy claims carry NCPDP reject codes, medical claims CARC/RARC with their group.
    carc = () if pharmacy else rule.codes.carc
    group = rule.group if carc else None
    return Codes(
        carc=carc,
        rarc=() if pharmacy else rule.codes.rarc,
        ncpdp_reject=rule.codes.ncpdp if pharmacy else (),
        group_code=policy.non_covered_group if group == "non_covered" else group,
    )


def _coverage(rule: Rule) -> Coverage | None:
    """The rule's coverage statement when it is the same for every line (no authorization id in it)."""
    if rule.coverage is None or rule.coverage.pa_needed == "satisfied":
        return None
    return Coverage(
        covered=rule.coverage.covered, pa_needed=rule.coverage.pa_needed, info_needed=rule.coverage.info_needed
    )


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """One rule with its conditions compiled."""

    rank: int
    """The rule's position in the policy's rules."""
    rule: Rule
    checks: tuple[Check, ...]
    """Every condition, in the policy's order (the order of the evidence)."""
    line_conditions: Source
    """The conditions left for each line once the claim-wide answers allow the rule."""
    matches: Test
    """The same, as one test."""
    always: bool
    """True when no condition is left for lines: the rule decides every line that reaches it."""
    claim_checks: tuple[int, ...]
    """Positions of the rule's claim-wide checks in `Program.claim_checks`."""
    medical: Codes
    pharmacy: Codes
    coverage: Coverage | None
    """The coverage statement, made once, when no line-specific authorization goes in it."""
    cites_more: bool
    """True when the sections cited depend on the line (`also_cite`, companion sections)."""
    constant_evidence: Evidence | None
    """The evidence when it is the same for every line the rule decides (fixed phrases only)."""
    made: dict[tuple[int, bool, bool], Made] | None
    """The line decisions this rule has made, by line number, pharmacy claim and version in
    force, when nothing else of the line goes in them (`_made_for`); else None."""

    def holds(self, facts: LineFacts) -> bool:
        """Tell whether every condition holds for a line (a cited rule)."""
        return all(check.test(facts) for check in self.checks)

    def evidence(self, facts: LineFacts) -> Evidence:
        """The evidence of a rule that holds for a line."""
        if self.constant_evidence is not None:
            return self.constant_evidence
        return evidence_of(self.checks, facts)


class Program:
    """One policy version, compiled."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        claim_checks: list[Check] = []
        rules: list[CompiledRule] = []
        for rank, rule in enumerate(policy.rules):
            checks = tuple(compile_condition(condition, policy) for condition in rule.when)
            line_conditions = all_hold(tuple(check.source for check in checks if not check.claim_scope))
            rules.append(
                CompiledRule(
                    rank=rank,
                    rule=rule,
                    checks=checks,
                    line_conditions=line_conditions,
                    matches=line_conditions.function(),
                    always=all(check.claim_scope for check in checks),
                    claim_checks=tuple(_position(claim_checks, check) for check in checks if check.claim_scope),
                    medical=_codes(rule, policy, pharmacy=False),
                    pharmacy=_codes(rule, policy, pharmacy=True),
                    coverage=_coverage(rule),
                    cites_more=bool(rule.also_cite) or rule.cite_companion_sections,
                    constant_evidence=_constant_evidence(checks),
                    made=_made_for(rule),
                )
            )
        self.rules: tuple[CompiledRule, ...] = tuple(rules)
        self.claim_checks: tuple[Check, ...] = tuple(claim_checks)
        """The distinct claim-wide checks of all rules."""
        self._claim_answers = tuple_of(tuple(check.source for check in claim_checks)).function()
        self._by_id = {compiled.rule.id: compiled for compiled in rules}
        # At most 2 ** len(claim_checks) entries, fixed by the policy, not by the claims seen.
        self._residuals: dict[tuple[bool, ...], Residual] = {}

    def rule(self, rule_id: str) -> CompiledRule:
        """Return the compiled rule with this id."""
        return self._by_id[rule_id]

    def candidates(self, facts: LineFacts) -> Residual:
        """The rules a line can reach, in order, once the claim-wide checks are answered.

        The answer depends only on the claim and on whether the version is in force, so
        the engine asks once per claim and version.
        """
        answers: tuple[bool, ...] = self._claim_answers(facts)
        residual = self._residuals.get(answers)
        if residual is None:
            residual = self._residuals[answers] = self._residual(answers)
        return residual

    def _residual(self, answers: tuple[bool, ...]) -> Residual:
        kept: list[CompiledRule] = []
        for compiled in self.rules:
            if all(answers[position] for position in compiled.claim_checks):
                kept.append(compiled)
                if compiled.always:
                    break  # it holds for every line that reaches it: no later rule can decide one
        rules = tuple(kept)
        return Residual(rules, _first_function(rules))


@dataclass(frozen=True, slots=True)
class Residual:
    """The rules left for the lines of one kind of claim, and the test that picks among them."""

    rules: tuple[CompiledRule, ...]
    first: Callable[[LineFacts], int]
    """The position of the first rule that holds for a line; `len(rules)` when none does. A
    rule that needs the other lines' decisions first gives `-1 - position` (`deferred_at`)."""
    _resumes: dict[int, Callable[[LineFacts], int]] = field(default_factory=dict)

    def resume(self, start: int) -> Callable[[LineFacts], int]:
        """The same test from the rule at `start` on: for a line deferred there, once its companions are decided."""
        resume = self._resumes.get(start)
        if resume is None:
            # At most one per rule, made on first use.
            resume = self._resumes[start] = _first_function(self.rules, start)
        return resume


def deferred_at(answer: int) -> int:
    """The position a `Residual.first` answer below zero stopped at, to resume from."""
    return -1 - answer


def _first_function(rules: tuple[CompiledRule, ...], start: int = 0) -> Callable[[LineFacts], int]:
    """Write the rules' line conditions, from `start` on, into one function (`Residual.first`).

    One call per line instead of one per rule tested (about six): the loop, the look-ups and
    the calls it saves cost about as much as the tests themselves.
    """
    body: list[str] = ["def first(f):", f"    p = {start}", "    try:"]
    names: dict[str, object] = {"CompanionsPending": CompanionsPending}
    for position in range(start, len(rules)):
        compiled = rules[position]
        names.update(compiled.line_conditions.names)
        body.append(f"        p = {position}")
        if compiled.always:
            body.append(f"        return {position}")
            break
        body.append(f"        if {compiled.line_conditions.expression}:")
        body.append(f"            return {position}")
    body += [f"        return {len(rules)}", "    except CompanionsPending:", "        return -1 - p"]
    exec("\n".join(body), names)  # noqa: S102 - text written here from the policy's own conditions
    first: Callable[[LineFacts], int] = names["first"]  # type: ignore[assignment]
    return first


Made = tuple[LineDecision, tuple[RuleHit, ...] | None]
"""A shared line decision, and its trace when that is the same for every line too."""


def _constant_evidence(checks: tuple[Check, ...]) -> Evidence | None:
    phrases = [check.constant_evidence for check in checks]
    return tuple(word for phrase in phrases if phrase is not None for word in phrase) if None not in phrases else None


def _made_for(rule: Rule) -> dict[tuple[int, bool, bool], Made] | None:
    """An empty store of shared line decisions, or None when the rule's decisions vary by line.

    They vary when the rule cites other rules' or lines' sections, or when its coverage
    statement names the line's authorization. Otherwise a decision is fixed by the rule,
    the line number, the kind of claim and whether the version is in force: the decision
    objects are frozen, so lines that agree on those share one instead of building their own
    (building one was about a sixth of deciding a line). The store holds at most
    4 times `MAX_LINE_NUMBER` decisions per rule.
    """
    if rule.also_cite or rule.cite_companion_sections:
        return None
    if rule.coverage is not None and rule.coverage.pa_needed == "satisfied":
        return None
    return {}


def _position(claim_checks: list[Check], check: Check) -> int:
    """The position of an equal check (the same condition) in the list, adding it when new."""
    for position, known in enumerate(claim_checks):
        if known.condition == check.condition:
            return position
    claim_checks.append(check)
    return len(claim_checks) - 1
