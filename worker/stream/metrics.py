"""Prometheus metrics of the worker, in a registry of its own.

Labels carry outcomes, rules and kinds: bounded sets, never identifiers or PHI.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """The worker's counters, histogram and gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.events_in = Counter("claims_events_in", "Claim events read.", ["topic"], registry=self.registry)
        self.decisions = Counter(
            "claims_decisions", "Decision events published, by event type.", ["event_type"], registry=self.registry
        )
        self.line_outcomes = Counter(
            "claims_line_outcomes", "Lines decided, by outcome and rule.", ["outcome", "rule"], registry=self.registry
        )
        self.dead_letters = Counter(
            "claims_dead_letters", "Inputs dead-lettered, by kind.", ["kind"], registry=self.registry
        )
        self.redelivered = Counter(
            "claims_redelivered", "Inputs already decided (same event id), not published again.", registry=self.registry
        )
        self.decided_again = Counter(
            "claims_decided_again",
            "Claims received again under a new event id (same claim id and content): the decision they"
            " already had, published again.",
            registry=self.registry,
        )
        self.rekeyed = Counter(
            "claims_rekeyed",
            "Inputs forwarded to their member's partition of the repartition topic.",
            registry=self.registry,
        )
        self.in_place = Counter(
            "claims_decided_in_place",
            "Inputs already on their member's partition, decided where they were read (no re-keying hop).",
            registry=self.registry,
        )
        self.pends_opened = Counter(
            "claims_pends_opened", "Pend-for-review events published, by queue.", ["queue"], registry=self.registry
        )
        self.reviews = Counter(
            "claims_reviews_resolved",
            "Pends closed by a review decision (final adjudication published), by queue.",
            ["queue"],
            registry=self.registry,
        )
        self.pend_age = Histogram(
            "claims_pend_age_at_review_seconds",
            "From a pend's decision to the review that closed it, by queue.",
            ["queue"],
            buckets=(60, 600, 3600, 4 * 3600, 24 * 3600, 3 * 24 * 3600, 7 * 24 * 3600, 14 * 24 * 3600, 30 * 24 * 3600),
            registry=self.registry,
        )
        self.latency = Histogram(
            "claims_processing_seconds",
            "From taking an input to its output being acknowledged by the broker.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.lag = Gauge(
            "claims_consumer_lag",
            "Messages behind the end of each input partition.",
            ["partition"],
            registry=self.registry,
        )
        self.offset_gaps = Counter(
            "claims_offset_gaps",
            "Skipped input offset ranges found and read back from the broker.",
            registry=self.registry,
        )
        self.gap_records = Counter(
            "claims_gap_records", "Input records recovered from skipped offset ranges.", registry=self.registry
        )
        self.changelog_refused = Counter(
            "claims_changelog_refused",
            "History table writes the changelog topic refused for their size (kept in the local store only).",
            registry=self.registry,
        )
        self.ready = Gauge("claims_ready", "1 when the worker is ready to process claims.", registry=self.registry)
