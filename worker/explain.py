"""A decision rendered for a person: each line, its rule, sections and codes with meanings."""

from __future__ import annotations

from worker.adjudication import CodeTable, PolicyBook
from worker.adjudication.icd10cm import describe
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
        f"{kind} under {decision.policy_id} version {versions}; output event {event.event_id}",
    ]
    if decision.pended:
        out.append(f"Queue: {decision.queue}. {decision.reason}")
    if decision.voids_claim_id:
        out.append(f"Voids claim {decision.voids_claim_id}.")
    if decision.replaces_claim_id:
        out.append(f"Replaces claim {decision.replaces_claim_id}.")
    sections = {name: text for policy in policies.versions for name, text in policy.sections.items()}
    for line, result in zip(claim.lines, decision.lines, strict=True):
        what = " ".join(part for part in (line.procedure_code, f"NDC {line.ndc}" if line.ndc else None) if part)
        out.append("")
        out.append(
            f"Line {result.line_number}: {what or '(no code)'} on {line.service_date.isoformat()}: "
            f"{result.outcome.value.upper()}"
        )
        out.append(f"  rule      {result.rule}")
        for section in result.sections:
            out.append(f"  section   {section}: {sections.get(section, '')}")
        out.append(f"  why       {result.explanation}")
        pointed = (
            [claim.diagnoses[p - 1] for p in line.diagnosis_pointers]
            if line.diagnosis_pointers
            else list(claim.diagnoses)
        )
        for code in pointed:
            out.append(f"  dx        {code}: {describe(code) or 'not in the ICD-10-CM code set'}")
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
    return "\n".join(out) + "\n"
