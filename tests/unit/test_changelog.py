"""The history table's changelog, sent by the stream handler a batch at a time, after the outputs."""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

import faust
import orjson
import pytest
from aiokafka.errors import MessageSizeTooLargeError

from tests.builders import claim_event, to_bytes
from tests.fakes import FakePublisher
from worker import audit
from worker.adjudication import PolicyBook
from worker.history import ClaimHistory
from worker.processor import Processor
from worker.stream.batch import Incoming, StreamHandler, Topics
from worker.stream.changelog import Changelog
from worker.stream.faust_quirks import TableView
from worker.stream.metrics import Metrics

TOPICS = Topics("out.adjudicated", "out.pended", "out.dead-letter")
CHANGELOG = "g-members-changelog"


@pytest.fixture
def log() -> io.StringIO:
    stream = io.StringIO()
    audit.configure(stream)
    return stream


def faust_table() -> Any:
    """A Faust table on the memory store whose own changelog sends fail the test."""
    app = faust.App("changelog-test", broker="kafka://localhost:1", store="memory://")
    table = app.Table("members", default=None, key_type=bytes, value_type=bytes)

    def faust_sends(*_: Any, **__: Any) -> None:
        raise AssertionError("the table's writes go through the worker's changelog, not Faust's buffer")

    table.send_changelog = faust_sends
    return table


class Stack:
    """A stream handler over a real table view whose writes queue in a changelog."""

    def __init__(self, policies: PolicyBook, publisher: FakePublisher) -> None:
        self.persisted: list[tuple[int, int]] = []
        self.changelog = Changelog(
            CHANGELOG, on_sent=lambda partition, offset: self.persisted.append((partition, offset))
        )
        self.view = TableView(faust_table(), self.changelog)
        self.publisher = publisher
        self.handler = StreamHandler(
            Processor(policies, history=ClaimHistory(self.view)),
            publisher,
            TOPICS,
            Metrics(),
            scope=self.view,
            changelog=self.changelog,
            retry_initial=0.001,
            retry_max=0.002,
        )

    async def decide(self, *claims: tuple[str, str, int]) -> None:
        """Decide and deliver one batch of (claim id, member id, input partition)."""
        batch = [
            Incoming(to_bytes(claim_event(claim_id=claim, member_id=member)), b"k", "in", partition, offset)
            for offset, (claim, member, partition) in enumerate(claims)
        ]
        await self.handler.deliver(self.handler.prepare(batch))

    def changelog_sent(self) -> list[tuple[bytes | None, bytes | None]]:
        return [(key, value) for topic, key, value in self.publisher.sent if topic == CHANGELOG]


async def test_a_batchs_table_writes_follow_its_outputs_in_the_order_the_store_took_them(
    policies: PolicyBook, log: io.StringIO
) -> None:
    stack = Stack(policies, FakePublisher())
    await stack.decide(("A", "M-1", 0), ("B", "M-2", 1), ("C", "M-1", 0))
    topics = [topic for topic, _, _ in stack.publisher.sent]
    assert topics[:3] == ["out.adjudicated"] * 3, "the outputs first"
    assert topics[3:] == [CHANGELOG] * 3, "then the table's writes, before the batch counts as delivered"
    assert [key for key, _ in stack.changelog_sent()] == [b"M-1", b"M-2", b"M-1"]
    assert stack.publisher.partitions[3:] == [0, 1, 0], "each write on the partition the store took it in"
    # As the store holds them: what recovery from the changelog rebuilds.
    stack.view.partition = 0
    last_of_m1 = stack.changelog_sent()[2][1]
    assert last_of_m1 is not None
    assert orjson.loads(last_of_m1) == stack.view["M-1"]
    assert set(stack.view["M-1"]["claims"]) == {"A", "C"}
    assert len(stack.changelog) == 0, "nothing left queued"
    assert stack.persisted == [(0, 1), (1, 0)], "one persisted offset a partition: its last write's"


async def test_a_deletion_is_sent_as_a_tombstone() -> None:
    changelog = Changelog(CHANGELOG)
    view = TableView(faust_table(), changelog)
    view.partition = 2
    view["M-1 pends"] = {"P": {}}
    del view["M-1 pends"]
    assert [(w.partition, w.key, w.value) for w in changelog.take()] == [
        (2, b"M-1 pends", b'{"P":{}}'),
        (2, b"M-1 pends", None),
    ]
    assert "M-1 pends" not in view


async def test_after_a_failed_write_every_write_from_it_on_is_sent_again_in_order(
    policies: PolicyBook, log: io.StringIO
) -> None:
    publisher = FakePublisher()
    refused: list[bytes | None] = []

    def second_write_once(topic: str, key: bytes | None) -> BaseException | None:
        if topic == CHANGELOG and key == b"M-2" and not refused:
            refused.append(key)
            return ConnectionError("broker unreachable")
        return None

    publisher.refuse = second_write_once
    stack = Stack(policies, publisher)
    await stack.decide(("A", "M-1", 0), ("B", "M-2", 0), ("C", "M-1", 0))
    # Round one: M-1 acknowledged, M-2 refused, the second M-1 acknowledged. Round two starts at M-2,
    # so the later M-1 is written again after it: M-1's last write stays its newest.
    assert [key for key, _ in stack.changelog_sent()] == [b"M-1", b"M-1", b"M-2", b"M-1"]
    assert stack.changelog_sent()[-1] == stack.changelog_sent()[1]
    assert stack.handler.send_failures == 0
    assert '"event":"worker.send_failed"' in log.getvalue()
    assert stack.persisted[0] == (0, 0), "round one: only what came before the failure"
    assert stack.persisted[-1] == (0, 3)


