"""What the worker remembers of a member's claims: redeliveries, duplicates, supersessions.

The whole persisted state is one record per member (`MutableMapping[member id, record]`): a
Faust table keyed by member id in the stream worker, whose input is re-keyed by member id so
one worker owns all of a member's claims (`worker.stream.rekey`), and a dict elsewhere. Every
question a decision asks of the history is about one member, so it is answered from that
member's record alone: no index spans members, and memory is bounded by the store's cache, not
by how much history there is.

A member record holds, in arrival order, each claim the member had within the look-back window:
its last decision's output id, its status (active, replaced, voided), the fingerprints of its
lines, its latest service date, the claim that retired it, and the input events whose outputs
were delivered (each with a fingerprint of its content, so an event id reused for other content
is told apart from a redelivery). Values are JSON-friendly so a changelog can carry them.

From revision 3 a claim also holds the authorization units its approved lines used (`units`:
the member's active claims' units are what a PA has used, so a void or replacement gives them
back by retiring the claim; a claim the window drops leaves its units in the record's `spent`),
the fingerprint of its content (`content`), the input event that carried it (`source`), and what
the history gave its decision when it gave anything (`made`: duplicates, supersessions, units
used before), so the same claim received again is given the same decision; a review that
closed its pend is kept with it too. Which lines are originals for duplicate checks is the
reading's (`HistoryRules`): from revision 3 a pharmacy line rejected at the counter is not.

An open pend's body (the pend-for-review event as published, what a review resolves) is kept
beside the record, under the member's pends key (`pends_key`), and the claim names it by event
id (`open_pend`). The record is written again with every claim of the member; the bodies, most
of a record's bytes when they were kept inside it, are written when a pend opens or closes. A
body is written before the record that names it, and dropped after the record that no longer
does, so a record never names a body the store lacks. (Records written before this kept the
body inside the claim, as `pend`; they are read as they are.)

The window is of service dates, not of arrivals: a claim is kept while its latest service date
is within `window_days` of the newest service date the member has, so what is remembered
depends on the member's claims only, never on the clock or on other members' traffic. A member
of implausible volume is bounded too (`MAX_LINES_PER_MEMBER`), oldest arrivals first.

Order across partitions: a replacement or void can arrive before the claim it names. It then
leaves a placeholder for the original, retired and naming the claim that retired it; the
original, when it comes, is decided as usual, stays retired, owns no lines for duplicate checks,
and its output says what superseded it (`superseded_by`). That is the state the claims would
have reached in order.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Mapping, MutableMapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from worker.adjudication import Claim, Decision, Line, LineDecision, Outcome
from worker.adjudication.ndc import normalize

DEFAULT_WINDOW_DAYS = 365
"""Duplicate look-back by default: a year of service dates, as payers' duplicate edits use."""

EVENTS_PER_CLAIM = 8
"""Delivered input events remembered per claim (resends of one claim id): redeliveries of
older ones are decided again and get the same output event id."""

MAX_LINES_PER_MEMBER = 20_000
"""Line fingerprints kept per member, whatever the window: bounds one record (about 1 MB in
JSON) against a producer that sends one member endless claims. Oldest arrivals go first."""

CACHED_MEMBERS = 4_096
"""Member records kept decoded between claims (the store holds them all)."""

Emitted = tuple[str, str | None]
"""An input already decided: its output event id, and the fingerprint of its content (None for
entries remembered before fingerprints were kept)."""

PENDS_KEY_SUFFIX = " pends"
"""What follows the member id in the key of the member's open pend bodies: a member id has no spaces."""

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


def pends_key(member_id: str) -> str:
    """The key of a member's open pend bodies, beside the member's record (same member, same partition)."""
    return member_id + PENDS_KEY_SUFFIX


def member_of_key(key: str) -> str:
    """The member a history key belongs to: a member's record, or its open pend bodies."""
    return key.removesuffix(PENDS_KEY_SUFFIX)


def _copy(record: dict[str, Any]) -> dict[str, Any]:
    """A member record whose claims (and list of stored pend bodies) can change without touching `record`."""
    copied = {"claims": dict(record["claims"]), "newest": record.get("newest"), "pends": list(record.get("pends", ()))}
    if record.get("spent"):
        copied["spent"] = dict(record["spent"])
    return copied


