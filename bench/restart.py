"""Restart-to-ready time and resident memory of a worker holding 0, 100,000 or 1,000,000 claims of history.

For each size: the claims are decided once through the same `Processor` and `ClaimHistory`
the worker uses, and the member records that gives are written to the worker group's changelog,
each on its member's partition, exactly as a worker that decided them would have left it. Then:

1. **cold start**: a worker with an empty state directory recovers the whole changelog into its
   RocksDB store and decides a probe claim (what a new node, or an `emptyDir` volume, pays);
2. **restart**: the same worker, stopped with SIGTERM, starts again on the same state directory
   and decides the next claims, which continue the seeded stream and so reach members that have
   history. Ready = its first output; the resident set is read after all of them are decided.

Times run from starting the process to the first output's broker timestamp (the same clock).
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from bench.data import claim
from worker.history import member_of_key
from worker.settings import Settings
from worker.stream import topics
from worker.stream.rekey import member_partition

LOAD_AFTER_RESTART = 5_000
"""Claims decided after the restart (they reach members with history), before RSS is read."""


def history_records(count: int, seed: int = 5) -> tuple[dict[str, bytes], random.Random]:
    """Decide `count` seeded claims; the member records they leave, as the changelog carries them.

    Returns the generator too, so the claims after the restart continue the same stream.
    """
    from claims_contracts import SourcePosition
    from worker.policy_files import load_policy_book
    from worker.processor import Decided, Processor

    processor = Processor(load_policy_book())
    rng = random.Random(seed)
    position = SourcePosition(file_line=1)
    for n in range(count):
        result = processor.process(orjson.dumps(claim(rng, n)), position)
        if isinstance(result, Decided):
            processor.remember(result, emitted=True)
    members = processor.history.members
    return {member: json.dumps(record, separators=(",", ":")).encode() for member, record in members.items()}, rng


async def _produce(servers: str, records: list[tuple[str, bytes | None, bytes, int | None]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=servers, linger_ms=20, max_batch_size=1024 * 1024, max_request_size=4 * 1024 * 1024
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value, key=key, partition=partition) for topic, key, value, partition in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


class RestartBench:
    """One history size: build it, cold-start a worker on it, restart that worker."""

    def __init__(self, run: Any, count: int) -> None:
        self.run = run  # bench.run.Run: broker, work directory, worker environment
        self.count = count
        self.group = f"restart-{count}-{uuid.uuid4().hex[:6]}"
        self.input = f"{self.group}.in"
        self.output = f"{self.group}.out"
        self.state = run.workdir / f"state-{self.group}"

    def settings(self) -> Settings:
        return self.run.settings(self.group, self.output).model_copy(update={"input_topic": self.input})

    def measure(self) -> dict[str, Any]:
        from bench.run import collect, log, proc_status

        settings = self.settings()
        servers = self.run.servers
        asyncio.run(topics.ensure(settings))
        started = time.perf_counter()
        records, rng = history_records(self.count)
        built = time.perf_counter() - started
        changelog = topics.changelog_topic(settings, "members")
        log(f"restart: {self.count:,} claims of history = {len(records):,} records ({built:.0f} s to decide)")
        asyncio.run(
            _produce(
                servers,
                [
                    (changelog, key.encode(), value, member_partition(member_of_key(key), settings.partitions))
                    for key, value in records.items()
                ],
            )
        )
        changelog_bytes = sum(len(value) for value in records.values())
        member_count = sum(1 for key in records if member_of_key(key) == key)
        pend_records = len(records) - member_count  # members' open pend bodies, beside their records
        del records

        probe = claim(random.Random(99), 0)
        probe["claim"]["claim_id"] = f"PROBE-{self.group}"
        probe["claim"]["member"]["member_id"] = f"P{self.group}"
        asyncio.run(_produce(servers, [(self.input, None, orjson.dumps(probe), None)]))
        cold = self._start_until(1, collect, before=0)
        log(f"restart: cold start on {self.count:,} claims: first decision after {cold['ready_s']:.1f} s")

        load = [orjson.dumps(claim(rng, n)) for n in range(self.count, self.count + LOAD_AFTER_RESTART)]
        asyncio.run(_produce(servers, [(self.input, None, value, None) for value in load]))
        warm = self._start_until(1 + len(load), collect, before=1, proc_status=proc_status)
        log(
            f"restart: restart on {self.count:,} claims: first decision after {warm['ready_s']:.1f} s,"
            f" RSS {warm['rss_kib'] / 1024:.0f} MiB after {len(load):,} more"
        )
        return {
            "claims": self.count,
            "member_records": member_count,
            "pend_records": pend_records,
            "changelog_mib": changelog_bytes / 1024 / 1024,
            "history_build_s": built,
            "cold_start_ready_s": cold["ready_s"],
            "restart_ready_s": warm["ready_s"],
            "rss_kib": warm["rss_kib"],
            "peak_kib": warm["peak_kib"],
            "store_mib": _size(self.state) / 1024 / 1024,
            "load_after_restart": LOAD_AFTER_RESTART,
        }

    def _start_until(self, expected: int, collect: Any, *, before: int, proc_status: Any = None) -> dict[str, Any]:
        """Start a worker on the state directory; stop it once `expected` outputs (all so far) are out.

        `before` outputs were there before it started: its first output is the next one.
        """
        from bench.run import BIN

        env = self.run.worker_env(self.group, self.output, audit=self.run.workdir / f"audit-{self.group}.log")
        env.update(
            {
                "CLAIMS_INPUT_TOPIC": self.input,
                "CLAIMS_STATE_DIR": str(self.state),
                "CLAIMS_STORE": "rocksdb",
                "CLAIMS_WEB_PORT": str(20000 + (uuid.uuid4().int % 20000)),
            }
        )
        if self.run.broker.kind == "embedded":
            # Its ListOffsets(latest) answer is wrong for a changelog (docs/operations.md).
            env["CLAIMS_RECOVERY_CONSISTENCY_CHECK"] = "false"
        stderr = (self.run.workdir / f"{self.group}.stderr").open("ab")
        spawned = time.time()
        process = subprocess.Popen(
            [str(BIN / "claims-worker"), "run"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            records = asyncio.run(
                collect(self.run.servers, [self.output], expected, 900, alive=lambda: process.poll() is None)
            )
            rss = proc_status(process.pid, "VmRSS") if proc_status else 0
            peak = proc_status(process.pid, "VmHWM") if proc_status else 0
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
        if len(records) < expected:
            raise RuntimeError(f"only {len(records)} of {expected} outputs arrived")
        first_new = sorted(stamp for _, stamp in records)[before]
        return {"ready_s": first_new / 1000 - spawned, "rss_kib": rss, "peak_kib": peak}


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0
