"""Deciding in place: an input on its member's partition skips the hop, never ahead of a forwarded one."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError

from tests.builders import claim_event, to_bytes
from tests.fakes import FakePublisher
from worker import audit
from worker.adjudication import PolicyBook
from worker.processor import Processor
from worker.stream.batch import Incoming, StreamHandler, Topics
from worker.stream.metrics import Metrics
from worker.stream.placement import PROBE_SECONDS, Placement
from worker.stream.rekey import member_partition

PARTITIONS = 6
MEMBER_TOPIC = "g-claims-by-member-repartition"
TOPICS = Topics("out.adjudicated", "out.pended", "out.dead-letter", by_member=MEMBER_TOPIC, partitions=PARTITIONS)


class Broker:
    """The member topic as the placement asks about it: end offsets, committed offsets, records."""

    def __init__(self, ends: dict[int, int], committed: dict[int, int] | None = None) -> None:
        self.ends = ends
        self.committed = committed or {}
        self.records: dict[int, dict[int, bytes]] = {}
        """Partition -> offset -> a record (offsets without one are markers)."""
        self.down = False
        self.asked: list[list[int]] = []
        self.read_backs: list[tuple[int, int, int]] = []
        self.now = 100.0

    async def end_offsets(self, partitions: list[int]) -> dict[int, int]:
        self.asked.append(partitions)
        if self.down:
            raise KafkaConnectionError("broker unreachable")
        return {p: self.ends.get(p, 0) for p in partitions}

    async def read_back(self, partition: int, start: int, end: int) -> list[Any]:
        self.read_backs.append((partition, start, end))
        held = self.records.get(partition, {})
        return [held[offset] for offset in range(start, end) if offset in held]

    def placement(self) -> Placement:
        return Placement(self.end_offsets, self.committed.get, self.read_back, clock=lambda: self.now)


@pytest.fixture
def log() -> io.StringIO:
    stream = io.StringIO()
    audit.configure(stream)
    return stream


def member_on(partition: int) -> str:
    """A member id whose partition (murmur2, as the Java client) is `partition`."""
    return next(m for m in (f"M-{n}" for n in range(1000)) if member_partition(m, PARTITIONS) == partition)


def claim_on(partition: int, offset: int, claim_id: str, member: str | None = None) -> Incoming:
    raw = to_bytes(claim_event(claim_id=claim_id, member_id=member or member_on(partition)))
    return Incoming(raw, claim_id.encode(), "in", partition, offset)


def step_of(policies: PolicyBook, publisher: FakePublisher, placement: Placement) -> StreamHandler:
    return StreamHandler(
        Processor(policies), publisher, TOPICS, Metrics(), placement=placement, retry_initial=0.001, retry_max=0.002
    )


async def run(step: StreamHandler, placement: Placement, batch: list[Incoming]) -> None:
    """One batch as the agent takes it: learn the inputs' partitions, decide, deliver."""
    await placement.learn({item.partition for item in batch if item.topic != MEMBER_TOPIC})
    await step.deliver(step.prepare(batch))


async def test_an_input_on_its_members_partition_is_decided_where_it_was_read(
    policies: PolicyBook, log: io.StringIO
) -> None:
    broker = Broker(ends={2: 0})
    placement = broker.placement()
    publisher = FakePublisher()
    step = step_of(policies, publisher, placement)
    elsewhere = member_on(4)
    await run(step, placement, [claim_on(2, 41, "HERE"), claim_on(2, 42, "THERE", member=elsewhere)])
    (decided, forward) = publisher.sent
    assert decided[0] == "out.adjudicated"
    assert json.loads(decided[2])["claim_id"] == "HERE"
    assert forward[:2] == (MEMBER_TOPIC, elsewhere.encode()), "another member's partition: still forwarded"
    assert publisher.partitions[1] == 4
    assert step.metrics.in_place._value.get() == 1
    assert step.metrics.rekeyed._value.get() == 1
    lines = [json.loads(line) for line in log.getvalue().splitlines() if '"claim.decided"' in line]
    assert [(d["source_topic"], d["source_partition"], d["source_offset"]) for d in lines] == [("in", 2, 41)]


async def test_an_input_waits_behind_what_its_partition_forwarded_before(
    policies: PolicyBook, log: io.StringIO
) -> None:
    """After an assignment the member topic may hold forwarded claims: the partition's inputs queue behind them."""
    broker = Broker(ends={1: 7}, committed={1: 5})
    broker.records[1] = {5: b"forwarded", 6: b"forwarded"}
    placement = broker.placement()
    publisher = FakePublisher()
    publisher._offsets[(MEMBER_TOPIC, 1)] = 6  # the broker writes the next forward at offset 7
    step = step_of(policies, publisher, placement)
    await run(step, placement, [claim_on(1, 10, "LATER")])
    assert publisher.sent[0][0] == MEMBER_TOPIC, "offsets 5 and 6 of the member topic are not decided yet"
    assert not placement.in_place(1)
    earlier = [claim_on(1, offset, f"EARLY-{offset}") for offset in (5, 6)]
    await run(step, placement, [Incoming(item.value, item.key, MEMBER_TOPIC, 1, item.offset) for item in earlier])
    assert not placement.in_place(1), "the claim forwarded at 7 is still ahead"
    await run(step, placement, [Incoming(publisher.sent[0][2], b"LATER", MEMBER_TOPIC, 1, 7)])
    assert placement.in_place(1)
    await run(step, placement, [claim_on(1, 11, "NOW")])
    decided = [json.loads(value)["claim_id"] for topic, _, value in publisher.sent if topic == "out.adjudicated"]
    assert decided == ["EARLY-5", "EARLY-6", "LATER", "NOW"], "in the input partition's order"


