"""What the worker remembers of the claims it decided: redeliveries, duplicates, supersessions.

One record per claim id is the whole persisted state: a mutable mapping that is a
Faust table (with a changelog) in the stream worker and a dict elsewhere. Values are
JSON-friendly so the changelog can carry them. A record holds the claim's last
decision, its status (active, voided, replaced), the fingerprints of its lines and
the input events whose outputs were delivered (with a fingerprint of each one's content,
so an event id reused for other content is told apart from a redelivery). Its pairs are tuples of strings and
numbers, not lists: the garbage collector stops tracking such tuples (and then the
record) after one pass, so a full collection no longer walks every record remembered.
Records recovered from
the changelog come back as lists; both read the same.

The two look-ups the worker makes per claim, "was this input already emitted?" and
"which claim holds this line?", are indexes derived in memory from the records and
rebuilt after a table recovery (`rebuild`). Deriving them instead of keeping them as
tables of their own means one changelog write per claim instead of one per line
plus one per input.

Once the window is full, every claim remembered evicts one. CPython never shrinks a
dict's table on deletion, and the resize that follows sizes it at three times the live
entries instead of about one and a half. The history checks its tables every
`COMPACT_EVERY` evictions and copies any that grew since its last copy (`_compact`): a
copy is sized for the live entries only. (What each of these measured:
docs/benchmarks-notes.md.)
"""

from __future__ import annotations

import hashlib
import sys
from collections import OrderedDict
from collections.abc import MutableMapping
from typing import Any

from worker.adjudication import Claim, Decision, Line, Outcome
from worker.adjudication.ndc import normalize

DEFAULT_MAX_CLAIMS = 100_000
"""Claims remembered by default: about a day of a mid-size plan's ketamine-policy traffic."""

EVENTS_PER_CLAIM = 8
"""Delivered input events remembered per claim (resends of one claim id): redeliveries of
older ones are decided again and get the same output event id."""

COMPACT_EVERY = 1_000
"""Evictions between checks of the tables' sizes (a check is four `sys.getsizeof` calls)."""

