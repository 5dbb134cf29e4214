"""The v1 claim event that upstream intake publishes (CLAIM-EVENT-V1.md)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from claims_contracts._base import InboundModel
from claims_contracts.v1.codes import (
    AuthorizationId,
    ClaimNumber,
    DiagnosisPointer,
    Icd10CmCode,
    IsoDate,
    LineNumber,
    MemberId,
    Money,
    Ndc,
    Npi,
    ProcedureCode,
    Timestamp,
    Units,
)


class ClaimType(StrEnum):
    """Which transaction the claim came in: X12 837P, 837I, or NCPDP."""

    PROFESSIONAL = "professional"
    INSTITUTIONAL = "institutional"
    PHARMACY = "pharmacy"


class LineOfBusiness(StrEnum):
    """The member's coverage product on the date of service."""

    COMMERCIAL_SMALL_GROUP = "commercial_small_group"
    COMMERCIAL_LARGE_GROUP = "commercial_large_group"
    ASO = "aso"
    EXCHANGE = "exchange"
    MEDICARE_ADVANTAGE = "medicare_advantage"
    MEDICARE_COST = "medicare_cost"
    MEDICARE_SUPPLEMENT = "medicare_supplement"
    MEDICARE_REPLACEMENT = "medicare_replacement"
    WISCONSIN_MEDICAID = "wisconsin_medicaid"


class Route(StrEnum):
    """Route of administration of a drug line."""

    IV = "IV"
    IM = "IM"
    SC = "SC"
    PO = "PO"
    IN = "IN"
    TOP = "TOP"
    OTHER = "OTHER"


class Address(InboundModel):
    """A member's postal address. PHI: never logged, never copied to outputs."""

    line1: str | None = Field(default=None, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str | None = Field(default=None, max_length=100)
    state: str | None = Field(default=None, max_length=50)
    postal_code: str | None = Field(default=None, max_length=20)


class Member(InboundModel):
    """The member the claim is for."""

    member_id: MemberId = Field(description="Payer member id.")
    line_of_business: LineOfBusiness = Field(description="Coverage product on the date of service.")
    product_name: str | None = Field(default=None, max_length=200, description="Marketing name, e.g. Dean Care Gold.")
    first_name: str | None = Field(default=None, max_length=200, description="PHI: never logged or published.")
    last_name: str | None = Field(default=None, max_length=200, description="PHI: never logged or published.")
    birth_date: IsoDate | None = Field(default=None, description="PHI: never logged or published.")
    address: Address | str | None = Field(default=None, description="PHI: never logged or published.")


class Provider(InboundModel):
    """The rendering or dispensing provider."""

    npi: Npi = Field(
        description="As sent; 10 digits, Luhn-valid with prefix 80840, or the claim pends for correction"
        " (CARC 16, N290)."
    )
    participating: bool = Field(strict=True, description="In the plan's network.")
    taxonomy_code: str | None = Field(default=None, max_length=10, description="NUCC taxonomy code, e.g. 208VP0000X.")


class Diagnosis(InboundModel):
    """One ICD-10-CM diagnosis of the claim."""

    code: Icd10CmCode = Field(
        description="ICD-10-CM code, with or without the dot; one that is malformed or not billable on the date of"
        " service pends the lines pointing to it (CARC 16, M76)."
    )


class OtherPayer(InboundModel):
    """Another payer of the member, for coordination of benefits (837 loop 2320)."""

    payer_type: Literal["medicare", "medicaid", "commercial", "other"]
    payer_sequence: Literal["primary", "secondary", "tertiary"]
    claim_status: Literal["paid", "denied", "pending"] | None = None
    paid_amount: Money | None = None
    adjudicated_date: IsoDate | None = None


class PriorAuthorization(InboundModel):
    """An authorization on file for the member."""

    auth_id: AuthorizationId
    status: Literal["approved", "denied", "pending"]
    procedure_code: ProcedureCode | None = None
    ndc: Ndc | None = None
    start_date: IsoDate
    end_date: IsoDate
    authorized_units: Units | None = None

    @model_validator(mode="after")
    def _dates_in_order(self) -> PriorAuthorization:
        if self.end_date < self.start_date:
            raise ValueError("end_date is before start_date")
        return self


class ClaimLine(InboundModel):
    """One service line."""

    line_number: LineNumber = Field(description="1..999, unique within the claim.")
    service_date: IsoDate = Field(description="Date of service.")
    procedure_code: ProcedureCode | None = Field(default=None, description="HCPCS or CPT; pharmacy claims may omit it.")
    modifiers: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{2}$")]] = Field(
        default_factory=list, max_length=4, description="0 to 4 two-character modifiers."
    )
    ndc: Ndc | None = Field(
        default=None,
        description="10 or 11 digits, hyphenated or not; one that cannot be read so pends the line (CARC 16, M119).",
    )
    drug_description: str | None = Field(
        default=None, max_length=500, description="Free text. Never logged, never published."
    )
    route: Route | None = None
    units: Units
    charge_amount: Money
    place_of_service: Annotated[str, StringConstraints(pattern=r"^\d{2}$")] | None = None
    diagnosis_pointers: list[DiagnosisPointer] | None = Field(
        default=None, max_length=12, description="1-based indexes into claim.diagnoses; none means all."
    )


