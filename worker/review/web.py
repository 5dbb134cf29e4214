"""The reviewer's workbench: worklists of open pends, a claim page, and the form that publishes a review.

`claims-worker review serve` runs it. It reads the output topics into its projection (SQLite) in
the background, renders pages from it, and publishes each review decision, signed
(`worker.signatures`), to the reviews topic; the worker turns it into the final adjudication,
and the claim leaves the worklist when that event reaches the projection. The reviewer then sees
whether the worker applied the review or refused it, and why (read back from the output and
dead-letter topics). It binds to loopback unless told otherwise, answers only authenticated
reviewers (`worker.review.identity`), checks a CSRF token on every form, offers only the outcomes
a pend's queue allows to a reviewer whose roles may resolve it, and checks a review as the worker
will (`worker.review_rules`) before it signs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
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
from worker.review.identity import Identity, Reviewer
from worker.review.projection import Projection
from worker.review_rules import allowed_outcomes, may_resolve, refusal
from worker.settings import Settings
from worker.signatures import SIGNATURE_HEADER, SigningKey

PUBLIC = ("/login", "/static/", "/healthz", "/metrics")
"""Paths answered without a reviewer (no PHI on them)."""
AGES = ((3600, "under_1h"), (86400, "1h_to_1d"), (7 * 86400, "1d_to_7d"), (None, "over_7d"))
"""The age buckets of the open-pends gauge."""
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: under it a browser posts its forms with "Origin: null", which the sign-in's
    # origin check must refuse; same-origin sends the real origin to ourselves and nothing elsewhere.
    "Referrer-Policy": "same-origin",
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
    signing: SigningKey | None = None
    """The key every review is signed with (`serve` refuses to start without one)."""
    clock: Callable[[], datetime] = utc_now
    publish: Callable[[str, bytes, bytes, list[tuple[str, bytes]]], Awaitable[None]] | None = None
    """Send a review (topic, key, value, headers) and wait for the broker's acknowledgement."""
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
        response: web.StreamResponse
        if not request.path.startswith(PUBLIC) and bench.identity.reviewer(request) is None:
            if bench.identity.trusted_header is not None:
                response = web.Response(status=401, text="not authenticated")
            else:
                response = web.HTTPSeeOther("/login")
        else:
            try:
                response = await handler(request)
            except web.HTTPException as answer:  # 404, 405, redirects: they carry the headers too
                response = answer
        if isinstance(response, web.HTTPException):
            # aiohttp deprecates returning an exception object (aiohttp #2415): answer with a plain response.
            plain = web.Response(status=response.status, text=response.text, headers=response.headers)
            for name, morsel in response.cookies.items():  # a sign-in's session cookie, a sign-out's deletion
                plain.cookies[name] = morsel
            response = plain
        response.headers.update(HEADERS)
        return response

    app = web.Application(middlewares=[guard], client_max_size=64 * 1024)
    app[BENCH] = bench
    app.router.add_get("/", queue_page)
    app.router.add_get("/pends/{pend}", claim_page)
    app.router.add_post("/pends/{pend}/review", post_review)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/static/style.css", style)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


def _bench(request: web.Request) -> Workbench:
    return request.app[BENCH]


def _page(bench: Workbench, title: str, body: str, reviewer: Reviewer | None, status: int = 200) -> web.Response:
    logout = (
        bench.identity.csrf(reviewer.reviewer_id, "/logout") if reviewer and bench.identity.local_sessions else None
    )
    return _html(pages.page(title, body, reviewer.reviewer_id if reviewer else None, logout), status)


def _reviewer(request: web.Request) -> Reviewer:
    reviewer = _bench(request).identity.reviewer(request)
    assert reviewer is not None  # noqa: S101 - the middleware let only reviewers through
    return reviewer


async def queue_page(request: web.Request) -> web.Response:
    """The worklists."""
    bench = _bench(request)
    body = pages.queues(bench.projection.open_pends(), bench.clock())
    return _page(bench, "Pend queues", body, bench.identity.reviewer(request))


def _review_notice(bench: Workbench, pend_id: str, review_id: str) -> tuple[str, bool]:
    """What became of a review sent from here: applied, refused (why, and who resolved the pend), or waiting."""
    outcome = bench.projection.review_outcome(review_id)
    if outcome is None:
        return "Review sent; waiting for the worker. Reload to see whether it was applied.", False
    state, detail = outcome
    if state == "applied":
        return f"Review applied: the final adjudication is {detail}.", False
    by = bench.projection.resolved_by(pend_id)
    resolved = f" The pend was resolved by {by}." if by else ""
    return f"Review refused by the worker: {detail}.{resolved}", True


async def claim_page(request: web.Request) -> web.Response:
    """One pended claim, and the review form while it is open and the reviewer may resolve it."""
    bench = _bench(request)
    reviewer = _reviewer(request)
    found = bench.projection.pend(request.match_info["pend"])
    if found is None:
        return _page(bench, "Unknown pend", "<p>No such pend.</p>", reviewer, 404)
    pend, state = found
    target = f"/pends/{pend['event_id']}/review"
    rules = bench.policies.review_queues
    form = None
    if state == "open" and may_resolve(pend, rules, reviewer.roles):
        csrf = bench.identity.csrf(reviewer.reviewer_id, target)
        form = pages.review_form(pend, bench.codes, csrf, allowed_outcomes(pend, rules))
    elif state == "open":
        form = '<p class="notice" id=no-role>Your roles cannot resolve this pend\'s queue.</p>'
    notice, refused = None, False
    review_id = request.query.get("review", "")
    if review_id:
        notice, refused = _review_notice(bench, str(pend["event_id"]), review_id[:64])
    elif state == "resolved":
        by = bench.projection.resolved_by(str(pend["event_id"]))
        notice = f"Resolved by {by}." if by else None
    body = pages.claim(pend, state, bench.sections, bench.codes, form, notice, refused=refused)
    return _page(bench, f"Claim {pend['claim_id']}", body, reviewer)