async def test_a_forward_in_flight_keeps_the_partition_fenced_until_it_is_decided(
    policies: PolicyBook, log: io.StringIO
) -> None:
    broker = Broker(ends={3: 4}, committed={3: 4})
    broker.records[3] = dict.fromkeys(range(4, 11), b"forwarded")  # written after the end was learnt
    placement = broker.placement()
    publisher = FakePublisher()
    publisher._offsets[(MEMBER_TOPIC, 3)] = 9  # the broker writes the next forward at offset 10
    step = step_of(policies, publisher, placement)
    placement.forwarding(3)  # a forward from an earlier batch, not acknowledged yet
    await placement.learn({3})
    assert not placement.in_place(3), "in flight: its offset is not known yet"
    placement.forwarded(3, 9)
    assert not placement.in_place(3), "acknowledged at 9: it must be decided first"
    await run(step, placement, [claim_on(3, 0, "BEHIND")])
    assert publisher.sent[0][0] == MEMBER_TOPIC, "forwarded behind it"
    placement.decided(3, 9)
    assert not placement.in_place(3), "the claim just forwarded, at 10, is still ahead"
    placement.decided(3, 10)
    assert placement.in_place(3)


async def test_an_empty_tail_of_markers_lifts_the_fence_once_read_back(policies: PolicyBook) -> None:
    """With transactions the last offsets are commit markers, never delivered: a read-back shows them empty."""
    broker = Broker(ends={0: 12}, committed={0: 10})
    broker.records[0] = {10: b"a record"}
    placement = broker.placement()
    await placement.learn({0})
    assert not placement.in_place(0), "offset 10 holds a record still to decide"
    placement.decided(0, 10)
    broker.now += PROBE_SECONDS / 2
    await placement.learn({0})
    assert broker.read_backs == [(0, 10, 12)], "read back at most once a second"
    assert not placement.in_place(0)
    broker.now += PROBE_SECONDS
    await placement.learn({0})
    assert broker.read_backs[-1] == (0, 11, 12)
    assert placement.in_place(0), "offset 11 is a marker"


async def test_a_broker_that_does_not_answer_leaves_the_partition_forwarding(
    policies: PolicyBook, log: io.StringIO
) -> None:
    broker = Broker(ends={5: 0})
    broker.down = True
    placement = broker.placement()
    publisher = FakePublisher()
    step = step_of(policies, publisher, placement)
    await run(step, placement, [claim_on(5, 0, "A")])
    assert publisher.sent[0][0] == MEMBER_TOPIC
    assert '"event":"worker.placement_unknown"' in log.getvalue()
    broker.down = False
    broker.ends[5], broker.records[5] = 1, {0: b"A", 1: b"B"}  # A's forward, at 0 (B's will be at 1)
    await run(step, placement, [claim_on(5, 1, "B")])
    assert publisher.sent[1][0] == MEMBER_TOPIC, "A is ahead of it on the member topic"
    placement.decided(5, 0)
    assert not placement.in_place(5), "B, forwarded at 1, is ahead now"
    placement.decided(5, 1)
    await run(step, placement, [claim_on(5, 2, "C")])
    assert publisher.sent[2][0] == "out.adjudicated"


async def test_an_assignment_forgets_what_was_learnt(policies: PolicyBook) -> None:
    broker = Broker(ends={2: 0})
    placement = broker.placement()
    await placement.learn({2})
    assert placement.in_place(2)
    placement.forget()
    broker.ends[2], broker.records[2] = 3, {0: b"x", 1: b"y", 2: b"z"}
    assert not placement.in_place(2)
    await placement.learn({2})
    assert broker.asked == [[2], [2]]
    assert not placement.in_place(2), "another worker forwarded three claims meanwhile"


async def test_the_member_topic_goes_first_in_a_batch_so_a_fence_lifts_for_its_inputs(
    policies: PolicyBook, log: io.StringIO
) -> None:
    broker = Broker(ends={0: 1}, committed={0: 0})
    broker.records[0] = {0: b"forwarded"}
    placement = broker.placement()
    publisher = FakePublisher()
    step = step_of(policies, publisher, placement)
    earlier = claim_on(0, 3, "EARLIER")
    # Fetched in this order: the input's record before the member topic's (the last one forwarded from it).
    await run(step, placement, [claim_on(0, 4, "NEXT"), Incoming(earlier.value, earlier.key, MEMBER_TOPIC, 0, 0)])
    assert [json.loads(value)["claim_id"] for _, _, value in publisher.sent] == ["EARLIER", "NEXT"]
    assert [topic for topic, _, _ in publisher.sent] == ["out.adjudicated", "out.adjudicated"], "no hop for NEXT"


async def test_every_assigned_partition_is_learnt_with_the_first_batch() -> None:
    """Learnt before anything is forwarded to them: a partition first seen later would find the hop's own traffic."""
    broker = Broker(ends={0: 0, 1: 0, 2: 5}, committed={2: 3})
    broker.records[2] = {3: b"forwarded", 4: b"forwarded"}
    placement = Placement(broker.end_offsets, broker.committed.get, broker.read_back, assigned=lambda: [0, 1, 2])
    await placement.learn({0})
    assert broker.asked == [[0, 1, 2]]
    assert placement.in_place(0)
    assert placement.in_place(1), "not in this batch, learnt all the same"
    assert not placement.in_place(2)
    assert placement.fenced(), "the agent delivers one batch at a time until partition 2 is clear"
    placement.decided(2, 4)
    assert not placement.fenced()
