"""The engine: one claim in, one decision out, by the policy's ordered rules.

Pure and deterministic: no I/O, no clock, no logging. The same claim and policy
always give the same decision, event id included.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from worker.adjudication.conditions import evaluate_all
from worker.adjudication.facts import ClaimFacts, CompanionsPending, LineFacts
from worker.adjudication.model import Claim, Coverage, Decision, Line, LineDecision, Outcome, RuleHit
from worker.adjudication.policy import Policy, PolicyBook, Rule

OUTPUT_EVENT_NAMESPACE = uuid.UUID("7d3f8f6e-2f1a-5c55-9a0c-4b2e6f1d8a31")
"""Namespace of the deterministic output event ids (UUID version 5)."""


def output_event_id(source_event_id: str, policy_id: str, versions: tuple[str, ...]) -> str:
    """Derive the output event id from the input event id and the policy versions applied.

    A redelivered or replayed input decided under the same versions gets the same id,
    which is what lets consumers drop duplicates.
    """
    return str(uuid.uuid5(OUTPUT_EVENT_NAMESPACE, f"{source_event_id}|{policy_id}|{','.join(versions)}"))


class _Deferred(Exception):
    """A line reached a rule that reads other lines' decisions: resume it later."""

    def __init__(self, rule_index: int) -> None:
        self.rule_index = rule_index


def _decide_line(
    claim_facts: ClaimFacts,
    line: Line,
    policy: Policy,
    in_force: bool,
    *,
    start: int = 0,
    companions: Mapping[int, LineDecision] | None = None,
) -> tuple[LineDecision, tuple[RuleHit, ...]]:
    facts = LineFacts(claim_facts, line, policy, version_in_force=in_force, companions=companions)
    for index in range(start, len(policy.rules)):
        rule = policy.rules[index]
        try:
            hit, evidence = evaluate_all(rule.when, facts)
        except CompanionsPending:
            raise _Deferred(index) from None
        if hit:
            return _apply(rule, index, facts, evidence)
    # Unreachable for a loaded policy: its last rule has no conditions.
    raise AssertionError(f"policy {policy.policy_id} {policy.version} decided nothing for line {line.line_number}")


def _apply(
    rule: Rule, index: int, facts: LineFacts, evidence: tuple[str, ...]
) -> tuple[LineDecision, tuple[RuleHit, ...]]:
    policy, claim, line = facts.policy, facts.claim, facts.line
    sections = list(rule.sections)
    hits = [RuleHit(line.line_number, rule.id, rule.sections, evidence)]
    for cited_id in rule.also_cite:
        cited = policy.rule(cited_id)
        cited_hit, cited_evidence = evaluate_all(cited.when, facts)
        if cited_hit:
            sections.extend(s for s in cited.sections if s not in sections)
            hits.append(RuleHit(line.line_number, cited.id, cited.sections, cited_evidence))
    if rule.cite_companion_sections:
        for decision in sorted(facts.companions.values(), key=lambda d: d.line_number):
            if f"line {decision.line_number} {decision.rule}" in evidence:
                sections.extend(s for s in decision.sections if s not in sections)
    pharmacy = claim.claim_type == "pharmacy"
    carc = () if pharmacy else rule.codes.carc
    group = rule.group if carc else None
    coverage = None
    if rule.coverage is not None:
        auth = facts.covering_authorization if rule.coverage.pa_needed == "satisfied" else None
        coverage = Coverage(
            covered=rule.coverage.covered,
            pa_needed=rule.coverage.pa_needed,
            satisfied_pa_id=auth.auth_id if auth is not None else None,
            info_needed=rule.coverage.info_needed,
        )
    decision = LineDecision(
        line_number=line.line_number,
        outcome=rule.outcome,
        rule=rule.id,
        sections=tuple(sections),
        policy_version=policy.version if facts.version_in_force else None,
        explanation=rule.explanation,
        carc=carc,
        rarc=() if pharmacy else rule.codes.rarc,
        ncpdp_reject=rule.codes.ncpdp if pharmacy else (),
        group_code=policy.non_covered_group if group == "non_covered" else group,
        route_to=rule.route_to,
        queue=rule.queue,
        coverage=coverage,
        rule_rank=index,
    )
    return decision, tuple(hits)


def adjudicate(
    claim: Claim,
    policies: PolicyBook,
    *,
    pinned_version: str | None = None,
    duplicates: Mapping[int, str] | None = None,
) -> Decision:
    """Decide a claim under MB2300.

    Each line is decided by the first rule of its policy version whose conditions
    hold. Lines whose rules read other lines' decisions (administration following
    a denied drug) wait until every other line is decided.

    Args:
        claim: the claim, in the core's model.
        policies: the shipped policy versions.
        pinned_version: apply this version to every line whatever its date of service
            (a what-if replay); by default each line gets the version in force on its date.
        duplicates: line number -> the other claim line it exactly repeats, from the
            caller's claim history (the core keeps no state).

    Returns:
        The decision: one per claim, pended when any line needs a person.
    """
    pinned = policies.version(pinned_version) if pinned_version is not None else None
    claim_facts = ClaimFacts(claim, duplicates or {})
    decided: dict[int, tuple[LineDecision, tuple[RuleHit, ...]]] = {}
    waiting: dict[int, tuple[Line, Policy, bool, int]] = {}
    for line in claim.lines:
        policy, in_force = (pinned, True) if pinned is not None else policies.for_date(line.service_date)
        try:
            decided[line.line_number] = _decide_line(claim_facts, line, policy, in_force)
        except _Deferred as deferred:
            waiting[line.line_number] = (line, policy, in_force, deferred.rule_index)
    companions = {number: decision for number, (decision, _) in decided.items()}
    for number, (line, policy, in_force, start) in waiting.items():
        decided[number] = _decide_line(claim_facts, line, policy, in_force, start=start, companions=companions)

    ordered = [decided[line.line_number] for line in claim.lines]
    lines = tuple(decision for decision, _ in ordered)
    trace = tuple(hit for _, hits in ordered for hit in hits)
    versions = tuple(sorted({d.policy_version for d in lines if d.policy_version is not None}))
    pended = [d for d in lines if d.outcome is Outcome.PENDED]
    first = min(pended, key=lambda d: (d.rule_rank, d.line_number)) if pended else None
    return Decision(
        event_id=output_event_id(claim.event_id, policies.policy_id, versions),
        source_event_id=claim.event_id,
        claim_id=claim.claim_id,
        policy_id=policies.policy_id,
        policy_versions=versions,
        pinned=pinned is not None,
        lines=lines,
        trace=trace,
        queue=first.queue if first is not None else None,
        reason=f"line {first.line_number}: {first.explanation}" if first is not None else None,
        voids_claim_id=claim.original_claim_id if claim.frequency_code == "8" else None,
        replaces_claim_id=claim.original_claim_id if claim.frequency_code == "7" else None,
    )
