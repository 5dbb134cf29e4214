"""(d) replay in its own process: prints JSON with its rate and peak memory."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import time
from pathlib import Path

from worker.connection import KafkaConnection
from worker.heap import settle_heap
from worker.policy_files import load_policy_book
from worker.replay.run import Replayer, ReplayPlan


def main(servers: str, topic: str, output: str) -> None:
    """Replay a whole topic into another; print the figures."""
    plan = ReplayPlan(run_id="bench", bootstrap_servers=servers, source_topic=topic, output_topic=output)
    replayer = Replayer(
        plan,
        load_policy_book(),
        connection=KafkaConnection.plaintext(servers),
        progress_stream=io.StringIO(),
        keep_summaries=False,
    )
    settle_heap()  # as `claims-worker replay` does
    started = time.perf_counter()
    result = asyncio.run(replayer.run())
    elapsed = time.perf_counter() - started
    status = Path("/proc/self/status").read_text().splitlines()
    peak = next(line for line in status if line.startswith("VmHWM")).split()[1]
    print(
        json.dumps(
            {"events": result.processed, "seconds": elapsed, "rate": result.processed / elapsed, "peak_kib": int(peak)}
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
