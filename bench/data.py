"""A realistic synthetic claim mix: every rule represented, 1 to 6 lines per claim.

Deterministic for a seed, so every pipeline of one run measures the same bytes.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import orjson

KETAMINE_NDCS = ["67457-0108-10", "67457-108-10", "0409-2053-10", "52584-038-10", "42023-0115-10"]
OTHER_NDCS = ["00409-4888-01", "63323-0483-10", "00641-6010-25"]
OTHER_DRUG = "another drug's injection (unclassified, J3490)"
"""The description an intake gives a J3490 line of another drug (the policy reads whether it names ketamine)."""
CHRONIC_PAIN = ["G89.29", "G89.4", "G90.523", "G90.511", "M79.7", "G43.909", "M54.50", "G56.41", "B02.22", "S14.101A"]
MENTAL_HEALTH = ["F32.9", "F33.2", "F31.81", "F42.2", "F43.10", "R45.851", "F32.A"]
SUBSTANCE = ["F10.20", "F11.20", "F12.20", "F14.20", "F19.20"]
OTHER_DX = ["R52", "G89.11", "Z00.00", "I10", "E11.9"]
INVALID_DX = ["F42", "G89.2", "G89.99"]
ADMIN = ["96365", "96366", "96372", "96374"]
EM = ["99213", "99214", "99204"]
LABELED = ["01996", "99152", "27447", "00810"]
LOBS = (
    ["commercial_large_group"] * 30
    + ["commercial_small_group"] * 15
    + ["aso"] * 15
    + ["exchange"] * 10
    + ["medicare_cost"] * 6
    + ["medicare_supplement"] * 6
    + ["medicare_advantage"] * 6
    + ["medicare_replacement"] * 3
    + ["wisconsin_medicaid"] * 9
)
NPIS = ["1234567893", "1245319599", "1003000126", "1497758544", "1639172737"]


def _drug_line(rng: random.Random, number: int, day: str) -> dict[str, Any]:
    roll = rng.random()
    ndc: str | None = rng.choice(KETAMINE_NDCS)
    code, route = "J3490", rng.choice(["IV", "IV", "IV", "IM", "SC"])
    if roll < 0.04:
        ndc = None  # J3490 without NDC
    elif roll < 0.07:
        ndc = rng.choice(OTHER_NDCS)
    elif roll < 0.09:
        code, ndc, route = "J0013", None, "IN"  # esketamine
    elif roll < 0.11:
        route = "PO"
    return {
        "line_number": number,
        "service_date": day,
        "procedure_code": code,
        "modifiers": [],
        "ndc": ndc,
        "drug_description": OTHER_DRUG if ndc in OTHER_NDCS else "ketamine hydrochloride injection",
        "route": route,
        "units": str(rng.choice([1, 1, 2, 5])),
        "charge_amount": f"{rng.randint(80, 900)}.{rng.randint(0, 99):02d}",
        "place_of_service": rng.choice(["11", "11", "19", "22", "21"]),
    }


def _service_line(rng: random.Random, number: int, day: str, codes: list[str]) -> dict[str, Any]:
    return {
        "line_number": number,
        "service_date": day,
        "procedure_code": rng.choice(codes),
        "units": "1",
        "charge_amount": f"{rng.randint(40, 600)}.00",
        "place_of_service": "11",
    }


def claim(rng: random.Random, n: int) -> dict[str, Any]:
    """One claim event; about a third need a person (pends), the rest decide."""
    day = f"2025-{rng.choice(['09', '10', '11'])}-{rng.randint(1, 28):02d}"
    if rng.random() < 0.02:
        day = "2025-08-01"  # before the policy version: version.none_in_force
    received = day if rng.random() > 0.02 else "2025-08-01"  # dos after receipt
    lob = rng.choice(LOBS)
    claim_type = "pharmacy" if rng.random() < 0.06 else rng.choice(["professional"] * 4 + ["institutional"])
    family = rng.random()
    dx_pool = (
        CHRONIC_PAIN if family < 0.45 else MENTAL_HEALTH if family < 0.7 else SUBSTANCE if family < 0.8 else OTHER_DX
    )
    diagnoses = rng.sample(dx_pool, k=min(len(dx_pool), rng.randint(1, 3)))
    if rng.random() < 0.02:
        diagnoses[0] = rng.choice(INVALID_DX)
    lines = [_drug_line(rng, 1, day)]
    for number in range(2, rng.randint(1, 6) + 1):
        pool = ADMIN if rng.random() < 0.6 else EM if rng.random() < 0.8 else LABELED
        lines.append(_service_line(rng, number, day, pool))
    if claim_type == "pharmacy":
        lines = [lines[0] | {"procedure_code": None, "ndc": lines[0]["ndc"] or KETAMINE_NDCS[0]}]
    other_payers = []
    if rng.random() < 0.08 and lob in ("commercial_large_group", "aso", "exchange", "commercial_small_group"):
        other_payers = [
            {"payer_type": "medicare", "payer_sequence": "primary", "claim_status": rng.choice(["paid", "pending"])}
        ]
    auths = []
    if rng.random() < 0.12:
        auths = [
            {
                "auth_id": f"PA-{n}",
                "status": "approved",
                "procedure_code": "J3490",
                "start_date": "2025-08-21",
                "end_date": "2025-12-31",
                "authorized_units": "10",
            }
        ]
    frequency = rng.choice(["1"] * 48 + ["7", "8"])
    member = f"M{rng.randint(1, max(n // 3, 10)):08d}"
    return {
        "schema_version": 1,
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "occurred_at": f"{received}T12:00:00Z",
        "claim": {
            "claim_id": f"BENCH-{n:08d}",
            "claim_type": claim_type,
            "frequency_code": frequency,
            "original_claim_id": f"BENCH-{max(n - 1, 0):08d}" if frequency != "1" else None,
            "received_date": received,
            "member": {
                "member_id": member,
                "line_of_business": lob,
                "first_name": "Pat",
                "last_name": "Doe",
                "birth_date": "1970-01-01",
            },
            "provider": {"npi": rng.choice(NPIS), "participating": rng.random() < 0.85},
            "diagnoses": [{"code": code} for code in diagnoses],
            "other_payers": other_payers,
            "prior_authorizations": auths,
            "lines": lines,
        },
    }


def claims(count: int, seed: int = 2300) -> list[bytes]:
    """`count` claim events as JSON bytes, with a few malformed ones (dead letters) mixed in."""
    rng = random.Random(seed)
    out = []
    previous: dict[str, Any] | None = None
    for n in range(count):
        if n % 500 == 499:
            out.append(b'{"schema_version": 1, "event_id": "truncated')
            continue
        event = claim(rng, n)
        if n % 250 == 7 and previous is not None:
            # An exact repeat of the previous claim under a new claim id: CARC 18.
            event = {**previous, "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
            event["claim"] = {
                **previous["claim"],
                "claim_id": f"BENCH-{n:08d}",
                "frequency_code": "1",
                "original_claim_id": None,
            }
        out.append(orjson.dumps(event))
        previous = event
    return out