Emitted = tuple[str, str | None]
"""An input already decided: its output event id, and the fingerprint of its content (None for
entries remembered before fingerprints were kept)."""

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
    """Claim memory: persisted records, indexes derived in memory."""

    def __init__(self, claims: MutableMapping[str, Any], *, max_claims: int | None = None) -> None:
        self.claims = claims
        """Claim id -> record; the only persisted state."""
        self.max_claims = max_claims
        """Remember at most this many claims: memory stays bounded. The oldest are forgotten
        first; a redelivery or duplicate older than the window is decided afresh (same output
        id for a redelivery, so consumers still de-duplicate)."""
        self._unsaved: dict[str, dict[str, Any]] = {}
        """Records of decisions whose outputs are not yet delivered (written on delivery)."""
        self._order: OrderedDict[str, None] = OrderedDict()
        self._emitted: dict[str, Emitted] = {}
        self._owners: dict[str, tuple[str, int]] = {}
        self._built = False
        self._evictions = 0
        self._footprints: dict[str, int] = {}
        """Each table's size in bytes just after its last copy (`_compact`)."""

    @classmethod
    def in_memory(cls, max_claims: int | None = DEFAULT_MAX_CLAIMS) -> ClaimHistory:
        """A history held in a dict (command line, replay, tests)."""
        return cls({}, max_claims=max_claims)

    # -- derived indexes ----------------------------------------------------------------

    def rebuild(self) -> None:
        """Derive the indexes from the records again: after a table recovery or rebalance.

        Records recovered from a changelog come in changelog order, oldest first.
        """
        self._order = OrderedDict.fromkeys(self.claims)
        self._emitted = {}
        self._owners = {}
        self._footprints = {}
        for claim_id, record in self.claims.items():
            self._index(claim_id, record)
        for claim_id, record in self._unsaved.items():
            self._order[claim_id] = None
            self._index(claim_id, record)
        self._built = True

    def _ensure_built(self) -> None:
        if not self._built:
            self.rebuild()

    def _index(self, claim_id: str, record: dict[str, Any]) -> None:
        for entry in record.get("emitted", ()):
            # Entries written before content fingerprints were kept are (source, output) pairs.
            self._emitted[entry[0]] = (entry[1], entry[2] if len(entry) > 2 else None)
        if record.get("status", ACTIVE) == ACTIVE:
            for fingerprint, line_number in record.get("lines", ()):
                self._owners[fingerprint] = (claim_id, line_number)

    def _unindex(self, claim_id: str, record: dict[str, Any], *, events: bool) -> None:
        for fingerprint, _ in record.get("lines", ()):
            if self._owners.get(fingerprint, ("",))[0] == claim_id:
                del self._owners[fingerprint]
        if events:
            for entry in record.get("emitted", ()):
                self._emitted.pop(entry[0], None)

    def _record(self, claim_id: str) -> dict[str, Any] | None:
        record = self._unsaved.get(claim_id)
        if record is None:
            record = self.claims.get(claim_id)
        return record

    # -- questions ----------------------------------------------------------------------

    def already_emitted(self, source_event_id: str) -> Emitted | None:
        """The output event id already delivered for this input event, and the input's content fingerprint."""
        self._ensure_built()
        return self._emitted.get(source_event_id)

    def duplicates(self, claim: Claim) -> dict[int, str]:
        """Lines of this claim that exactly repeat a line of another active claim.

        A replacement does not duplicate the claim it replaces, and a claim never
        duplicates itself (a resend of the same claim id is a re-adjudication).
        """
        if claim.frequency_code == "8":
            return {}
        self._ensure_built()
        found: dict[int, str] = {}
        for line in claim.lines:
            owner = self._owners.get(line_fingerprint(claim, line))
            if owner is None:
                continue
            owner_claim, owner_line = owner
            if owner_claim in (claim.claim_id, claim.original_claim_id):
                continue
            found[line.line_number] = f"claim {owner_claim} line {owner_line}"
        return found

    def superseded_event(self, claim: Claim) -> str | None:
        """The output event id of the decision a replacement or void supersedes, if known."""
        if claim.original_claim_id is None or claim.frequency_code == "1":
            return None
        record = self._record(claim.original_claim_id)
        return str(record["event_id"]) if record and record.get("event_id") else None

    def sizes(self) -> dict[str, int]:
        """Entries held: records, and the derived indexes (what bounds this memory)."""
        return {
            "records": len(self._order),
            "line_owners": len(self._owners),
            "emitted_inputs": len(self._emitted),
            "unsaved": len(self._unsaved),
        }

    # -- changes ------------------------------------------------------------------------

    def record(self, claim: Claim, decision: Decision) -> None:
        """Remember a decided claim before its output is delivered (in memory only).

        Its lines count for duplicates from now on, so a duplicate later in the same batch
        is caught. The record is persisted by `mark_emitted`, once the output is delivered.
        """
        self._ensure_built()
        if claim.original_claim_id is not None and claim.frequency_code in ("7", "8"):
            self._retire(claim.original_claim_id, REPLACED if claim.frequency_code == "7" else VOIDED)
        previous = self._record(claim.claim_id)
        if previous is not None:
            self._unindex(claim.claim_id, previous, events=False)
        lines: tuple[tuple[str, int], ...] = ()
        if claim.frequency_code != "8":
            lines = tuple(
                (line_fingerprint(claim, line), line.line_number)
                for line, result in zip(claim.lines, decision.lines, strict=True)
                if result.rule != "claim.duplicate"
            )
        record = {
            "event_id": decision.event_id,
            "status": ACTIVE if claim.frequency_code != "8" else VOIDED,
            "lines": lines,
            "pended": decision.pended,
            "denied": any(r.outcome is Outcome.DENIED for r in decision.lines),
            "emitted": tuple(previous.get("emitted", ())) if previous else (),
        }
        self._unsaved[claim.claim_id] = record
        self._order[claim.claim_id] = None
        self._order.move_to_end(claim.claim_id)
        self._index(claim.claim_id, record)

    def mark_emitted(self, claim: Claim, decision: Decision, fingerprint: str | None = None) -> None:
        """Persist the claim's record now that its output is delivered: a redelivery is then skipped.

        Called only after the broker acknowledged the output, so "emitted" never runs
        ahead of the output itself.
        """
        self._ensure_built()
        record = self._unsaved.pop(claim.claim_id, None) or self._record(claim.claim_id)
        if record is None:  # evicted between decision and delivery (a tiny window)
            return
        emitted = [tuple(entry) for entry in record["emitted"] if entry[0] != claim.event_id]
        emitted.append((claim.event_id, decision.event_id, fingerprint))
        record["emitted"] = tuple(emitted[-EVENTS_PER_CLAIM:])
        for entry in emitted[:-EVENTS_PER_CLAIM]:
            self._emitted.pop(entry[0], None)
        self._emitted[claim.event_id] = (decision.event_id, fingerprint)
        self.claims[claim.claim_id] = record
        self._evict()

    def _retire(self, claim_id: str, status: str) -> None:
        record = self._record(claim_id)
        if record is None:
            # The original is unknown here (decided before our memory, or on another
            # partition): remember its retirement so a late original is not a duplicate source.
            record = {"event_id": None, "lines": (), "emitted": ()}
        else:
            self._unindex(claim_id, record, events=False)
        retired = {**record, "status": status}
        self._order[claim_id] = None
        if claim_id in self._unsaved:
            self._unsaved[claim_id] = retired
        else:
            self.claims[claim_id] = retired

    def _evict(self) -> None:
        while self.max_claims is not None and len(self._order) > self.max_claims:
            oldest, _ = self._order.popitem(last=False)
            unsaved, stored = self._unsaved.pop(oldest, None), self.claims.pop(oldest, None)
            record = unsaved or stored
            if record is not None:
                self._unindex(oldest, record, events=True)
            self._evictions += 1
            if self._evictions % COMPACT_EVERY == 0:
                self._compact()

    def _compact(self) -> None:
        """Copy each table whose size grew since its last copy, into one sized for its entries.

        The indexes are this object's own and are replaced. The records mapping may be
        held elsewhere too (a caller's dict, or a Faust table's store), so it is refilled
        in place from its copy.
        """
        if self._grown("order", self._order):
            self._order = OrderedDict(self._order)
            self._footprints["order"] = sys.getsizeof(self._order)
        if self._grown("emitted", self._emitted):
            self._emitted = dict(self._emitted)
            self._footprints["emitted"] = sys.getsizeof(self._emitted)
        if self._grown("owners", self._owners):
            self._owners = dict(self._owners)
            self._footprints["owners"] = sys.getsizeof(self._owners)
        records = self.claims if isinstance(self.claims, dict) else getattr(self.claims, "backing", None)
        if isinstance(records, dict) and self._grown("records", records):
            live = dict(records)
            records.clear()
            records.update(live)  # a clean copy is cloned whole: the same compact table
            self._footprints["records"] = sys.getsizeof(records)

    def _grown(self, name: str, table: dict[Any, Any]) -> bool:
        return sys.getsizeof(table) > self._footprints.get(name, 0)