async def post_review(request: web.Request) -> web.StreamResponse:
    """Check, sign and publish the reviewer's decision on the pended lines."""
    bench = _bench(request)
    reviewer = _reviewer(request)
    pend_id = request.match_info["pend"]
    form = await request.post()
    if not bench.identity.csrf_ok(reviewer.reviewer_id, request.path, str(form.get("csrf", ""))):
        return _page(bench, "Refused", "<p>The form's token is not valid; reload the page.</p>", reviewer, 403)
    found = bench.projection.pend(pend_id)
    if found is None or found[1] != "open":
        by = bench.projection.resolved_by(pend_id)
        why = f" It was resolved by {escape(by)}." if by else ""
        return _page(bench, "Not open", f"<p>This pend is not open any more.{why}</p>", reviewer, 409)
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
                "reviewer_id": reviewer.reviewer_id,  # from the authenticated request, never from the form
                "reviewer_roles": list(reviewer.roles),
                "decided_at": bench.clock().isoformat(),
                "lines": lines,
            }
        )
    except ValidationError as error:
        problems = "".join(f"<li>{escape(e['msg'])}</li>" for e in error.errors(include_input=False))
        return _page(bench, "Not sent", f"<ul>{problems}</ul>", reviewer, 422)
    refused = refusal(
        pend,
        review.lines,
        review.reviewer_roles,
        review.decided_at,
        rules=bench.policies.review_queues,
        codes=bench.codes,
        now=bench.clock(),
    )
    if refused is not None:  # what the worker would refuse is not sent
        return _page(bench, "Not sent", f"<p class=refused id=refusal>{escape(refused.reason)}</p>", reviewer, 422)
    assert bench.publish is not None  # noqa: S101 - `serve` wires the producer
    assert bench.signing is not None  # noqa: S101 - `serve` refuses to start without a signing key
    value = review.model_dump_json().encode()
    headers = [(SIGNATURE_HEADER, bench.signing.sign(value))]
    await bench.publish(bench.settings.reviews_topic, review.member_id.encode(), value, headers)
    bench.projection.mark_sent(pend_id, str(review.event_id), reviewer.reviewer_id, bench.clock())
    raise web.HTTPSeeOther(f"/pends/{pend_id}?review={review.event_id}")


async def login_page(request: web.Request) -> web.Response:
    """The token sign-in form."""
    bench = _bench(request)
    response = _html("")
    response.text = pages.sign_in(bench.identity.login_csrf(request, response, secure=request.secure))
    return response


def _same_origin(request: web.Request) -> bool:
    """A browser's POST from another site names it in Origin: refused (with the CSRF token, no login CSRF)."""
    origin = request.headers.get("Origin")
    return origin is None or origin == f"{request.scheme}://{request.host}"


async def login(request: web.Request) -> web.StreamResponse:
    """Sign in with a reviewer id and a token from the operator's token file; throttled, CSRF-checked."""
    bench = _bench(request)
    identity = bench.identity
    form = await request.post()
    address = request.remote or "unknown"
    reviewer_id = str(form.get("reviewer", ""))[:64]
    if not _same_origin(request) or not identity.login_csrf_ok(request, str(form.get("csrf", ""))):
        response = _html("", 403)
        response.text = pages.sign_in(
            identity.login_csrf(request, response, secure=request.secure), "Reload the page and sign in again."
        )
        return response
    if identity.throttled(reviewer_id, address):
        response = _html("", 429)
        response.headers["Retry-After"] = "900"
        response.text = pages.sign_in(
            identity.login_csrf(request, response, secure=request.secure), "Too many failed sign-ins; wait 15 minutes."
        )
        return response
    response = web.HTTPSeeOther("/")
    if identity.sign_in(reviewer_id, str(form.get("token", "")), address, response, secure=request.secure) is None:
        failed = _html("", 401)
        failed.text = pages.sign_in(
            identity.login_csrf(request, failed, secure=request.secure), "Unknown reviewer or token."
        )
        return failed
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session (its CSRF token checked: no one signs a reviewer out from another site)."""
    bench = _bench(request)
    reviewer = _reviewer(request)
    form = await request.post()
    if not bench.identity.csrf_ok(reviewer.reviewer_id, "/logout", str(form.get("csrf", ""))):
        return _page(bench, "Refused", "<p>The form's token is not valid; reload the page.</p>", reviewer, 403)
    response = web.HTTPSeeOther("/login")
    bench.identity.sign_out(request, response)
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
        # The dead letters too: a review the worker refused is told to the reviewer who sent it.
        wanted = (settings.pended_topic, settings.adjudicated_topic, settings.dead_letter_topic)
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

    async def publish(topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        await producer.send_and_wait(topic, value, key=key, headers=headers)

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


async def serve(
    bench: Workbench,
    host: str,
    port: int,
    ready: Callable[[int], None] | None = None,
    *,
    tls: ssl.SSLContext | None = None,
) -> None:
    """Run the workbench until cancelled (SIGTERM, SIGINT); over HTTPS with `tls`."""
    async with kafka_clients(bench):
        runner = web.AppRunner(make_app(bench), access_log=None)  # an access log would hold claim ids in URLs
        await runner.setup()
        site = web.TCPSite(runner, host, port, ssl_context=tls)
        await site.start()
        if ready is not None:
            ready(port)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()
