"""The adjudication agent: batches from Faust, read back across gaps, decided, delivered, released.

One batch is delivered while the next is decided: deciding is CPU work, delivering
mostly waits for the broker's acknowledgements. Batches are still delivered one
after the other, in order, and a batch's messages are released to Faust (so their
offsets can be committed) only once its outputs are acknowledged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import faust

from worker.stream.batch import Incoming, Outgoing, StreamHandler
from worker.stream.faust_quirks import hold_until_delivered, let_batches_queue, release
from worker.stream.offsets import Gap, GapCheck


def _header_pairs(headers: Any) -> list[tuple[str, bytes | None]]:
    """A message's headers as pairs, whichever shape Faust hands them in (a mapping or pairs)."""
    if not headers:
        return []
    items = headers.items() if hasattr(headers, "items") else headers
    return [(str(name), value) for name, value in items]


def register_agent(
    app: faust.App,
    source: Any,
    handler: StreamHandler,
    checks: Sequence[GapCheck],
    *,
    batch_size: int,
    within_seconds: float,
) -> Any:
    """Register the adjudication agent on its topics; return it (component tests drive it).

    One agent reads both the input and the repartition topic (`worker.stream.rekey`), so both
    are co-partitioned with the history table and share the guards on their offsets.
    """

    async def prepare(events: list[Any]) -> tuple[list[Outgoing], list[tuple[GapCheck, list[Gap]]]]:
        incoming = [
            Incoming(
                value=event.message.value or b"",
                key=event.message.key,
                topic=event.message.topic,
                partition=event.message.partition,
                offset=event.message.offset,
                headers=tuple(_header_pairs(event.message.headers)),
            )
            for event in events
        ]
        recovered: list[Incoming] = []
        confirmed: list[tuple[GapCheck, list[Gap]]] = []
        for check in checks:
            found, gaps = await check.read_back(incoming)
            recovered += found
            confirmed.append((check, gaps))
        return handler.prepare(recovered + incoming), confirmed

    async def deliver(events: list[Any], outgoing: list[Outgoing], confirmed: list[tuple[GapCheck, list[Gap]]]) -> None:
        await handler.deliver(outgoing)
        for check, gaps in confirmed:
            await check.confirm(gaps)
        release(events)

    @app.agent(source, concurrency=1)  # concurrency 1: >1 can commit past in-flight events (faust #606)
    async def adjudicate(stream: Any) -> None:
        hold_until_delivered(stream)
        let_batches_queue(app, batch_size)
        delivering: asyncio.Future[None] | None = None
        waiting: tuple[list[Any], list[Outgoing], list[tuple[GapCheck, list[Gap]]]] | None = None
        try:
            async for events in stream.take_events(batch_size, within=within_seconds):
                preparing = asyncio.ensure_future(prepare(events))
                try:
                    await asyncio.shield(preparing)
                finally:
                    # Also on a shutdown: a batch being read back and decided is finished, then sent.
                    decided, confirmed = await preparing
                    waiting = (events, decided, confirmed)
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
