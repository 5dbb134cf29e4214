"""The workbench without a broker: its projection, who may ask, and what a form may do."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from claims_contracts.v1 import ReviewDecisionEvent, SourcePosition
from tests.builders import claim_event, ketamine_line, service_line, to_bytes
from tests.signing import SIGNING_KEY, VERIFY_KEYS
from worker.adjudication import PolicyBook
from worker.policy_files import load_code_table
from worker.processor import Decided, Processor
from worker.review.identity import Identity, Reviewer, read_tokens
from worker.review.projection import Projection
from worker.review.web import BENCH, Workbench, make_app
from worker.settings import Settings
from worker.signatures import SIGNATURE_HEADER


def pend_event(policies: PolicyBook, claim_id: str = "WB-1", member: str = "M-WB") -> dict[str, Any]:
    event = claim_event(
        claim_id=claim_id, member_id=member, diagnoses=["R52"], lines=[ketamine_line(1), service_line(2, "99213")]
    )
    result = Processor(policies).process(to_bytes(event), SourcePosition(file_line=1))
    assert isinstance(result, Decided)
    assert result.decision.pended
    body: dict[str, Any] = json.loads(result.event.model_dump_json())
    return body


def record(event: dict[str, Any], offset: int = 0) -> tuple[str, int, int, bytes]:
    topic = "out.pended" if event["event_type"] == "claim.pended" else "out.adjudicated"
    return (topic, 0, offset, json.dumps(event).encode())


def final_of(pend: dict[str, Any], *, review: bool = True) -> dict[str, Any]:
    later = dict(pend, event_type="claim.adjudicated", event_id=str(uuid.uuid4()), supersedes_event_id=pend["event_id"])
    later["decided_at"] = "2099-01-01T00:00:00Z"  # after the pend
    later["review_event_id"] = str(uuid.uuid4()) if review else None
    later.pop("queue")
    later.pop("reason")
    return later


class TestProjection:
    def test_a_pend_is_open_until_a_review_s_final_adjudication_closes_it(
        self, policies: PolicyBook, tmp_path: Path
    ) -> None:
        with Projection(tmp_path / "p.sqlite3") as projection:
            pend = pend_event(policies)
            projection.apply([record(pend)])
            assert [p.claim_id for p in projection.open_pends()] == ["WB-1"]
            projection.apply([record(final_of(pend), 1)])
            assert projection.open_pends() == []
            found = projection.pend(pend["event_id"])
            assert found is not None
            assert found[1] == "resolved"

    def test_the_order_the_two_topics_are_read_in_does_not_matter(self, policies: PolicyBook, tmp_path: Path) -> None:
        with Projection(tmp_path / "p.sqlite3") as projection:
            pend = pend_event(policies)
            projection.apply([record(final_of(pend)), record(pend, 1)])  # the closing event first
            assert projection.open_pends() == []

    def test_a_claim_decided_again_closes_its_old_pend(self, policies: PolicyBook, tmp_path: Path) -> None:
        with Projection(tmp_path / "p.sqlite3") as projection:
            first = pend_event(policies)
            again = dict(first, event_id=str(uuid.uuid4()), decided_at="2099-01-01T00:00:00Z")
            projection.apply([record(first), record(again, 1)])
            assert [p.pend_event_id for p in projection.open_pends()] == [again["event_id"]]

    def test_it_resumes_from_its_offsets_and_can_be_rebuilt(self, policies: PolicyBook, tmp_path: Path) -> None:
        path = tmp_path / "p.sqlite3"
        projection = Projection(path)
        projection.apply([record(pend_event(policies), 41)])
        projection.close()
        with Projection(path) as again:
            assert again.next_offsets() == {("out.pended", 0): 42}
            assert path.stat().st_mode & 0o777 == 0o600
            again.rebuild()
            assert (again.next_offsets(), again.open_pends()) == ({}, [])


class TestIdentity:
    def test_tokens_are_read_from_a_file_and_bad_lines_refused(self, tmp_path: Path) -> None:
        good = tmp_path / "tokens"
        good.write_text(
            "# reviewers\nRV-1 0123456789abcdef0123 clinical_reviewer,medical_director\nRV-2 abcdefghij0123456789\n"
        )
        good.chmod(0o600)
        assert read_tokens(good) == {
            "0123456789abcdef0123": Reviewer("RV-1", ("clinical_reviewer", "medical_director")),
            "abcdefghij0123456789": Reviewer("RV-2", ()),
        }
        bad = tmp_path / "bad"
        bad.write_text("RV-1 short\n")
        bad.chmod(0o600)
        with pytest.raises(ValueError, match="16\\+ characters"):
            read_tokens(bad)

    def test_there_is_no_anonymous_workbench(self) -> None:
        with pytest.raises(ValueError, match="no way to know the reviewer"):
            Identity()


@pytest.fixture
async def client(policies: PolicyBook, tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], list[bytes], str]]:
    pend = pend_event(policies)
    sent: list[bytes] = []

    async def publish(topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        VERIFY_KEYS.verify(value, dict(headers)[SIGNATURE_HEADER])  # every review leaves signed
        sent.append(value)

    with Projection(tmp_path / "p.sqlite3") as projection:
        projection.apply([record(pend)])
        bench = Workbench(
            Settings(reviews_topic="reviews"),
            projection,
            Identity(trusted_header="X-Reviewer"),
            policies,
            load_code_table(Path(__file__).resolve().parents[2] / "worker" / "adjudication" / "policies"),
            signing=SIGNING_KEY,
            publish=publish,
        )
        async with TestClient(TestServer(make_app(bench))) as test_client:
            yield test_client, sent, pend["event_id"]


AS = {"X-Reviewer": "RV-9", "X-Forwarded-Roles": "clinical_reviewer"}


class TestTheApplication:
    async def test_pages_need_an_authenticated_reviewer(
        self, client: tuple[TestClient[Any, Any], list[bytes], str]
    ) -> None:
        http, _, _ = client
        assert (await http.get("/")).status == 401
        assert (await http.get("/", headers={"X-Reviewer": "not a valid id"})).status == 401
        page = await http.get("/", headers=AS)
        assert page.status == 200
        assert "WB-1" in await page.text()
        assert page.headers["Cache-Control"] == "no-store"
        assert "script" not in page.headers["Content-Security-Policy"]

    async def test_a_review_is_published_as_the_authenticated_reviewer(
        self, client: tuple[TestClient[Any, Any], list[bytes], str]
    ) -> None:
        http, sent, pend_id = client
        page = await (await http.get(f"/pends/{pend_id}", headers=AS)).text()
        csrf = re.search(r'name=csrf value="([0-9a-f]+)"', page)
        assert csrf is not None
        form = {"csrf": csrf.group(1), "outcome-1": "denied", "carc-1": "50", "rarc-1": "", "reviewer_id": "RV-EVIL"}
        answer = await http.post(f"/pends/{pend_id}/review", data=form, headers=AS, allow_redirects=False)
        assert answer.status == 303
        (review,) = [ReviewDecisionEvent.model_validate_json(value) for value in sent]
        assert (review.reviewer_id, str(review.pend_event_id), review.lines[0].carc) == ("RV-9", pend_id, ["50"])

    async def test_a_form_without_its_csrf_token_is_refused(
        self, client: tuple[TestClient[Any, Any], list[bytes], str]
    ) -> None:
        http, sent, pend_id = client
        form = {"csrf": "0" * 64, "outcome-1": "approved"}
        assert (await http.post(f"/pends/{pend_id}/review", data=form, headers=AS)).status == 403
        other = {"X-Reviewer": "RV-10", "X-Forwarded-Roles": "clinical_reviewer"}  # another's token is not this one's
        page = await (await http.get(f"/pends/{pend_id}", headers=AS)).text()
        token = re.search(r'name=csrf value="([0-9a-f]+)"', page)
        assert token is not None
        refused = await http.post(
            f"/pends/{pend_id}/review", data={"csrf": token.group(1), "outcome-1": "approved"}, headers=other
        )
        assert refused.status == 403
        assert sent == []

    async def test_a_denial_needs_a_carc(self, client: tuple[TestClient[Any, Any], list[bytes], str]) -> None:
        http, sent, pend_id = client
        page = await (await http.get(f"/pends/{pend_id}", headers=AS)).text()
        token = re.search(r'name=csrf value="([0-9a-f]+)"', page)
        assert token is not None
        answer = await http.post(
            f"/pends/{pend_id}/review", data={"csrf": token.group(1), "outcome-1": "denied", "carc-1": ""}, headers=AS
        )
        assert answer.status == 422
        assert sent == []

    async def test_metrics_count_open_pends_by_queue_and_age(
        self, client: tuple[TestClient[Any, Any], list[bytes], str]
    ) -> None:
        http, _, _ = client
        text = await (await http.get("/metrics")).text()
        assert 'claims_open_pends{age="under_1h",queue="clinical_review"} 1.0' in text


class TestWhatBecameOfAReview:
    async def test_a_review_the_worker_refused_is_told_with_why_and_who_resolved_the_pend(
        self, client: tuple[TestClient[Any, Any], list[bytes], str], policies: PolicyBook
    ) -> None:
        http, sent, pend_id = client
        page = await (await http.get(f"/pends/{pend_id}", headers=AS)).text()
        csrf = re.search(r'name=csrf value="([0-9a-f]+)"', page)
        assert csrf is not None
        form = {"csrf": csrf.group(1), "outcome-1": "denied", "carc-1": "50", "rarc-1": ""}
        answer = await http.post(f"/pends/{pend_id}/review", data=form, headers=AS, allow_redirects=False)
        assert answer.status == 303
        (mine,) = [ReviewDecisionEvent.model_validate_json(value) for value in sent]
        assert answer.headers["Location"] == f"/pends/{pend_id}?review={mine.event_id}"
        waiting = await (await http.get(answer.headers["Location"], headers=AS)).text()
        assert "waiting for the worker" in waiting

        # Another reviewer's review closed the pend first; the worker dead-lettered this one.
        bench = http.app[BENCH]
        pend = bench.projection.pend(pend_id)
        assert pend is not None
        final = final_of(pend[0])
        final["trace"] = [*final["trace"], {"line_number": 1, "rule": "review.denied", "policy_sections": [],
                                             "evidence": ["review x", "reviewer RV-FIRST", "50"]}]  # fmt: skip
        refusal = {
            "schema_version": 1,
            "event_type": "claim.dead_lettered",
            "kind": "review_already_resolved",
            "source_event_id": str(mine.event_id),
            "reason": "review_already_resolved",
            "errors": [{"path": "pend_event_id", "message": f"pend {pend_id} was resolved by another review"}],
        }
        bench.projection.apply([record(final, 1), ("out.dead-letter", 0, 0, json.dumps(refusal).encode())])
        told = await (await http.get(answer.headers["Location"], headers=AS)).text()
        assert "Review refused by the worker: review_already_resolved" in told
        assert "resolved by RV-FIRST" in told

    async def test_a_reviewer_without_the_queue_s_role_gets_no_form(
        self, client: tuple[TestClient[Any, Any], list[bytes], str]
    ) -> None:
        http, sent, pend_id = client
        examiner = {"X-Reviewer": "RV-11", "X-Forwarded-Roles": "claims_examiner"}
        page = await (await http.get(f"/pends/{pend_id}", headers=examiner)).text()
        assert "Send review" not in page
        assert "Your roles cannot resolve" in page
        # Nor is a review posted anyway (with a form token of its own) signed and sent.
        target = f"/pends/{pend_id}/review"
        token = http.app[BENCH].identity.csrf("RV-11", target)
        answer = await http.post(target, data={"csrf": token, "outcome-1": "approved"}, headers=examiner)
        assert answer.status == 422
        assert "clinical_review is resolved by" in await answer.text()
        assert sent == []
