"""A policy version made ready for deciding lines.

Each rule's conditions become checks (`ConditionBase.check`), joined into one test per
rule. The checks whose answer is the same for every line of a claim (line of business,
claim type, Medicare primary, whether the version is in force) are answered once per
claim, and the rules they rule out are dropped: what is left is kept per combination of
answers (`ReachableRules`), so a commercial claim's lines skip the Medicare, Medicaid
and line-of-business rules without testing them. The rules keep their order, so the
first rule that holds for a line is the one the policy file says.

A rule that reads the other lines' decisions (`Rule.needs_companions`, known at load)
is tested in two steps: while the other lines are undecided, only the conditions before
its `companion_decided`; when they hold, the line waits and is decided from that rule
on once the others are.

A rule whose decision holds nothing of the line but its number gives lines that agree
on the number, the kind of claim and whether the version is in force the same frozen
decision object (`Program.shared_decision`) instead of building one each.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.adjudication.conditions import Check, Evidence, Test, all_hold, evidence_of
from worker.adjudication.facts import LineFacts
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
    """One rule with its conditions built into checks."""

    rank: int
    """The rule's position in the policy's rules."""
    rule: Rule
    checks: tuple[Check, ...]
    """Every condition, in the policy's order (the order of the evidence)."""
    line_test: Test
    """The conditions left for each line once the claim-wide answers allow the rule, as one test."""
    before_companions: Test | None
    """For a rule that waits for companion lines: its line conditions before `companion_decided`,
    tested while the other lines are undecided. None for every other rule."""
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
    fixed_evidence: Evidence | None
    """The evidence when it is the same for every line the rule decides (fixed phrases only)."""
    shares_decisions: bool
    """True when nothing of the line but its number (and its route, when `names_route`) goes into
    the rule's decision (see `Program.shared_decision`)."""
    names_route: bool
    """The explanation names the route billed (`{route}`)."""

    def holds(self, facts: LineFacts) -> bool:
        """Tell whether every condition holds for a line (a cited rule)."""
        return all(check.test(facts) for check in self.checks)

    def evidence(self, facts: LineFacts) -> Evidence:
        """The evidence of a rule that holds for a line."""
        if self.fixed_evidence is not None:
            return self.fixed_evidence
        return evidence_of(self.checks, facts)


@dataclass(frozen=True, slots=True)
class ReachableRules:
    """The rules the lines of one kind of claim can reach, in order, and how each is tested."""

    rules: tuple[CompiledRule, ...]
    first_pass: tuple[Test, ...]
    """The test of each rule while the other lines are undecided."""
    waits: frozenset[int]
    """Positions of the rules that wait for companion lines: when their first-pass test holds,
    the line is decided from there once the other lines are."""

    def first(self, facts: LineFacts) -> int:
        """The position of the first rule whose first-pass test holds (`len(rules)` when none does)."""
        position = 0
        for test in self.first_pass:
            if test(facts):
                return position
            position += 1
        return position

    def resume(self, facts: LineFacts, start: int) -> int:
        """The first rule from `start` on that holds, the companion lines' decisions now known."""
        rules = self.rules
        for position in range(start, len(rules)):
            if rules[position].line_test(facts):
                return position
        return len(rules)


def _first_pass_test(compiled: CompiledRule) -> Test:
    if compiled.always:
        return lambda facts: True
    return compiled.before_companions or compiled.line_test


