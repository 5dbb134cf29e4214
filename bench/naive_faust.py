"""Baseline (b): a naive Faust agent, one event at a time, awaited send (KAFKA.md).

Run as `python -m bench.naive_faust worker --without-web -l warning` with BENCH_* variables.
"""

from __future__ import annotations

import os
import tempfile

import faust
import orjson

app = faust.App(
    os.environ.get("BENCH_APP_ID", "naive-bench"),
    broker="kafka://" + os.environ.get("BENCH_BROKER", "127.0.0.1:9092"),
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
source = app.topic(os.environ.get("BENCH_IN", "bench.in"))
target = app.topic(os.environ.get("BENCH_OUT", "bench.out"))


@app.agent(source)
async def naive(stream):  # type: ignore[no-untyped-def]
    async for key, value in stream.items():
        try:
            data = orjson.loads(value)
            data["naive"] = True
            out = orjson.dumps(data)
        except orjson.JSONDecodeError:
            out = value
        await target.send(key=key, value=out)


if __name__ == "__main__":
    app.main()