async def test_the_batch_is_not_delivered_while_its_table_writes_fail(policies: PolicyBook, log: io.StringIO) -> None:
    publisher = FakePublisher()
    publisher.refuse = lambda topic, _: ConnectionError("broker unreachable") if topic == CHANGELOG else None
    stack = Stack(policies, publisher)
    task = asyncio.create_task(stack.decide(("A", "M-1", 0)))
    await asyncio.sleep(0.05)
    assert not task.done(), "delivered only once its table writes are acknowledged"
    assert stack.handler.send_failures > 0
    assert stack.handler.delivering_for(time.monotonic()) > 0, "readiness sees the batch waiting"
    publisher.refuse = None
    await asyncio.wait_for(task, 5)
    assert stack.handler.send_failures == 0
    assert [key for key, _ in stack.changelog_sent()] == [b"M-1"]


async def test_a_write_the_changelog_refuses_for_its_size_is_counted_and_not_retried(
    policies: PolicyBook, log: io.StringIO
) -> None:
    publisher = FakePublisher()
    publisher.refuse = lambda topic, key: MessageSizeTooLargeError() if (topic, key) == (CHANGELOG, b"M-2") else None
    stack = Stack(policies, publisher)
    await stack.decide(("A", "M-1", 0), ("B", "M-2", 0), ("C", "M-3", 0))
    assert [key for key, _ in stack.changelog_sent()] == [b"M-1", b"M-3"], "the writes after it still go"
    assert stack.publisher.attempts == 3 + 3, "three outputs, three writes: none sent twice"
    assert stack.handler.metrics.changelog_refused._value.get() == 1
    assert '"event":"worker.changelog_write_too_large"' in log.getvalue()
    assert stack.handler.send_failures == 0


async def test_without_a_changelog_the_table_sends_its_own_writes() -> None:
    """Under exactly-once, Faust's transactions carry the table's writes: the view hands them to Faust."""
    app = faust.App("changelog-test-eos", broker="kafka://localhost:1", store="memory://")
    table = app.Table("members", default=None, key_type=bytes, value_type=bytes)
    sent: list[tuple[int, bytes, bytes | None]] = []
    table.send_changelog = lambda partition, key, value, **_: sent.append((partition, key, value))
    view = TableView(table)
    view["M-1"] = {"claims": {}}
    del view["M-1"]
    assert sent == [(0, b"M-1", b'{"claims":{}}'), (0, b"M-1", None)]


async def test_the_store_takes_the_queued_writes_when_they_are_taken_and_the_view_reads_them_before() -> None:
    changelog = Changelog(CHANGELOG)
    table = faust_table()
    view = TableView(table, changelog)
    view.partition = 1
    view["M-1"] = {"claims": {"A": {}}}
    view["M-1 pends"] = {"P": {}}
    del view["M-1 pends"]
    assert table.data.data == {}, "the store has none of them yet"
    assert view["M-1"] == {"claims": {"A": {}}}, "the view reads what it queued"
    assert "M-1 pends" not in view, "a queued deletion reads as one"
    view.partition = 0
    assert "M-1" not in view, "another partition's queued writes are not this one's"
    changelog.take()
    assert table.data.data == {b"M-1": b'{"claims":{"A":{}}}'}
    assert table.data._key_partition == {b"M-1": 1}
    view.partition = 1
    assert view["M-1"] == {"claims": {"A": {}}}
    with pytest.raises(KeyError):
        del view["M-2"]


async def test_rocksdb_takes_a_batch_of_writes_in_order_one_write_batch_a_partition(tmp_path: Any) -> None:
    changelog = Changelog(CHANGELOG)
    app = faust.App("changelog-test-rocks", broker="kafka://localhost:1", store="rocksdb://", datadir=tmp_path)
    table = app.Table("members", default=None, key_type=bytes, value_type=bytes)
    store = table.data  # Faust's RocksDB store: a database a partition, opened as it is first used
    view = TableView(table, changelog)
    view.partition = 0
    view["M-1"] = {"n": 1}
    view["M-1 pends"] = {"P": {}}
    view.partition = 3
    view["M-2"] = {"n": 1}
    view.partition = 0
    view["M-1"] = {"n": 2}
    del view["M-1 pends"]
    assert store._db_for_partition(0).get(b"M-1") is None, "not in the database before the batch is taken"
    assert view["M-1"] == {"n": 2}
    assert len(changelog.take()) == 5
    first = store._db_for_partition(0)
    assert first.get(b"M-1") == b'{"n":2}', "the last write of a key wins, as in the changelog"
    assert first.get(b"M-1 pends") is None
    assert store._db_for_partition(3).get(b"M-2") == b'{"n":1}'
    assert sorted(view) == ["M-1"], "partition 0 holds M-1 only"
