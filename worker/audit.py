"""The audit log: one canonical JSON line per decision, lifecycle lines, no PHI.

The only module that uses structlog. Every line passes an allow-list: a key
that is not listed is dropped, whatever a caller passes, so a member's name or
a drug description cannot reach the log by accident.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import threading
import time
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any, TextIO

import orjson
import structlog

from worker.processor import DeadLettered, Decided
from worker.resolution import Resolved

ALLOWED_KEYS = frozenset(
    {
        # envelope
        "timestamp",
        "level",
        "event",
        "logger",
        "service",
        "pid",
        # identifiers that are needed (not PHI under the minimum-necessary rule we apply)
        "claim_id",
        "member_id",
        "source_event_id",
        "output_event_id",
        "dead_letter_event_id",
        "received_again_as",
        "review_keys",
        # where it came from and went
        "source_topic",
        "source_partition",
        "source_offset",
        "output_topic",
        "traceparent",
        # the decision
        "policy_id",
        "policy_versions",
        "policy_revision",
        "pinned",
        "outcome",
        "queue",
        "lines",
        "rule_trace",
        "replaces_claim_id",
        "voids_claim_id",
        "supersedes_event_id",
        "pend_event_id",
        "review_event_id",
        "reviewer_id",
        "pend_age_seconds",
        "kind",
        "reason",
        "errors",
        "latency_ms",
        "batch_size",
        # lifecycle
        "partitions",
        "group_id",
        "input_topic",
        "broker",
        "processing_guarantee",
        "version",
        "web_port",
        "duration_s",
        "events",
        "error",
        # offset continuity (worker.offset_gap)
        "partition",
        "start_offset",
        "end_offset",
        "records",
    }
)
"""Keys an audit line may carry. Anything else is dropped."""

LINE_KEYS = frozenset({"line_number", "outcome", "rule", "sections", "carc", "rarc", "ncpdp_reject", "group_code"})
TRACE_KEYS = frozenset({"line_number", "rule", "sections", "evidence"})
ERROR_KEYS = frozenset({"path", "message", "type"})


_NESTED = {"lines": LINE_KEYS, "rule_trace": TRACE_KEYS, "errors": ERROR_KEYS}
"""Keys whose values are lists of entries, and the keys each entry may carry."""


def _filter_nested(allowed: frozenset[str], value: Any) -> Any:
    if not isinstance(value, list):
        return value
    # An entry whose keys are all allowed is kept as it is (a subset test in C): rebuilding
    # every entry of every line was most of the cost of a decision's audit line.
    return [
        item if item.keys() <= allowed else {k: v for k, v in item.items() if k in allowed}
        for item in value
        if isinstance(item, Mapping)
    ]


def allow_list(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Structlog processor: keep only allow-listed keys (nested lists filtered too)."""
    if event_dict.keys() <= ALLOWED_KEYS:
        kept = dict(event_dict)
    else:
        kept = {key: value for key, value in event_dict.items() if key in ALLOWED_KEYS}
    for key, allowed in _NESTED.items():
        value = kept.get(key)
        if value is not None:
            kept[key] = _filter_nested(allowed, value)
    return kept


