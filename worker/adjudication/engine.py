"""The engine: one claim in, one decision out, by the policy's ordered rules.

Pure and deterministic: no I/O, no clock, no logging. The same claim and policy
always give the same decision, event id included.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from decimal import Decimal

from worker.adjudication.book import PolicyBook
from worker.adjudication.facts import ClaimFacts, LineFacts
from worker.adjudication.model import Claim, Coverage, Decision, LineDecision, Outcome, RuleHit
from worker.adjudication.program import CompiledRule, Program, ReachableRules

OUTPUT_EVENT_NAMESPACE = uuid.UUID("7d3f8f6e-2f1a-5c55-9a0c-4b2e6f1d8a31")
"""Namespace of the deterministic output event ids (UUID version 5)."""
_NAMESPACE_BYTES = OUTPUT_EVENT_NAMESPACE.bytes
_VARIANT = {digit: format(int(digit, 16) & 0x3 | 0x8, "x") for digit in "0123456789abcdef"}

ROUTE_NAMES = {"IV": "Intravenous (IV)", "IM": "Intramuscular (IM)", "SC": "Subcutaneous (SC)"}
"""How an explanation names the route billed (`{route}` in a rule's explanation)."""
ANY_ROUTE = "Intravenous, intramuscular or subcutaneous"
"""The route named when the line does not say."""


def output_event_id(
    source_event_id: str, policy_id: str, versions: tuple[str, ...], history: str = "", *, revision: int = 1
) -> str:
    """Derive the output event id from what identifies the decision and the policy versions applied.

    `source_event_id` is what identifies the decision besides the policy: the input event id
    under revisions 1-2; from revision 3 the member, the claim id and the claim's canonical
    content (`identity` of `adjudicate`), so the same claim under any event id gets the same id
    and two different claims never share one. A redelivered or replayed input decided under the
    same versions gets the same id, which is what lets consumers drop duplicates. The reading's
    `revision` is part of the version identity: the same input decided under another revision is another body, so it
    gets another id (revision 1 adds nothing, so its ids are those it always had). `history`
    names what the claim history added to the decision (the claims it duplicates, what it
    supersedes or is superseded by), for the same reason.
    """
    name = f"{source_event_id}|{policy_id}|{','.join(versions)}"
    if revision != 1:
        name += f"|r{revision}"
    if history:
        name += f"|{history}"
    return uuid5_text(_NAMESPACE_BYTES, name)


def uuid5_text(namespace: bytes, name: str) -> str:
    """`str(uuid.uuid5(uuid.UUID(bytes=namespace), name))`, spelled out.

    Building a UUID object only to print it costs as much as the hash.
    """
    text = hashlib.sha1(namespace + name.encode(), usedforsecurity=False).hexdigest()
    # Version 5 in the 13th hex digit; the RFC 4122 variant in the top two bits of the 17th.
    return f"{text[:8]}-{text[8:12]}-5{text[13:16]}-{_VARIANT[text[16]]}{text[17:20]}-{text[20:32]}"


def _decided_by(
    position: int, facts: LineFacts, program: Program, reachable: ReachableRules
) -> tuple[LineDecision, tuple[RuleHit, ...]]:
    if position < len(reachable.rules):
        return _apply(reachable.rules[position], program, facts)
    # Unreachable for a loaded policy: its last rule has no conditions.
    policy = program.policy
    raise AssertionError(
        f"policy {policy.policy_id} {policy.version} decided nothing for line {facts.line.line_number}"
    )


def _apply(compiled: CompiledRule, program: Program, facts: LineFacts) -> tuple[LineDecision, tuple[RuleHit, ...]]:
    rule, line = compiled.rule, facts.line
    pharmacy = facts.claim.claim_type == "pharmacy"
    if compiled.shares_decisions:
        route = line.route if compiled.names_route else None
        shared = program.shared_decision(compiled, line.line_number, pharmacy, facts.version_in_force, route)
        if shared is None:
            decision = _line_decision(compiled, program, facts, pharmacy, rule.sections, compiled.coverage)
            trace: tuple[RuleHit, ...] | None = None
            if compiled.fixed_evidence is not None:
                trace = (RuleHit(line.line_number, rule.id, rule.sections, compiled.fixed_evidence),)
            shared = (decision, trace)
            program.share_decision(compiled, line.line_number, pharmacy, facts.version_in_force, route, shared)
        decision, trace = shared
        if trace is None:
            trace = (RuleHit(line.line_number, rule.id, rule.sections, compiled.evidence(facts)),)
        return decision, trace
    evidence = compiled.evidence(facts)
    hits = [RuleHit(line.line_number, rule.id, rule.sections, evidence)]
    sections = rule.sections
    if compiled.cites_more:
        sections = _cited_sections(compiled, program, facts, evidence, hits)
    coverage = compiled.coverage
    if coverage is None and rule.coverage is not None:
        auth = facts.covering_authorization
        coverage = Coverage(
            covered=rule.coverage.covered,
            pa_needed=rule.coverage.pa_needed,
            satisfied_pa_id=auth.auth_id if auth is not None else None,
            info_needed=rule.coverage.info_needed,
        )
    return _line_decision(compiled, program, facts, pharmacy, sections, coverage), tuple(hits)


def _line_decision(
    compiled: CompiledRule,
    program: Program,
    facts: LineFacts,
    pharmacy: bool,
    sections: tuple[str, ...],
    coverage: Coverage | None,
) -> LineDecision:
    rule = compiled.rule
    codes = compiled.pharmacy if pharmacy else compiled.medical
    outcome, queue, explanation = rule.outcome, rule.queue, rule.explanation
    if compiled.names_route:
        explanation = explanation.replace("{route}", ROUTE_NAMES.get(facts.line.route or "", ANY_ROUTE))
    point_of_sale = program.policy.point_of_sale
    if pharmacy and outcome is Outcome.PENDED and point_of_sale is not None and point_of_sale.reject_instead_of_pend:
        # A pharmacy is answered at the counter: what would pend is rejected with a code it can act on.
        outcome, queue, explanation = Outcome.DENIED, None, f"{explanation} {point_of_sale.explanation}"
    return LineDecision(
        line_number=facts.line.line_number,
        outcome=outcome,
        rule=rule.id,
        sections=sections,
        policy_version=program.policy.version if facts.version_in_force else None,
        explanation=explanation,
        carc=codes.carc,
        rarc=codes.rarc,
        ncpdp_reject=codes.ncpdp_reject,
        group_code=codes.group_code,
        route_to=rule.route_to,
        queue=queue,
        coverage=coverage,
        rule_rank=compiled.rank,
    )


def _cited_sections(
    compiled: CompiledRule, program: Program, facts: LineFacts, evidence: tuple[str, ...], hits: list[RuleHit]
) -> tuple[str, ...]:
    """The deciding rule's sections, plus those of later rules that also hold and of the companion lines it read."""
    rule, number = compiled.rule, facts.line.line_number
    sections = list(rule.sections)
    for cited_id in rule.also_cite:
        cited = program.rule(cited_id)
        if cited.holds(facts):
            sections.extend(s for s in cited.rule.sections if s not in sections)
            hits.append(RuleHit(number, cited_id, cited.rule.sections, cited.evidence(facts)))
    if rule.cite_companion_sections:
        for decision in sorted(facts.companions.values(), key=lambda d: d.line_number):
            if f"line {decision.line_number} {decision.rule}" in evidence:
                sections.extend(s for s in decision.sections if s not in sections)
    return tuple(sections)


def adjudicate(
    claim: Claim,
    policies: PolicyBook,
    *,
    pinned_version: str | None = None,
    duplicates: Mapping[int, str] | None = None,
    authorization_used: Mapping[str, Decimal] | None = None,
    identity: str | None = None,
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
        authorization_used: authorization id -> units the member's earlier claims used, from
            the caller's history (read when the policy counts units as a total, revision 3).
        identity: what identifies the decision besides the policy and its revision (revision 3:
            member, claim id and content; by default the input event id, revisions 1-2).

    Returns:
        The decision: one per claim, pended when any line needs a person.
    """
    pinned = policies.version(pinned_version) if pinned_version is not None else None
    claim_facts = ClaimFacts(claim, duplicates or {}, authorization_used)
    # Only a claim with an authorization can use units (most claims have none: nothing to count).
    counting = policies.history.authorized_units == "total" and bool(claim.prior_authorizations)
    decided: dict[int, tuple[LineDecision, tuple[RuleHit, ...]]] = {}
    waiting: list[tuple[LineFacts, Program, ReachableRules, int]] = []
    # The claim-wide answers depend on the version and whether it is in force: ask once for each.
    reachable_by_version: dict[tuple[str, bool], ReachableRules] = {}
    # Lines in line order: an authorization's units are used in that order (revision 3, item 12).
    in_order = claim.lines
    if counting and not _numbered_in_order(claim):
        in_order = tuple(sorted(claim.lines, key=lambda line: line.line_number))
    for line in in_order:
        policy, in_force = (pinned, True) if pinned is not None else policies.for_date(line.service_date)
        program = policies.program(policy)
        facts = LineFacts(claim_facts, line, policy, version_in_force=in_force)
        reachable = reachable_by_version.get((policy.version, in_force))
        if reachable is None:
            reachable = reachable_by_version[(policy.version, in_force)] = program.reachable(facts)
        position = reachable.first(facts)
        if position in reachable.waits:
            waiting.append((facts, program, reachable, position))
        else:
            decided[line.line_number] = made = _decided_by(position, facts, program, reachable)
            if counting:
                _use_units(made[0], line.units, claim_facts.authorization_used)
    if waiting:
        # Lines whose rule reads the other lines' decisions: decided once those are made.
        companions = {number: decision for number, (decision, _) in decided.items()}
        for facts, program, reachable, start in waiting:
            facts.companions = companions
            position = reachable.resume(facts, start)
            decided[facts.line.line_number] = _decided_by(position, facts, program, reachable)

    ordered = [decided[line.line_number] for line in claim.lines]
    lines = tuple(decision for decision, _ in ordered)
    trace = tuple(hit for _, hits in ordered for hit in hits)
    versions = tuple(sorted({d.policy_version for d in lines if d.policy_version is not None}))
    pended = [d for d in lines if d.outcome is Outcome.PENDED]
    first = min(pended, key=lambda d: (d.rule_rank, d.line_number)) if pended else None
    used: tuple[tuple[str, Decimal], ...] = ()
    if counting:
        before = authorization_used or {}
        used = tuple(
            (auth_id, units - before.get(auth_id, _NO_UNITS))
            for auth_id, units in sorted(claim_facts.authorization_used.items())
            if units != before.get(auth_id, _NO_UNITS)
        )
    return Decision(
        event_id=output_event_id(
            claim.event_id if identity is None else identity, policies.policy_id, versions, revision=policies.revision
        ),
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
        revision=policies.revision,
        authorization_units=used,
    )


_NO_UNITS = Decimal(0)


def _numbered_in_order(claim: Claim) -> bool:
    lines = claim.lines
    return all(lines[i].line_number < lines[i + 1].line_number for i in range(len(lines) - 1))


def _use_units(decision: LineDecision, units: Decimal, used: dict[str, Decimal]) -> None:
    """Count a line's units against the authorization the plan approved it on (revision 3, item 12).

    A line uses an authorization's units when the plan approves it because the authorization
    covers it (its coverage says `pa_needed=satisfied`, approved as secondary included); a line
    approved without needing one (labeled use, a participating provider) uses none.
    """
    coverage = decision.coverage
    if (
        decision.outcome is Outcome.APPROVED
        and coverage is not None
        and coverage.pa_needed == "satisfied"
        and coverage.satisfied_pa_id is not None
    ):
        used[coverage.satisfied_pa_id] = used.get(coverage.satisfied_pa_id, _NO_UNITS) + units