MODEL_ONLY_RULES = (
    "line numbers are unique within the claim",
    "diagnosis pointers are within the claim's diagnoses",
    "a prior authorization's end_date is not before its start_date",
)
"""What the model checks that JSON Schema cannot state; the published schema lists them under
`x-also-checked`, and the agreement tests hold the model and the schema to everything else."""

_CLAIM_SCHEMA_RULES: dict[str, Any] = {
    "allOf": [
        {
            "if": {"properties": {"frequency_code": {"enum": ["7", "8"]}}, "required": ["frequency_code"]},
            "then": {"required": ["original_claim_id"], "properties": {"original_claim_id": {"type": "string"}}},
        },
        {
            "if": {"properties": {"claim_type": {"not": {"const": "pharmacy"}}}},
            "then": {
                "required": ["diagnoses"],
                "properties": {
                    "diagnoses": {"type": "array", "minItems": 1},
                    "lines": {
                        "items": {"required": ["procedure_code"], "properties": {"procedure_code": {"type": "string"}}}
                    },
                },
            },
        },
    ],
    "x-also-checked": list(MODEL_ONLY_RULES),
}


class Claim(InboundModel):
    """The claim itself."""

    model_config = ConfigDict(**InboundModel.model_config, json_schema_extra=_CLAIM_SCHEMA_RULES)

    claim_id: ClaimNumber = Field(description="Payer claim number.")
    claim_type: ClaimType
    frequency_code: Literal["1", "7", "8"] = Field(default="1", description="X12 CLM05-3: original, replacement, void.")
    original_claim_id: ClaimNumber | None = Field(default=None, description="The claim replaced or voided (7 and 8).")
    received_date: IsoDate
    member: Member
    provider: Provider
    diagnoses: list[Diagnosis] | None = Field(default=None, max_length=99)
    other_payers: list[OtherPayer] = Field(default_factory=list, max_length=10)
    prior_authorizations: list[PriorAuthorization] = Field(default_factory=list, max_length=100)
    lines: list[ClaimLine] = Field(min_length=1, max_length=999)

    @model_validator(mode="after")
    def _consistent(self) -> Claim:
        if self.frequency_code in ("7", "8") and not self.original_claim_id:
            raise ValueError(f"frequency_code {self.frequency_code} needs original_claim_id")
        if self.claim_type is not ClaimType.PHARMACY and not self.diagnoses:
            raise ValueError(f"a {self.claim_type.value} claim needs at least one diagnosis")
        seen: set[int] = set()
        for line in self.lines:
            if line.line_number in seen:
                raise ValueError(f"line_number {line.line_number} appears more than once")
            seen.add(line.line_number)
            if line.procedure_code is None and self.claim_type is not ClaimType.PHARMACY:
                raise ValueError(
                    f"line {line.line_number}: procedure_code is required on a {self.claim_type.value} claim"
                )
        count = len(self.diagnoses or ())
        for line in self.lines:
            for pointer in line.diagnosis_pointers or ():
                if pointer > count:
                    raise ValueError(
                        f"line {line.line_number}: diagnosis pointer {pointer} is out of range (the claim has {count})"
                    )
        return self


class ClaimEvent(InboundModel):
    """A claim event, version 1: one per Kafka message, keyed by claim id."""

    schema_version: Literal[1] = Field(description="Contract version.")
    event_id: UUID = Field(description="Unique per published event; a redelivery carries the same id.")
    occurred_at: Timestamp = Field(description="When intake published it (RFC 3339).")
    claim: Claim