def _stamp_service(service: str, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    event_dict["service"] = service  # structlog hands each line a dict of its own
    return event_dict


def _render(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> str:
    return orjson.dumps(event_dict, option=orjson.OPT_SORT_KEYS).decode()


class AuditFile:
    """Where structlog writes the audit lines: each written and flushed, or a batch's held and written at once.

    Flushing every line cost a write call a decision; `hold` lets a batch's lines share one,
    written before the batch's inputs are acknowledged.
    """

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._lock = threading.Lock()
        self._held: list[str] | None = None

    def msg(self, message: str) -> None:
        """Write one line (or hold it, inside `hold`)."""
        held = self._held
        if held is not None:
            held.append(message)
            return
        with self._lock:
            self._file.write(message + "\n")
            self._file.flush()

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the lines written inside; write them, in order, with one flush on the way out."""
        if self._held is not None:  # already holding: the outer hold writes them
            yield
            return
        held: list[str] = []
        self._held = held
        try:
            yield
        finally:
            self._held = None
            if held:
                with self._lock:
                    self._file.write("\n".join(held) + "\n")
                    self._file.flush()


_log: Any = None
"""The audit logger of the current configuration (`configure`)."""

_file: AuditFile | None = None
"""Where it writes."""


def configure(stream: TextIO | None = None, *, level: str = "info", service: str = "claims-worker") -> None:
    """Configure structlog and stdlib logging to write allow-listed JSON lines.

    Args:
        stream: where to write; stdout by default.
        level: the lowest level written.
        service: the service name stamped on every line.
    """
    out = stream if stream is not None else sys.stdout
    numeric = logging.getLevelName(level.upper())
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        functools.partial(_stamp_service, service),
        allow_list,
        _render,
    ]
    global _log, _file  # one logger per configuration, bound once: binding it per line was a real share of each line
    _file = AuditFile(out)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=lambda *_args: _file,
        cache_logger_on_first_use=True,
    )
    _log = structlog.get_logger("audit")
    # Library logs (faust, aiokafka) go through the same allow-list: message text and logger only.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, allow_list, _render],
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.WARNING))


def _logger() -> Any:
    return _log if _log is not None else structlog.get_logger("audit")


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Write the audit lines of the block at its end, in one go: a batch's lines, one write (see `AuditFile`)."""
    if _file is None:
        yield
        return
    with _file.hold():
        yield


def lifecycle(event: str, **fields: Any) -> None:
    """Write a lifecycle line: start, assignment, revocation, stop."""
    _logger().info(event, **fields)


def decision_fields(decided: Decided) -> dict[str, Any]:
    """The canonical fields of one decision (claim, policy, lines, trace, codes), from its output body."""
    body = decided.body
    policy = body["policy"]
    return {
        "claim_id": body["claim_id"],
        "member_id": body["member_id"],
        "source_event_id": body["source_event_id"],
        "output_event_id": body["event_id"],
        "policy_id": policy["policy_id"],
        "policy_versions": policy["versions"],
        "policy_revision": policy["revision"],
        "pinned": decided.decision.pinned,
        "outcome": body["event_type"],
        "queue": body.get("queue"),
        "replaces_claim_id": body["replaces_claim_id"],
        "voids_claim_id": body["voids_claim_id"],
        "supersedes_event_id": body["supersedes_event_id"],
        "lines": [
            {
                "line_number": line["line_number"],
                "outcome": line["outcome"],
                "rule": line["rule"],
                "sections": line["policy_sections"],
                "carc": line["carc"],
                "rarc": line["rarc"],
                "ncpdp_reject": line["ncpdp_reject"],
                "group_code": line["group_code"],
            }
            for line in body["lines"]
        ],
        "rule_trace": [
            {
                "line_number": hit["line_number"],
                "rule": hit["rule"],
                "sections": hit["policy_sections"],
                "evidence": hit["evidence"],
            }
            for hit in body["trace"]
        ],
    }


def record_decision(
    decided: Decided, *, source: Mapping[str, Any], output_topic: str, started: float, now: float | None = None
) -> None:
    """Write the canonical line of one delivered decision.

    Args:
        decided: the decision.
        source: source_topic, source_partition, source_offset.
        output_topic: where the event was published.
        started: `time.perf_counter()` when the input was taken.
        now: `time.perf_counter()` at delivery; taken now by default.
    """
    end = time.perf_counter() if now is None else now
    again = {"received_again_as": decided.claim.event_id} if decided.again else {}
    _logger().info(
        "claim.decided",
        **decision_fields(decided),
        **again,  # the input that carried the same claim again (revision 3, item 13)
        **source,
        output_topic=output_topic,
        latency_ms=round((end - started) * 1000, 3),
    )


def record_review(resolved: Resolved, *, source: Mapping[str, Any], output_topic: str) -> None:
    """Write the canonical line of one pend closed by a review: what closed it, who, and how long it waited."""
    event, review = resolved.event, resolved.review
    _logger().info(
        "claim.review_resolved",
        claim_id=event.claim_id,
        member_id=event.member_id,
        source_event_id=str(event.source_event_id),
        output_event_id=str(event.event_id),
        pend_event_id=str(review.pend_event_id),
        review_event_id=str(review.event_id),
        reviewer_id=review.reviewer_id,
        queue=resolved.queue,
        pend_age_seconds=round(resolved.pend_age_seconds, 3),
        policy_id=event.policy.policy_id,
        policy_versions=event.policy.versions,
        policy_revision=event.policy.revision,
        outcome=event.event_type,
        lines=[
            {"line_number": line.line_number, "outcome": line.outcome.value, "rule": line.rule, "carc": line.carc}
            for line in event.lines
        ],
        **source,
        output_topic=output_topic,
    )


def record_dead_letter(dead: DeadLettered, *, source: Mapping[str, Any], output_topic: str) -> None:
    """Write the line of one dead-lettered input: kind, reason, paths. Never its bytes."""
    record = dead.record
    _logger().warning(
        "claim.dead_lettered",
        dead_letter_event_id=str(record.event_id),
        kind=record.kind.value,
        reason=record.reason,
        errors=[error.model_dump() for error in record.errors],
        **source,
        output_topic=output_topic,
    )
