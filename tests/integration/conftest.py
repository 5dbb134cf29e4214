"""A real Kafka-protocol broker for the session, and a worker process per test.

The broker is chosen as in KAFKA.md: `KAFKA_BOOTSTRAP_SERVERS`, then a
testcontainers Kafka when a Docker engine answers, then the embedded broker.
Each test gets its own topics and consumer group, so tests share the broker
without sharing state.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import signing
from worker.connection import KafkaConnection
from worker.dev.broker import FAST_JOIN, Broker, free_port, start_broker
from worker.settings import Settings
from worker.signatures import PRIVATE_KEY_FILE
from worker.stream import topics

CLI = str(Path(sys.executable).with_name("claims-worker"))
PARTITIONS = 3


BROKERS_USED: list[str] = []
"""Which broker the session used, for the terminal summary (tests/conftest.py)."""

FIGURES: dict[str, dict[str, Any]] = {}
"""What each fault test injected and found, for the terminal summary and docs/reliability.md."""

SOAK = os.environ.get("CLAIMS_SOAK") == "1"
"""`make soak`: the long versions of the fault tests (`make test` runs short ones)."""


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """The session's broker; says which kind ran."""
    started = start_broker()
    BROKERS_USED.append(f"{started.kind} broker at {started.bootstrap_servers}")
    print(f"\n[integration] broker: {started.kind} at {started.bootstrap_servers}", file=sys.stderr)
    yield started
    started.stop()


def embedded_broker_settings(broker: Broker) -> dict[str, Any]:
    """What the worker must be told on the embedded broker: its ListOffsets(latest) answers a
    wrong end offset (docs/operations.md), which Faust's recovery check of a RocksDB partition
    takes for a changelog shorter than the store, and stops."""
    return {"recovery_consistency_check": False} if broker.kind == "embedded" else {}


