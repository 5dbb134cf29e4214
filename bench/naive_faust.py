"""Faust peers of the worker, as a user would write them (KAFKA.md).

Run as `python -m bench.naive_faust worker --without-web -l warning` with BENCH_* variables:

- `BENCH_WORK=trivial` (parse the JSON, add a field) or `same` (the worker's `Processor`, with a
  claim history, one output per input: the same work as the worker);
- `BENCH_BATCH=0`: one event at a time, each send awaited (the naive agent); `N`: `take_events(N)`
  batches, the sends of a batch awaited together (Faust's floor, with trivial work);
- `BENCH_TRANSPORT=kafka` (aiokafka, Faust's default) or `confluent` (Faust's librdkafka driver;
  on the embedded broker it never joins its group: docs/benchmarks-notes.md);
- `BENCH_FETCH_MAX_WAIT_MS`: the longest a fetch waits on the broker, as the worker sets it (a
  latency run; Faust fixes it at 1,500 ms, which the embedded broker waits out).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Callable

import faust
import orjson

WORK = os.environ.get("BENCH_WORK", "trivial")
BATCH = int(os.environ.get("BENCH_BATCH", "0"))
TRANSPORT = os.environ.get("BENCH_TRANSPORT", "kafka")

app = faust.App(
    os.environ.get("BENCH_APP_ID", "naive-bench"),
    broker=f"{TRANSPORT}://" + os.environ.get("BENCH_BROKER", "127.0.0.1:9092"),
    key_serializer="raw",
    value_serializer="raw",
    store="memory://",
    autodiscover=False,
    datadir=tempfile.mkdtemp(prefix="naive-faust-"),
    consumer_auto_offset_reset="earliest",
    broker_session_timeout=6,
    broker_heartbeat_interval=1,
    broker_rebalance_timeout=6,
    web_enabled=False,
)
if os.environ.get("BENCH_FETCH_MAX_WAIT_MS"):
    from worker.stream.faust_quirks import guard_consumer

    guard_consumer(app, (), fetch_max_wait_ms=int(os.environ["BENCH_FETCH_MAX_WAIT_MS"]))  # no topic guarded
source = app.topic(os.environ.get("BENCH_IN", "bench.in"))
target = app.topic(os.environ.get("BENCH_OUT", "bench.out"))


def trivial(value: bytes) -> bytes:
    """Parse, add a field, serialize (a dead letter is the input itself)."""
    try:
        data = orjson.loads(value)
        data["naive"] = True
        return orjson.dumps(data)
    except orjson.JSONDecodeError:
        return value


def same_work() -> Callable[[bytes], bytes]:
    """The worker's per-claim path: validate, decide against a history, build and serialize one output."""
    from bench.peers import SameWork

    return SameWork().output


transform = trivial if WORK == "trivial" else same_work()


@app.agent(source)
async def naive(stream):  # type: ignore[no-untyped-def]
    if BATCH <= 0:
        async for key, value in stream.items():
            await target.send(key=key, value=transform(value))
        return
    async for events in stream.take_events(BATCH, within=0.05):
        futures = [await target.send(key=event.key, value=transform(event.value)) for event in events]
        await asyncio.gather(*futures)


if __name__ == "__main__":
    app.main()
