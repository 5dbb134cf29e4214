"""The intake: fetches queued by the consumer, taken by the agent as batches."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from worker.stream.intake import QUEUED_BATCHES, Intake


@dataclass
class Flow:
    """The app's flow control, as the intake asks it: active or suspended."""

    active: bool = True

    def is_active(self) -> bool:
        return self.active

    def manage_queue(self, _queue: object) -> None:
        pass


@dataclass(frozen=True)
class Message:
    """A fetched message, as far as the intake reads it."""

    offset: int
    generation_id: int = 1


def fetch(*offsets: int, generation: int = 1) -> list[Message]:
    return [Message(offset, generation) for offset in offsets]


def intake(batch_size: int, flow: Flow | None = None, generation: int = 1) -> Intake:
    state = flow or Flow()
    return Intake(lambda: state, lambda: generation, batch_size)  # type: ignore[arg-type, return-value]


async def test_the_fetches_queued_are_taken_as_one_batch_in_the_order_fetched() -> None:
    queue = intake(batch_size=10)
    await queue.offer(fetch(0, 1))
    await queue.offer(fetch(2))
    await queue.offer(fetch(3, 4, 5))
    assert [message.offset for message in await queue.take()] == [0, 1, 2, 3, 4, 5]
    assert queue.queued() == 0


async def test_a_batch_never_holds_more_than_the_batch_size() -> None:
    queue = intake(batch_size=4)
    await queue.offer(fetch(0, 1, 2))
    await queue.offer(fetch(3, 4))  # would make five: it waits for the next batch
    await queue.offer(fetch(5, 6, 7, 8, 9))  # larger than a batch: split when offered
    taken = [[message.offset for message in await queue.take()] for _ in range(3)]
    assert taken == [[0, 1, 2], [3, 4], [5, 6, 7, 8]]
    assert [message.offset for message in await queue.take()] == [9]


async def test_a_fetch_of_an_earlier_generation_is_dropped_from_the_batch() -> None:
    queue = intake(batch_size=10, generation=2)
    await queue.offer(fetch(0, 1, generation=1))  # fetched before a rebalance
    await queue.offer(fetch(7, 8, generation=2))
    assert [message.offset for message in await queue.take()] == [7, 8]


async def test_nothing_is_taken_while_the_flow_is_suspended() -> None:
    flow = Flow()
    queue = intake(batch_size=10, flow=flow)
    await queue.offer(fetch(0))
    flow.active = False
    waiting = asyncio.ensure_future(queue.take())
    await asyncio.sleep(0.05)
    assert not waiting.done()  # the suspended fetch was dropped; the agent waits for the next
    flow.active = True
    await queue.offer(fetch(3))
    assert [message.offset for message in await asyncio.wait_for(waiting, 1)] == [3]


async def test_taking_lets_a_waiting_fetch_be_queued() -> None:
    queue = intake(batch_size=2)
    for offset in range(QUEUED_BATCHES):
        await queue.offer(fetch(offset * 2, offset * 2 + 1))  # full batches: the queue is full
    offering = asyncio.ensure_future(queue.offer(fetch(100)))
    await asyncio.sleep(0.05)
    assert not offering.done()
    await queue.take()
    await asyncio.wait_for(offering, 1)
    assert queue.queued() == QUEUED_BATCHES