def _latest_service(claim: Claim) -> str:
    return max(line.service_date for line in claim.lines).isoformat()


class ClaimHistory:
    """A member-keyed claim memory: one record per member, nothing derived across members."""

    def __init__(
        self,
        members: MutableMapping[str, Any],
        *,
        window_days: int = DEFAULT_WINDOW_DAYS,
        max_lines_per_member: int = MAX_LINES_PER_MEMBER,
    ) -> None:
        self.members = members
        """Member id -> record; the only persisted state."""
        self.window_days = window_days
        self.max_lines_per_member = max_lines_per_member
        self._working: dict[str, dict[str, Any]] = {}
        """Records changed by decisions whose outputs are not all delivered yet."""
        self._pending: dict[str, int] = {}
        """Undelivered decisions per member in `_working`."""
        self._cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._fingerprinted: tuple[Claim, tuple[str, ...]] | None = None
        """The last claim's line fingerprints: `duplicates` and `record` ask for the same claim in turn."""

    @classmethod
    def in_memory(cls, window_days: int = DEFAULT_WINDOW_DAYS) -> ClaimHistory:
        """A history held in a dict (command line, replay, tests)."""
        return cls({}, window_days=window_days)

    def reload(self) -> None:
        """Forget the decoded records: the store's contents changed underneath (a table recovery)."""
        self._cache.clear()

    # -- records ------------------------------------------------------------------------

    def _member(self, member_id: str) -> dict[str, Any]:
        record = self._working.get(member_id)
        if record is not None:
            return record
        record = self._cache.get(member_id)
        if record is not None:
            self._cache.move_to_end(member_id)
            return record
        stored = self.members.get(member_id)
        record = _copy(stored) if stored else {"claims": {}, "newest": None, "pends": []}
        self._cache[member_id] = record
        if len(self._cache) > CACHED_MEMBERS:
            self._cache.popitem(last=False)
        return record

    def _claim(self, member_id: str, claim_id: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = self._member(member_id)["claims"].get(claim_id)
        return found

    # -- questions ----------------------------------------------------------------------

    def already_emitted(self, source_event_id: str, member_id: str) -> Emitted | None:
        """The output event id already delivered for this input event, and the input's content fingerprint."""
        for claim in self._member(member_id)["claims"].values():
            for entry in claim.get("emitted", ()):
                if entry[0] == source_event_id:
                    return (entry[1], entry[2] if len(entry) > 2 else None)
        return None

    def duplicates(self, claim: Claim) -> dict[int, str]:
        """Lines of this claim that exactly repeat a line of another active claim of the member.

        A replacement does not duplicate the claim it replaces, a claim never duplicates itself
        (a resend of the same claim id is a re-adjudication), and a claim that arrives after
        its own replacement is not a duplicate of it.
        """
        if claim.frequency_code == "8":
            return {}
        owners: dict[str, tuple[str, int]] = {}
        for claim_id, held in self._member(claim.member_id)["claims"].items():
            if held.get("status", ACTIVE) != ACTIVE or claim_id in (claim.claim_id, claim.original_claim_id):
                continue
            if held.get("original") == claim.claim_id:
                continue
            for fingerprint, line_number in held.get("lines", ()):
                owners.setdefault(fingerprint, (claim_id, line_number))
        found: dict[int, str] = {}
        for line, fingerprint in zip(claim.lines, self._fingerprints(claim), strict=True):
            owner = owners.get(fingerprint)
            if owner is not None:
                found[line.line_number] = f"claim {owner[0]} line {owner[1]}"
        return found

    def units_used(self, claim: Claim) -> dict[str, Decimal]:
        """Units of the claim's authorizations that the member's other claims used (revision 3, item 12).

        Counted over the member's active claims: a voided or replaced claim gave its units back,
        the claim itself (decided again) and the claim a replacement or void retires are left
        out, and so are claims the look-back window dropped (their units are kept in `spent`).
        """
        wanted = {auth.auth_id for auth in claim.prior_authorizations if auth.authorized_units is not None}
        if not wanted:
            return {}
        member = self._member(claim.member_id)
        retiring = claim.original_claim_id if claim.frequency_code in ("7", "8") else None
        used: dict[str, Decimal] = {}
        for auth_id, units in (member.get("spent") or {}).items():
            if auth_id in wanted:
                used[auth_id] = used.get(auth_id, _NO_UNITS) + Decimal(units)
        for claim_id, held in member["claims"].items():
            if held.get("status", ACTIVE) != ACTIVE or claim_id in (claim.claim_id, retiring):
                continue
            for auth_id, units in (held.get("units") or {}).items():
                if auth_id in wanted:
                    used[auth_id] = used.get(auth_id, _NO_UNITS) + Decimal(units)
        return {auth_id: units for auth_id, units in used.items() if units}

    def earlier_decision(self, claim: Claim) -> dict[str, Any] | None:
        """What the history holds of this claim id for the member, when it holds its content (revision 3, item 13).

        None when the claim id is new, or known only as a placeholder (retired before it came) or
        from a record written before contents were kept.
        """
        held = self._claim(claim.member_id, claim.claim_id)
        return held if held is not None and held.get("content") else None

    def superseded_event(self, claim: Claim) -> str | None:
        """The output event id of the decision a replacement or void supersedes, if known."""
        if claim.original_claim_id is None or claim.frequency_code == "1":
            return None
        held = self._claim(claim.member_id, claim.original_claim_id)
        return str(held["event_id"]) if held and held.get("event_id") else None

    def superseded_by(self, claim: Claim) -> str | None:
        """The claim that already replaced or voided this one (it arrived first, or earlier)."""
        held = self._claim(claim.member_id, claim.claim_id)
        if held is None or held.get("status", ACTIVE) == ACTIVE:
            return None
        by = held.get("by")
        return str(by) if by else None

    def _fingerprints(self, claim: Claim) -> tuple[str, ...]:
        last = self._fingerprinted
        if last is not None and last[0] is claim:
            return last[1]
        fingerprints = tuple(line_fingerprint(claim, line) for line in claim.lines)
        self._fingerprinted = (claim, fingerprints)
        return fingerprints

    def sizes(self) -> dict[str, int]:
        """Entries held in memory: decoded records, and those waiting for delivery."""
        return {"cached_members": len(self._cache), "working_members": len(self._working)}

    # -- changes ------------------------------------------------------------------------

    def _working_member(self, member_id: str) -> dict[str, Any]:
        member = self._working.get(member_id)
        if member is None:
            member = _copy(self._member(member_id))
            self._working[member_id] = member
            self._cache.pop(member_id, None)
        self._pending[member_id] = self._pending.get(member_id, 0) + 1
        return member

    def record_again(self, claim: Claim) -> None:
        """Count a claim given the decision it already had (revision 3, item 13): its record does not change.

        Only its delivery is awaited, so `mark_emitted` can remember the new input event as
        delivered (a redelivery of it is then skipped).
        """
        self._working_member(claim.member_id)

    def record(
        self,
        claim: Claim,
        decision: Decision,
        *,
        rejected_pharmacy_lines_are_originals: bool = True,
        content: str | None = None,
        made: Mapping[str, Any] | None = None,
    ) -> None:
        """Remember a decided claim before its output is delivered (in memory only).

        Its lines count for duplicates from now on, so a duplicate later in the same batch
        is caught, and so do the authorization units it used. The member's record is
        persisted by `mark_emitted`, once the output is delivered.

        Args:
            claim: the claim decided.
            decision: its decision.
            rejected_pharmacy_lines_are_originals: false from revision 3 (item 11): a pharmacy
                line rejected with an NCPDP code is no original for later duplicate checks.
            content: the claim's content fingerprint, kept to know the same claim again (item 13).
            made: what the history gave the decision (duplicates, supersessions, units used
                before), kept with the claim's input event id to give the same decision again.
        """
        member = self._working_member(claim.member_id)
        claims: dict[str, Any] = member["claims"]
        latest = _latest_service(claim)
        if claim.original_claim_id is not None and claim.frequency_code in ("7", "8"):
            status = REPLACED if claim.frequency_code == "7" else VOIDED
            # An original not seen yet gets a placeholder: when it comes, it is known to be retired.
            original = claims.pop(claim.original_claim_id, None) or {"event_id": None, "lines": (), "last": latest}
            claims[claim.original_claim_id] = {**original, "status": status, "by": claim.claim_id}
        previous = claims.pop(claim.claim_id, None)
        lines: tuple[tuple[str, int], ...] = ()
        if claim.frequency_code != "8":
            lines = tuple(
                (fingerprint, line.line_number)
                for line, result, fingerprint in zip(
                    claim.lines, decision.lines, self._fingerprints(claim), strict=True
                )
                if result.rule != "claim.duplicate"  # a duplicate is not an original for later checks
                and (rejected_pharmacy_lines_are_originals or not _rejected_at_the_counter(claim, result))
            )
        held: dict[str, Any] = {
            "event_id": decision.event_id,
            "status": ACTIVE if claim.frequency_code != "8" else VOIDED,
            "lines": lines,
            "last": latest,
            "pended": decision.pended,
            "denied": any(r.outcome is Outcome.DENIED for r in decision.lines),
            "emitted": tuple(previous.get("emitted", ())) if previous else (),
        }
        if claim.original_claim_id is not None and claim.frequency_code in ("7", "8"):
            held["original"] = claim.original_claim_id
        if decision.authorization_units:
            held["units"] = {auth_id: format(units, "f") for auth_id, units in decision.authorization_units}
        if content is not None:
            held["content"] = content
            held["source"] = claim.event_id  # the input that carried the claim: its decision names it
            if made:
                held["made"] = dict(made)
        if previous is not None and previous.get("status", ACTIVE) != ACTIVE and previous.get("by"):
            held["status"], held["by"] = previous["status"], previous["by"]  # retired before it came
        claims[claim.claim_id] = held  # re-inserted: arrival order is the order of the last decision
        newest = member.get("newest")
        member["newest"] = latest if newest is None or latest > newest else newest
        self._prune(member)

    def mark_emitted(
        self, claim: Claim, decision: Decision, fingerprint: str | None = None, *, pend: dict[str, Any] | None = None
    ) -> None:
        """Persist the member's record now that this claim's output is delivered: a redelivery is then skipped.

        Called only after the broker acknowledged the output, so "emitted" never runs ahead
        of the output itself. (The record written may already hold later claims of the member
        decided in the same batch: if those are never delivered, they are decided again, the
        same way, when their inputs come back.)
        """
        member = self._working.get(claim.member_id)
        if member is None:  # the stream marks only what it recorded; tolerate a direct call
            member = self._member(claim.member_id)
        held = member["claims"].get(claim.claim_id)
        opening = None
        if held is not None:
            emitted = [tuple(entry) for entry in held.get("emitted", ()) if entry[0] != claim.event_id]
            emitted.append((claim.event_id, decision.event_id, fingerprint))
            held["emitted"] = tuple(emitted[-EVENTS_PER_CLAIM:])
            if pend is not None and pend.get("event_id") == decision.event_id:
                held["open_pend"] = decision.event_id  # its body, what a review resolves, is kept beside the record
                opening = pend
        self._persist(claim.member_id, member, opening)
        if self._settled(claim.member_id):
            self._cache[claim.member_id] = member
            if len(self._cache) > CACHED_MEMBERS:
                self._cache.popitem(last=False)

    # -- pends and reviews -----------------------------------------------------------

    def claim_state(self, member_id: str, claim_id: str) -> dict[str, Any] | None:
        """What the history holds of one claim of a member (None when nothing): for a review to match.

        Its open pend, if any, is under `pend` (the body as published), wherever it is stored.
        """
        held = self._claim(member_id, claim_id)
        if held is None or not held.get("open_pend"):
            return held
        return {**held, "pend": self._pend_bodies(member_id).get(held["open_pend"])}

    def _pend_bodies(self, member_id: str) -> dict[str, Any]:
        """The member's stored open pend bodies, by pend event id."""
        stored: dict[str, Any] | None = self.members.get(pends_key(member_id))
        return dict(stored) if stored else {}

    def _persist(self, member_id: str, member: dict[str, Any], opening: dict[str, Any] | None = None) -> None:
        """Write a member's record, with the pend body it opens (`opening`) before it and the bodies it closed after.

        The record lists the bodies stored (`pends`), so writing it needs no read unless a pend
        opened or closed.
        """
        stored = set(member.get("pends", ()))
        wanted = {held["open_pend"] for held in member["claims"].values() if held.get("open_pend")}
        if opening is not None:
            bodies = self._pend_bodies(member_id)
            bodies[opening["event_id"]] = opening
            self.members[pends_key(member_id)] = bodies  # first: the record about to name it finds it
            stored.add(opening["event_id"])
        member["pends"] = sorted(stored)
        self.members[member_id] = member
        closed = stored - wanted
        if closed:
            # After the record that no longer names them: a review never finds its pend's body gone.
            bodies = {event_id: body for event_id, body in self._pend_bodies(member_id).items() if event_id in wanted}
            if bodies:
                self.members[pends_key(member_id)] = bodies
            elif pends_key(member_id) in self.members:
                del self.members[pends_key(member_id)]
            member["pends"] = sorted(wanted)  # written with the member's next record

    def mark_resolved(
        self,
        member_id: str,
        claim_id: str,
        review_event_id: str,
        output_event_id: str,
        *,
        units: Iterable[tuple[str, Decimal]] = (),
        review: Mapping[str, Any] | None = None,
    ) -> None:
        """Persist a review's final adjudication: the pend is closed, and the claim's decision is now the final one.

        Called once the final adjudication is delivered. A later replacement or void of the claim
        supersedes that final adjudication; a redelivered review is told apart by its event id.

        Args:
            member_id: the claim's member.
            claim_id: the claim.
            review_event_id: the review applied.
            output_event_id: the final adjudication's event id.
            units: authorization units the lines the reviewer approved use (revision 3, item 12).
            review: the review as JSON values, kept when the claim's content is: the same claim
                received again gets this final adjudication again (item 13).
        """
        member = self._member(member_id)
        held = member["claims"].get(claim_id)
        if held is None:
            return
        inline = held.pop("pend", None) or {}  # a record written before bodies were kept beside it
        pend_id = held.pop("open_pend", None) or inline.get("event_id")
        held["event_id"] = output_event_id
        held["pended"] = False
        held["review"] = {"review": review_event_id, "output": output_event_id, "pend": pend_id}
        if review is not None and held.get("content"):
            held["review"]["decision"] = dict(review)
        spent = dict(held.get("units") or {})
        for auth_id, used in units:
            spent[auth_id] = format(Decimal(spent.get(auth_id, "0")) + used, "f")
        if spent:
            held["units"] = spent
        self._persist(member_id, member)  # (a working record is persisted as `mark_emitted` does)

    def forget_undelivered(self, claim: Claim) -> None:
        """A decision that will not be delivered: drop the member's unsaved changes once none is left."""
        self._settled(claim.member_id)

    def _settled(self, member_id: str) -> bool:
        """Count one of the member's decisions as done; True (and the working record dropped) when none is left."""
        left = self._pending.get(member_id, 1) - 1
        if left > 0:
            self._pending[member_id] = left
            return False
        self._pending.pop(member_id, None)
        self._working.pop(member_id, None)
        return True

    def _prune(self, member: dict[str, Any]) -> None:
        claims: dict[str, Any] = member["claims"]
        cutoff = (date.fromisoformat(member["newest"]) - timedelta(days=self.window_days)).isoformat()
        for claim_id in [c for c, held in claims.items() if held.get("last", cutoff) < cutoff]:
            _keep_units(member, claims.pop(claim_id))
        total = sum(len(held.get("lines", ())) for held in claims.values())
        while total > self.max_lines_per_member and len(claims) > 1:
            oldest = claims.pop(next(iter(claims)))
            _keep_units(member, oldest)
            total -= len(oldest.get("lines", ()))


_NO_UNITS = Decimal(0)


def _rejected_at_the_counter(claim: Claim, result: LineDecision) -> bool:
    """A pharmacy line answered with an NCPDP reject code: the plan never captured it (revision 3, item 11)."""
    return claim.claim_type == "pharmacy" and bool(result.ncpdp_reject)


def _keep_units(member: dict[str, Any], dropped: Mapping[str, Any]) -> None:
    """Fold the authorization units of a claim the window drops into the member's `spent` (still used)."""
    if dropped.get("status", ACTIVE) != ACTIVE or not dropped.get("units"):
        return
    spent = member.setdefault("spent", {})
    for auth_id, units in dropped["units"].items():
        spent[auth_id] = format(Decimal(spent.get(auth_id, "0")) + Decimal(units), "f")
