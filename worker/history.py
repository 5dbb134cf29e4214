"""What the worker remembers of the claims it decided: redeliveries, duplicates, supersessions.

The stores are plain mutable mappings: Faust tables (with changelogs) in the
stream worker, dicts in the command line. Values are JSON-friendly so a table
changelog can carry them.

Keys: `seen` maps an input event id to the output event id emitted for it;
`claims` maps a claim id to its last decision; `lines` maps a line fingerprint
to the claim line that holds it.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import MutableMapping
from typing import Any

from worker.adjudication import Claim, Decision, Line, Outcome
from worker.adjudication.ndc import normalize

DEFAULT_MAX_CLAIMS = 100_000
"""Claims remembered by default: about a day of a mid-size plan's ketamine-policy traffic."""

ACTIVE = "active"
VOIDED = "voided"
REPLACED = "replaced"


def line_fingerprint(claim: Claim, line: Line) -> str:
    """The identity of a service line for duplicate detection.

    Same member, provider, date of service, procedure code, modifiers, NDC (as 11
    digits), units and charge (domain.md, pitfall 11). Decimals are normalized so
    "1" and "1.00" match.
    """
    ndc = normalize(line.ndc).unique or line.ndc if line.ndc else ""
    parts = (
        claim.member_id,
        claim.provider_npi,
        line.service_date.isoformat(),
        line.procedure_code or "",
        ",".join(sorted(line.modifiers)),
        ndc or "",
        format(line.units.normalize(), "f"),
        format(line.charge_amount.normalize(), "f"),
    )
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


class ClaimHistory:
    """Claim memory over three mutable mappings."""

    def __init__(
        self,
        seen: MutableMapping[str, Any],
        claims: MutableMapping[str, Any],
        lines: MutableMapping[str, Any],
        *,
        max_claims: int | None = None,
    ) -> None:
        self.seen = seen
        self.claims = claims
        self.lines = lines
        self.max_claims = max_claims
        """Remember at most this many claims (and as many input events): memory stays bounded.
        The oldest are forgotten first; a redelivery or duplicate older than the window is
        decided afresh (same output id for a redelivery, so consumers still de-duplicate)."""
        self._claim_order: deque[str] = deque()
        self._seen_order: deque[str] = deque()
        self._seeded = False

    @classmethod
    def in_memory(cls, max_claims: int | None = DEFAULT_MAX_CLAIMS) -> ClaimHistory:
        """A history held in dicts (command line, replay, tests)."""
        return cls({}, {}, {}, max_claims=max_claims)

    def already_emitted(self, source_event_id: str) -> str | None:
        """The output event id already emitted for this input event, if remembered."""
        value = self.seen.get(source_event_id)
        return str(value) if value is not None else None

    def duplicates(self, claim: Claim) -> dict[int, str]:
        """Lines of this claim that exactly repeat a line of another active claim.

        A replacement does not duplicate the claim it replaces, and a claim never
        duplicates itself (a resend of the same claim id is a re-adjudication).
        """
        if claim.frequency_code == "8":
            return {}
        found: dict[int, str] = {}
        for line in claim.lines:
            owner = self.lines.get(line_fingerprint(claim, line))
            if owner is None:
                continue
            owner_claim, owner_line = str(owner[0]), int(owner[1])
            if owner_claim in (claim.claim_id, claim.original_claim_id):
                continue
            if (self.claims.get(owner_claim) or {}).get("status", ACTIVE) != ACTIVE:
                continue
            found[line.line_number] = f"claim {owner_claim} line {owner_line}"
        return found

    def superseded_event(self, claim: Claim) -> str | None:
        """The output event id of the decision a replacement or void supersedes, if known."""
        if claim.original_claim_id is None or claim.frequency_code == "1":
            return None
        record = self.claims.get(claim.original_claim_id)
        return str(record["event_id"]) if record else None

    def mark_emitted(self, source_event_id: str, output_event_id: str) -> None:
        """Remember that the output of an input was delivered: a redelivery is then skipped.

        Called only after the broker acknowledged the output, so "emitted" never runs
        ahead of the output itself.
        """
        if source_event_id not in self.seen:
            self._seen_order.append(source_event_id)
        self.seen[source_event_id] = output_event_id
        while self.max_claims is not None and len(self._seen_order) > self.max_claims:
            self.seen.pop(self._seen_order.popleft(), None)

    def record(self, claim: Claim, decision: Decision) -> None:
        """Remember a decided claim's lines and status (duplicates, supersession)."""
        if claim.original_claim_id is not None and claim.frequency_code in ("7", "8"):
            self._retire(claim.original_claim_id, REPLACED if claim.frequency_code == "7" else VOIDED)
        if claim.frequency_code == "8":
            return
        kept = []
        for line, result in zip(claim.lines, decision.lines, strict=True):
            if result.rule == "claim.duplicate":
                continue
            fingerprint = line_fingerprint(claim, line)
            self.lines[fingerprint] = [claim.claim_id, line.line_number]
            kept.append(fingerprint)
        if claim.claim_id not in self.claims:
            self._claim_order.append(claim.claim_id)
        self.claims[claim.claim_id] = {
            "event_id": decision.event_id,
            "status": ACTIVE,
            "lines": kept,
            "pended": decision.pended,
            "denied": any(r.outcome is Outcome.DENIED for r in decision.lines),
        }
        self._evict()

    def _evict(self) -> None:
        if not self._seeded:
            # A table recovered from its changelog holds claims this process did not record:
            # they are the oldest, in changelog order.
            self._seeded = True
            recorded = set(self._claim_order)
            self._claim_order.extendleft(reversed([key for key in self.claims if key not in recorded]))
        while self.max_claims is not None and len(self._claim_order) > self.max_claims:
            oldest = self._claim_order.popleft()
            record = self.claims.pop(oldest, None) or {}
            for fingerprint in record.get("lines", []):
                owner = self.lines.get(fingerprint)
                if owner is not None and owner[0] == oldest:
                    del self.lines[fingerprint]

    def _retire(self, claim_id: str, status: str) -> None:
        record = self.claims.get(claim_id)
        if record is None:
            # The original is unknown here (decided before our memory, or on another
            # partition): remember its retirement so a late original is not a duplicate source.
            self._claim_order.append(claim_id)
            self.claims[claim_id] = {"event_id": None, "status": status, "lines": []}
            self._evict()
            return
        for fingerprint in record.get("lines", []):
            owner = self.lines.get(fingerprint)
            if owner is not None and owner[0] == claim_id:
                del self.lines[fingerprint]
        self.claims[claim_id] = {**record, "status": status, "lines": []}
