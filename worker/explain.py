"""A decision rendered for a person: each line, its rule, sections and codes with meanings."""

from __future__ import annotations

from worker.adjudication import CodeTable, PolicyBook
from worker.adjudication.icd10cm import ICD10CM_SYNTAX, describe, nearest_release, release_for
from worker.processor import Decided


def render(decided: Decided, policies: PolicyBook, codes: CodeTable) -> str:
    """Render one decided claim as plain text.

    Args:
        decided: the processed claim.
        policies: the policy book, for section headings.
        codes: the code table, for code meanings.

    Returns:
        Text lines for a terminal, ending in a newline.
    """
    event, claim, decision = decided.event, decided.claim, decided.decision
    versions = ", ".join(decision.policy_versions) or "none in force"
    kind = "PENDED for review" if decision.pended else "ADJUDICATED"
    out = [
        f"Claim {claim.claim_id} ({claim.claim_type}, {claim.line_of_business}, frequency {claim.frequency_code})",
        f"{kind} under {decision.policy_id} version {versions}, reading revision {decision.revision};"
        f" output event {event.event_id}",
    ]
    if decision.pended:
        out.append(f"Queue: {decision.queue}. {decision.reason}")
    if decision.voids_claim_id:
        out.append(f"Voids claim {decision.voids_claim_id}.")
    if decision.replaces_claim_id:
        out.append(f"Replaces claim {decision.replaces_claim_id}.")
    sections = {name: text for policy in policies.versions for name, text in policy.sections.items()}
    for line, result, published in zip(claim.lines, decision.lines, event.lines, strict=True):
        what = " ".join(
            part for part in (line.procedure_code, f"NDC {published.ndc or line.ndc}" if line.ndc else None) if part
        )
        out.append("")
        out.append(
            f"Line {result.line_number}: {what or '(no code)'} on {line.service_date.isoformat()}: "
            f"{result.outcome.value.upper()}"
        )
        billed = [f"route {line.route or 'not given'}", f"units {line.units}", f"charge {line.charge_amount}"]
        if line.modifiers:
            billed.insert(0, f"modifiers {' '.join(line.modifiers)}")
        if published.adjustment_amount is not None:
            billed.append(f"adjusted {published.adjustment_amount}")
        out.append(f"  billed    {', '.join(billed)}")
        out.append(f"  rule      {result.rule}")
        for section in result.sections:
            out.append(f"  section   {section}: {sections.get(section, '')}")
        out.append(f"  why       {result.explanation}")
        release = (release_for(line.service_date) or nearest_release(line.service_date)).name
        pointed = (
            [claim.diagnoses[p - 1] for p in line.diagnosis_pointers]
            if line.diagnosis_pointers
            else list(claim.diagnoses)
        )
        for code in pointed:
            # A malformed code is described as such, never echoed (it may be any text).
            meaning = describe(code, release)
            shown = code if ICD10CM_SYNTAX.fullmatch(code.strip().upper()) else "(malformed code)"
            out.append(f"  dx        {shown}: {meaning or f'not a billable code in ICD-10-CM {release}'}")
        for carc in result.carc:
            out.append(f"  CARC {carc:<5}{codes.carc[carc].text}")
        for rarc in result.rarc:
            out.append(f"  RARC {rarc:<5}{codes.rarc[rarc]}")
        for reject in result.ncpdp_reject:
            out.append(f"  NCPDP {reject:<4}{codes.ncpdp[reject]}")
        if result.group_code:
            out.append(f"  group     {result.group_code}")
        if result.route_to:
            out.append(f"  route to  {result.route_to}")
        if result.coverage is not None:
            coverage = result.coverage
            parts = [f"covered={coverage.covered}"]
            if coverage.pa_needed:
                parts.append(f"pa-needed={coverage.pa_needed}")
            if coverage.satisfied_pa_id:
                parts.append(f"satisfied-pa-id={coverage.satisfied_pa_id}")
            if coverage.info_needed:
                parts.append(f"info-needed={','.join(coverage.info_needed)}")
            out.append(f"  coverage  {' '.join(parts)}")
            crd = published.coverage
            if crd is not None:
                code = f"{crd.billing_code.system} {crd.billing_code.code}" if crd.billing_code else "none"
                out.append(
                    f"  CRD       date={crd.date} coverage-assertion-id={crd.coverage_assertion_id} billingCode={code}"
                )
                out.append(f"  reason    {crd.reason}")
    return "\n".join(out) + "\n"
