"""Builders of claim events for tests: a valid default, changed by keyword."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

# A copy of ../shared/contracts/claim-event-v1.example.json, so the suite runs from any checkout.
EXAMPLE_EVENT = Path(__file__).resolve().parent / "data" / "claim-event-v1.example.json"
SHARED_EXAMPLE_EVENT = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "claim-event-v1.example.json"

VALID_NPI = "1234567893"
KETAMINE_NDC = "67457-0108-10"
ESKETAMINE_NDC = "50458-0028-01"
VETERINARY_NDC = "59399-0114-10"
OTHER_NDC = "00409-4888-01"


def ketamine_line(number: int = 1, **overrides: Any) -> dict[str, Any]:
    """A J3490 ketamine IV line on 2025-09-01."""
    line: dict[str, Any] = {
        "line_number": number,
        "service_date": "2025-09-01",
        "procedure_code": "J3490",
        "modifiers": [],
        "ndc": KETAMINE_NDC,
        "drug_description": "ketamine hydrochloride injection 100 mg/mL",
        "route": "IV",
        "units": "1",
        "charge_amount": "350.00",
        "place_of_service": "11",
    }
    line.update(overrides)
    return line


def service_line(number: int, code: str, **overrides: Any) -> dict[str, Any]:
    """A non-drug line (administration, E/M, anesthesia) on 2025-09-01."""
    line: dict[str, Any] = {
        "line_number": number,
        "service_date": "2025-09-01",
        "procedure_code": code,
        "units": "1",
        "charge_amount": "210.00",
        "place_of_service": "11",
    }
    line.update(overrides)
    return line


def claim_event(
    *,
    lines: list[dict[str, Any]] | None = None,
    diagnoses: list[str] | None = None,
    line_of_business: str = "commercial_large_group",
    claim_type: str = "professional",
    participating: bool = True,
    other_payers: list[dict[str, Any]] | None = None,
    prior_authorizations: list[dict[str, Any]] | None = None,
    event_id: str | None = None,
    claim_id: str = "CLM-TEST-1",
    member_id: str | None = None,
    **claim_fields: Any,
) -> dict[str, Any]:
    """A valid v1 claim event: a commercial professional ketamine claim for chronic pain by default."""
    event: dict[str, Any] = {
        "schema_version": 1,
        "event_id": event_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"test:{claim_id}")),
        "occurred_at": "2025-09-03T14:22:05Z",
        "claim": {
            "claim_id": claim_id,
            "claim_type": claim_type,
            "frequency_code": "1",
            "received_date": "2025-09-02",
            "member": {
                # One member per claim unless told: identical lines of one member are duplicates.
                "member_id": member_id or f"M-{claim_id}",
                "line_of_business": line_of_business,
                "first_name": "Pat",
                "last_name": "Example",
                "birth_date": "1980-04-02",
            },
            "provider": {"npi": VALID_NPI, "participating": participating},
            "diagnoses": [{"code": code} for code in (diagnoses if diagnoses is not None else ["G89.29"])],
            "other_payers": other_payers or [],
            "prior_authorizations": prior_authorizations or [],
            "lines": lines if lines is not None else [ketamine_line()],
        },
    }
    event["claim"].update(claim_fields)
    return event


def approved_pa(**overrides: Any) -> dict[str, Any]:
    """An approved authorization for J3490 covering September 2025, 10 units."""
    auth: dict[str, Any] = {
        "auth_id": "PA-1",
        "status": "approved",
        "procedure_code": "J3490",
        "start_date": "2025-08-25",
        "end_date": "2025-09-30",
        "authorized_units": "10",
    }
    auth.update(overrides)
    return auth


def medicare_primary(status: str | None = "paid") -> dict[str, Any]:
    """An other-payer entry: Medicare primary, with a claim status."""
    payer: dict[str, Any] = {"payer_type": "medicare", "payer_sequence": "primary"}
    if status is not None:
        payer["claim_status"] = status
        payer["adjudicated_date"] = "2025-09-10" if status != "pending" else None
    return payer


def to_bytes(event: dict[str, Any]) -> bytes:
    """The event as a Kafka message value would carry it."""
    return json.dumps(event).encode()


def example_event() -> dict[str, Any]:
    """The shared example event of the contract."""
    return copy.deepcopy(json.loads(EXAMPLE_EVENT.read_text()))


def many_claims(count: int, prefix: str) -> list[bytes]:
    """`count` distinct claim events (ids start with `prefix`), a mix of rules, one or two lines each."""
    out = []
    for n in range(count):
        dx = ["G89.29", "F32.9", "R52", "F11.20"][n % 4]
        lines = [ketamine_line(1, charge_amount=f"{100 + n}.00")]
        if n % 3 == 0:
            lines.append(
                {
                    "line_number": 2,
                    "service_date": "2025-09-01",
                    "procedure_code": "96365",
                    "units": "1",
                    "charge_amount": f"{n}.00",
                }
            )
        event = claim_event(
            claim_id=f"{prefix}-{n:05d}",
            diagnoses=[dx],
            lines=lines,
            event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{prefix}:{n}")),
        )
        out.append(to_bytes(event))
    return out
