"""The core's own picture of a claim and of a decision.

Frozen dataclasses, independent of any wire format: `worker.translate` maps the
contract onto these, so a new contract version never reaches the engine. The
claim keeps only what the policy reads; PHI never enters the core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Literal

Covered = Literal["covered", "not-covered", "conditional"]
"""CRD `covered` values."""
PaNeeded = Literal["no-auth", "auth-needed", "satisfied"]
"""CRD `pa-needed` values this policy uses."""
InfoNeeded = Literal["detail-code", "performer", "location", "timeframe"]
"""CRD `info-needed` values."""


class Outcome(StrEnum):
    """What was decided for one line."""

    APPROVED = "approved"
    DENIED = "denied"
    ROUTED = "routed"
    NOT_APPLICABLE = "not_applicable"
    PENDED = "pended"


@dataclass(frozen=True, slots=True)
class OtherPayer:
    """Another payer of the member (coordination of benefits)."""

    payer_type: str
    payer_sequence: str
    claim_status: str | None = None
    adjudicated_date: date | None = None


@dataclass(frozen=True, slots=True)
class PriorAuthorization:
    """An authorization on file for the member."""

    auth_id: str
    status: str
    start_date: date
    end_date: date
    procedure_code: str | None = None
    ndc: str | None = None
    authorized_units: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Line:
    """One service line, as the policy reads it."""

    line_number: int
    service_date: date
    units: Decimal
    charge_amount: Decimal
    procedure_code: str | None = None
    modifiers: tuple[str, ...] = ()
    ndc: str | None = None
    route: str | None = None
    place_of_service: str | None = None
    diagnosis_pointers: tuple[int, ...] = ()
    drug_description: str | None = field(default=None, repr=False, compare=False)
    """Free text: a rule reads whether it names the policy's drug; it is never written anywhere
    (no repr, no output, no log line)."""


@dataclass(frozen=True, slots=True)
class Claim:
    """A claim, as the policy reads it."""

    event_id: str
    claim_id: str
    claim_type: str
    frequency_code: str
    received_date: date
    member_id: str
    line_of_business: str
    provider_npi: str
    provider_participating: bool
    lines: tuple[Line, ...]
    diagnoses: tuple[str, ...] = ()
    original_claim_id: str | None = None
    other_payers: tuple[OtherPayer, ...] = ()
    prior_authorizations: tuple[PriorAuthorization, ...] = ()


@dataclass(frozen=True, slots=True)
class Coverage:
    """A Da Vinci CRD-style coverage statement for one line."""

    covered: Covered
    pa_needed: PaNeeded | None = None
    satisfied_pa_id: str | None = None
    info_needed: tuple[InfoNeeded, ...] = ()


@dataclass(frozen=True, slots=True)
class RuleHit:
    """A rule that matched a line, with the facts that made it match."""

    line_number: int
    rule: str
    sections: tuple[str, ...]
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LineDecision:
    """The decision for one line."""

    line_number: int
    outcome: Outcome
    rule: str
    sections: tuple[str, ...]
    policy_version: str | None
    explanation: str
    carc: tuple[str, ...] = ()
    rarc: tuple[str, ...] = ()
    ncpdp_reject: tuple[str, ...] = ()
    group_code: str | None = None
    route_to: str | None = None
    queue: str | None = None
    coverage: Coverage | None = None
    rule_rank: int = 0
    """Position of the deciding rule in evaluation order; orders pended lines."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The decision for a whole claim: one per input event."""

    event_id: str
    """Deterministic output event id: derived from the policy versions, the revision and what identifies
    the decision (the claim's member, id and content from revision 3; the input event id before)."""
    source_event_id: str
    claim_id: str
    policy_id: str
    policy_versions: tuple[str, ...]
    pinned: bool
    lines: tuple[LineDecision, ...]
    trace: tuple[RuleHit, ...]
    queue: str | None = None
    """Set when the claim is pended: the queue of the first pended line in rule order."""
    reason: str | None = None
    voids_claim_id: str | None = None
    replaces_claim_id: str | None = None
    revision: int = 1
    """The revision of the reading (DETERMINATION.md) the policy files state; part of the event id."""
    authorization_units: tuple[tuple[str, Decimal], ...] = ()
    """Units this claim's lines used of each authorization (id, units), by id: what the member's
    history counts as used (revision 3, item 12; empty before it)."""

    @property
    def pended(self) -> bool:
        """True when the claim waits for a person (a pend-for-review event)."""
        return self.queue is not None
