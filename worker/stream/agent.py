"""The adjudication agent: batches from the intake, read back across gaps, decided, delivered, released.

The agent takes whole fetches from the intake (`worker.stream.intake`), not events from its
Faust stream, which it never iterates: Faust still starts, supervises and stops it (before
the consumer commits), as any agent. One batch is delivered while the next is decided:
deciding is CPU work, delivering mostly waits for the broker's acknowledgements. Batches are
still delivered one after the other, in order, and a batch's messages are acknowledged to
Faust's consumer (so their offsets can be committed) only once its outputs are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import faust

from worker.stream.batch import Incoming, Outgoing, StreamHandler
from worker.stream.faust_quirks import let_batches_queue, release, subscribe, track, wait_for_producer_buffer
from worker.stream.intake import Intake
from worker.stream.offsets import Gap, GapCheck
from worker.stream.placement import Placement


def _header_pairs(headers: Any) -> list[tuple[str, bytes | None]]:
    """A message's headers as pairs, whichever shape Faust hands them in (a mapping or pairs)."""
    if not headers:
        return []
    items = headers.items() if hasattr(headers, "items") else headers
    return [(str(name), value) for name, value in items]


def register_agent(
    app: faust.App,
    source: Any,
    intake: Intake,
    handler: StreamHandler,
    checks: Sequence[GapCheck],
    placement: Placement | None = None,
) -> Any:
    """Register the adjudication agent on its topics; return it.

    One agent reads both the input and the repartition topic (`worker.stream.rekey`), so both
    are co-partitioned with the history table and share the guards on their offsets.
    """

    async def prepare(messages: list[Any]) -> tuple[list[Outgoing], list[tuple[GapCheck, list[Gap]]]]:
        incoming = [
            Incoming(
                value=message.value or b"",
                key=message.key,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                headers=tuple(_header_pairs(message.headers)),
            )
            for message in messages
        ]
        recovered: list[Incoming] = []
        confirmed: list[tuple[GapCheck, list[Gap]]] = []
        for check in checks:
            found, gaps = await check.read_back(incoming)
            recovered += found
            confirmed.append((check, gaps))
        batch = recovered + incoming
        if placement is not None:
            # The partitions of this batch's inputs: may they be decided where they were read?
            await placement.learn({item.partition for item in batch if item.topic != handler.topics.by_member})
        return await handler.prepare_in_slices(batch), confirmed

    async def deliver(
        messages: list[Any], outgoing: list[Outgoing], confirmed: list[tuple[GapCheck, list[Gap]]]
    ) -> None:
        await handler.deliver(outgoing)
        for check, gaps in confirmed:
            await check.confirm(gaps)
        release(app, messages)

    @app.agent(source, concurrency=1)  # concurrency 1: >1 can commit past in-flight events (faust #606)
    async def adjudicate(stream: Any) -> None:
        # Before the first await, as a stream's first iteration would: the conductor subscribes
        # once the agents have started, and a topic added later waits for a resubscription.
        subscribe(app, source)
        let_batches_queue(app, intake.batch_size)
        delivering: asyncio.Future[None] | None = None
        waiting: tuple[list[Any], list[Outgoing], list[tuple[GapCheck, list[Gap]]]] | None = None
        try:
            while True:
                messages = await intake.take()
                track(app, messages)  # from here a rebalance or a shutdown waits for them
                # As Faust's conductor does before each event: under exactly-once the table's changelog
                # writes queue in the producer's buffer, and the intake must not outrun it (under
                # at-least-once the handler sends them itself, and the buffer stays empty).
                await wait_for_producer_buffer(app)
                if placement is not None and placement.fenced() and delivering is not None:
                    # A partition waits for what it forwarded to come back: one batch at a time, so
                    # no batch forwards again while the one before is still unacknowledged.
                    await asyncio.shield(delivering)
                preparing = asyncio.ensure_future(prepare(messages))
                try:
                    await asyncio.shield(preparing)
                finally:
                    # Also on a shutdown: a batch being read back and decided is finished, then sent.
                    decided, confirmed = await preparing
                    waiting = (messages, decided, confirmed)
                if delivering is not None:
                    await asyncio.shield(delivering)
                delivering, waiting = asyncio.ensure_future(deliver(*waiting)), None
        finally:
            # A shutdown lets the batches in hand finish: the one being delivered, then the one
            # already decided (the shutdown watchdog bounds both).
            try:
                if delivering is not None:
                    await delivering
                if waiting is not None:
                    await deliver(*waiting)
                    waiting = None
            finally:
                if waiting is not None:
                    # Never sent: its messages stay unacknowledged, and are read and decided again.
                    handler.abandon(waiting[1])

    return adjudicate
