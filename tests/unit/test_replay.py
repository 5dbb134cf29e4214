"""Replay pieces that need no broker: seeking by time, comparison, stop and resume."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from aiokafka import TopicPartition

from tests.builders import claim_event, to_bytes
from worker.adjudication import PolicyBook
from worker.replay.comparison import compare, markdown, summarize
from worker.replay.run import Replayer, ReplayPlan
from worker.replay.seeking import offsets_for_time
from worker.replay.sinks import FileSink

TP0, TP1 = TopicPartition("t", 0), TopicPartition("t", 1)
BOUNDS = {TP0: (0, 100), TP1: (10, 50)}


class OffsetAndTimestamp(NamedTuple):
    offset: int
    timestamp: int


class FakeConsumer:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    async def offsets_for_times(self, timestamps: dict[TopicPartition, int]) -> Any:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class Scanner:
    def __init__(self) -> None:
        self.calls: list[TopicPartition] = []

    async def __call__(self, tp: TopicPartition, when: int, begin: int, end: int) -> int:
        self.calls.append(tp)
        return begin + 5


RECORD_TIMES = {TP0: {n: 1_000 + 10 * n for n in range(100)}, TP1: {n: 1_000 + 10 * n for n in range(10, 50)}}


async def stamp(tp: TopicPartition, offset: int) -> int | None:
    return RECORD_TIMES[tp].get(offset)


class TestSeekByTime:
    async def test_a_sound_broker_answer_is_used(self) -> None:
        scan = Scanner()
        # Records are 10 ms apart from 1,000: offset 42 (1,420) is the first at or after 1,415.
        answer = {TP0: OffsetAndTimestamp(42, 1_420), TP1: OffsetAndTimestamp(42, 1_420)}
        found, method = await offsets_for_time(
            FakeConsumer(answer), [TP0, TP1], 1_415, bounds=BOUNDS, scan=scan, timestamp_at=stamp
        )
        assert (found, method, scan.calls) == ({TP0: 42, TP1: 42}, "broker", [])

    async def test_an_empty_broker_answer_means_the_end_when_the_last_record_is_earlier(self) -> None:
        scan = Scanner()
        answer = {TP0: None}
        found, method = await offsets_for_time(
            FakeConsumer(answer), [TP0], 5_000, bounds=BOUNDS, scan=scan, timestamp_at=stamp
        )
        assert (found, method) == ({TP0: 100}, "broker")

    async def test_the_embedded_brokers_answer_falls_back_to_scanning(self) -> None:
        # Tansu 0.6.0 answers offset 0 (with the current time) whatever is asked.
        scan = Scanner()
        answer = {TP0: OffsetAndTimestamp(0, 1_795_732_412_526), TP1: OffsetAndTimestamp(0, 1_795_732_412_526)}
        found, method = await offsets_for_time(
            FakeConsumer(answer), [TP0, TP1], 1_200, bounds=BOUNDS, scan=scan, timestamp_at=stamp
        )
        assert (found, method, scan.calls) == ({TP0: 5, TP1: 15}, "scan", [TP0, TP1])

    async def test_an_unsupported_lookup_falls_back_to_scanning(self) -> None:
        scan = Scanner()
        found, method = await offsets_for_time(
            FakeConsumer(RuntimeError("unsupported")), [TP0], 7, bounds=BOUNDS, scan=scan, timestamp_at=stamp
        )
        assert (found, method) == ({TP0: 5}, "scan")


def decision(
    source: str, claim: str, lines: dict[str, str], event_id: str = "e", event_type: str = "claim.adjudicated"
) -> dict[str, Any]:
    return {
        "claim_id": claim,
        "event_id": event_id,
        "event_type": event_type,
        "lines": lines,
        "body": json.dumps([claim, lines, event_id]),
    }


class TestComparison:
    def test_changes_are_counted_by_transition_with_their_claims(self) -> None:
        old = {
            "s1": decision("s1", "A", {"1": "denied:criteria.mental_health"}),
            "s2": decision("s2", "B", {"1": "approved:x"}),
            "s3": decision("s3", "C", {"1": "denied:criteria.mental_health"}),
        }
        new = {
            "s1": decision("s1", "A", {"1": "pended:criteria.indication_unclear"}, event_type="claim.pended"),
            "s2": decision("s2", "B", {"1": "approved:x"}),
            "s3": decision("s3", "C", {"1": "pended:criteria.indication_unclear"}, event_type="claim.pended"),
            "s4": decision("s4", "D", {"1": "approved:x"}),
        }
        report = compare(new, old)
        assert (report["compared"], report["changed"], report["unchanged"], report["only_in_replay"]) == (3, 2, 1, 1)
        assert report["line_changes"] == [
            {
                "from": "denied:criteria.mental_health",
                "to": "pended:criteria.indication_unclear",
                "count": 2,
                "claim_ids": ["A", "C"],
            }
        ]
        text = markdown(report, title="t")
        assert "| denied:criteria.mental_health | pended:criteria.indication_unclear | 2 | A, C |" in text

    def test_identical_decisions_report_no_change(self) -> None:
        same = {"s1": decision("s1", "A", {"1": "denied:r"})}
        report = compare(same, same)
        assert (report["changed"], report["identical_event_ids"], report["identical_bodies_apart_from_decided_at"]) == (
            0,
            1,
            1,
        )

    def test_a_summary_ignores_the_decision_time(self) -> None:
        base = {"claim_id": "A", "event_id": "e", "event_type": "claim.adjudicated", "lines": []}
        assert summarize({**base, "decided_at": "1"})["body"] == summarize({**base, "decided_at": "2"})["body"]


async def test_a_stopped_file_replay_resumes_where_it_stopped(
    policies: PolicyBook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("worker.replay.run.BATCH_RECORDS", 10)
    source = tmp_path / "export.jsonl"
    source.write_bytes(b"".join(to_bytes(claim_event(claim_id=f"R{n}")) + b"\n" for n in range(35)))
    out, state = tmp_path / "out.jsonl", tmp_path / "state.json"
    plan = ReplayPlan(run_id="r1", bootstrap_servers=None, source_file=str(source), output_file=str(out))

    progress = io.StringIO()
    first = Replayer(plan, policies, state_path=state, progress_stream=progress)
    original_write = FileSink.write

    async def stop_after_first_batch(self: FileSink, items: list[tuple[bytes | None, bytes]]) -> None:
        await original_write(self, items)
        first.stop.set()

    monkeypatch.setattr(FileSink, "write", stop_after_first_batch)
    result = await first.run()
    assert (result.stopped_early, result.outputs) == (True, 10)
    assert ReplayPlan.load(state).next_offsets == {"file": 10}

    monkeypatch.setattr(FileSink, "write", original_write)
    resumed = Replayer(ReplayPlan.load(state), policies, state_path=state, progress_stream=progress)
    result = await resumed.run()
    assert (result.stopped_early, result.outputs) == (False, 25)
    claims = [json.loads(line)["claim_id"] for line in out.read_text().splitlines()]
    assert claims == [f"R{n}" for n in range(35)]
    assert ReplayPlan.load(state).finished
    assert "replay: 25/25 (100%)" in progress.getvalue()
