"""Every rule of DETERMINATION.md, through the public API (bytes in, event out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from claims_contracts.v1 import AdjudicationEvent, PendForReviewEvent, SourcePosition
from tests.builders import (
    ESKETAMINE_NDC,
    OTHER_NDC,
    VETERINARY_NDC,
    approved_pa,
    claim_event,
    ketamine_line,
    medicare_primary,
    service_line,
    to_bytes,
)
from worker.adjudication import PolicyBook
from worker.processor import Decided, Processor


@dataclass(frozen=True)
class Expect:
    """What a line must be decided as."""

    outcome: str
    rule: str
    carc: tuple[str, ...] = ()
    rarc: tuple[str, ...] = ()
    ncpdp: tuple[str, ...] = ()
    sections: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def decide(processor: Processor, event: dict[str, Any]) -> AdjudicationEvent | PendForReviewEvent:
    result = processor.process(to_bytes(event), SourcePosition(file_line=1))
    assert isinstance(result, Decided), getattr(result, "record", None)
    return result.event


CASES: list[tuple[str, dict[str, Any], Expect, str | None]] = [
    # (case id, claim event, expectation for line 1, expected queue if pended)
    (
        "claim.void",
        claim_event(frequency_code="8", original_claim_id="CLM-OLD"),
        Expect("not_applicable", "claim.void"),
        None,
    ),
    (
        "claim.dos_after_receipt",
        claim_event(lines=[ketamine_line(service_date="2025-09-05")]),
        Expect("pended", "claim.dos_after_receipt", carc=("110",)),
        "data_correction",
    ),
    (
        "rev2 10: claim.dos_after_receipt on an administration line beside the drug, CARC 110",
        claim_event(
            lines=[service_line(1, "96365", service_date="2025-09-05"), ketamine_line(2, service_date="2025-09-05")]
        ),
        Expect("pended", "claim.dos_after_receipt", carc=("110",)),
        "data_correction",
    ),
    (
        "rev2 2: claim.dos_after_receipt leaves a line MB2300 does not govern to other edits",
        claim_event(lines=[service_line(1, "99213", service_date="2025-09-05")]),
        Expect("not_applicable", "scope.not_ketamine"),
        None,
    ),
    (
        "rev2 1: claim.code_set_not_shipped: no shipped ICD-10-CM release covers the date",
        claim_event(lines=[ketamine_line(service_date="2026-10-05")], received_date="2026-10-06"),
        Expect("pended", "claim.code_set_not_shipped"),
        "policy_review",
    ),
    (
        "rev2 1: G35 on 2025-09-15 is billable in FY2025 (not pended as invalid)",
        claim_event(diagnoses=["G35"], lines=[ketamine_line(service_date="2025-09-15")], received_date="2025-09-20"),
        Expect("pended", "criteria.indication_unclear"),
        "clinical_review",
    ),
    (
        "rev2 1: G35.D on 2025-09-15 did not exist before FY2026",
        claim_event(diagnoses=["G35.D"], lines=[ketamine_line(service_date="2025-09-15")], received_date="2025-09-20"),
        Expect("pended", "claim.invalid_diagnosis", carc=("16",), rarc=("M76",)),
        "data_correction",
    ),
    (
        "rev2 1: G35 on 2025-10-15 is a category of FY2026, not billable",
        claim_event(diagnoses=["G35"], lines=[ketamine_line(service_date="2025-10-15")], received_date="2025-10-20"),
        Expect("pended", "claim.invalid_diagnosis", carc=("16",), rarc=("M76",)),
        "data_correction",
    ),
    (
        "rev2 1: G35.D on 2025-10-15 is valid in FY2026",
        claim_event(diagnoses=["G35.D"], lines=[ketamine_line(service_date="2025-10-15")], received_date="2025-10-20"),
        Expect("pended", "criteria.indication_unclear"),
        "clinical_review",
    ),
    (
        "rev2 2: claim.invalid_diagnosis: a malformed code is decided, not dead-lettered",
        claim_event(diagnoses=["12345"]),
        Expect("pended", "claim.invalid_diagnosis", carc=("16",), rarc=("M76",)),
        "data_correction",
    ),
    (
        "rev2 2: claim.invalid_provider: an NPI failing its check digit",
        claim_event(provider={"npi": "1234567890", "participating": True}),
        Expect("pended", "claim.invalid_provider", carc=("16",), rarc=("N290",)),
        "data_correction",
    ),
    (
        "rev2 2: claim.invalid_provider: an NPI that is not 10 digits",
        claim_event(provider={"npi": "12345-ABC", "participating": True}),
        Expect("pended", "claim.invalid_provider", carc=("16",), rarc=("N290",)),
        "data_correction",
    ),
    (
        "rev2 2: claim.invalid_provider leaves a line MB2300 does not govern to other edits",
        claim_event(provider={"npi": "1234567890", "participating": True}, lines=[service_line(1, "99213")]),
        Expect("not_applicable", "scope.not_ketamine"),
        None,
    ),
    (
        "claim.invalid_diagnosis: a category is not billable",
        claim_event(diagnoses=["F42"]),
        Expect("pended", "claim.invalid_diagnosis", carc=("16",), rarc=("M76",)),
        "data_correction",
    ),
    (
        "claim.invalid_diagnosis: a code that does not exist",
        claim_event(diagnoses=["G89.99"]),
        Expect("pended", "claim.invalid_diagnosis", carc=("16",), rarc=("M76",)),
        "data_correction",
    ),
    (
        "scope.esketamine by procedure code",
        claim_event(lines=[ketamine_line(procedure_code="J0013", ndc=None, route="IN")], diagnoses=["F32.9"]),
        Expect("not_applicable", "scope.esketamine"),
        None,
    ),
    (
        "scope.esketamine by NDC",
        claim_event(lines=[ketamine_line(ndc=ESKETAMINE_NDC)]),
        Expect("not_applicable", "scope.esketamine"),
        None,
    ),
    (
        "scope.route: oral ketamine",
        claim_event(lines=[ketamine_line(route="PO")]),
        Expect("not_applicable", "scope.route"),
        None,
    ),
    (
        "scope.ndc_missing: J3490 with no NDC",
        claim_event(lines=[ketamine_line(ndc=None)]),
        Expect("pended", "scope.ndc_missing", carc=("16",), rarc=("M119",)),
        "data_correction",
    ),
    (
        "scope.ndc_missing: veterinary ketamine NDC",
        claim_event(lines=[ketamine_line(ndc=VETERINARY_NDC)]),
        Expect("pended", "scope.ndc_missing", carc=("16",), rarc=("M119",)),
        "data_correction",
    ),
    (
        "rev2 2: scope.ndc_missing: a malformed NDC is decided, not dead-lettered",
        claim_event(lines=[ketamine_line(ndc="67457-01O8-1O")]),
        Expect("pended", "scope.ndc_missing", carc=("16",), rarc=("M119",)),
        "data_correction",
    ),
    (
        "rev2 3: scope.ndc_unknown_ketamine: an NDC the reference data lacks, described as ketamine",
        claim_event(lines=[ketamine_line(ndc="25021-0300-10", drug_description="Ketamine HCl 50 mg/mL vial")]),
        Expect("pended", "scope.ndc_unknown_ketamine"),
        "pharmacy_review",
    ),
    (
        "rev2 3: scope.ndc_unknown_ketamine: the brand name counts too",
        claim_event(lines=[ketamine_line(ndc="25021-0300-10", drug_description="KETALAR 10MG/ML")]),
        Expect("pended", "scope.ndc_unknown_ketamine"),
        "pharmacy_review",
    ),
    (
        "rev2 3: an unknown NDC described as esketamine is not ketamine",
        claim_event(lines=[ketamine_line(ndc="25021-0300-10", drug_description="esketamine")]),
        Expect("not_applicable", "scope.not_ketamine"),
        None,
    ),
    (
        "scope.not_ketamine: another drug under J3490",
        claim_event(lines=[ketamine_line(ndc=OTHER_NDC, drug_description="labetalol HCl injection 5 mg/mL")]),
        Expect("not_applicable", "scope.not_ketamine"),
        None,
    ),
    (
        "scope.not_ketamine: an E/M visit",
        claim_event(lines=[service_line(1, "99213")]),
        Expect("not_applicable", "scope.not_ketamine"),
        None,
    ),
    (
        "version.none_in_force: before 2025-08-21",
        claim_event(lines=[ketamine_line(service_date="2025-08-01")], received_date="2025-08-05"),
        Expect("pended", "version.none_in_force"),
        "policy_review",
    ),
    (
        "lob.medicare_advantage",
        claim_event(line_of_business="medicare_advantage"),
        Expect("not_applicable", "lob.medicare_advantage"),
        None,
    ),
    (
        "lob.medicare_replacement",
        claim_event(line_of_business="medicare_replacement"),
        Expect("not_applicable", "lob.medicare_replacement"),
        None,
    ),
    (
        "medicare.cost_supplement_participating: cost plan",
        claim_event(line_of_business="medicare_cost"),
        Expect("approved", "medicare.cost_supplement_participating", extra={"pa_needed": "no-auth"}),
        None,
    ),
    (
        "medicare.cost_supplement_participating: supplement, after Medicare",
        claim_event(line_of_business="medicare_supplement", other_payers=[medicare_primary("paid")]),
        Expect("approved", "medicare.cost_supplement_participating"),
        None,
    ),
    (
        "rev2 9: medicare.supplement_primary_not_adjudicated: no Medicare adjudication",
        claim_event(line_of_business="medicare_supplement"),
        Expect("pended", "medicare.supplement_primary_not_adjudicated", carc=("22",), rarc=("MA04",)),
        "coordination_of_benefits",
    ),
    (
        "rev2 9: medicare.supplement_primary_not_adjudicated: Medicare pending",
        claim_event(line_of_business="medicare_supplement", other_payers=[medicare_primary("pending")]),
        Expect("pended", "medicare.supplement_primary_not_adjudicated", carc=("22",), rarc=("MA04",)),
        "coordination_of_benefits",
    ),
    (
        "rev2 5: criteria.labeled_use before the Medicare PA rules (non-participating, no PA)",
        claim_event(
            line_of_business="medicare_cost", participating=False, lines=[ketamine_line(), service_line(2, "01996")]
        ),
        Expect("approved", "criteria.labeled_use", sections=("1.1.1",)),
        None,
    ),
    (
        "rev2 5: criteria.labeled_use before the Medicare-primary PA rule",
        claim_event(other_payers=[medicare_primary("paid")], lines=[ketamine_line(), service_line(2, "01996")]),
        Expect("approved", "criteria.labeled_use"),
        None,
    ),
    (
        "medicare.cost_supplement_pa_on_file",
        claim_event(line_of_business="medicare_cost", participating=False, prior_authorizations=[approved_pa()]),
        Expect(
            "approved",
            "medicare.cost_supplement_pa_on_file",
            extra={"pa_needed": "satisfied", "satisfied_pa_id": "PA-1"},
        ),
        None,
    ),
    (
        "medicare.cost_supplement_pa_absent",
        claim_event(line_of_business="medicare_supplement", participating=False),
        Expect("denied", "medicare.cost_supplement_pa_absent", carc=("197",), extra={"pa_needed": "auth-needed"}),
        None,
    ),
    (
        "medicare.cost_supplement_pa_absent on a pharmacy claim: NCPDP 75",
        claim_event(
            line_of_business="medicare_cost",
            participating=False,
            claim_type="pharmacy",
            lines=[ketamine_line(procedure_code=None)],
        ),
        Expect("denied", "medicare.cost_supplement_pa_absent", ncpdp=("75",)),
        None,
    ),
    (
        "wi_medicaid.pharmacy",
        claim_event(
            line_of_business="wisconsin_medicaid", claim_type="pharmacy", lines=[ketamine_line(procedure_code=None)]
        ),
        Expect("routed", "wi_medicaid.pharmacy", ncpdp=("41",), extra={"route_to": "wisconsin_medicaid_pharmacy"}),
        None,
    ),
    (
        "wi_medicaid.bundled: inpatient facility",
        claim_event(
            line_of_business="wisconsin_medicaid",
            claim_type="institutional",
            lines=[ketamine_line(place_of_service="21")],
        ),
        Expect("approved", "wi_medicaid.bundled"),
        None,
    ),
    (
        "wi_medicaid.ffs: office",
        claim_event(line_of_business="wisconsin_medicaid"),
        Expect(
            "routed", "wi_medicaid.ffs", carc=("109",), rarc=("N418",), extra={"route_to": "wisconsin_medicaid_ffs"}
        ),
        None,
    ),
    (
        "wi_medicaid.ffs: outpatient facility is not bundled",
        claim_event(
            line_of_business="wisconsin_medicaid",
            claim_type="institutional",
            lines=[ketamine_line(place_of_service="22")],
        ),
        Expect("routed", "wi_medicaid.ffs", carc=("109",), rarc=("N418",)),
        None,
    ),
    (
        "msp.pa_absent",
        claim_event(other_payers=[medicare_primary("paid")]),
        Expect("denied", "msp.pa_absent", carc=("197",), extra={"pa_needed": "auth-needed"}),
        None,
    ),
    (
        "msp.primary_not_adjudicated: Medicare pending",
        claim_event(other_payers=[medicare_primary("pending")], prior_authorizations=[approved_pa()]),
        Expect("pended", "msp.primary_not_adjudicated", carc=("22",), rarc=("MA04",)),
        "coordination_of_benefits",
    ),
    (
        "msp.primary_not_adjudicated: Medicare status missing",
        claim_event(other_payers=[medicare_primary(None)], prior_authorizations=[approved_pa()]),
        Expect("pended", "msp.primary_not_adjudicated", carc=("22",), rarc=("MA04",)),
        "coordination_of_benefits",
    ),
    (
        "msp.approved_secondary",
        claim_event(other_payers=[medicare_primary("paid")], prior_authorizations=[approved_pa()]),
        Expect("approved", "msp.approved_secondary", extra={"pa_needed": "satisfied", "satisfied_pa_id": "PA-1"}),
        None,
    ),
    (
        "criteria.authorized_exception",
        claim_event(prior_authorizations=[approved_pa()]),
        Expect("approved", "criteria.authorized_exception", extra={"pa_needed": "satisfied"}),
        None,
    ),
    (
        "criteria.authorized_exception: PA matched by NDC",
        claim_event(prior_authorizations=[approved_pa(procedure_code=None, ndc="67457010810")]),
        Expect("approved", "criteria.authorized_exception"),
        None,
    ),
    (
        "rev2 4: a PA for J3490 naming another drug's NDC (labetalol) does not cover ketamine",
        claim_event(prior_authorizations=[approved_pa(ndc="00409-2267-20")]),
        Expect("denied", "criteria.chronic_pain", carc=("204",), rarc=("N130",)),
        None,
    ),
    (
        "rev2 4: a PA naming the same ketamine product in another package covers the line",
        claim_event(prior_authorizations=[approved_pa(ndc="67457-108-00")]),
        Expect("approved", "criteria.authorized_exception"),
        None,
    ),
    (
        "criteria.labeled_use: anesthesia on the same day",
        claim_event(lines=[ketamine_line(), service_line(2, "01996")]),
        Expect("approved", "criteria.labeled_use", sections=("1.1.1",)),
        None,
    ),
    (
        "rev2 5: moderate sedation alone is not labeled use",
        claim_event(lines=[ketamine_line(), service_line(2, "99152")], diagnoses=["F32.9"]),
        Expect("denied", "criteria.mental_health", carc=("204",), rarc=("N130",)),
        None,
    ),
    (
        "rev2 5: moderate sedation with a procedure is labeled use",
        claim_event(lines=[ketamine_line(), service_line(2, "99152"), service_line(3, "43239")]),
        Expect("approved", "criteria.labeled_use"),
        None,
    ),
    (
        "rev2 5: an IV start (36000) is not labeled use",
        claim_event(lines=[ketamine_line(), service_line(2, "36000")], diagnoses=["F32.9"]),
        Expect("denied", "criteria.mental_health", carc=("204",), rarc=("N130",)),
        None,
    ),
    (
        "rev2 5: trigger-point injections are not labeled use",
        claim_event(lines=[ketamine_line(), service_line(2, "20553")]),
        Expect("denied", "criteria.chronic_pain", carc=("204",), rarc=("N130",)),
        None,
    ),
    (
        "rev2 5 (choice): a nerve block is not labeled use",
        claim_event(lines=[ketamine_line(), service_line(2, "64450")]),
        Expect("denied", "criteria.chronic_pain", carc=("204",), rarc=("N130",)),
        None,
    ),
    (
        "criteria.labeled_use: surgery",
        claim_event(lines=[ketamine_line(), service_line(2, "27447")]),
        Expect("approved", "criteria.labeled_use"),
        None,
    ),
    (
        "criteria.chronic_pain",
        claim_event(diagnoses=["G90.523"]),
        Expect("denied", "criteria.chronic_pain", carc=("204",), rarc=("N130",), sections=("2.1", "1.2.1")),
        None,
    ),
    (
        "criteria.chronic_pain: spinal cord injury with 7th character",
        claim_event(diagnoses=["S14.101A"]),
        Expect("denied", "criteria.chronic_pain", carc=("204",), rarc=("N130",)),
        None,
    ),
    (
        "criteria.chronic_pain on a pharmacy claim: NCPDP 70",
        claim_event(claim_type="pharmacy", lines=[ketamine_line(procedure_code=None)]),
        Expect("denied", "criteria.chronic_pain", ncpdp=("70",)),
        None,
    ),
    (
        "criteria.chronic_pain and mental health: both sections cited (the line points to both)",
        claim_event(diagnoses=["G89.29", "F32.9"], lines=[ketamine_line(diagnosis_pointers=[1, 2])]),
        Expect("denied", "criteria.chronic_pain", carc=("204",), rarc=("N130",), sections=("2.1", "1.2.1", "2.2")),
        None,
    ),
    (
        "criteria.mental_health: depression",
        claim_event(diagnoses=["F33.2"]),
        Expect("denied", "criteria.mental_health", carc=("204",), rarc=("N130",), sections=("2.2",)),
        None,
    ),
    (
        "criteria.mental_health: suicidal ideation",
        claim_event(diagnoses=["R45.851"]),
        Expect("denied", "criteria.mental_health", carc=("204",), rarc=("N130",)),
        None,
    ),
    (
        "criteria.mental_health: PTSD, with the dot left out",
        claim_event(diagnoses=["F4312"]),
        Expect("denied", "criteria.mental_health", carc=("204",), rarc=("N130",)),
        None,
    ),
    (
        "rev2 7: ischemic rest pain is chronic pain (1.2.1.3)",
        claim_event(diagnoses=["I70.222"]),
        Expect("denied", "criteria.chronic_pain", carc=("204",), rarc=("N130",)),
        None,
    ),
    (
        "rev2 7: every symptom of emotional state is mental health (R45.1)",
        claim_event(diagnoses=["R45.1"]),
        Expect("denied", "criteria.mental_health", carc=("204",), rarc=("N130",)),
        None,
    ),
    (
        "rev2 7: a suicide attempt is mental health (T14.91XA)",
        claim_event(diagnoses=["T14.91XA"]),
        Expect("denied", "criteria.mental_health", carc=("204",), rarc=("N130",)),
        None,
    ),
    (
        "rev2 7: a personal history of suicidal behavior is mental health (Z91.51)",
        claim_event(diagnoses=["Z91.51"]),
        Expect("denied", "criteria.mental_health", carc=("204",), rarc=("N130",)),
        None,
    ),
    (
        "rev2 7: mental disorders complicating pregnancy are mental health (O99.340)",
        claim_event(diagnoses=["O99.340"]),
        Expect("denied", "criteria.mental_health", carc=("204",), rarc=("N130",)),
        None,
    ),
    (
        "rev2 7: a comorbidity the line does not point to does not decide it",
        claim_event(diagnoses=["G89.11", "F17.210"], lines=[ketamine_line(diagnosis_pointers=[1])]),
        Expect("pended", "criteria.indication_unclear"),
        "clinical_review",
    ),
    (
        "rev2 7: a line without pointers has the principal diagnosis as its reason",
        claim_event(claim_type="institutional", diagnoses=["G89.11", "F17.210"]),
        Expect("pended", "criteria.indication_unclear"),
        "clinical_review",
    ),
    (
        "criteria.substance_use",
        claim_event(diagnoses=["F11.20"]),
        Expect("denied", "criteria.substance_use", carc=("204",), rarc=("N130",), sections=("2.2",)),
        None,
    ),
    (
        "criteria.indication_unclear: unspecified pain",
        claim_event(diagnoses=["R52"]),
        Expect("pended", "criteria.indication_unclear", extra={"covered": "conditional"}),
        "clinical_review",
    ),
    (
        "criteria.indication_unclear: acute pain is not chronic",
        claim_event(diagnoses=["G89.11"]),
        Expect("pended", "criteria.indication_unclear"),
        "clinical_review",
    ),
    (
        "rev2 8: a pharmacy claim never pends: indication unclear is NCPDP 75 at the counter",
        claim_event(claim_type="pharmacy", diagnoses=[], lines=[ketamine_line(procedure_code=None)]),
        Expect("denied", "criteria.indication_unclear", ncpdp=("75",)),
        None,
    ),
    (
        "rev2 8: a pharmacy claim never pends: a malformed NDC is NCPDP 21",
        claim_event(claim_type="pharmacy", lines=[ketamine_line(procedure_code=None, ndc="0409-2O53")]),
        Expect("denied", "scope.ndc_missing", ncpdp=("21",)),
        None,
    ),
    (
        "rev2 8: a pharmacy claim never pends: an invalid diagnosis is NCPDP 39",
        claim_event(claim_type="pharmacy", diagnoses=["F42"], lines=[ketamine_line(procedure_code=None)]),
        Expect("denied", "claim.invalid_diagnosis", ncpdp=("39",)),
        None,
    ),
    (
        "rev2 8: a pharmacy claim never pends: Medicare not yet adjudicated is NCPDP 41",
        claim_event(
            claim_type="pharmacy",
            line_of_business="medicare_supplement",
            lines=[ketamine_line(procedure_code=None)],
        ),
        Expect("denied", "medicare.supplement_primary_not_adjudicated", ncpdp=("41",)),
        None,
    ),
]


def _rx(claim_id: str, **fields: Any) -> dict[str, Any]:
    """A pharmacy ketamine fill of member M-SEQ (the same line each time: provider, date, NDC, units, charge)."""
    line = ketamine_line(procedure_code=None)
    return claim_event(claim_id=claim_id, member_id="M-SEQ", claim_type="pharmacy", lines=[line], **fields)


def _msp(claim_id: str, units: str, charge: str, **fields: Any) -> dict[str, Any]:
    """A Medicare-secondary claim of member M-SEQ, Medicare paid, under PA-1 for 4 units."""
    return claim_event(
        claim_id=claim_id,
        member_id="M-SEQ",
        other_payers=[medicare_primary("paid")],
        prior_authorizations=[approved_pa(authorized_units="4")],
        lines=[ketamine_line(units=units, charge_amount=charge)],
        **fields,
    )


_RX_PA = approved_pa(procedure_code=None, ndc="67457-0108-10")

# Revision 3 reads a claim with the member's claims before it: each case is a sequence, decided in
# order by one processor; the expectation is for line 1 of the last claim.
SEQUENCES: list[tuple[str, list[dict[str, Any]], Expect]] = [
    (
        "rev3 11: a fill rejected 41 (Medicare pending), resubmitted once Medicare paid, is decided on its merits",
        [
            _rx("RX-1", other_payers=[medicare_primary("pending")], prior_authorizations=[_RX_PA]),
            _rx("RX-2", other_payers=[medicare_primary("paid")], prior_authorizations=[_RX_PA]),
        ],
        Expect("approved", "msp.approved_secondary", extra={"pa_needed": "satisfied", "satisfied_pa_id": "PA-1"}),
    ),
    (
        "rev3 11: a fill rejected 75 (no PA), resubmitted with the PA, is decided on its merits",
        [_rx("RX-1", diagnoses=["R52"]), _rx("RX-2", diagnoses=["R52"], prior_authorizations=[_RX_PA])],
        Expect("approved", "criteria.authorized_exception"),
    ),
    (
        "rev3 11: a paid fill is an original: its repeat is NCPDP 83",
        [
            _rx("RX-1", diagnoses=["R52"], prior_authorizations=[_RX_PA]),
            _rx("RX-2", diagnoses=["R52"], prior_authorizations=[_RX_PA]),
        ],
        Expect("denied", "claim.duplicate", ncpdp=("83",)),
    ),
    (
        "rev3 12: a PA's units are a total: 3 of 4 used, a 2-unit line is no longer covered",
        [_msp("S-1", "3", "300.00"), _msp("S-2", "2", "200.00")],
        Expect("denied", "msp.pa_absent", carc=("197",), extra={"pa_needed": "auth-needed"}),
    ),
    (
        "rev3 12: a void gives its units back",
        [
            _msp("S-1", "3", "300.00"),
            _msp("V-1", "3", "300.00", frequency_code="8", original_claim_id="S-1"),
            _msp("S-2", "2", "200.00"),
        ],
        Expect("approved", "msp.approved_secondary"),
    ),
    (
        "rev3 13: the same claim under a new event id gets the decision it had, though the units are used up",
        [
            _msp("S-1", "4", "300.00"),
            _msp("S-1", "4", "300.00", event_id="00000000-0000-4000-8000-0000000000aa"),
        ],
        Expect("approved", "msp.approved_secondary"),
    ),
]


@pytest.mark.parametrize(("sequence", "expect"), [c[1:] for c in SEQUENCES], ids=[c[0] for c in SEQUENCES])
def test_rule_decides_line_after_the_members_claims(
    policies: PolicyBook, sequence: list[dict[str, Any]], expect: Expect
) -> None:
    processor = Processor(policies)
    for event in sequence:
        result = processor.process(to_bytes(event), SourcePosition(file_line=1))
        assert isinstance(result, Decided), getattr(result, "record", None)
        processor.remember(result, emitted=True)
    line = result.event.lines[0]
    assert (line.outcome.value, line.rule) == (expect.outcome, expect.rule)
    assert (tuple(line.carc), tuple(line.ncpdp_reject)) == (expect.carc, expect.ncpdp)
    for key, value in expect.extra.items():
        assert getattr(line.coverage, key) == value


@pytest.mark.parametrize(("event", "expect", "queue"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_decides_line(processor: Processor, event: dict[str, Any], expect: Expect, queue: str | None) -> None:
    out = decide(processor, event)
    line = out.lines[0]
    assert (line.outcome.value, line.rule) == (expect.outcome, expect.rule)
    assert tuple(line.carc) == expect.carc
    assert tuple(line.rarc) == expect.rarc
    assert tuple(line.ncpdp_reject) == expect.ncpdp
    if expect.sections is not None:
        assert tuple(line.policy_sections) == expect.sections
    for key, value in expect.extra.items():
        holder = line if key == "route_to" else line.coverage
        assert holder is not None
        assert getattr(holder, key) == value
    if queue is None:
        assert isinstance(out, AdjudicationEvent)
    else:
        assert isinstance(out, PendForReviewEvent)
        assert out.queue.value == queue


def test_example_event_is_denied_under_section_2_1(processor: Processor) -> None:
    from tests.builders import example_event

    out = decide(processor, example_event())
    assert isinstance(out, AdjudicationEvent)
    drug, administration = out.lines
    assert (drug.outcome.value, drug.rule, drug.carc, drug.rarc) == (
        "denied",
        "criteria.chronic_pain",
        ["204"],
        ["N130"],
    )
    assert drug.policy_sections[0] == "2.1"
    assert (administration.outcome.value, administration.rule) == ("denied", "follow.administration_denied")
    assert (administration.carc, administration.rarc) == (["96"], ["N356"])
    assert administration.policy_sections == ["2.1", "1.2.1"]


class TestAdministrationFollowsTheDrug:
    def test_administration_is_denied_with_a_drug_denied_under_section_5(self, processor: Processor) -> None:
        out = decide(
            processor, claim_event(diagnoses=["F32.9"], lines=[service_line(1, "96372"), ketamine_line(2, route="IM")])
        )
        assert (out.lines[0].rule, out.lines[0].carc, out.lines[0].policy_sections) == (
            "follow.administration_denied",
            ["96"],
            ["2.2"],
        )

    def test_administration_on_another_day_is_not_applicable(self, processor: Processor) -> None:
        out = decide(
            processor, claim_event(lines=[ketamine_line(1), service_line(2, "96365", service_date="2025-08-30")])
        )
        assert out.lines[1].rule == "scope.not_ketamine"

    def test_administration_with_an_approved_drug_is_not_applicable(self, processor: Processor) -> None:
        event = claim_event(lines=[ketamine_line(1), service_line(2, "96365")], prior_authorizations=[approved_pa()])
        out = decide(processor, event)
        assert [line.rule for line in out.lines] == ["criteria.authorized_exception", "scope.not_ketamine"]

    def test_administration_follows_a_drug_denied_for_missing_pa(self, processor: Processor) -> None:
        # Revision 2, change 6: any clinical or PA denial of the drug line.
        event = claim_event(lines=[ketamine_line(1), service_line(2, "96365")], other_payers=[medicare_primary("paid")])
        out = decide(processor, event)
        assert [line.rule for line in out.lines] == ["msp.pa_absent", "follow.administration_denied"]
        assert (out.lines[1].carc, out.lines[1].policy_sections) == (["96"], ["Medicare Policy"])

    def test_administration_follows_a_drug_denied_under_the_medicare_cost_pa_rule(self, processor: Processor) -> None:
        event = claim_event(
            line_of_business="medicare_cost", participating=False, lines=[ketamine_line(1), service_line(2, "96374")]
        )
        out = decide(processor, event)
        assert [line.rule for line in out.lines] == [
            "medicare.cost_supplement_pa_absent",
            "follow.administration_denied",
        ]

    @pytest.mark.parametrize("code", ["96369", "96370", "96371"])
    def test_a_subcutaneous_infusion_follows_a_denied_sc_line(self, processor: Processor, code: str) -> None:
        event = claim_event(lines=[ketamine_line(1, route="SC"), service_line(2, code)])
        out = decide(processor, event)
        assert [line.rule for line in out.lines] == ["criteria.chronic_pain", "follow.administration_denied"]


class TestPriorAuthorizationCoverage:
    @pytest.mark.parametrize(
        "auth",
        [
            approved_pa(status="pending"),
            approved_pa(status="denied"),
            approved_pa(start_date="2025-09-02"),
            approved_pa(end_date="2025-08-31"),
            approved_pa(authorized_units="0.5"),
            approved_pa(procedure_code="J3000"),
            approved_pa(procedure_code=None, ndc="00409-2053-10"),
        ],
        ids=["pending", "denied", "starts-after", "ended-before", "too-few-units", "other-code", "other-ndc"],
    )
    def test_an_authorization_that_does_not_cover_the_line_is_ignored(
        self, processor: Processor, auth: dict[str, Any]
    ) -> None:
        out = decide(processor, claim_event(prior_authorizations=[auth]))
        assert out.lines[0].rule == "criteria.chronic_pain"

    def test_units_equal_to_the_authorized_units_are_covered(self, processor: Processor) -> None:
        out = decide(processor, claim_event(lines=[ketamine_line(units="10")], prior_authorizations=[approved_pa()]))
        assert out.lines[0].rule == "criteria.authorized_exception"


class TestClaimResult:
    def test_the_queue_is_that_of_the_first_pended_line_in_rule_order(self, processor: Processor) -> None:
        event = claim_event(
            diagnoses=["R52", "G89.29"],
            lines=[
                ketamine_line(1, diagnosis_pointers=[1]),
                ketamine_line(2, ndc=None, diagnosis_pointers=[2]),
            ],
        )
        out = decide(processor, event)
        assert isinstance(out, PendForReviewEvent)
        assert [line.rule for line in out.lines] == ["criteria.indication_unclear", "scope.ndc_missing"]
        assert out.queue.value == "data_correction"
        assert out.reason.startswith("line 2:")

    def test_labeled_use_on_another_day_does_not_count(self, processor: Processor) -> None:
        out = decide(
            processor, claim_event(lines=[ketamine_line(1), service_line(2, "01996", service_date="2025-08-30")])
        )
        assert out.lines[0].rule == "criteria.chronic_pain"

    def test_diagnosis_pointers_choose_the_diagnoses_of_a_line(self, processor: Processor) -> None:
        event = claim_event(diagnoses=["R52", "F42"], lines=[ketamine_line(1, diagnosis_pointers=[1])])
        out = decide(processor, event)
        assert out.lines[0].rule == "criteria.indication_unclear"

    def test_a_replacement_is_adjudicated_in_full_and_names_the_claim_it_replaces(self, processor: Processor) -> None:
        out = decide(processor, claim_event(frequency_code="7", original_claim_id="CLM-OLD"))
        assert isinstance(out, AdjudicationEvent)
        assert out.replaces_claim_id == "CLM-OLD"
        assert out.lines[0].rule == "criteria.chronic_pain"

    def test_a_void_names_the_claim_it_voids(self, processor: Processor) -> None:
        out = decide(processor, claim_event(frequency_code="8", original_claim_id="CLM-OLD"))
        assert out.voids_claim_id == "CLM-OLD"

    def test_every_rule_of_the_policy_is_covered_by_this_table(self, processor: Processor) -> None:
        tested = {expect.rule for _, _, expect, _ in CASES} | {"follow.administration_denied", "claim.duplicate"}
        shipped = {rule.id for rule in processor.policies.versions[-1].rules}
        assert shipped == tested
