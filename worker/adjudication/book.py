"""Every shipped version of one policy, each compiled once for deciding lines."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from itertools import pairwise

from worker.adjudication.policy import HistoryRules, Policy, ReviewQueueRule
from worker.adjudication.program import Program

DATES_REMEMBERED = 4096
"""Dates of service whose version the book remembers (about eleven years of days)."""


class PolicyBook:
    """Every shipped version of one policy, chosen by date of service."""

    def __init__(self, versions: Iterable[Policy]) -> None:
        ordered = sorted(versions, key=lambda policy: policy.effective_from)
        if not ordered:
            raise ValueError("a policy book needs at least one version")
        ids = {policy.policy_id for policy in ordered}
        if len(ids) != 1:
            raise ValueError(f"a policy book holds one policy, got {sorted(ids)}")
        names = [policy.version for policy in ordered]
        if len(set(names)) != len(names):
            raise ValueError(f"version names repeat: {sorted(names)}")
        revisions = {policy.revision for policy in ordered}
        if len(revisions) != 1:
            raise ValueError(f"a policy book is one reading: its versions state revisions {sorted(revisions)}")
        if len({repr(policy.review_queues) for policy in ordered}) != 1:
            raise ValueError("a policy book is one reading: its versions state different review queues")
        if len({policy.history for policy in ordered}) != 1:
            raise ValueError("a policy book is one reading: its versions state different history rules")
        for earlier, later in pairwise(ordered):
            if earlier.effective_to is None or earlier.effective_to >= later.effective_from:
                raise ValueError(f"versions {earlier.version} and {later.version} overlap")
        self.versions: tuple[Policy, ...] = tuple(ordered)
        self.policy_id: str = ordered[0].policy_id
        self.revision: int = ordered[0].revision
        """The revision of the reading every version states (part of the output event ids)."""
        self.history: HistoryRules = ordered[0].history
        """What a member's earlier claims change, the same for every version of the book."""
        self.review_queues: dict[str, ReviewQueueRule] = dict(ordered[0].review_queues or {})
        """Queue -> who may resolve its pends and how (empty: every review is refused)."""
        self._programs = {policy.version: Program(policy) for policy in ordered}
        self._by_date: dict[date, tuple[Policy, bool]] = {}

    def program(self, policy: Policy) -> Program:
        """Return a version of the book compiled for deciding lines."""
        return self._programs[policy.version]

    def version(self, version: str) -> Policy:
        """Return a version by its name (a replay pinning it)."""
        for policy in self.versions:
            if policy.version == version:
                return policy
        raise KeyError(f"{self.policy_id} has no version {version!r}; known: {[p.version for p in self.versions]}")

    def for_date(self, day: date) -> tuple[Policy, bool]:
        """Return the version that governs a date of service, and whether it is in force.

        When none is in force, the nearest earlier version (or the first) is returned
        with False: its scope rules still say whether the line is ketamine at all.
        """
        known = self._by_date.get(day)
        if known is None:
            chosen = self.versions[0]
            for policy in self.versions:
                if policy.effective_from <= day:
                    chosen = policy
            known = (chosen, chosen.in_force(day))
            if len(self._by_date) >= DATES_REMEMBERED:
                self._by_date.clear()  # bounded; claims cluster on recent dates, so it refills fast
            self._by_date[day] = known
        return known
