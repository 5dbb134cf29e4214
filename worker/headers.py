"""Kafka headers of the outputs: content type, CloudEvents binary mode, and the W3C trace context.

Every output (decision, pend, dead letter; live or replayed) carries `content-type` and the
CloudEvents 1.0 attributes in Kafka binary mode (`ce_specversion`, `ce_id` = the event id,
`ce_source`, `ce_type` = the event type, `ce_time`), so a consumer can route and de-duplicate
without parsing the body. A `traceparent` on the input is carried to its output and its audit
line, when it is a well-formed W3C trace context: nothing else of a producer's headers is echoed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from claims_contracts.v1 import AdjudicationEvent, DeadLetterRecord, PendForReviewEvent
from worker.translate import instant

Headers = list[tuple[str, bytes]]

TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
"""W3C Trace Context `traceparent`: version, trace id, parent id, flags, in lower-case hex."""


def traceparent_of(headers: Iterable[tuple[str, bytes | None]] | None) -> str | None:
    """The input's `traceparent`, when it has a well-formed one."""
    for name, value in headers or ():
        if name.lower() == "traceparent" and value is not None:
            text = value.decode("ascii", errors="replace").strip()
            return text if TRACEPARENT.fullmatch(text) else None
    return None


def output_headers(
    output: AdjudicationEvent | PendForReviewEvent | DeadLetterRecord, *, source: str, traceparent: str | None = None
) -> Headers:
    """The headers of one output event: its id, type and time, where it came from, and the trace."""
    time = output.dead_lettered_at if isinstance(output, DeadLetterRecord) else output.decided_at
    return headers_of(
        str(output.event_id),
        output.event_type,
        instant(time),
        source=source,
        traceparent=traceparent,
    )


def body_headers(body: Mapping[str, Any], *, source: str, traceparent: str | None = None) -> Headers:
    """The headers of a decision's output body (`worker.translate.body_from_decision`), as `output_headers`."""
    return headers_of(body["event_id"], body["event_type"], body["decided_at"], source=source, traceparent=traceparent)


def headers_of(event_id: str, event_type: str, time: str, *, source: str, traceparent: str | None = None) -> Headers:
    """The headers of an output event, from its id, type and RFC 3339 time."""
    headers: Headers = [
        ("content-type", b"application/json"),
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_source", source.encode()),
        ("ce_type", event_type.encode()),
        ("ce_time", time.encode()),
    ]
    if traceparent is not None:
        headers.append(("traceparent", traceparent.encode()))
    return headers
