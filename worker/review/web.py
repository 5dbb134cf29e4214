"""The reviewer's workbench: worklists of open pends, a claim page, and the form that publishes a review.

`claims-worker review serve` runs it. It reads the output topics into its projection (SQLite) in
the background, renders pages from it, and publishes each review decision to the reviews topic;
the worker turns it into the final adjudication, and the claim leaves the worklist when that
event reaches the projection. It binds to loopback unless told otherwise, answers only
authenticated reviewers (`worker.review.identity`), and checks a CSRF token on every form.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Any

from aiohttp import web
from aiokafka import TopicPartition
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from pydantic import ValidationError

from claims_contracts.v1 import ReviewDecisionEvent
from worker.adjudication import CodeTable, PolicyBook
from worker.connection import KafkaConnection
from worker.review import pages
from worker.review.identity import Identity
from worker.review.projection import Projection
from worker.settings import Settings

PUBLIC = ("/login", "/static/", "/healthz", "/metrics")
"""Paths answered without a reviewer (no PHI on them)."""
AGES = ((3600, "under_1h"), (86400, "1h_to_1d"), (7 * 86400, "1d_to_7d"), (None, "over_7d"))
"""The age buckets of the open-pends gauge."""
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # the pages hold PHI
}


def utc_now() -> datetime:
    """The workbench's clock."""
    return datetime.now(UTC)


@dataclass
class Workbench:
    """What the pages need: settings, the projection, who is asking, and the policy's words."""

    settings: Settings
    projection: Projection
    identity: Identity
    policies: PolicyBook
    codes: CodeTable
    clock: Callable[[], datetime] = utc_now
    publish: Callable[[str, bytes, bytes], Awaitable[None]] | None = None
    """Send a review (topic, key, value) and wait for the broker's acknowledgement."""
    sections: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.sections = {name: text for policy in self.policies.versions for name, text in policy.sections.items()}


