"""Whole fetches from Faust's consumer to the agent, below Faust's per-event stream.

Faust hands a fetched record to an agent one at a time: four tasks started and three cancelled
for each (the fetcher's `wait_first`), then the conductor's decode into an event, a channel
queue, the stream's processors and `take_events`' buffer. For a claim decided in about 250 µs
that machinery cost more than the claim (docs/benchmarks-notes.md). The guarded consumer
(`worker.stream.faust_quirks.guard_consumer`) instead offers each fetch of the worker's own
topics here whole, and the agent takes what is queued as one batch (the fetches queued while it
decided the batch before, up to `batch_size` messages).

Faust still runs the app, the group, the fetcher, the tables and the web server, and keeps its
offset bookkeeping: a message is acknowledged (`Consumer.ack`) only once its output is, and the
consumer commits acknowledged offsets as before. What a rebalance makes stale is dropped as
Faust's stream drops it: a batch taken while the flow is suspended, or fetched in an earlier
consumer generation, is never decided (its messages are unacknowledged, and read again from the
committed offset), and the queue is emptied when partitions are revoked.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from mode.utils.queues import FlowControlEvent

QUEUED_BATCHES = 4
"""Batches fetched ahead of the agent before the fetcher waits (memory: this times `batch_size`)."""


class Intake:
    """A bounded queue of batches of fetched messages, for one agent."""

    def __init__(
        self, flow_control: Callable[[], FlowControlEvent], generation: Callable[[], int], batch_size: int
    ) -> None:
        """Queue batches of at most `batch_size` messages.

        Args:
            flow_control: the app's flow control, asked on first use: asking for it earlier
                would bind the app to a loop before the worker's own loop is set.
            generation: the consumer's current generation (a rebalance starts a new one).
            batch_size: the most messages in one batch.
        """
        self.batch_size = batch_size
        self._flow_control_of = flow_control
        self._generation = generation
        self._batches: deque[list[Any]] = deque()
        self._events: tuple[asyncio.Event, asyncio.Event] | None = None

    def _signals(self) -> tuple[asyncio.Event, asyncio.Event]:
        """(a batch is queued, there is room), made on first use, on the running loop."""
        if self._events is None:
            self._events = (asyncio.Event(), asyncio.Event())
            # Emptied with the agents' channels when partitions are revoked.
            self._flow_control_of().manage_queue(self)  # type: ignore[arg-type]  # it only calls clear()
        return self._events

    async def offer(self, messages: list[Any]) -> None:
        """Queue one fetch's messages of the worker's topics, in batches of at most `batch_size`.

        Waits while the queue is full: the fetcher stops fetching until the agent catches up.
        """
        queued, room = self._signals()
        size = self.batch_size
        for start in range(0, len(messages), size):
            while len(self._batches) >= QUEUED_BATCHES:
                room.clear()
                await room.wait()
            self._batches.append(messages[start : start + size])
            queued.set()

    async def take(self) -> list[Any]:
        """The next batch to decide, waiting for one: the fetches queued, joined up to `batch_size` messages.

        Joined in the order they were fetched, so a partition's messages stay in offset order:
        the same batch a larger fetch would have given. Under load the agent decides a batch while
        the fetcher queues several small ones (a fetch per broker answer); taken one at a time,
        each paid the batch's own costs (a delivery waits for the broker's acknowledgements) and
        the queue grew at a fraction of the worker's capacity. Stale fetches are dropped on the way.
        """
        queued, room = self._signals()
        while True:
            while not self._batches:
                queued.clear()
                await queued.wait()
            taken: list[Any] = []
            while self._batches and (not taken or len(taken) + len(self._batches[0]) <= self.batch_size):
                batch = self._batches.popleft()
                if self._flow_control_of().is_active() and batch[0].generation_id == self._generation():
                    taken += batch
            room.set()
            if taken:
                return taken

    def clear(self) -> None:
        """Drop every queued batch while partitions are being revoked (Faust's flow control calls this).

        Faust also calls it when it resumes the flow at the end of a recovery, after seeking
        to the committed offsets: what is queued then was fetched after that seek, and is kept.
        Dropped then, it would never be read again: a jump before the next record is read back
        (`worker.stream.offsets`), but a partition's last records would wait, undecided, for
        a record after them (the SIGKILL fault test stalled so).
        """
        if self._flow_control_of().is_active():
            return
        self._batches.clear()
        if self._events is not None:
            self._events[1].set()  # a fetch waiting for room is let go

    def queued(self) -> int:
        """Batches waiting for the agent."""
        return len(self._batches)