class Program:
    """One policy version, made ready for deciding lines."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        claim_checks: list[Check] = []
        rules: list[CompiledRule] = []
        for rank, rule in enumerate(policy.rules):
            checks = tuple(condition.check(policy) for condition in rule.when)
            line_checks = tuple(check for check in checks if not check.claim_wide)
            before: Test | None = None
            if rule.needs_companions:
                waits_at = next(i for i, check in enumerate(line_checks) if check.condition.reads_companions())
                before = all_hold(tuple(check.test for check in line_checks[:waits_at]))
            fixed = [check.fixed_evidence for check in checks]
            rules.append(
                CompiledRule(
                    rank=rank,
                    rule=rule,
                    checks=checks,
                    line_test=all_hold(tuple(check.test for check in line_checks)),
                    before_companions=before,
                    always=not line_checks,
                    claim_checks=tuple(_position(claim_checks, check) for check in checks if check.claim_wide),
                    medical=_codes(rule, policy, pharmacy=False),
                    pharmacy=_codes(rule, policy, pharmacy=True),
                    coverage=_coverage(rule),
                    cites_more=bool(rule.also_cite) or rule.cite_companion_sections,
                    fixed_evidence=None if None in fixed else tuple(w for phrase in fixed if phrase for w in phrase),
                    shares_decisions=_shares_decisions(rule),
                    names_route="{route}" in rule.explanation,
                )
            )
        self.rules: tuple[CompiledRule, ...] = tuple(rules)
        self.claim_checks: tuple[Check, ...] = tuple(claim_checks)
        """The distinct claim-wide checks of all rules."""
        self._claim_tests = tuple(check.test for check in claim_checks)
        self._by_id = {compiled.rule.id: compiled for compiled in rules}
        self._reachable: dict[tuple[bool, ...], ReachableRules] = {}
        """By the claim-wide answers: at most 2 ** len(claim_checks) entries, fixed by the policy."""
        self._shared: dict[
            tuple[int, int, bool, bool, str | None], tuple[LineDecision, tuple[RuleHit, ...] | None]
        ] = {}
        """Shared line decisions (and traces, when fixed) by rule rank, line number, pharmacy claim,
        version in force and (for a rule naming it) route; bounded: at most 4 times `MAX_LINE_NUMBER`
        per rule that shares, times the routes the contract allows when it names the route."""

    def rule(self, rule_id: str) -> CompiledRule:
        """Return the compiled rule with this id."""
        return self._by_id[rule_id]

    def reachable(self, facts: LineFacts) -> ReachableRules:
        """The rules a line can reach, once the claim-wide checks are answered.

        The answer depends only on the claim and on whether the version is in force, so
        the engine asks once per claim and version.
        """
        answers = tuple(test(facts) for test in self._claim_tests)
        reachable = self._reachable.get(answers)
        if reachable is None:
            reachable = self._reachable[answers] = self._reachable_for(answers)
        return reachable

    def _reachable_for(self, answers: tuple[bool, ...]) -> ReachableRules:
        kept: list[CompiledRule] = []
        for compiled in self.rules:
            if all(answers[position] for position in compiled.claim_checks):
                kept.append(compiled)
                if compiled.always:
                    break  # it holds for every line that reaches it: no later rule can decide one
        return ReachableRules(
            rules=tuple(kept),
            first_pass=tuple(_first_pass_test(compiled) for compiled in kept),
            waits=frozenset(i for i, compiled in enumerate(kept) if compiled.before_companions is not None),
        )

    def shared_decision(
        self, compiled: CompiledRule, line_number: int, pharmacy: bool, in_force: bool, route: str | None
    ) -> tuple[LineDecision, tuple[RuleHit, ...] | None] | None:
        """The decision (and fixed trace) a sharing rule already made for lines like this one, if any."""
        return self._shared.get((compiled.rank, line_number, pharmacy, in_force, route))

    def share_decision(
        self,
        compiled: CompiledRule,
        line_number: int,
        pharmacy: bool,
        in_force: bool,
        route: str | None,
        made: tuple[LineDecision, tuple[RuleHit, ...] | None],
    ) -> None:
        """Keep a sharing rule's decision for the next line like this one (line numbers the contract allows)."""
        if line_number <= MAX_LINE_NUMBER:
            self._shared[(compiled.rank, line_number, pharmacy, in_force, route)] = made


def _shares_decisions(rule: Rule) -> bool:
    """Whether a rule's line decisions can be shared between lines.

    They cannot when the rule cites other rules' or lines' sections, or when its coverage
    statement names the line's authorization. Otherwise a decision is fixed by the rule,
    the line number, the kind of claim and whether the version is in force; the decision
    objects are frozen, so lines that agree on those can share one.
    """
    if rule.also_cite or rule.cite_companion_sections:
        return False
    return not (rule.coverage is not None and rule.coverage.pa_needed == "satisfied")


def _position(claim_checks: list[Check], check: Check) -> int:
    """The position of an equal check (the same condition) in the list, adding it when new."""
    for position, known in enumerate(claim_checks):
        if known.condition == check.condition:
            return position
    claim_checks.append(check)
    return len(claim_checks) - 1