BENCH = web.AppKey("bench", Workbench)
"""Where the application keeps its workbench."""


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def make_app(bench: Workbench) -> web.Application:
    """The aiohttp application (without the Kafka clients: `serve` adds them)."""

    @web.middleware
    async def guard(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
        if not request.path.startswith(PUBLIC) and bench.identity.reviewer(request) is None:
            if bench.identity.trusted_header is not None:
                response: web.StreamResponse = web.Response(status=401, text="not authenticated")
            else:
                response = web.HTTPSeeOther("/login")
        else:
            response = await handler(request)
        response.headers.update(HEADERS)
        return response

    app = web.Application(middlewares=[guard], client_max_size=64 * 1024)
    app[BENCH] = bench
    app.router.add_get("/", queue_page)
    app.router.add_get("/pends/{pend}", claim_page)
    app.router.add_post("/pends/{pend}/review", post_review)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_get("/static/style.css", style)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


def _bench(request: web.Request) -> Workbench:
    return request.app[BENCH]


async def queue_page(request: web.Request) -> web.Response:
    """The worklists."""
    bench = _bench(request)
    body = pages.queues(bench.projection.open_pends(), bench.clock())
    return _html(pages.page("Pend queues", body, bench.identity.reviewer(request)))


async def claim_page(request: web.Request) -> web.Response:
    """One pended claim, and the review form while it is open."""
    bench = _bench(request)
    reviewer = bench.identity.reviewer(request)
    assert reviewer is not None  # noqa: S101 - the middleware let only reviewers through
    found = bench.projection.pend(request.match_info["pend"])
    if found is None:
        return _html(pages.page("Unknown pend", "<p>No such pend.</p>", reviewer), 404)
    pend, state = found
    target = f"/pends/{pend['event_id']}/review"
    form = pages.review_form(pend, bench.codes, bench.identity.csrf(reviewer, target)) if state == "open" else None
    notice = None
    if request.query.get("sent"):
        notice = "Review sent. The claim leaves the queue when the worker publishes its final adjudication."
    body = pages.claim(pend, state, bench.sections, bench.codes, form, notice)
    return _html(pages.page(f"Claim {pend['claim_id']}", body, reviewer))


async def post_review(request: web.Request) -> web.StreamResponse:
    """Publish the reviewer's decision on the pended lines."""
    bench = _bench(request)
    reviewer = bench.identity.reviewer(request)
    assert reviewer is not None  # noqa: S101 - the middleware let only reviewers through
    pend_id = request.match_info["pend"]
    form = await request.post()
    if not bench.identity.csrf_ok(reviewer, request.path, str(form.get("csrf", ""))):
        return _html(pages.page("Refused", "<p>The form's token is not valid; reload the page.</p>", reviewer), 403)
    found = bench.projection.pend(pend_id)
    if found is None or found[1] != "open":
        return _html(pages.page("Not open", "<p>This pend is not open any more.</p>", reviewer), 409)
    pend = found[0]
    lines = []
    for line in pend["lines"]:
        if line["outcome"] != "pended":
            continue
        n = int(line["line_number"])
        outcome = str(form.get(f"outcome-{n}", ""))
        entry: dict[str, Any] = {"line_number": n, "outcome": outcome}
        if outcome == "denied":
            entry["carc"] = [str(form.get(f"carc-{n}", ""))]
            rarc = str(form.get(f"rarc-{n}", ""))
            entry["rarc"] = [rarc] if rarc else []
        lines.append(entry)
    try:
        review = ReviewDecisionEvent.model_validate(
            {
                "schema_version": 1,
                "event_id": str(uuid.uuid4()),
                "pend_event_id": pend_id,
                "claim_id": pend["claim_id"],
                "member_id": pend["member_id"],
                "reviewer_id": reviewer,  # from the authenticated request, never from the form
                "decided_at": bench.clock().isoformat(),
                "lines": lines,
            }
        )
    except ValidationError as error:
        problems = "".join(f"<li>{escape(e['msg'])}</li>" for e in error.errors(include_input=False))
        return _html(pages.page("Not sent", f"<ul>{problems}</ul>", reviewer), 422)
    assert bench.publish is not None  # noqa: S101 - `serve` wires the producer
    await bench.publish(bench.settings.reviews_topic, review.member_id.encode(), review.model_dump_json().encode())
    bench.projection.mark_sent(pend_id, str(review.event_id), reviewer, bench.clock())
    raise web.HTTPSeeOther(f"/pends/{pend_id}?sent=1")


async def login_page(request: web.Request) -> web.Response:
    """The token sign-in form."""
    return _html(pages.sign_in())


async def login(request: web.Request) -> web.StreamResponse:
    """Sign in with a token from the operator's token file."""
    bench = _bench(request)
    form = await request.post()
    response = web.HTTPSeeOther("/")
    if bench.identity.sign_in(str(form.get("token", "")), response) is None:
        return _html(pages.sign_in("Unknown token."), 401)
    return response


async def style(request: web.Request) -> web.Response:
    """The one style sheet."""
    return web.Response(text=pages.STYLE, content_type="text/css")


async def healthz(request: web.Request) -> web.Response:
    """Alive."""
    return web.Response(text="ok\n")


async def metrics(request: web.Request) -> web.Response:
    """Open pends by queue and age, and the oldest pend's age per queue, from the projection."""
    bench = _bench(request)
    now = bench.clock()
    registry = CollectorRegistry()
    opened = Gauge("claims_open_pends", "Open pends, by queue and age.", ["queue", "age"], registry=registry)
    oldest = Gauge(
        "claims_oldest_open_pend_seconds", "Age of the oldest open pend, by queue.", ["queue"], registry=registry
    )
    longest: dict[str, float] = {}
    for pend in bench.projection.open_pends():
        waited = (now - pend.decided_at).total_seconds()
        bucket = next(name for limit, name in AGES if limit is None or waited < limit)
        opened.labels(pend.queue, bucket).inc()
        longest[pend.queue] = max(longest.get(pend.queue, 0.0), waited)
    for queue, waited in longest.items():
        oldest.labels(queue).set(waited)
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def feed(settings: Settings, projection: Projection, stop: asyncio.Event) -> None:
    """Read the output topics into the projection until `stop` is set."""
    connection = KafkaConnection.from_settings(settings)
    consumer = connection.consumer(group_id=None, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        wanted = (settings.pended_topic, settings.adjudicated_topic)
        parts = [
            TopicPartition(topic, part)
            for topic in wanted
            for part in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(parts)
        known = projection.next_offsets()
        for tp in parts:
            if (tp.topic, tp.partition) in known:
                consumer.seek(tp, known[(tp.topic, tp.partition)])
            else:
                await consumer.seek_to_beginning(tp)
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            records = [(tp.topic, tp.partition, m.offset, m.value or b"") for tp, ms in batch.items() for m in ms]
            if records:
                projection.apply(records)
    finally:
        await consumer.stop()


@contextlib.asynccontextmanager
async def kafka_clients(bench: Workbench) -> AsyncIterator[None]:
    """The review producer and the projection feed, for the life of the server."""
    connection = KafkaConnection.from_settings(bench.settings)
    # acks=all; no idempotent producer (a resend is harmless: the worker applies a review once, by its event id).
    producer = connection.producer(acks="all")
    await producer.start()

    async def publish(topic: str, key: bytes, value: bytes) -> None:
        await producer.send_and_wait(topic, value, key=key)

    bench.publish = publish
    stop = asyncio.Event()
    task = asyncio.create_task(feed(bench.settings, bench.projection, stop))
    try:
        yield
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
        await producer.stop()


async def serve(bench: Workbench, host: str, port: int, ready: Callable[[int], None] | None = None) -> None:
    """Run the workbench until cancelled (SIGTERM, SIGINT)."""
    async with kafka_clients(bench):
        runner = web.AppRunner(make_app(bench), access_log=None)  # an access log would hold claim ids in URLs
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        if ready is not None:
            ready(port)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
