"""What a user would build instead of the worker, doing the same work per claim.

`SameWork` is the worker's per-claim path as a function, bytes in, one output's bytes out: the
same `Processor`, with a claim history (in memory), as every same-work pipeline calls it. The
pipelines that call it: a plain aiokafka loop (`aiokafka_loop`, here), naive and batched Faust
agents (`bench.naive_faust`), and a quix-streams application (`bench.quix_app`, in its own
environment, since quix-streams pins an older pydantic).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from claims_contracts.v1 import SourcePosition


class SameWork:
    """Decide one claim event and return its output's JSON (a decision, or a dead letter)."""

    def __init__(self) -> None:
        from worker.policy_files import load_policy_book
        from worker.processor import Decided, Processor

        self.processor = Processor(load_policy_book())
        self._decided = Decided
        self._position = SourcePosition(file_line=1)

    def output(self, value: bytes) -> bytes:
        """The output of one input (remembered as delivered: the next claims see it)."""
        result = self.processor.process(value, self._position)
        if isinstance(result, self._decided):
            self.processor.remember(result, emitted=True)
            return result.payload
        record = getattr(result, "record", None)
        return record.model_dump_json().encode() if record is not None else value


async def aiokafka_loop(
    servers: str, source: str, target: str, expected: int, *, same_work: bool, fetch_max_wait_ms: int = 500
) -> float:
    """Consume, transform, produce, await the acknowledgements, commit, per batch; return claims/s.

    `fetch_max_wait_ms`: aiokafka's default for a backlog; a latency run gives it the worker's
    (the embedded broker waits out a fetch rather than answering when data arrives).
    """
    import orjson
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    work: Any = SameWork().output if same_work else None
    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=servers,
        group_id=f"loop-{time.monotonic_ns()}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
        fetch_max_wait_ms=fetch_max_wait_ms,
    )
    producer = AIOKafkaProducer(bootstrap_servers=servers, linger_ms=5, max_batch_size=512 * 1024)
    await consumer.start()
    await producer.start()
    done, started = 0, None
    try:
        while done < expected:
            batch = await consumer.getmany(timeout_ms=1000, max_records=1000)
            if started is None and batch:
                started = time.perf_counter()
            futures = []
            for messages in batch.values():
                for message in messages:
                    if work is not None:
                        payload = work(message.value)
                    else:
                        try:
                            value = orjson.loads(message.value)
                            value["plain"] = True
                            payload = orjson.dumps(value)
                        except orjson.JSONDecodeError:
                            payload = message.value
                    futures.append(await producer.send(target, payload, key=message.key))
            await asyncio.gather(*futures)
            await consumer.commit()
            done += len(futures)
        return done / (time.perf_counter() - (started or time.perf_counter()))
    finally:
        await consumer.stop()
        await producer.stop()


def main(argv: list[str]) -> None:
    """`python -m bench.peers SERVERS SOURCE TARGET FETCH_MAX_WAIT_MS`: the same-work loop until stopped."""
    servers, source, target, wait = argv
    asyncio.run(aiokafka_loop(servers, source, target, 2**62, same_work=True, fetch_max_wait_ms=int(wait)))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