@dataclass
class Deployment:
    """One test's topics, group and worker settings on the shared broker."""

    broker: Broker
    tmp: Path
    name: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        return Settings(
            bootstrap_servers=self.broker.bootstrap_servers,
            group_id=f"{self.name}-group",
            input_topic=f"{self.name}.submitted",
            adjudicated_topic=f"{self.name}.adjudicated",
            pended_topic=f"{self.name}.pended",
            dead_letter_topic=f"{self.name}.dead-letter",
            reviews_topic=f"{self.name}.reviews",
            partitions=PARTITIONS,
        )

    @property
    def output_topics(self) -> list[str]:
        s = self.settings
        return [s.adjudicated_topic, s.pended_topic, s.dead_letter_topic]

    def env(self, web_port: int) -> dict[str, str]:
        worker = self.settings.model_copy(
            update={
                "web_port": web_port,
                "web_host": "127.0.0.1",
                **FAST_JOIN,
                **embedded_broker_settings(self.broker),
            }
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMS_") and k != "KAFKA_BOOTSTRAP_SERVERS"}
        env.update(worker.environment())
        # Every worker trusts the run's review key; the workbench and `review publish` sign with it.
        env["CLAIMS_REVIEW_VERIFY_KEYS"] = str(signing.KEYS)
        env["CLAIMS_REVIEW_SIGNING_KEY"] = str(signing.KEYS / PRIVATE_KEY_FILE)
        env.update(self.extra_env)
        return env

    def create_topics(self) -> None:
        asyncio.run(topics.ensure(self.settings))

    def start_worker(self, *, audit_name: str = "audit.log") -> tuple[subprocess.Popen[bytes], int, Path]:
        port = free_port()
        audit = self.tmp / audit_name
        with audit.open("ab") as stdout, (self.tmp / "worker.stderr").open("ab") as stderr:
            # The child keeps its own copies of the descriptors.
            process = subprocess.Popen([CLI, "run"], env=self.env(port), stdout=stdout, stderr=stderr)
        self.processes.append(process)
        return process, port, audit

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def produce(self, values: list[bytes], keys: list[bytes | None] | None = None) -> None:
        asyncio.run(produce(self.broker.bootstrap_servers, self.settings.input_topic, values, keys))

    def consume(self, expected: int, timeout: float = 90.0) -> list[tuple[str, bytes | None, bytes]]:
        return asyncio.run(consume(self.broker.bootstrap_servers, self.output_topics, expected, timeout))


async def produce(
    servers: str,
    topic: str,
    values: list[bytes],
    keys: list[bytes | None] | None = None,
    headers: list[list[tuple[str, bytes]]] | None = None,
) -> None:
    producer = KafkaConnection.plaintext(servers).producer(max_request_size=4 * 1024 * 1024, linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic, value, key=(keys[i] if keys else None), headers=(headers[i] if headers else None)
            )
            for i, value in enumerate(values)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume(
    servers: str, topics_: list[str], expected: int, timeout: float, settle: float = 0.0
) -> list[tuple[str, bytes | None, bytes]]:
    """Read the output topics from the start until `expected` messages (then `settle` more seconds)."""
    consumer = KafkaConnection.plaintext(servers).consumer(
        *topics_,
        auto_offset_reset="earliest",
        group_id=None,
        enable_auto_commit=False,
        fetch_max_bytes=8 * 1024 * 1024,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    out: list[tuple[str, bytes | None, bytes]] = []
    deadline = time.monotonic() + timeout
    settle_until: float | None = None
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for tp, messages in batch.items():
                out.extend((tp.topic, m.key, m.value) for m in messages)
            if len(out) >= expected:
                if settle_until is None:
                    settle_until = time.monotonic() + settle
                if time.monotonic() >= settle_until:
                    break
    finally:
        await consumer.stop()
    return out


def http_get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def decode(messages: list[tuple[str, bytes | None, bytes]]) -> list[dict[str, Any]]:
    return [json.loads(value) for _, _, value in messages]


@pytest.fixture
def deployment(broker: Broker, tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(broker, tmp_path)
    d.create_topics()
    yield d
    d.stop_all()


def rss_kib(pid: int) -> int:
    """Resident memory of a process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


def outputs_by_source(deployment: Deployment, total: int) -> dict[str, list[dict[str, Any]]]:
    """Every decision on the output topics, grouped by input event id (settled: nothing more arrives)."""
    everything = decode(
        asyncio.run(consume(deployment.broker.bootstrap_servers, deployment.output_topics, total, 15, settle=3))
    )
    grouped: dict[str, list[dict[str, Any]]] = {}
    for output in everything:
        if output["event_type"] != "claim.dead_lettered":
            grouped.setdefault(output["source_event_id"], []).append(output)
    return grouped


def wait_until_decided(deployment: Deployment, expected: set[str], timeout: float) -> None:
    """Wait until every expected input event id has a decision downstream."""

    def covered() -> bool:
        got = decode(
            # Past the count, read on for a second: repeated outputs (a kill's redeliveries) count
            # towards it, and the ones not yet read may be the last inputs' only decisions.
            asyncio.run(consume(deployment.broker.bootstrap_servers, deployment.output_topics, len(expected), 5, 1))
        )
        return {o.get("source_event_id") for o in got} >= expected

    wait_for(covered, timeout, f"all {len(expected):,} inputs to be decided")


def assert_exactly_once(grouped: dict[str, list[dict[str, Any]]], expected: set[str]) -> dict[str, int]:
    """Every input decided; any repeated output carries the same event id and body. Returns the figures."""
    assert set(grouped) == expected, f"{len(expected - set(grouped))} inputs missing"
    differing = 0
    for versions in grouped.values():
        bodies = {json.dumps({k: v for k, v in o.items() if k != "decided_at"}, sort_keys=True) for o in versions}
        ids = {o["event_id"] for o in versions}
        differing += len(bodies) > 1 or len(ids) > 1
    assert differing == 0, f"{differing} inputs have repeated outputs that differ"
    return {
        "inputs": len(expected),
        "missing": 0,
        "repeated": sum(len(v) > 1 for v in grouped.values()),
        "differing": differing,
    }
